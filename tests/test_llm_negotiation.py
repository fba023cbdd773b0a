"""The LLM judge against test endpoints that behave like real servers (issue 17): refusals of response_format
in each style (400, 422, 500), replies cut off at the token limit, prompts that overflow the context window."""

from __future__ import annotations

from typing import Any

import pytest

from trajfm.judges.llm import LLMJudge
from trajfm.judges.runner import run_judge
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import EndpointConfig, LocalEndpoint, synthetic_traces
from trajfm.traces.model import Step, Trace

TAX = load_taxonomy("mast")
FAST: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.05, "progress": False}


def _sig(r: Any) -> tuple[Any, ...]:
    """What makes a request different from another one for the same trace."""
    return (r.fence_tag, r.response_format, r.max_tokens, r.turns, r.compact)


@pytest.mark.parametrize("status", [400, 422, 500])
def test_a_refused_json_schema_is_followed_at_once_by_json_object_for_the_rest_of_the_run(
    status: int,
) -> None:
    cfg = EndpointConfig(refuse_formats=("json_schema",), refusal_status=status)
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url)
        out = run_judge(judge, synthetic_traces(4), TAX, concurrency=1, **FAST)
    assert [d.status for d in out] == ["ok"] * 4
    sent = [(r.response_format, r.status) for r in ep.requests]
    assert sent == [("json_schema", status)] + [("json_object", 200)] * 4  # refused once, never sent again
    assert out[0].calls == 2 and "structured_output_negotiated" in out[0].extra["reply_repairs"]
    assert all(d.extra["structured_output"] == "json_object" for d in out)
    info = judge.manifest_info()["structured_output"]
    assert info["used"] == "json_object" and info["confirmed_by_a_reply"] is True
    assert info["refusals"] == [
        {"mode": "json_schema", "status": status, "message": info["refusals"][0]["message"]}
    ]
    assert (
        "json_object" in info["refusals"][0]["message"] or "response_format" in info["refusals"][0]["message"]
    )


def test_concurrent_refusals_step_the_negotiation_once() -> None:
    cfg = EndpointConfig(refuse_formats=("json_schema",), refusal_status=500, latency_ms=50)
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url)
        out = run_judge(judge, synthetic_traces(6), TAX, concurrency=6, **FAST)
    assert all(d.status == "ok" for d in out)
    assert judge.manifest_info()["structured_output"]["used"] == "json_object"  # not pushed on to text
    assert {r.response_format for r in ep.requests if r.status == 200} == {"json_object"}


def test_an_endpoint_refusing_both_structured_modes_gets_json_in_text() -> None:
    cfg = EndpointConfig(refuse_formats=("json_schema", "json_object"), refusal_status=422)
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url)
        out = run_judge(judge, synthetic_traces(3), TAX, concurrency=1, **FAST)
    assert all(d.status == "ok" for d in out)
    assert [r.response_format for r in ep.requests] == ["json_schema", "json_object", None, None, None]
    info = judge.manifest_info()["structured_output"]
    assert info["used"] == "text" and [r["mode"] for r in info["refusals"]] == ["json_schema", "json_object"]


def test_json_schema_only_fails_fast_without_resending_the_refused_request() -> None:
    cfg = EndpointConfig(refuse_formats=("json_schema",), refusal_status=500)
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, structured_output="json_schema")
        out = run_judge(judge, synthetic_traces(2), TAX, concurrency=1, **FAST)
    assert [d.status for d in out] == ["backend_error"] * 2
    assert len(ep.requests) == 2  # one per trace: a refusal is never retried as it was
    assert (
        "HTTP 500" in (out[0].error or "")
        and "response_format" not in judge.manifest_info()["structured_output"]
    )
    assert judge.manifest_info()["structured_output"]["used"] is None


def test_a_plain_500_is_still_retried_as_a_server_error() -> None:
    from trajfm.testing import Fault

    with LocalEndpoint(EndpointConfig(script=[Fault("500")])) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url)
        [d] = run_judge(judge, synthetic_traces(1), TAX, concurrency=1, **FAST)
    assert d.status == "ok" and [r.response_format for r in ep.requests] == ["json_schema", "json_schema"]
    assert judge.manifest_info()["structured_output"]["refusals"] == []


