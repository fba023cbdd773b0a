"""Structured-output negotiation, cut-off replies and context overflow: the decisions, without a server (issue 17).

The same behaviour end to end, through the LLM judge and the test endpoint: test_llm_negotiation.py."""

from __future__ import annotations

import json

import httpx
import pytest

from trajfm.judges.cutoff import (
    COMPACT_MARKER,
    compact_request,
    context_limits,
    is_context_overflow,
    next_budget,
    smaller_budget,
)
from trajfm.judges.negotiate import StructuredOutput, is_refusal, response_format
from trajfm.testing import EndpointConfig, LocalEndpoint
from trajfm.testing.endpoint import _refusal

SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}}


# --- negotiation ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [400, 422, 500])
def test_each_refusal_style_of_the_test_endpoint_is_recognised(status: int) -> None:
    body = _refusal(status, "json_schema")
    assert is_refusal(status, body, "json_schema")
    assert not is_refusal(status, body, "text")  # nothing was sent, nothing can be refused


@pytest.mark.parametrize(
    "status, body",
    [
        (500, '{"error": {"message": "internal server error"}}'),  # a plain 500: retried, not negotiated
        (400, '{"error": {"message": "model not found"}}'),
        (404, '{"error": {"message": "response_format unknown route"}}'),  # not a refusal status
        (429, "response_format"),
    ],
)
def test_other_errors_are_not_refusals(status: int, body: str) -> None:
    assert not is_refusal(status, body, "json_schema")


def test_auto_walks_json_schema_then_json_object_then_text_and_never_resends_a_refused_mode() -> None:
    neg = StructuredOutput("auto")
    assert neg.mode == "json_schema"
    assert neg.response_format(SCHEMA)["type"] == "json_schema"
    assert neg.refused("json_schema", 500, _refusal(500, "json_schema")) is True
    assert neg.mode == "json_object"
    assert neg.response_format(SCHEMA) == {"type": "json_object", "schema": SCHEMA}
    # a second request that was in flight with json_schema comes back refused: no double step
    assert neg.refused("json_schema", 500, _refusal(500, "json_schema")) is True
    assert neg.mode == "json_object" and len(neg.refusals) == 1
    neg.accepted("json_object")
    info = neg.manifest()
    assert info["used"] == "json_object" and info["confirmed_by_a_reply"] is True
    assert info["tried"] == ["json_schema", "json_object"]
    assert info["refusals"][0]["status"] == 500 and "json_object" in info["refusals"][0]["message"]
    assert neg.refused("json_object", 422, _refusal(422, "json_object")) is True
    assert neg.mode == "text" and neg.response_format(SCHEMA) is None
    assert neg.manifest()["confirmed_by_a_reply"] is False


def test_json_schema_only_gives_up_and_off_never_negotiates() -> None:
    neg = StructuredOutput("json_schema")
    assert neg.refused("json_schema", 400, _refusal(400, "json_schema")) is False
    assert neg.exhausted and neg.manifest()["used"] is None
    off = StructuredOutput("off")
    assert off.mode == "text" and off.refused("text", 500, "response_format") is False
    with pytest.raises(ValueError, match="structured_output"):
        StructuredOutput("maybe")
    with pytest.raises(ValueError, match="unknown structured-output mode"):
        response_format(SCHEMA, "xml")


# --- cut-off replies ---------------------------------------------------------------------------------------------
def test_a_cut_off_reply_gets_a_compact_repair_and_then_a_larger_budget_never_the_same_request() -> None:
    first = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    cut = "x" * 5000
    msgs, budget = compact_request(first, cut, 1000, 4000, already_compact=False)
    assert budget == 2000
    assert msgs[:2] == first and msgs[2]["role"] == "assistant" and len(msgs[2]["content"]) < 1600
    assert COMPACT_MARKER in msgs[3]["content"] and "1000 tokens" in msgs[3]["content"]
    # no room to grow: still a different request (the compact instruction), same budget
    msgs2, budget2 = compact_request(first, cut, 4000, 4000, already_compact=False)
    assert budget2 == 4000 and COMPACT_MARKER in msgs2[-1]["content"]
    # already compact: only a larger budget changes the request; none left -> nothing to send
    assert compact_request(msgs, cut, 2000, 4000, already_compact=True) == (msgs, 4000)
    assert compact_request(msgs, cut, 4000, 4000, already_compact=True) is None
    assert next_budget(1000, None) is None and next_budget(3000, 4000) == 4000


