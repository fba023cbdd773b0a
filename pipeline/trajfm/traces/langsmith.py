"""LangSmith run-tree exports: a root run with nested `child_runs`, or a flat list of runs.

Shape of a run: `{id, name, run_type: llm | chain | tool | retriever | prompt | parser | embedding, inputs,
outputs, error, start_time, end_time, parent_run_id, trace_id, extra: {metadata: {ls_model_name, ...},
invocation_params: {model, ...}}, child_runs: [...]}`. A flat export (a JSON list, or one run per JSONL line) is
grouped into one trace per `trace_id` (the root run's id when absent) and nested by `parent_run_id`.

Contract: one step per run, kind "span" (a run is a span of the tree), in start-time order (ties keep file
order); `Step.index` = that position; `step_id` = the run id; `parent_id`/`depth` from the tree. Role: tool and
retriever runs -> tool (tool_name = the run's name, tool_input = its inputs, content = its outputs, unwrapped),
prompt runs -> system, the rest (llm, chain, parser, agents) -> agent; an llm run's content is its generated text
(and the tool calls it makes, the first one's name as tool_name). A non-empty `error` sets is_error and is
appended to the content. Task = the root run's input (`input`/`question`/`query`, the last human message, else
the inputs as JSON); final answer = the root run's output. Model = the most common `ls_model_name` /
`invocation_params.model` of the llm runs; framework = "LangSmith" (plus `ls_provider` in meta).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from trajfm.traces._common import (
    Source,
    StepBuilder,
    depth_finder,
    finish_trace,
    unwrap_tool_result,
    with_error,
)
from trajfm.traces.fields import as_dict, dumps, opt_str, to_text
from trajfm.traces.format import Format, key_fit
from trajfm.traces.model import Trace
from trajfm.traces.otel import _time

FORMAT = "langsmith"

_RUN_KEYS = ("id", "name", "run_type", "inputs", "outputs", "start_time")
_TOOL_TYPES = frozenset({"tool", "retriever"})
_TEXT_KEYS = ("input", "question", "query", "text", "prompt")
_OUT_KEYS = ("output", "answer", "result", "text")


def is_run(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("run_type"), str) and ("inputs" in doc or "outputs" in doc)


def is_flat_run(doc: Any) -> bool:
    """One run of a flat export (a JSONL line): a run without its children inside."""
    return is_run(doc) and "child_runs" not in doc


def score(doc: Any) -> float:
    if isinstance(doc, list):
        return 0.9 if doc and all(is_run(r) for r in doc[:20]) else 0.0
    if not is_run(doc):
        return 0.0
    children = doc.get("child_runs")
    child_fit = 1.0 if isinstance(children, list) and (not children or is_run(children[0])) else 0.5
    return round(0.5 + 0.3 * key_fit(doc, _RUN_KEYS) + 0.2 * child_fit, 4)


def _message_text(msg: Any) -> tuple[str, str]:
    """(role, text) of a LangChain message in any of its serialized forms."""
    if isinstance(msg, dict):
        inner = msg.get("kwargs")
        kwargs = inner if isinstance(inner, dict) else msg
        role = opt_str(kwargs.get("type")) or opt_str(msg.get("type")) or opt_str(kwargs.get("role")) or ""
        ids = msg.get("id")
        if not role and isinstance(ids, list) and ids:
            role = str(ids[-1])
        return role.lower(), to_text(kwargs.get("content"))
    if isinstance(msg, list) and len(msg) == 2 and isinstance(msg[0], str):
        return msg[0].lower(), to_text(msg[1])
    return "", to_text(msg)


def _input_text(inputs: Any) -> str:
    if not isinstance(inputs, dict):
        return to_text(inputs)
    for key in _TEXT_KEYS:
        if isinstance(inputs.get(key), str) and inputs[key].strip():
            return inputs[key]
    msgs = inputs.get("messages")
    if isinstance(msgs, list) and msgs:
        flat = msgs[0] if isinstance(msgs[0], list) else msgs
        humans = [text for role, text in map(_message_text, flat) if role in ("human", "user", "humanmessage")]
        if humans:
            return humans[-1]
    return dumps(inputs) if inputs else ""


def _output_text(outputs: Any) -> tuple[str, list[dict[str, Any]]]:
    """The text a run produced and the tool calls an llm run made."""
    if not isinstance(outputs, dict):
        return to_text(outputs), []
    gens = outputs.get("generations")
    if isinstance(gens, list) and gens:
        first = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
        if isinstance(first, dict):
            msg = first.get("message")
            kwargs = as_dict(msg.get("kwargs")) if isinstance(msg, dict) else {}
            raw_calls = kwargs.get("tool_calls")
            calls = raw_calls if isinstance(raw_calls, list) else []
            text = to_text(first.get("text")) or to_text(kwargs.get("content"))
            return text, [c for c in calls if isinstance(c, dict)]
    for key in _OUT_KEYS:
        if key in outputs:
            value = outputs[key]
            if isinstance(value, dict) and "content" in value:
                return to_text(value.get("content")), []
            return to_text(value), []
    return (dumps(outputs) if outputs else ""), []


def _model(run: dict[str, Any]) -> str | None:
    extra = as_dict(run.get("extra"))
    meta = as_dict(extra.get("metadata"))
    params = as_dict(extra.get("invocation_params"))
    return opt_str(meta.get("ls_model_name")) or opt_str(params.get("model")) or opt_str(params.get("model_name"))


def _collect(doc: Any) -> list[tuple[dict[str, Any], str | None, int]]:
    """(run, parent id, order) for every run, depth-first through child_runs (iterative)."""
    roots = doc if isinstance(doc, list) else [doc]
    out: list[tuple[dict[str, Any], str | None, int]] = []
    stack: list[tuple[Any, str | None]] = [(r, None) for r in reversed(roots)]
    while stack:
        run, parent = stack.pop()
        if not isinstance(run, dict):
            continue
        rid = opt_str(run.get("id")) or f"run{len(out)}"
        out.append((run, opt_str(run.get("parent_run_id")) or parent, len(out)))
        children = run.get("child_runs")
        if isinstance(children, list):
            stack.extend((c, rid) for c in reversed(children))
    return out


def parse(doc: Any, source: Source) -> list[Trace]:
    runs = _collect(doc)
    if not runs:
        raise source.error("empty trajectory: no runs")
    groups: dict[str, list[tuple[dict[str, Any], str | None, int]]] = {}
    for item in runs:
        run = item[0]
        tid = opt_str(run.get("trace_id")) or ""
        groups.setdefault(tid, []).append(item)
    if len(groups) == 1:
        return [_build(next(iter(groups.values())), source, None)]
    return [_build(g, source, tid or "no-trace-id") for tid, g in groups.items()]


def _build(runs: list[tuple[dict[str, Any], str | None, int]], source: Source, record: str | None) -> Trace:
    inf = float("inf")
    ordered = sorted(runs, key=lambda r: (_time(r[0].get("start_time")) or inf, r[2]))
    ids = {opt_str(r.get("id")) or f"run{order}": (r, parent) for r, parent, order in runs}
    depth_of = depth_finder({rid: parent for rid, (_, parent) in ids.items()})

    builder = StepBuilder()
    models: Counter[str] = Counter()
    root = next((r for r, parent, _ in ordered if parent is None or parent not in ids), ordered[0][0])
    for pos, (run, parent, order) in enumerate(ordered):
        rid = opt_str(run.get("id")) or f"run{order}"
        run_type = (opt_str(run.get("run_type")) or "").lower()
        name = opt_str(run.get("name"))
        meta: dict[str, Any] = {"run_type": run_type, "name": name or ""}
        tool_name = None
        tool_input = None
        role = "agent"
        if run_type in _TOOL_TYPES:
            role = "tool"
            tool_name = name
            inputs = run.get("inputs")
            tool_input = _input_text(inputs) if inputs not in (None, {}) else None
            out = run.get("outputs")
            raw = out.get("output") if isinstance(out, dict) and "output" in out else out
            result = unwrap_tool_result(raw)
            content = result.text
            meta.update(result.meta())
            is_error = result.is_error
        else:
            content, calls = _output_text(run.get("outputs"))
            is_error = False
            if run_type == "prompt":
                role = "system"
            if run_type == "llm":
                model = _model(run)
                if model:
                    models[model] += 1
                    meta["model"] = model
                if calls:
                    tool_name = opt_str(calls[0].get("name"))
                    rendered = "\n".join(f"{c.get('name')}({to_text(c.get('args'))})" for c in calls)
                    content = f"{content}\n{rendered}" if content else rendered
                    meta["tool_calls"] = [{"name": c.get("name"), "arguments": to_text(c.get("args"))} for c in calls]
            elif run is not root:
                tool_input = _input_text(run.get("inputs")) or None
        error = run.get("error")
        if error not in (None, "", {}, []):
            is_error = True
            err = to_text(error)
            content = with_error(content, err)
        start = _time(run.get("start_time"))
        builder.add(index=pos, kind="span", content=content, role=role, step_id=rid,
                    agent=name if run_type in ("chain", "llm") and depth_of(rid) == 0 else None,
                    tool_name=tool_name, tool_input=tool_input, is_error=is_error,
                    parent_id=parent if parent in ids else None, depth=depth_of(rid), start_time=start,
                    end_time=_time(run.get("end_time")), meta=meta)  # fmt: skip
    final, _ = _output_text(root.get("outputs"))
    extra = as_dict(root.get("extra"))
    md = as_dict(extra.get("metadata"))
    meta = {"root_run": opt_str(root.get("name")) or ""}
    provider = opt_str(md.get("ls_provider"))
    if provider:
        meta["provider"] = provider
    trace = Trace(
        trace_id=source.trace_id(record),
        source_path=source.path,
        source_format=FORMAT,
        task=_input_text(root.get("inputs")),
        final_answer=final or None,
        agent_model=models.most_common(1)[0][0] if models else None,
        run_id=opt_str(root.get("session_id")),
        multi_agent=None,
        framework="LangSmith",
        meta=meta,
    )
    return finish_trace(trace, builder.steps, source.with_record(record))


class LangSmithFormat(Format, scorer=score, parser=parse, part=is_flat_run):
    name = FORMAT
    description = "LangSmith run trees: runs (llm, chain, tool, retriever) with inputs, outputs, error, child_runs"
    origin = "LangSmith / LangChain run exports (a root run with `child_runs`, or a flat list of runs); JSON, JSONL"

    def whole_list(self, doc: list[Any]) -> bool:
        return bool(doc) and all(is_run(r) for r in doc[:20])
