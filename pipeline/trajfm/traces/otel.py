"""OpenTelemetry / OpenInference span trees: TRAIL GAIA files and JSON/JSONL span exports.

Accepted shapes:
- TRAIL: {trace_id, spans: [span, ...]} with children nested in `child_spans`, attributes in `span_attributes`,
  `timestamp` (ISO) + `duration` (ISO 8601 "PT1M2.5S"), `status_code` ("Ok"/"Error"/"Unset").
- A flat export: a list of spans (or one span per JSONL line) with `trace_id`, `span_id`, `parent_span_id`
  (camelCase and the OpenTelemetry SDK's `context: {trace_id, span_id}` + `parent_id` also read), grouped
  into one trace per trace id.
- OTLP JSON: {resourceSpans: [{scopeSpans: [{spans: [...]}]}]} with attribute lists of {key, value}.

Contract: one step per span, kind "span", `Step.index` = position in start-time order (0-based; ties keep file
order), `step_id` = span_id, `parent_id` = parent span id, depth = nesting depth. OpenInference attributes fill
the step: LLM spans -> content = output messages (and the tool call they make, whose name is tool_name),
tool_input = the newest input message only (the earlier ones repeat what other spans hold; their count is in
meta), the arguments of the tool call it makes in meta `call_arguments`, model and token counts in meta; TOOL
spans -> tool_name = `tool.name`, tool_input = `input.value` (a recorded Python call {"args", "kwargs", wrapper
flags} reduced to its arguments), content = `output.value`; other spans -> tool_input = their input value,
content = their output. Span kind and
name are in `meta`. Status error (or an exception event) -> is_error, and the status message is appended to the
content. Agent = the nearest enclosing AGENT span's name. Role: TOOL / RETRIEVER / EMBEDDING / RERANKER spans ->
tool, the rest (LLM, AGENT, CHAIN, untyped) -> agent.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import orjson

from trajfm.traces._common import Source, StepBuilder, finish_trace, unwrap_tool_result
from trajfm.traces.fields import dumps, loads_maybe, opt_float, opt_str, to_text
from trajfm.traces.format import Format, key_fit
from trajfm.traces.model import Trace

FORMAT = "otel"
_TOOL_SPAN_KINDS = frozenset({"TOOL", "RETRIEVER", "EMBEDDING", "RERANKER"})
# OpenTelemetry GenAI semantic conventions: the operation names a span kind.
_GENAI_OPERATIONS = {
    "execute_tool": "TOOL",
    "chat": "LLM",
    "text_completion": "LLM",
    "generate_content": "LLM",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
}

_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_ERROR_CODES = {"error", "status_code_error", "2"}
_MAX_FLATTEN = 8  # nesting depth of attribute dicts we flatten into dotted keys


def is_span(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    if "span_id" in doc or "spanId" in doc:
        return True
    ctx = doc.get("context")
    return isinstance(ctx, dict) and "span_id" in ctx


def _span_fit(spans: list[Any]) -> float:
    sample = spans[:5]
    return sum(1 for s in sample if is_span(s)) / len(sample) if sample else 0.0


def score(doc: Any) -> float:
    """Span containers (TRAIL `spans`, OTLP `resourceSpans`), one span, or a list of spans."""
    if isinstance(doc, dict):
        if isinstance(doc.get("resourceSpans"), list):
            return 0.95
        spans = doc.get("spans")
        if isinstance(spans, list):
            # An empty span list still says "span export": parse reports it as empty.
            return round(0.3 + 0.1 * key_fit(doc, ("trace_id",)) + 0.6 * _span_fit(spans), 4) if spans else 0.3
        return 0.7 if is_span(doc) else 0.0
    if isinstance(doc, list) and doc and all(is_span(s) for s in doc[:20]):
        return 0.9
    return 0.0


# ---- normalizing one span ------------------------------------------------------------------------------------


def _time(value: Any) -> float | None:
    if isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            value = int(s)
        else:
            try:
                return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    f = opt_float(value)
    if f is None:
        return None
    # Exporters write seconds, milli-, micro- or nanoseconds since the epoch; scale by magnitude.
    for limit, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if abs(f) >= limit:
            return f / scale
    return f


def _duration(value: Any) -> float | None:
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if not m or not any(m.groups()):
            return opt_float(value)
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    return opt_float(value)


def _otlp_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in v:
            return v[key]
    if isinstance(v.get("arrayValue"), dict):
        values = v["arrayValue"].get("values")
        return [_otlp_value(x) for x in values] if isinstance(values, list) else []
    return v


def _attributes(raw: Any) -> dict[str, Any]:
    """Attributes as a flat dict with dotted keys, from a flat dict, a nested dict or an OTLP list."""
    out: dict[str, Any] = {}
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                out[item["key"]] = _otlp_value(item.get("value"))
        return out
    if not isinstance(raw, dict):
        return out
    stack: list[tuple[str, dict[str, Any], int]] = [("", raw, 0)]
    while stack:
        prefix, d, depth = stack.pop()
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and depth < _MAX_FLATTEN:
                stack.append((key + ".", v, depth + 1))
            else:
                out[key] = v
    return out


def _status(span: dict[str, Any]) -> tuple[bool, str | None]:
    code: Any = span.get("status_code")
    message: Any = span.get("status_message")
    status = span.get("status")
    if isinstance(status, dict):
        code = status.get("status_code", status.get("code", code))
        message = status.get("message", status.get("description", message))
    elif isinstance(status, str) and code is None:
        code = status
    is_error = str(code).strip().lower() in _ERROR_CODES if code is not None else False
    events = span.get("events")
    if isinstance(events, list):
        for ev in events:
            if isinstance(ev, dict) and str(ev.get("name", "")).lower() == "exception":
                is_error = True
                attrs = _attributes(ev.get("attributes"))
                message = message or opt_str(attrs.get("exception.message"))
    return is_error, opt_str(message)


def _messages(attrs: dict[str, Any], prefix: str, infix: str = ".message") -> list[tuple[str, str]]:
    """(role, content) of `<prefix>.N<infix>.role` / `.content` attributes (`llm.output_messages.N.message.*`,
    `gen_ai.prompt.N.*`), in N order."""
    out = []
    for n in range(10_000):
        content = attrs.get(f"{prefix}.{n}{infix}.content")
        role = attrs.get(f"{prefix}.{n}{infix}.role")
        if content is None and role is None:
            break
        out.append((str(role or ""), to_text(content)))
    return out


# A Python call recorded by an instrumentation: positional args, keyword args and the wrapper's own flags.
_CALL_RECORD_KEYS = frozenset({"args", "kwargs"})


def _call_arguments(text: str) -> str:
    """A tool span's input, reduced to the arguments the tool got. Instrumentations that wrap a Python call record
    it as {"args": [...], "kwargs": {...}} plus flags of the wrapper itself (say "sanitize_inputs_outputs"); those
    flags are the same for every call, so they are dropped: only keyword arguments (and positional ones, if any)
    are the call's input. Anything else is returned unchanged."""
    s = text.strip()
    if not s.startswith("{") or '"kwargs"' not in s[:4000]:
        return text
    decoded = loads_maybe(s)
    if not isinstance(decoded, dict) or not decoded.keys() >= _CALL_RECORD_KEYS:
        return text
    args, kwargs = decoded.get("args"), decoded.get("kwargs")
    if not isinstance(kwargs, dict) or not isinstance(args, list):
        return text
    flags = [v for k, v in decoded.items() if k not in _CALL_RECORD_KEYS]
    if any(not isinstance(v, bool | int | float | str | None) for v in flags):
        return text  # more than flags beside args and kwargs: not a plain call record
    return dumps({"args": args, "kwargs": kwargs} if args else kwargs)


