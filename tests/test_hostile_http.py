"""A loopback endpoint that misbehaves on purpose: every run ends within its bounds with a status per trace.

Everything goes through the shared `ChatClient` (the judge's calls, the sync calls, the endpoint check).
Misbehaviours: 429 with Retry-After of a day, an HTTP date in 2099 or retry-after-ms 1e12 (--max-wait, a small
handler of its own: the test endpoint sends only numeric Retry-After); a reply that drips one byte at a time
(the total deadline, on POST and on GET /models); a reply of 50 MB, declared or streamed (the reply-size cap),
from `trajfm.testing.LocalEndpoint`'s stream faults.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from trajfm.errors import BackendError, JudgeError
from trajfm.extract import run_extract
from trajfm.judges.client import ChatClient, ChatRequest
from trajfm.testing import EndpointConfig, Fault, LocalEndpoint

TRACE = [{"role": "user", "content": "refund order 7"}, {"role": "assistant", "content": "refunded"}]


class _Handler(BaseHTTPRequestHandler):
    behaviour = "ok"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"data": [{"id": "m"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        b = self.behaviour
        if b.startswith("retry_"):
            header = {
                "retry_seconds": ("Retry-After", "86400"),
                "retry_date": ("Retry-After", "Fri, 31 Dec 2099 23:59:59 GMT"),
                "retry_ms": ("retry-after-ms", "1e12"),
            }[b]
            body = b'{"error": "slow down"}'
            self.send_response(429)
            self.send_header(*header)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture()
def endpoint() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


def _extract(tmp_path: Path, url: str, **kw: object) -> tuple[pl.DataFrame, float]:
    traces = tmp_path / "traces"
    traces.mkdir(exist_ok=True)
    for n in range(2):
        (traces / f"t{n}.json").write_text(json.dumps(TRACE))
    out = tmp_path / "run"
    started = time.monotonic()
    with pytest.raises(JudgeError, match="no trace could be judged"):
        run_extract([traces], out, judge="llm", model="m", base_url=url, concurrency=2, **kw)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    return pl.read_parquet(out / "diagnoses.parquet"), elapsed


@pytest.mark.parametrize("behaviour", ["retry_seconds", "retry_date", "retry_ms"])
def test_retry_after_longer_than_max_wait_fails_the_trace_at_once(
    endpoint: tuple[str, type[_Handler]], tmp_path: Path, behaviour: str
) -> None:
    url, handler = endpoint
    handler.behaviour = behaviour
    diagnoses, elapsed = _extract(tmp_path, url, max_wait=5.0, max_retries=3)
    assert diagnoses["status"].to_list() == ["backend_error", "backend_error"]
    assert all("more than --max-wait 5 s" in e for e in diagnoses["error"].to_list())
    assert elapsed < 90, elapsed  # not a day, not 2099 (generous: the test machine is shared)


# --- the total deadline and the reply-size cap (trajfm.testing.LocalEndpoint's stream faults) -------------------
MODEL = "trajfm-test"
HELLO = ChatRequest([{"role": "user", "content": "hello"}], max_tokens=5)


@pytest.mark.parametrize("call", ["sync", "async"])
def test_a_reply_dripping_one_byte_at_a_time_ends_at_the_total_deadline(call: str) -> None:
    # A byte every 0.5 s: no single read waits anywhere near timeout_s, so only a deadline on the whole reply
    # (connect + send + every byte) can end it; the body is 1,000 bytes, i.e. 500 s if read to the end.
    with LocalEndpoint(EndpointConfig(script=[Fault("drip")], drip_every_s=0.5)) as ep:
        client = ChatClient(ep.url, MODEL, timeout_s=2.0)
        started = time.monotonic()
        with pytest.raises(
            BackendError, match=r"the whole reply did not arrive within 2 s \(total deadline\)"
        ) as err:
            if call == "sync":
                client.complete(HELLO)
            else:
                asyncio.run(_acomplete_and_close(client))
        elapsed = time.monotonic() - started
    assert err.value.retryable  # a slow endpoint may answer the next attempt in time
    assert 1.9 <= elapsed < 10, elapsed


async def _acomplete_and_close(client: ChatClient) -> None:
    try:
        await client.acomplete(HELLO)
    finally:
        await client.aclose()


def test_a_run_against_a_dripping_endpoint_fails_each_trace_within_its_deadlines(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    for n in range(2):
        (traces / f"t{n}.json").write_text(json.dumps([*TRACE, {"role": "user", "content": f"case {n}"}]))
    cfg = EndpointConfig(decide=lambda rec: "drip", drip_every_s=0.5)
    with LocalEndpoint(cfg) as ep:
        started = time.monotonic()
        with pytest.raises(JudgeError, match="no trace could be judged"):
            run_extract([traces], tmp_path / "run", judge="llm", model=MODEL, base_url=ep.url, concurrency=2,
                        max_retries=1, judge_options={"timeout_s": 2.0})  # fmt: skip
        elapsed = time.monotonic() - started
        calls = len(ep.requests)
    diagnoses = pl.read_parquet(tmp_path / "run" / "diagnoses.parquet")
    assert diagnoses["status"].to_list() == ["backend_error", "backend_error"]
    assert all("total deadline" in e for e in diagnoses["error"].to_list())
    assert calls == 4  # two traces, one retry each: every attempt ended at its deadline
    assert elapsed < 60, elapsed  # 2 attempts x 2 s each, plus backoff and start-up on a shared machine


def test_the_endpoint_check_ends_at_its_deadline_when_the_model_list_drips() -> None:
    with LocalEndpoint(EndpointConfig(models_fault="drip", drip_every_s=0.5)) as ep:
        client = ChatClient(ep.url, MODEL)
        started = time.monotonic()
        found = client.check(timeout_s=2.0)
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 10, elapsed
    assert found.reachable and found.problem is not None
    assert "did not finish answering GET /models within 2 s" in found.problem


def test_dry_run_against_a_dripping_model_list_is_a_one_line_error(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "t.json").write_text(json.dumps(TRACE))
    with LocalEndpoint(EndpointConfig(models_fault="drip", drip_every_s=0.5)) as ep:
        started = time.monotonic()
        with pytest.raises(JudgeError, match="did not finish answering GET /models") as err:
            run_extract([traces], tmp_path / "run", judge="llm", model=MODEL, base_url=ep.url, dry_run=True)
        elapsed = time.monotonic() - started
    assert "\n" not in str(err.value)
    assert elapsed < 30, elapsed  # the check's own 10 s deadline, not the 1,000 s the body would take


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("huge", r"reply of 50,000,000 bytes refused unread"),
        ("huge_stream", r"grew past the 4,000,000-byte cap"),
    ],
)
def test_a_50_mb_reply_is_refused_without_being_kept(kind: str, message: str) -> None:
    with LocalEndpoint(EndpointConfig(script=[Fault(kind)])) as ep:
        client = ChatClient(ep.url, MODEL)
        started = time.monotonic()
        with pytest.raises(BackendError, match=message) as err:
            client.complete(HELLO)
        elapsed = time.monotonic() - started
    assert not err.value.retryable  # the same request would get the same reply
    assert elapsed < 30, elapsed


def test_a_run_records_a_refused_huge_reply_once_per_trace(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    for n in range(2):
        (traces / f"t{n}.json").write_text(json.dumps([*TRACE, {"role": "user", "content": f"case {n}"}]))
    with LocalEndpoint(EndpointConfig(decide=lambda rec: "huge_stream")) as ep:
        with pytest.raises(JudgeError, match="no trace could be judged"):
            run_extract([traces], tmp_path / "run", judge="llm", model=MODEL, base_url=ep.url, max_retries=3)
        calls = len(ep.requests)
    diagnoses = pl.read_parquet(tmp_path / "run" / "diagnoses.parquet")
    assert diagnoses["status"].to_list() == ["backend_error", "backend_error"]
    assert all("byte cap on replies" in e for e in diagnoses["error"].to_list())
    assert calls == 2  # refused, not retried


@pytest.mark.parametrize("kind", ["huge", "huge_stream"])
def test_the_endpoint_check_refuses_a_huge_model_list(kind: str) -> None:
    with LocalEndpoint(EndpointConfig(models_fault=kind)) as ep:
        found = ChatClient(ep.url, MODEL).check(timeout_s=10.0)
    assert found.reachable and found.problem is not None
    assert "unusable answer to GET /models" in found.problem and "cap on replies" in found.problem


@pytest.mark.parametrize("retries", [0, 2])
def test_max_retries_bounds_the_calls_per_trace(tmp_path: Path, retries: int) -> None:
    from typer.testing import CliRunner

    from trajfm.cli import app

    traces = tmp_path / "traces"
    traces.mkdir()
    for n in range(2):
        (traces / f"t{n}.json").write_text(json.dumps([*TRACE, {"role": "user", "content": f"case {n}"}]))
    with LocalEndpoint(EndpointConfig(decide=lambda rec: "500")) as ep:
        res = CliRunner().invoke(app, ["extract", str(traces), "--out", str(tmp_path / "run"), "--judge", "llm",
                                       "--model", MODEL, "--base-url", ep.url, "--no-progress",
                                       "--max-retries", str(retries)])  # fmt: skip
        calls = len(ep.requests)
    assert res.exit_code == 1 and "no trace could be judged" in " ".join(res.output.split())
    assert calls == 2 * (1 + retries)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["extract"]["options"]["max_retries"] == retries
