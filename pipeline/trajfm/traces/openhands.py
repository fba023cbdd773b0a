"""OpenHands trajectories: event lists and evaluation `output.jsonl` records.

Shapes:
- Events: a JSON list (or JSONL, one event per line) of `{id, timestamp, source, message, action | observation,
  args | extras, content, cause, tool_call_metadata}`; one trace per file.
- Evaluation records (`output.jsonl`, one per line): `{instance_id, instruction, history: [events], test_result,
  error, metrics, metadata: {agent_class, llm_config: {model}, max_iterations}}`; one trace per record. Older
  records hold `history` as [action, observation] pairs; both are read.

Contract:
- One step per event; `Step.index` = the event's `id` (its position when absent). Actions by the agent -> role
  agent: `message` -> kind message, `think` -> thought, `finish` -> answer, `system` -> role system (the system
  prompt), any other action (`run`, `run_ipython`, `read`, `edit`, `browse`, `delegate`, an MCP call...) ->
  kind action with tool_name = the function called (`tool_call_metadata.function_name`) or the action name, and
  tool_input = the command/code/path/url/arguments. A `message` from the user -> role user. Observations ->
  kind observation, role tool; an `error` observation or a non-zero exit code sets is_error; results are
  unwrapped (`unwrap_tool_result`). Agent-state changes are not steps, except a change to `error`, which is an
  environment step with the reason (e.g. "maximum iteration" reached). An evaluation record's `error` is added
  as a final environment step with is_error, so a run that hit the iteration limit shows it.
- Task = the record's `instruction`, else the first user message. Final answer = the `finish` action's
  `final_thought`/`outputs`/message, else the agent's last message. Outcome = `error=...` and/or the test result
  (`resolved=...` when the report says so); is_correct = the report's `resolved`. Model = `metadata.llm_config.
  model`; framework = "OpenHands" plus the agent class.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import Source, StepBuilder, finish_trace, new_trace, unwrap_tool_result
from trajfm.traces.fields import (
    as_dict,
    dumps,
    opt_bool,
    opt_int,
    opt_str,
    require_dict,
    require_list,
    to_text,
)
from trajfm.traces.format import Format, combine, key_fit
from trajfm.traces.model import Trace

FORMAT = "openhands"

_EVENT_KEYS = ("id", "source", "timestamp", "message")
_RECORD_KEYS = ("instance_id", "instruction", "history", "test_result", "metadata", "metrics", "error")
_INPUT_ARGS = ("command", "code", "path", "url", "query", "thought", "content", "arguments", "task")


def is_event(doc: Any) -> bool:
    return isinstance(doc, dict) and ("action" in doc or "observation" in doc) and "source" in doc


def _event_fit(events: list[Any]) -> float:
    flat = _flatten(events[:10])[:5]
    if not flat:
        return 0.0
    total = 0.0
    for ev in flat:
        if is_event(ev):
            total += 0.5 + 0.5 * key_fit(ev, _EVENT_KEYS)
    return total / len(flat)


def _flatten(history: list[Any]) -> list[Any]:
    """Old records hold [action, observation] pairs; new ones a flat event list."""
    out: list[Any] = []
    for item in history:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def score(doc: Any) -> float:
    if isinstance(doc, list):
        return round(0.2 + 0.75 * _event_fit(doc), 4) if doc and is_event(doc[0]) else 0.0
    if not isinstance(doc, dict):
        return 0.0
    history = doc.get("history")
    if not isinstance(history, list) or "instance_id" not in doc and "instruction" not in doc:
        return 0.0
    return combine(key_fit(doc, _RECORD_KEYS), _event_fit(history) if history else 0.0, key_weight=0.4)


def parse(doc: Any, source: Source) -> list[Trace]:
    if isinstance(doc, list):
        return [_build(doc, {}, source)]
    doc = require_dict(doc, "an OpenHands evaluation record", source)
    history = require_list(doc.get("history"), "'history'", source)
    return [_build(history, doc, source)]


def _event_input(args: dict[str, Any]) -> str | None:
    for key in _INPUT_ARGS:
        value = args.get(key)
        if value not in (None, "", {}, []):
            return to_text(value)
    return None


def _add_event(builder: StepBuilder, ev: dict[str, Any], pos: int, state: dict[str, Any]) -> None:
    idx = opt_int(ev.get("id"))
    idx = pos if idx is None else idx
    sid = f"e{idx}" if opt_int(ev.get("id")) is not None else f"p{pos}"
    source = (opt_str(ev.get("source")) or "").lower()
    args = as_dict(ev.get("args"))
    extras = as_dict(ev.get("extras"))
    meta: dict[str, Any] = {"source": source} if source else {}
    if ev.get("cause") is not None:
        meta["cause"] = ev.get("cause")
    action = opt_str(ev.get("action"))
    if action is not None:
        meta["action"] = action
        text = to_text(args.get("content", ev.get("message")))
        if action == "change_agent_state" or action == "recall":
            return
        if action == "system":
            builder.add(index=idx, kind="system", content=text, role="system", step_id=sid, meta=meta)
            return
        if source == "user":
            if action == "message":
                builder.add(index=idx, kind="message", content=text, role="user", step_id=sid, agent="user",
                            meta=meta)  # fmt: skip
            return  # other user-side actions (e.g. a user's file upload) carry nothing to judge
        if action == "message":
            builder.add(index=idx, kind="message", content=text, role="agent", step_id=sid, agent="agent", meta=meta)
            return
        if action == "think":
            builder.add(index=idx, kind="thought", content=to_text(args.get("thought", text)), role="agent",
                        step_id=sid, agent="agent", meta=meta)  # fmt: skip
            return
        if action == "finish":
            answer = to_text(args.get("final_thought") or args.get("outputs") or ev.get("message"))
            state["final"] = answer or state.get("final")
            builder.add(index=idx, kind="answer", content=answer, role="agent", step_id=sid, agent="agent",
                        tool_name="finish", meta=meta)  # fmt: skip
            return
        call = ev.get("tool_call_metadata")
        fn = opt_str(call.get("function_name")) if isinstance(call, dict) else None
        thought = to_text(args.get("thought"))
        content = thought or to_text(ev.get("message"))
        builder.add(index=idx, kind="action", content=content, role="agent", step_id=sid, agent="agent",
                    tool_name=fn or action, tool_input=_event_input({k: v for k, v in args.items() if k != "thought"}),
                    meta=meta)  # fmt: skip
        return
    observation = opt_str(ev.get("observation"))
    if observation is None:
        return
    meta["observation"] = observation
    if observation == "agent_state_changed":
        agent_state = opt_str(extras.get("agent_state"))
        if agent_state == "error":
            reason = to_text(extras.get("reason")) or to_text(ev.get("content")) or "agent state: error"
            state["state_error"] = reason
            builder.add(index=idx, kind="observation", content=reason, role="environment", step_id=sid,
                        agent="environment", is_error=True, meta=meta)  # fmt: skip
        return
    if observation in ("null", "recall"):
        return
    result = unwrap_tool_result(ev.get("content"))
    meta.update(result.meta())
    exit_code = opt_int(extras.get("exit_code"))
    md = extras.get("metadata")
    if exit_code is None and isinstance(md, dict):
        exit_code = opt_int(md.get("exit_code"))
    if exit_code is not None:
        meta["exit_code"] = exit_code
    is_error = observation == "error" or result.is_error or (exit_code is not None and exit_code not in (0, -1))
    if observation == "user_rejected":
        is_error = True
    builder.add(index=idx, kind="observation", content=result.text, role="tool", step_id=sid, agent="environment",
                is_error=is_error, meta=meta)  # fmt: skip


def _build(history: list[Any], record: dict[str, Any], source: Source) -> Trace:
    events = _flatten(history)
    builder = StepBuilder()
    state: dict[str, Any] = {}
    for pos, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise source.error(f"event {pos} should be an object with action or observation")
        _add_event(builder, ev, pos, state)
    error = opt_str(record.get("error"))
    if error and not (state.get("state_error") and error in state["state_error"]):
        # The run's error, unless the event stream already showed it (an agent state change to error).
        last = builder.steps[-1].index + 1 if builder.steps else 0
        builder.add(index=last, kind="observation", content=error, role="environment", step_id="run.error",
                    agent="environment", is_error=True, meta={"source": "record error"})  # fmt: skip
    task = to_text(record.get("instruction")) or next(
        (s.content for s in builder.steps if s.role == "user" and s.content), ""
    )
    final = state.get("final") or next(
        (s.content for s in reversed(builder.steps) if s.role == "agent" and s.kind == "message" and s.content), None
    )
    metadata = as_dict(record.get("metadata"))
    llm = as_dict(metadata.get("llm_config"))
    agent_class = opt_str(metadata.get("agent_class"))
    test_result = record.get("test_result")
    resolved: bool | None = None
    outcome: list[str] = []
    if error:
        outcome.append(f"error={error}")
    elif state.get("state_error"):
        outcome.append(f"error={state['state_error']}")
    if isinstance(test_result, dict):
        report = test_result.get("report")
        if isinstance(report, dict):
            resolved = opt_bool(report.get("resolved"))
        if resolved is not None:
            outcome.append(f"resolved={str(resolved).lower()}")
        elif test_result:
            outcome.append(f"test_result={dumps({k: v for k, v in test_result.items() if k != 'git_patch'})[:300]}")
    meta: dict[str, Any] = {}
    if isinstance(record.get("metrics"), dict):
        meta["metrics"] = record["metrics"]
    max_iter = opt_int(metadata.get("max_iterations"))
    if max_iter is not None:
        meta["max_iterations"] = max_iter
    if isinstance(test_result, dict) and opt_str(test_result.get("git_patch")):
        meta["git_patch"] = test_result["git_patch"]
    trace = new_trace(
        source,
        FORMAT,
        task=task,
        final_answer=final,
        agent_model=opt_str(llm.get("model")),
        utterance_id=opt_str(record.get("instance_id")),
        multi_agent=False,
        is_correct=resolved,
        outcome="; ".join(outcome) or None,
        framework=f"OpenHands {agent_class}" if agent_class else "OpenHands",
        meta=meta,
    )
    return finish_trace(trace, builder.steps, source)


class OpenHandsFormat(Format, scorer=score, parser=parse, part=is_event):
    name = FORMAT
    description = "OpenHands event streams and evaluation records (instruction, history, test_result, error)"
    origin = "All-Hands-AI OpenHands: saved event lists (JSON/JSONL) and evaluation `output.jsonl`"

    def whole_list(self, doc: list[Any]) -> bool:
        return bool(doc) and is_event(doc[0])