def _value_text(value: Any) -> str:
    """An `output.value`: JSON text of a chat message is reduced to its content."""
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("{") and '"content"' in s[:200]:
            try:
                decoded = orjson.loads(s)
            except orjson.JSONDecodeError:
                return value
            if isinstance(decoded, dict) and "content" in decoded:
                text = to_text(decoded.get("content"))
                calls = decoded.get("tool_calls")
                return f"{text}\n{to_text(calls)}" if calls else text
        return value
    return to_text(value)


class _Span:
    __slots__ = ("span_id", "parent_id", "trace_id", "name", "start", "end", "attrs", "is_error", "message",
                 "order", "raw")  # fmt: skip

    def __init__(
        self, raw: dict[str, Any], order: int, parent_hint: str | None, trace_hint: str | None
    ) -> None:
        context = raw.get("context")
        ctx = context if isinstance(context, dict) else {}
        self.raw = raw
        self.order = order
        self.span_id = opt_str(raw.get("span_id", raw.get("spanId", ctx.get("span_id")))) or f"span{order}"
        parent = raw.get("parent_span_id", raw.get("parentSpanId", raw.get("parent_id")))
        self.parent_id = opt_str(parent) or parent_hint
        self.trace_id = opt_str(raw.get("trace_id", raw.get("traceId", ctx.get("trace_id")))) or trace_hint
        self.name = opt_str(raw.get("span_name", raw.get("name"))) or ""
        start = raw.get("start_time", raw.get("startTimeUnixNano", raw.get("timestamp", raw.get("start"))))
        self.start = _time(start)
        end = _time(raw.get("end_time", raw.get("endTimeUnixNano", raw.get("end"))))
        if end is None and self.start is not None:
            dur = _duration(raw.get("duration"))
            end = None if dur is None else self.start + dur
        self.end = end
        self.attrs = _attributes(raw.get("span_attributes", raw.get("attributes")))
        self.is_error, self.message = _status(raw)

    @property
    def kind(self) -> str:
        k = opt_str(self.attrs.get("openinference.span.kind"))
        if k:
            return k.upper()
        op = _GENAI_OPERATIONS.get(str(self.attrs.get("gen_ai.operation.name", "")).lower())
        if op:
            return op
        if "tool.name" in self.attrs or "gen_ai.tool.name" in self.attrs:
            return "TOOL"
        if "gen_ai.request.model" in self.attrs or "gen_ai.system" in self.attrs:
            return "LLM"
        return ""


