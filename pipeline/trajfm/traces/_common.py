"""Helpers shared by the format loaders: where a record came from, building steps, reading loose JSON.

Contract:
- Every loader's `parse(doc, source)` takes an already-decoded JSON document (or text for raw logs) plus a
  `Source`, returns a list of `Trace`, and raises only `TraceLoadError` for input it cannot understand. The
  helpers here raise `TraceLoadError` (never KeyError/TypeError) so a loader that uses them for every field
  access stays clean on hostile input.
- `StepBuilder` numbers `Step.position` 0..n-1 in append order and keeps `step_id` unique within a trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from trajfm.errors import TraceLoadError
from trajfm.traces.model import Step, Trace, default_role


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from.

    `path` is the file as the user named or found it; `rel` is the path relative to the root the user named
    (with the root's own name in front, so two roots cannot collide), '/'-separated; it is the base of every
    trace id. `record` is the record number inside a multi-trace file (None for single-trace files).
    """

    path: str
    rel: str
    record: int | str | None = None

    def trace_id(self, record: int | str | None = None) -> str:
        rec = self.record if record is None else record
        return self.rel if rec is None else f"{self.rel}#{rec}"

    def with_record(self, record: int | str | None) -> Source:
        return Source(self.path, self.rel, record)

    def error(self, reason: str, *, record: int | str | None = None) -> TraceLoadError:
        rec = self.record if record is None else record
        return TraceLoadError(reason, path=self.path, trace_id=None if rec is None else self.trace_id(rec))


class StepBuilder:
    """Appends steps with consecutive positions and unique step ids."""

    __slots__ = ("steps", "_ids", "_dups")

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._ids: set[str] = set()
        self._dups: dict[str, int] = {}  # next suffix per duplicated id, so many duplicates stay linear

    def add(
        self,
        *,
        index: int,
        kind: str,
        content: str,
        role: str = "",
        step_id: str = "",
        agent: str | None = None,
        tool_name: str | None = None,
        tool_input: str | None = None,
        is_error: bool = False,
        parent_id: str | None = None,
        depth: int = 0,
        start_time: float | None = None,
        end_time: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Step:
        position = len(self.steps)
        sid = step_id or str(position)
        if sid in self._ids:
            # Duplicate ids happen in hand-edited or merged exports; keep both steps, make the id unique.
            n = self._dups.get(sid, 2)
            while f"{sid}~{n}" in self._ids:
                n += 1
            self._dups[sid] = n + 1
            sid = f"{sid}~{n}"
        self._ids.add(sid)
        # Positional, in Step's field order: this runs for every step of every trace loaded.
        step = Step(position, index, kind, content, sid, agent, tool_name, tool_input, is_error, parent_id, depth,
                    start_time, end_time, meta or {}, role or default_role(kind, agent))  # fmt: skip
        self.steps.append(step)
        return step


# ---- field access that fails with TraceLoadError ---------------------------------------------------------------


def require_dict(value: Any, what: str, source: Source) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise source.error(f"{what} should be a JSON object, found {type_name(value)}")
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (for optional blocks such as `info`)."""
    return value if isinstance(value, dict) else {}


def require_list(value: Any, what: str, source: Source) -> list[Any]:
    if not isinstance(value, list):
        raise source.error(f"{what} should be a JSON list, found {type_name(value)}")
    return value


def type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def opt_str(value: Any) -> str | None:
    """A scalar as text, or None for null/empty/containers (used for ids, names, models)."""
    if value is None or isinstance(value, dict | list):
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    return text or None


def opt_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            f = float(value)
        except OverflowError:  # an integer beyond float range (10**400): not a usable number
            return None
        return f if f == f and f not in (float("inf"), float("-inf")) else None
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
        return f if f == f and f not in (float("inf"), float("-inf")) else None
    return None


def opt_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "yes", "1"):
            return True
        if v in ("false", "no", "0"):
            return False
    return None


# Step numbers, exit codes and the like end up in Int64 columns: a number outside this range (a corrupt
# field, 1e38 for a step number) is treated as absent rather than overflowing the table.
_INT_LIMIT = 2**62


def opt_int(value: Any) -> int | None:
    """An integer field read leniently (1, 1.0, "1"); None for anything else, including out-of-range numbers."""
    if isinstance(value, bool):
        return None
    out: int | None = None
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    elif isinstance(value, str):
        v = value.strip()
        if v.lstrip("-").isdigit() and len(v) < 19:
            out = int(v)
    if out is None or not -_INT_LIMIT < out < _INT_LIMIT:
        return None
    return out


def to_text(value: Any) -> str:
    """Any JSON value as readable text: strings as is, content-part lists joined, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "\n".join(value)
        if all(isinstance(v, dict) for v in value):
            # OpenAI / Anthropic content parts: [{"type": "text", "text": "..."}]
            texts = [v.get("text") for v in value]
            if texts and all(isinstance(t, str) for t in texts):
                return "\n".join(t for t in texts if isinstance(t, str))
    return dumps(value)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # orjson refuses integers beyond 64 bits and non-str keys; the stdlib does not.
        return json.dumps(value, default=str, ensure_ascii=False)


def loads_maybe(text: str) -> Any:
    """Decode text that may hold JSON; returns the text itself when it is not JSON."""
    s = text.strip()
    if not s or s[0] not in '[{"':
        return text
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        return text


def finish_trace(trace: Trace, steps: Iterable[Any], source: Source) -> Trace:
    """Attach steps; an empty trajectory is an error the user should see, not an empty trace."""
    trace.steps = list(steps)
    if source.record is not None:
        # Record number inside a multi-trace file, for readers that match labels by position.
        trace.meta.setdefault("record", source.record)
    if not trace.steps:
        raise source.error("empty trajectory: the record has no steps, messages or spans")
    return trace


# ---- lenient JSON ------------------------------------------------------------------------------------------------

# A string literal or a comma right before a closing bracket; matching strings first keeps commas inside
# strings untouched. Linear in the text length.
_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(\s*[}\]])')