# --- context overflow -------------------------------------------------------------------------------------------
LLAMA_CPP_PYTHON = (
    "This model's maximum context length is 2048 tokens. However, you requested 6000 tokens (5000 in the messages, "
    "1000 in the completion). Please reduce the length of the messages or completion."
)
LLAMA_CPP_NATIVE = json.dumps(
    {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
               "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 2048}}
)  # fmt: skip


@pytest.mark.parametrize("body", [LLAMA_CPP_PYTHON, LLAMA_CPP_NATIVE])
def test_context_overflow_messages_are_recognised_and_read(body: str) -> None:
    assert is_context_overflow(400, body)
    assert context_limits(body) == (2048, 5000)


def test_overflow_budget_uses_the_servers_numbers_or_halves() -> None:
    # 5000 prompt tokens from 20,000 chars: 4 chars/token; room 2048 - 1000 = 1048 tokens -> ~3,770 chars,
    # less the 2,000 chars of instructions that do not shrink.
    new = smaller_budget(18_000, 20_000, LLAMA_CPP_PYTHON, reply_tokens=1000, min_chars=400, fixed_chars=2000)
    assert new is not None and 1000 < new < 2000
    assert smaller_budget(18_000, 20_000, "context_length_exceeded", reply_tokens=1000, min_chars=400) == 9000
    # cannot fit even the instructions: None (a final, explained failure)
    assert (
        smaller_budget(18_000, 20_000, LLAMA_CPP_PYTHON, reply_tokens=1000, min_chars=400, fixed_chars=9000)
        is None
    )
    assert not is_context_overflow(500, "internal server error") and not is_context_overflow(
        429, LLAMA_CPP_PYTHON
    )


# --- the test endpoint's imitations -----------------------------------------------------------------------------
def _post(ep: LocalEndpoint, **body: object) -> httpx.Response:
    msgs = [{"role": "system", "content": "[1.1] A (x): d"}, {"role": "user", "content": "hello"}]
    return httpx.post(f"{ep.url}/chat/completions", json={"model": "trajfm-test", "messages": msgs, **body})


@pytest.mark.parametrize("status", [400, 422, 500])
def test_endpoint_refuses_the_listed_formats_in_the_chosen_style(status: int) -> None:
    cfg = EndpointConfig(refuse_formats=("json_schema",), refusal_status=status)
    with LocalEndpoint(cfg) as ep:
        refused = _post(ep, response_format=response_format(SCHEMA, "json_schema"))
        accepted = _post(ep, response_format=response_format(SCHEMA, "json_object"))
    assert refused.status_code == status and is_refusal(status, refused.text, "json_schema")
    assert accepted.status_code == 200
    assert [r.response_format for r in ep.requests] == ["json_schema", "json_object"]


def test_endpoint_cuts_long_replies_and_refuses_long_prompts() -> None:
    with LocalEndpoint(EndpointConfig(honour_max_tokens=True, context_tokens=100)) as ep:
        cut = _post(ep, max_tokens=5).json()["choices"][0]
        whole = _post(ep, max_tokens=4000).json()["choices"][0]
        too_long = httpx.post(
            f"{ep.url}/chat/completions",
            json={
                "model": "trajfm-test",
                "messages": [{"role": "user", "content": "x" * 800}],
                "max_tokens": 10,
            },
        )
    assert cut["finish_reason"] == "length" and len(cut["message"]["content"]) == 20
    assert whole["finish_reason"] == "stop"
    assert too_long.status_code == 400 and is_context_overflow(400, too_long.text)
    assert context_limits(too_long.text) == (100, 200)