def _collect(doc: Any, source: Source) -> list[_Span]:
    """All spans of a document in file order (depth-first for nested child_spans)."""
    spans: list[_Span] = []
    roots: list[tuple[Any, str | None, str | None]] = []
    if isinstance(doc, dict) and isinstance(doc.get("resourceSpans"), list):
        for rs in doc["resourceSpans"]:
            scopes = (
                rs.get("scopeSpans", rs.get("instrumentationLibrarySpans")) if isinstance(rs, dict) else None
            )
            for sc in scopes if isinstance(scopes, list) else []:
                items = sc.get("spans") if isinstance(sc, dict) else None
                roots.extend((s, None, None) for s in (items if isinstance(items, list) else []))
    elif isinstance(doc, dict) and isinstance(doc.get("spans"), list):
        tid = opt_str(doc.get("trace_id", doc.get("traceId")))
        roots.extend((s, None, tid) for s in doc["spans"])
    elif isinstance(doc, dict):
        roots.append((doc, None, None))
    elif isinstance(doc, list):
        roots.extend((s, None, None) for s in doc)
    else:
        raise source.error("expected spans: an object with 'spans' or 'resourceSpans', or a list of spans")
    # Iterative depth-first walk: hostile files can nest deeper than Python's recursion limit.
    stack = list(reversed(roots))
    while stack:
        raw, parent, tid = stack.pop()
        if not isinstance(raw, dict):
            raise source.error(f"span {len(spans)} should be an object, found {type(raw).__name__}")
        span = _Span(raw, len(spans), parent, tid)
        spans.append(span)
        children = raw.get("child_spans", raw.get("children"))
        if isinstance(children, list):
            stack.extend((c, span.span_id, span.trace_id) for c in reversed(children))
    return spans


# ---- building traces -----------------------------------------------------------------------------------------


def parse(doc: Any, source: Source) -> list[Trace]:
    spans = _collect(doc, source)
    if not spans:
        raise source.error("empty trajectory: no spans")
    groups: dict[str, list[_Span]] = {}
    for s in spans:
        groups.setdefault(s.trace_id or "", []).append(s)
    if len(groups) == 1:
        return [_build(next(iter(groups.values())), source, record=None)]
    return [_build(group, source, record=tid or "no-trace-id") for tid, group in groups.items()]


