"""The local OpenAI-compatible test endpoint: real HTTP on 127.0.0.1, replies, latency and every fault kind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from trajfm.errors import ParseError
from trajfm.judges.evidence import verify_evidence
from trajfm.judges.prompt import build_messages
from trajfm.judges.render import render_trace
from trajfm.judges.reply import parse_reply
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import EndpointConfig, Fault, LocalEndpoint, synthetic_traces

TAX = load_taxonomy("mast")


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(EndpointConfig()) as ep:
        yield ep


def _request(trace_index: int = 0, **extra: object) -> dict[str, object]:
    t = synthetic_traces(trace_index + 1, seed=3)[trace_index]
    return {"model": "trajfm-test", "messages": build_messages(render_trace(t).chunks[0], TAX), **extra}


def test_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalEndpoint(host="0.0.0.0")
    with LocalEndpoint() as ep:
        assert ep.url.startswith("http://127.0.0.1:") and ep.url.endswith("/v1") and ep.port > 0


def test_models_route(endpoint: LocalEndpoint) -> None:
    r = httpx.get(f"{endpoint.url}/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["trajfm-test"]


def test_deterministic_reply_is_a_valid_verifiable_judgement(endpoint: LocalEndpoint) -> None:
    traces = synthetic_traces(30, seed=3)
    detected = 0
    for t in traces:
        body = {"model": "trajfm-test", "messages": build_messages(render_trace(t).chunks[0], TAX)}
        r = httpx.post(f"{endpoint.url}/chat/completions", json=body)
        assert r.status_code == 200
        env = r.json()
        assert env["object"] == "chat.completion" and env["choices"][0]["finish_reason"] == "stop"
        assert env["usage"]["prompt_tokens"] > 0
        reply = parse_reply(env["choices"][0]["message"]["content"], TAX, t.step_indices())
        for mode_id, v in reply.failure_modes.items():
            if v.detected:
                detected += 1
                assert set(v.steps) <= t.step_indices()
                assert verify_evidence(v.evidence, t), (t.trace_id, mode_id, v.evidence)
        has_error = any(s.is_error for s in t.steps)
        assert reply.failure_modes["3.2"].detected == has_error
        assert reply.task_completed == (not has_error and t.final_answer is not None and not any(
            v.detected for v in reply.failure_modes.values()
        ))  # fmt: skip
    assert detected > 5  # the corpus has errors and repetitions to find
    tasks = [r.task for r in endpoint.requests]
    assert tasks == [t.task for t in traces]  # the log tells traces apart


def test_latency_is_applied() -> None:
    with LocalEndpoint(EndpointConfig(latency_ms=150)) as ep:
        t0 = time.perf_counter()
        httpx.post(f"{ep.url}/chat/completions", json=_request())
        assert time.perf_counter() - t0 >= 0.15


def _scripted(kind: str) -> tuple[httpx.Response, LocalEndpoint]:
    ep = LocalEndpoint(EndpointConfig(script=[Fault(kind)], retry_after_s=0.3, hang_s=2.0)).start()
    try:
        return httpx.post(f"{ep.url}/chat/completions", json=_request(), timeout=5.0), ep
    finally:
        ep.stop()


def test_fault_429_carries_retry_after() -> None:
    r, ep = _scripted("429")
    assert r.status_code == 429
    assert r.headers["retry-after-ms"] == "300" and r.headers["Retry-After"] == "1"
    assert ep.requests[0].fault == "429" and ep.requests[0].status == 429


def test_fault_500() -> None:
    r, _ = _scripted("500")
    assert r.status_code == 500 and "injected" in r.json()["error"]["message"]


@pytest.mark.parametrize("kind", ["malformed", "wrong_keys"])
def test_content_faults_fail_parsing(kind: str) -> None:
    r, _ = _scripted(kind)
    assert r.status_code == 200
    with pytest.raises(ParseError):
        parse_reply(r.json()["choices"][0]["message"]["content"], TAX, {1, 2, 3})


def test_truncated_reply_says_length() -> None:
    r, _ = _scripted("truncated")
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice["message"]["content"])


def test_bad_envelope_is_cut_mid_json() -> None:
    r, _ = _scripted("bad_envelope")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


def test_hang_outlasts_a_client_timeout() -> None:
    with LocalEndpoint(EndpointConfig(script=[Fault("hang")], hang_s=3.0)) as ep:
        t0 = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{ep.url}/chat/completions", json=_request(), timeout=0.5)
        assert time.perf_counter() - t0 < 2.0
        # the server keeps serving others meanwhile
        assert httpx.post(f"{ep.url}/chat/completions", json=_request(), timeout=5.0).status_code == 200


def test_random_fault_rate_is_about_right() -> None:
    with (
        LocalEndpoint(EndpointConfig(fault_rate=0.1, faults=("500",), seed=7)) as ep,
        httpx.Client() as client,
    ):
        codes = [client.post(f"{ep.url}/chat/completions", json=_request()).status_code for _ in range(300)]
    assert 12 <= codes.count(500) <= 50  # binomial(300, 0.1): mean 30, sd 5.2
    assert set(codes) == {200, 500}


def test_api_key_is_checked_but_never_logged() -> None:
    key = "sk-test-endpoint-key-0123456789"
    with LocalEndpoint(EndpointConfig(api_key=key)) as ep:
        assert httpx.post(f"{ep.url}/chat/completions", json=_request()).status_code == 401
        ok = httpx.post(
            f"{ep.url}/chat/completions", json=_request(), headers={"Authorization": f"Bearer {key}"}
        )
        assert ok.status_code == 200
        log = httpx.get(f"http://127.0.0.1:{ep.port}/_trajfm/requests").text
    assert key not in log
    assert [r["authorized"] for r in json.loads(log)] == [False, True]


def test_structured_output_can_be_refused() -> None:
    body = _request(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    with LocalEndpoint(EndpointConfig(structured_output=False)) as ep:
        r = httpx.post(f"{ep.url}/chat/completions", json=body)
    assert r.status_code == 400 and "response_format" in r.text


def test_unknown_model_and_bad_fault_config() -> None:
    with LocalEndpoint() as ep:
        r = httpx.post(f"{ep.url}/chat/completions", json={**_request(), "model": "gpt-9"})
    assert r.status_code == 404
    with pytest.raises(ValueError):
        EndpointConfig(faults=("explode",))
    with pytest.raises(ValueError):
        Fault("explode")


def test_scripted_replies_come_first_then_deterministic() -> None:
    with LocalEndpoint(EndpointConfig(script=["first", Fault("500")])) as ep:
        got = [httpx.post(f"{ep.url}/chat/completions", json=_request()) for _ in range(3)]
    assert got[0].json()["choices"][0]["message"]["content"] == "first"
    assert got[1].status_code == 500
    assert json.loads(got[2].json()["choices"][0]["message"]["content"])["failure_modes"]


def test_cli_serves_until_stopped() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trajfm.cli", "serve-test-endpoint", "--port", "0", "--latency-ms", "10"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        m = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert m, line
        assert httpx.get(f"{m.group(1)}/models", timeout=5).json()["data"][0]["id"] == "trajfm-test"
        assert httpx.post(f"{m.group(1)}/chat/completions", json=_request(), timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