def strip_trailing_commas(text: str) -> str:
    return _TRAILING_COMMA.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(0), text)


# ---- tool results --------------------------------------------------------------------------------------------

_ERROR_STATUSES = frozenset({"error", "failure", "failed", "fail"})


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool's result as the agent got it: readable text, whether it reports an error, and the raw text."""

    text: str
    is_error: bool
    raw: str | None  # the source text when `text` was decoded from an envelope or JSON string, else None

    def meta(self) -> dict[str, Any]:
        return {} if self.raw is None else {"raw_content": self.raw, "result_format": "decoded"}


def _mcp_parts(value: Any) -> tuple[str, bool] | None:
    """MCP content: [{"type": "text", "text": ...}, ...] or a CallToolResult {content: [...], isError}."""
    is_error = False
    if isinstance(value, dict) and isinstance(value.get("content"), list) and (
        "isError" in value or "is_error" in value or "structuredContent" in value
    ):
        is_error = bool(value.get("isError") or value.get("is_error"))
        value = value["content"]
    if not isinstance(value, list) or not value:
        return None
    texts = []
    for part in value:
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            return None
        text = part.get("text")
        texts.append(text if isinstance(text, str) else dumps({k: v for k, v in part.items() if k != "type"}))
    return "\n".join(texts), is_error


def _reports_error(value: Any) -> bool:
    """A decoded JSON result that says it failed: a non-empty `error`, `isError`, or a failure status."""
    if not isinstance(value, dict):
        return False
    err = value.get("error")
    if err not in (None, False, "", [], {}):
        return True
    if value.get("isError") is True or value.get("is_error") is True or value.get("success") is False:
        return True
    status = value.get("status")
    return isinstance(status, str) and status.strip().lower() in _ERROR_STATUSES


def unwrap_tool_result(value: Any) -> ToolResult:
    """Decode MCP content envelopes and JSON-in-string results (at most two layers) before error checks.

    The readable text is the innermost text (an envelope's text parts joined); `is_error` is set when the
    envelope says `isError` or the decoded JSON reports an error; the raw source text is kept when it differs.
    """
    raw = value if isinstance(value, str) else (None if value is None else dumps(value))
    current: Any = value
    is_error = False
    text = to_text(value)
    for _ in range(3):
        if isinstance(current, str):
            decoded = loads_maybe(current)
            if decoded is current or isinstance(decoded, int | float | bool) or decoded is None:
                break
            current = decoded
            if isinstance(current, str):
                text = current
                continue
        mcp = _mcp_parts(current)
        if mcp is not None:
            text, env_error = mcp
            is_error = is_error or env_error
            current = text
            continue
        # The text stays the last string form seen (what the agent read), not a re-encoding of the JSON.
        is_error = is_error or _reports_error(current)
        break
    keep_raw = raw if raw is not None and raw != text else None
    return ToolResult(text=text, is_error=is_error, raw=keep_raw)