def _build(spans: list[_Span], source: Source, record: str | None) -> Trace:
    inf = float("inf")
    spans = sorted(spans, key=lambda s: (s.start if s.start is not None else inf, s.order))
    by_id = {s.span_id: s for s in spans}
    depth_of: dict[str, int] = {}
    agent_of: dict[str, str | None] = {}

    def resolve(span: _Span) -> None:
        # Walk up to a span already resolved (or a root), then fill the chain downwards; guards against cycles.
        chain: list[_Span] = []
        cur: _Span | None = span
        seen: set[str] = set()
        while cur is not None and cur.span_id not in depth_of and cur.span_id not in seen:
            seen.add(cur.span_id)
            chain.append(cur)
            cur = by_id.get(cur.parent_id) if cur.parent_id else None
        base_depth = depth_of.get(cur.span_id, -1) if cur is not None and cur.span_id in depth_of else -1
        base_agent = agent_of.get(cur.span_id) if cur is not None and cur.span_id in depth_of else None
        for s in reversed(chain):
            base_depth += 1
            if s.kind == "AGENT":
                base_agent = opt_str(s.attrs.get("gen_ai.agent.name")) or s.name.removesuffix(".run") or s.name
            depth_of[s.span_id] = base_depth
            agent_of[s.span_id] = base_agent

    builder = StepBuilder()
    models: Counter[str] = Counter()
    task = ""
    final_answer: str | None = None
    last_llm_output: str | None = None
    for position, s in enumerate(spans):
        resolve(s)
        attrs = s.attrs
        kind = s.kind
        meta: dict[str, Any] = {"name": s.name}
        if kind:
            meta["span_kind"] = kind
        tool_name: str | None = None
        tool_input: str | None = None
        input_value = attrs.get("input.value")
        if kind == "LLM":
            outputs = _messages(attrs, "llm.output_messages")
            content = "\n".join(c for _, c in outputs) if outputs else _value_text(attrs.get("output.value"))
            if not outputs and not content:
                content = _genai_messages_text(attrs, "output")
            model = opt_str(
                attrs.get("llm.model_name", attrs.get("gen_ai.request.model", attrs.get("gen_ai.response.model")))
            )
            if model:
                meta["model"] = model
                models[model] += 1
            for key in ("llm.token_count.prompt", "llm.token_count.completion"):
                if key in attrs:
                    meta[key.rsplit(".", 1)[1] + "_tokens"] = opt_float(attrs[key])
            call = opt_str(attrs.get("llm.output_messages.0.message.tool_calls.0.tool_call.function.name"))
            if call:
                tool_name = call
                args = to_text(
                    attrs.get("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments")
                )
                meta["call_arguments"] = args  # the call's own input (tool_input holds the prompt)
                rendered = f"{call}({args})"
                content = f"{content}\n{rendered}" if content else rendered
            inputs = _messages(attrs, "llm.input_messages")
            if inputs:
                meta["input_messages"] = len(inputs)
                # Only the newest input message: earlier ones repeat the conversation already in other spans.
                tool_input = inputs[-1][1]
                if not task:
                    task = next((text for role, text in inputs if role == "user" and text), "")
            elif input_value is not None:
                tool_input = _last_input_message(input_value)
            else:
                user_texts = _genai_user_texts(attrs)
                if user_texts:
                    tool_input = user_texts[-1]
                    if not task:
                        task = user_texts[0]
            last_llm_output = content or last_llm_output
        else:
            output_value = attrs.get("output.value", attrs.get("gen_ai.tool.call.result",
                                                            attrs.get("traceloop.entity.output")))  # fmt: skip
            content = _value_text(output_value)
            if input_value is None:
                input_value = attrs.get("gen_ai.tool.call.arguments", attrs.get("traceloop.entity.input"))
            if input_value is not None:
                tool_input = to_text(input_value)
                if kind in _TOOL_SPAN_KINDS:
                    tool_input = _call_arguments(tool_input)
            if kind in _TOOL_SPAN_KINDS and output_value is not None:
                # MCP content envelopes and JSON-in-string results: decode before the error check, keep the raw.
                result = unwrap_tool_result(output_value)
                content = result.text
                meta.update(result.meta())
                if result.is_error:
                    s.is_error = True
            if kind == "TOOL":
                tool_name = opt_str(attrs.get("tool.name", attrs.get("gen_ai.tool.name"))) or s.name or None
            if not content and not tool_input:
                content, tool_input = _log_io(s.raw)
            if kind == "AGENT":
                agent_task = _agent_task(input_value)
                if agent_task and not _has_agent_ancestor(s, by_id):
                    task = agent_task
                    if content:
                        final_answer = content
        if s.is_error:
            meta["status"] = "error"
            if s.message and s.message not in content:
                content = (
                    f"{content}\n[status error] {s.message}" if content else f"[status error] {s.message}"
                )
        role = "tool" if kind in _TOOL_SPAN_KINDS else "agent"
        builder.add(index=position, kind="span", content=content, role=role, step_id=s.span_id, agent=agent_of[s.span_id],
                    tool_name=tool_name, tool_input=tool_input or None, is_error=s.is_error,
                    parent_id=s.parent_id, depth=depth_of[s.span_id], start_time=s.start, end_time=s.end,
                    meta=meta)  # fmt: skip
    native = next((s.trace_id for s in spans if s.trace_id), None)
    trace = Trace(
        trace_id=source.trace_id(record),
        source_path=source.path,
        source_format=FORMAT,
        task=task,
        final_answer=final_answer if final_answer is not None else last_llm_output,
        agent_model=models.most_common(1)[0][0] if models else None,
        multi_agent=len({a for a in agent_of.values() if a}) > 1,
        meta={"otel_trace_id": native} if native else {},
    )
    return finish_trace(trace, builder.steps, source.with_record(record))