# --- cut-off replies ---------------------------------------------------------------------------------------------
def test_a_cut_off_reply_is_repaired_with_the_compact_form_and_a_larger_budget() -> None:
    # Replies padded with ~2,000 characters of rationale overflow 400 tokens; the compact form fits 800.
    cfg = EndpointConfig(honour_max_tokens=True, rationale_padding=150)
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, max_tokens=400)
        out = run_judge(judge, synthetic_traces(3), TAX, concurrency=1, **FAST)
    assert [d.status for d in out] == ["ok"] * 3
    assert all("truncated" in d.extra["reply_repairs"] and d.calls == 2 for d in out)
    first, repair = ep.requests[0], ep.requests[1]
    assert first.finish_reason == "length" and not first.compact and first.max_tokens == 400
    assert (
        repair.compact and repair.max_tokens == 800 and repair.turns == 4 and repair.finish_reason == "stop"
    )
    assert judge.manifest_info()["cut_off_replies"] == 3


def test_a_reply_that_never_fits_ends_as_a_final_parse_error_without_identical_requests() -> None:
    cfg = EndpointConfig(honour_max_tokens=True)
    with LocalEndpoint(cfg) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, max_tokens=20, max_tokens_ceiling=80)
        [d] = run_judge(judge, synthetic_traces(1), TAX, concurrency=1, max_retries=3, **FAST)
    assert d.status == "parse_error" and "cut off" in (d.error or "")
    sigs = [_sig(r) for r in ep.requests]
    assert (
        len(sigs) == len(set(sigs)) == 3
    )  # 20 tokens, then compact with 40, then compact with 80: no repeat
    assert [r.max_tokens for r in ep.requests] == [20, 40, 80]
    assert d.extra["attempts"] == 1  # the runner does not send the same conversation again


def test_without_a_ceiling_the_compact_form_keeps_the_budget() -> None:
    with LocalEndpoint(EndpointConfig(honour_max_tokens=True, rationale_padding=150)) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, max_tokens=700, max_tokens_ceiling=0)
        [d] = run_judge(judge, synthetic_traces(1), TAX, concurrency=1, **FAST)
    assert d.status == "ok" and [r.max_tokens for r in ep.requests] == [700, 700]
    assert [r.compact for r in ep.requests] == [False, True]


# --- context overflow -------------------------------------------------------------------------------------------
def _long_trace(n_steps: int = 12, chars: int = 1500) -> Trace:
    steps = []
    for i in range(n_steps):
        body = f"observation {i}: " + " ".join(f"reading{i}_{k}=ok" for k in range(chars // 14))
        steps.append(Step(2 * i, i + 1, "action", f"call tool number {i}", tool_name="Sensors"))
        steps.append(Step(2 * i + 1, i + 1, "observation", body))
    return Trace("long/1", "long/1", "test", steps=steps, task="Check every sensor.", final_answer="all fine")


def test_a_prompt_over_the_context_window_is_re_rendered_in_smaller_chunks() -> None:
    trace = _long_trace()
    with LocalEndpoint(EndpointConfig(context_tokens=3000)) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, max_tokens=500)
        [d] = run_judge(judge, [trace], TAX, concurrency=1, **FAST)
    assert d.status == "ok", d.error
    assert d.extra["render"]["chunks"] > 1
    refused = [r for r in ep.requests if r.status == 400]
    assert len(refused) == 1 and all(r.status == 200 for r in ep.requests[1:])
    outcome = judge.manifest_info()
    assert list(outcome["context_overflow_rerendered"]) == ["long/1"]
    assert "long/1" in outcome["rendering_outcome"]["chunked_traces"]


def test_a_context_too_small_for_the_instructions_fails_once_with_advice() -> None:
    with LocalEndpoint(EndpointConfig(context_tokens=600)) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, max_tokens=500)
        [d] = run_judge(judge, [_long_trace(2, 200)], TAX, concurrency=1, **FAST)
    assert d.status == "backend_error" and "--n_ctx" in (d.error or "")
    assert len(ep.requests) == 1
