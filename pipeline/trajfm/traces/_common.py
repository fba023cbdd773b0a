"""Helpers shared by the format loaders: where a record came from, building steps and traces, walking the lists
of steps and messages formats share, tool calls and their results. Reading single fields is `trajfm.traces.fields`.

Contract:
- Every loader's `parse(doc, source)` takes an already-decoded JSON document (or text for raw logs) plus a
  `Source`, returns a list of `Trace`, and raises only `TraceLoadError` for input it cannot understand. The
  helpers here raise `TraceLoadError` (never KeyError/TypeError) so a loader that uses them for every field
  access stays clean on hostile input.
- `StepBuilder` numbers `Step.position` 0..n-1 in append order and keeps `step_id` unique within a trace.
- `new_trace(source, fmt, **fields)` is a `Trace` with its id and path from `source`; `one_trace(...)` also
  attaches the steps (`finish_trace`: an empty trajectory is an error) and returns the one-trace list a loader
  returns. `numbered(items, source, ...)` walks a list of step objects with their source step numbers.
- Chat-style tool calls (`{id, function: {name, arguments}}` or `{name, arguments | args | input}`) are read by
  `tool_calls` and shown in a step's text by `with_calls`; `with_error` appends an error text to a step's content.
- `first_content` / `last_content` find the task (the first user text) and the final answer (the agent's last
  message) the way most formats define them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from trajfm.errors import TraceLoadError
from trajfm.traces.fields import dumps, loads_maybe, opt_int, opt_str, to_text
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


def new_trace(source: Source, fmt: str, **fields: Any) -> Trace:
    """A `Trace` of format `fmt` read from `source` (trace id and path from it); `fields` are its other fields."""
    return Trace(trace_id=source.trace_id(), source_path=source.path, source_format=fmt, **fields)


def one_trace(source: Source, fmt: str, steps: Iterable[Step], **fields: Any) -> list[Trace]:
    """The one-trace list a loader returns for a document: `new_trace` with its steps attached (`finish_trace`)."""
    return [finish_trace(new_trace(source, fmt, **fields), steps, source)]


def numbered(
    items: list[Any], source: Source, expected: str, *, key: str | None = None, start: int = 1
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(position, step number, item) for each item of a list of step objects: the position counts from `start`;
    the step number is the item's own `key` field when it holds an integer, else the position. A non-object item
    fails with `expected` ("... {n} should be an object with ...", {n} = the position)."""
    for pos, item in enumerate(items, start=start):
        if not isinstance(item, dict):
            raise source.error(expected.format(n=pos))
        idx = opt_int(item.get(key)) if key is not None else None
        yield pos, (pos if idx is None else idx), item


def first_content(steps: Iterable[Step], *, role: str | None = None, kind: str | None = None) -> str:
    """The text of the first non-empty step with this role (and kind): a format's task, usually; "" if none."""
    return next((s.content for s in steps if s.content and _matches(s, role, kind)), "")


def last_content(steps: list[Step], *, role: str | None = "agent", kind: str | None = "message") -> str | None:
    """The text of the last non-empty step with this role and kind: a format's final answer, usually."""
    return next((s.content for s in reversed(steps) if s.content and _matches(s, role, kind)), None)


def _matches(step: Step, role: str | None, kind: str | None) -> bool:
    return (role is None or step.role == role) and (kind is None or step.kind == kind)


def tool_calls(calls: list[Any]) -> list[dict[str, Any]]:
    """Chat-style tool calls as `{id, name, arguments}` (arguments as text): the OpenAI form `{id, function:
    {name, arguments}}` and the flat `{id, name, arguments | args | input}`; non-objects are skipped."""
    parsed: list[dict[str, Any]] = []
    for call in calls:
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        fn = function if isinstance(function, dict) else call
        args = fn.get("arguments", fn.get("args", fn.get("input")))
        parsed.append({"id": opt_str(call.get("id")), "name": opt_str(fn.get("name")), "arguments": to_text(args)})
    return parsed


def with_calls(content: str, calls: list[dict[str, Any]]) -> str:
    """A tool-calling message's text: what it says, then one `name(arguments)` line per call."""
    rendered = "\n".join(f"{c['name']}({c['arguments']})" for c in calls)
    return f"{content}\n{rendered}" if content else rendered


def json_text(value: Any) -> str | None:
    """Tool arguments as a step's tool_input: a string as is, anything else as JSON; None when absent."""
    if value is None:
        return None
    return value if isinstance(value, str) else dumps(value)


def with_error(content: str, error: str) -> str:
    """A step's content with an error text appended (`[error] ...`), as the span and plan formats record it."""
    return f"{content}\n[error] {error}" if content else f"[error] {error}"


def depth_finder(parents: dict[str, str | None]) -> Callable[[str], int]:
    """`depth_of(node)` for a forest of spans or runs given each node's parent: 0 for a root or a node whose
    parent is not in the forest, one more than its parent otherwise; a cycle is cut where it closes. Depths are
    remembered, so asking for every node costs linear time."""
    depth: dict[str, int] = {}

    def depth_of(node: str) -> int:
        chain = []
        cur: str | None = node
        seen: set[str] = set()
        while cur is not None and cur in parents and cur not in depth and cur not in seen:
            seen.add(cur)
            chain.append(cur)
            cur = parents[cur]
        base = depth.get(cur, -1) if cur is not None else -1
        for c in reversed(chain):
            base += 1
            depth[c] = base
        return depth.get(node, 0)

    return depth_of


def finish_trace(trace: Trace, steps: Iterable[Any], source: Source) -> Trace:
    """Attach steps; an empty trajectory is an error the user should see, not an empty trace."""
    trace.steps = list(steps)
    if source.record is not None:
        # Record number inside a multi-trace file, for readers that match labels by position.
        trace.meta.setdefault("record", source.record)
    if not trace.steps:
        raise source.error("empty trajectory: the record has no steps, messages or spans")
    return trace


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