def _genai_messages(attrs: dict[str, Any], which: str) -> list[tuple[str, str]]:
    """(role, text) of GenAI semconv messages: `gen_ai.{input,output}.messages` JSON, or the older indexed
    `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` attributes."""
    raw = attrs.get(f"gen_ai.{which}.messages")
    if isinstance(raw, str):
        raw = loads_maybe(raw)
    out: list[tuple[str, str]] = []
    if isinstance(raw, list):
        for m in raw:
            if not isinstance(m, dict):
                continue
            parts = m.get("parts")
            if isinstance(parts, list):
                text = "\n".join(to_text(p.get("content", p.get("text"))) for p in parts if isinstance(p, dict))
            else:
                text = to_text(m.get("content"))
            out.append((str(m.get("role") or ""), text))
        return out
    return _messages(attrs, "gen_ai.prompt" if which == "input" else "gen_ai.completion", infix="")


def _genai_messages_text(attrs: dict[str, Any], which: str) -> str:
    return "\n".join(text for _, text in _genai_messages(attrs, which) if text)


def _genai_user_texts(attrs: dict[str, Any]) -> list[str]:
    return [text for role, text in _genai_messages(attrs, "input") if role == "user" and text]


def _last_input_message(value: Any) -> str:
    """The newest message of an LLM span's `input.value` ({"messages": [...]} JSON), else the value as text."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        msgs = decoded.get("messages") if isinstance(decoded, dict) else None
        if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict):
            return to_text(msgs[-1].get("content"))
    return to_text(value)


def _has_agent_ancestor(span: _Span, by_id: dict[str, _Span]) -> bool:
    seen: set[str] = set()
    cur = by_id.get(span.parent_id) if span.parent_id else None
    while cur is not None and cur.span_id not in seen:
        if cur.kind == "AGENT":
            return True
        seen.add(cur.span_id)
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    return False


def _agent_task(value: Any) -> str:
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("{"):
            try:
                decoded = orjson.loads(s)
            except orjson.JSONDecodeError:
                return value
            if isinstance(decoded, dict) and isinstance(decoded.get("task"), str):
                return decoded["task"]
        return value
    return to_text(value)


def _log_io(raw: dict[str, Any]) -> tuple[str, str | None]:
    """Output and arguments of a plain function span recorded as a log body (TRAIL's patronus spans)."""
    logs = raw.get("logs")
    if not isinstance(logs, list):
        return "", None
    for log in logs:
        body = log.get("body") if isinstance(log, dict) else None
        if isinstance(body, dict) and ("function.output" in body or "function.arguments" in body):
            out = body.get("function.output")
            args = body.get("function.arguments")
            return ("" if out in (None, "<null>") else to_text(out)), (to_text(args) if args else None)
    return "", None


class OtelFormat(Format, scorer=score, parser=parse, part=is_span):
    name = FORMAT
    description = "OpenTelemetry / OpenInference span trees and flat span exports (trace_id, span_id, parent_span_id)"
    origin = (
        "TRAIL (Patronus) GAIA traces, OTLP-JSON span exports (e.g. AssetOpsBench's, GenAI semantic conventions), "
        "OpenTelemetry console-exporter dumps (concatenated JSON objects); JSON, JSONL"
    )
