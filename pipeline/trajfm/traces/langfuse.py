"""Langfuse trace exports: `{trace: {...}, observations: [...]}`, or a trace object with `observations` inside
(the public API's trace detail).

Shape: trace `{id, name, input, output, userId, sessionId, metadata, tags, timestamp}`; observation `{id, traceId,
type: GENERATION | SPAN | EVENT | TOOL | AGENT | CHAIN | RETRIEVER | EMBEDDING | ..., name, startTime, endTime,
parentObservationId, input, output, model, level: DEBUG | DEFAULT | WARNING | ERROR, statusMessage}`.

Contract: one step per observation, kind "span", in start-time order (ties keep file order), `Step.index` = that
position, `step_id` = the observation id, `parent_id`/`depth` from `parentObservationId`. Role: TOOL / RETRIEVER /
EMBEDDING observations -> tool (tool_name = the name, tool_input = the input, content = the output, unwrapped),
EVENT -> environment, the rest (GENERATION, SPAN, AGENT, CHAIN) -> agent; a generation's content is its output.
Level ERROR sets is_error and appends the status message. Task = the trace's input (the last user message of a
message list); final answer = the trace's output. Model = the most common generation `model`; framework =
"Langfuse"; run id = `sessionId`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from trajfm.traces._common import (
    Source,
    StepBuilder,
    depth_finder,
    finish_trace,
    new_trace,
    unwrap_tool_result,
    with_error,
)
from trajfm.traces.fields import dumps, opt_str, require_list, to_text
from trajfm.traces.format import Format, combine, item_fit, key_fit
from trajfm.traces.model import Trace
from trajfm.traces.otel import _time

FORMAT = "langfuse"

_TRACE_KEYS = ("id", "name", "input", "output", "timestamp")
_OBS_KEYS = ("id", "type", "name", "startTime", "traceId")
_TOOL_TYPES = frozenset({"TOOL", "RETRIEVER", "EMBEDDING"})


def _parts(doc: Any) -> tuple[dict[str, Any], Any] | None:
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("trace"), dict) and "observations" in doc:
        return doc["trace"], doc.get("observations")
    if "observations" in doc and ("input" in doc or "output" in doc or "sessionId" in doc):
        return doc, doc.get("observations")
    return None


def score(doc: Any) -> float:
    parts = _parts(doc)
    if parts is None:
        return 0.0
    trace, obs = parts
    if not isinstance(obs, list):
        return 0.3
    steps = item_fit(obs, _OBS_KEYS, content=("input", "output")) if obs else 0.0
    return combine(key_fit(trace, _TRACE_KEYS), steps, key_weight=0.4) if obs else 0.3


def _text(value: Any, *, last_user: bool = False) -> str:
    if isinstance(value, dict):
        for key in ("input", "query", "question", "output", "answer", "content", "text"):
            if isinstance(value.get(key), str):
                return value[key]
        msgs = value.get("messages")
        if isinstance(msgs, list):
            value = msgs
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        pool = [m for m in value if str(m.get("role")).lower() == "user"] if last_user else value
        pick = pool[-1] if pool else value[-1]
        return to_text(pick.get("content"))
    return to_text(value) if not isinstance(value, dict) else dumps(value)


def parse(doc: Any, source: Source) -> list[Trace]:
    parts = _parts(doc)
    if parts is None:
        raise source.error("a Langfuse export needs 'trace' and 'observations'")
    trace_obj, raw_obs = parts
    observations = require_list(raw_obs, "'observations'", source)
    inf = float("inf")
    items = []
    for n, ob in enumerate(observations):
        if not isinstance(ob, dict):
            raise source.error(f"observation {n} should be an object")
        items.append((_time(ob.get("startTime")), n, ob))
    items.sort(key=lambda x: (x[0] if x[0] is not None else inf, x[1]))
    ids = {opt_str(ob.get("id")) or f"obs{n}": ob for _, n, ob in items}
    depth_of = depth_finder({oid: opt_str(ob.get("parentObservationId")) for oid, ob in ids.items()})

    builder = StepBuilder()
    models: Counter[str] = Counter()
    for pos, (start, n, ob) in enumerate(items):
        oid = opt_str(ob.get("id")) or f"obs{n}"
        otype = (opt_str(ob.get("type")) or "").upper()
        name = opt_str(ob.get("name"))
        meta: dict[str, Any] = {"type": otype, "name": name or ""}
        tool_name = tool_input = None
        role = "agent"
        if otype in _TOOL_TYPES:
            role = "tool"
            tool_name = name
            tool_input = to_text(ob.get("input")) if ob.get("input") is not None else None
            result = unwrap_tool_result(ob.get("output"))
            content = result.text
            meta.update(result.meta())
            is_error = result.is_error
        else:
            content = _text(ob.get("output"))
            is_error = False
            if otype == "EVENT":
                role = "environment"
            if otype == "GENERATION":
                model = opt_str(ob.get("model"))
                if model:
                    models[model] += 1
                    meta["model"] = model
                tool_input = _text(ob.get("input"), last_user=True) or None
        level = (opt_str(ob.get("level")) or "").upper()
        if level:
            meta["level"] = level
        if level == "ERROR":
            is_error = True
            status = opt_str(ob.get("statusMessage"))
            if status and status not in content:
                content = with_error(content, status)
        parent = opt_str(ob.get("parentObservationId"))
        builder.add(index=pos, kind="span", content=content, role=role, step_id=oid, agent=None,
                    tool_name=tool_name, tool_input=tool_input, is_error=is_error,
                    parent_id=parent if parent in ids else None, depth=depth_of(oid), start_time=start,
                    end_time=_time(ob.get("endTime")), meta=meta)  # fmt: skip
    meta = {"langfuse_trace_id": opt_str(trace_obj.get("id")) or ""}
    tags = trace_obj.get("tags")
    if isinstance(tags, list) and tags:
        meta["tags"] = [to_text(t) for t in tags]
    out = trace_obj.get("output")
    trace = new_trace(
        source,
        FORMAT,
        task=_text(trace_obj.get("input"), last_user=True) if trace_obj.get("input") is not None else "",
        final_answer=(_text(out) or None) if out is not None else None,
        agent_model=models.most_common(1)[0][0] if models else None,
        run_id=opt_str(trace_obj.get("sessionId")),
        scenario=opt_str(trace_obj.get("name")),
        multi_agent=None,
        framework="Langfuse",
        meta=meta,
    )
    return [finish_trace(trace, builder.steps, source)]


class LangfuseFormat(Format, scorer=score, parser=parse):
    name = FORMAT
    description = "Langfuse traces: a trace with its observations (generations, spans, tools, events)"
    origin = "Langfuse exports and API trace details (`{trace, observations}` or a trace with `observations`)"
