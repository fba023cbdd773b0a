"""Structured-output negotiation: which `response_format` an endpoint accepts, found once per run.

Endpoints differ: OpenAI and vLLM accept `{"type": "json_schema", ...}`; llama.cpp's Python server accepts only
`text` or `json_object` (and constrains decoding to a `schema` attached to `json_object`, its extension) and
refuses json_schema with HTTP 500; others answer 400 or 422. A judge that keeps sending what was refused
spends its retries on a request that can never succeed.

Contract of `StructuredOutput(requested)`:
- `requested` is "auto" (try `MODES` in order: json_schema, then json_object with the schema attached, then
  plain JSON in the text), "json_schema" (only that; a refusal is final) or "off" (plain text only).
- `mode` is the mode to send now; `response_format(schema, mode)` is the request's `response_format` value for
  a mode (None for "text": no response_format is sent).
- `is_refusal(status, body, mode)`: an HTTP 400, 422 or 500 whose body names `response_format`, `json_schema`
  or the refused type is the endpoint refusing that structured-output mode (a plain 500 is not).
- `refused(mode, status, body)` records a refusal of `mode` and moves past it, so the next request is sent
  differently; it returns True when the caller should send again with the new `mode`, False when the refusal
  is final (nothing left to try) or was not a refusal at all. Requests already in flight with an older mode
  that come back refused do not move the negotiation twice. A refused mode is never sent again in this run.
- `accepted(mode)` records that a reply came back for `mode` (the negotiated mode is then confirmed).
- `manifest()` says what was requested, what is used, what was refused (status and the first words of the
  endpoint's message) and whether a reply confirmed it: recorded in manifest.json by the judge.
- `NegotiationPolicy(state, schema)` plugs it into the judge's attempt loop (`trajfm.judges.attempts`): a
  refused request is followed at once, in the same attempt, by the same request in the next mode (code
  `structured_output_negotiated`); the client raises 422/500 refusals as `RequestRejected` too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trajfm.judges.attempts import NextRequest, Turn
from trajfm.judges.client import ChatRequest, RequestRejected

MODES = ("json_schema", "json_object", "text")
REQUESTS = {"auto": MODES, "json_schema": ("json_schema",), "off": ("text",)}
REFUSAL_STATUSES = (400, 422, 500)
SCHEMA_NAME = "trajfm_diagnosis"
_WORDS = {
    "json_schema": ("response_format", "json_schema", "structured output", "structured_output"),
    "json_object": ("response_format", "json_object", "json mode", "structured output"),
}
_WS = re.compile(r"\s+")


def response_format(schema: dict[str, Any], mode: str) -> dict[str, Any] | None:
    """The `response_format` body value for `mode` (None: send none)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema}}
    if mode == "json_object":
        # `schema` beside json_object is llama.cpp's extension (grammar-constrained decoding); servers that do
        # not know it ignore it and still return a JSON object.
        return {"type": "json_object", "schema": schema}
    if mode == "text":
        return None
    raise ValueError(f"unknown structured-output mode {mode!r}; known: {', '.join(MODES)}")


def is_refusal(status: int, body: str, mode: str) -> bool:
    """True when an HTTP answer refuses the `response_format` sent for `mode` (see the module docstring)."""
    if mode not in _WORDS or status not in REFUSAL_STATUSES:
        return False
    text = (body or "").lower()
    return any(word in text for word in _WORDS[mode])


def _gist(body: str, limit: int = 160) -> str:
    return _WS.sub(" ", body or "").strip()[:limit]


@dataclass
class StructuredOutput:
    """The negotiation state of one judge for one run (see the module docstring)."""

    requested: str = "auto"
    refusals: list[dict[str, Any]] = field(default_factory=list)
    confirmed: bool = False
    _index: int = 0

    def __post_init__(self) -> None:
        if self.requested not in REQUESTS:
            raise ValueError(
                f"structured_output must be one of {', '.join(REQUESTS)}, not {self.requested!r}"
            )

    @property
    def order(self) -> tuple[str, ...]:
        return REQUESTS[self.requested]

    @property
    def mode(self) -> str:
        return self.order[min(self._index, len(self.order) - 1)]

    @property
    def exhausted(self) -> bool:
        """True once the last mode to try was refused too (only possible for json_schema-only)."""
        return self._index >= len(self.order)

    def response_format(self, schema: dict[str, Any], mode: str | None = None) -> dict[str, Any] | None:
        return response_format(schema, mode or self.mode)

    def refused(self, mode: str, status: int, body: str) -> bool:
        """Record a refusal of `mode`; True when the caller should send again with the (new) `mode`."""
        if not is_refusal(status, body, mode):
            return False
        if mode not in self.order[self._index :]:
            # Already moved past it (another request was in flight): send again with the current mode.
            return not self.exhausted
        if not any(r["mode"] == mode for r in self.refusals):
            self.refusals.append({"mode": mode, "status": status, "message": _gist(body)})
        self._index = self.order.index(mode) + 1
        self.confirmed = False
        return not self.exhausted

    def accepted(self, mode: str) -> None:
        if mode == self.mode:
            self.confirmed = True

    def manifest(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "used": None if self.exhausted else self.mode,
            "tried": list(self.order[: min(self._index + 1, len(self.order))]),
            "refusals": list(self.refusals),
            "confirmed_by_a_reply": self.confirmed,
        }


NEGOTIATED_CODE = "structured_output_negotiated"


class NegotiationPolicy:
    """An attempt policy (`trajfm.judges.attempts`): after the endpoint refused the `response_format` of a
    request, send the same request with the next mode (`StructuredOutput.refused`); None when the rejection is
    not such a refusal or nothing is left to try (the rejection is then final: never sent again as it was)."""

    def __init__(self, state: StructuredOutput, schema: dict[str, Any]) -> None:
        self.state = state
        self.schema = schema

    def next_request(self, turns: Sequence[Turn]) -> NextRequest | None:
        last = turns[-1]
        if not isinstance(last.error, RequestRejected):
            return None
        fmt = last.request.params.get("response_format")
        if not isinstance(fmt, dict):
            return None
        if not self.state.refused(str(fmt.get("type")), last.error.status, last.error.body):
            return None
        params = {k: v for k, v in last.request.params.items() if k != "response_format"}
        new = self.state.response_format(self.schema)
        if new is not None:
            params["response_format"] = new
        request = ChatRequest(last.request.messages, last.request.max_tokens, params, reason=NEGOTIATED_CODE)
        return NextRequest(request, NEGOTIATED_CODE)
