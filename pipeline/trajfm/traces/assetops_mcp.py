"""AssetOpsBench's current (MCP-based) runners: per-run trajectory JSON, plan-execute and agent-as-tool results.

Shapes:
- Run JSON (`assetops-run`): `{run_id, scenario_id, runner, model, question, answer, trajectory: {turns: [{index,
  text, tool_calls: [{name, input, id, output}]}]}, runner_meta: {model_id, ...}}`.
- Plan-execute (`assetops-plan`): `{question, answer, success, history: [{step, task, server, tool, tool_args,
  response, error}]}`.
- Agent-as-tool (`assetops-tools`): `{question, answer, success, history: [{turn, role, content, tool_calls:
  [{name, arguments, output}]}]}`.

Contract (all three): task = `question`, final answer = `answer`; model = `model`, else `runner_meta.model_id`
(never a path); framework = "AssetOpsBench" plus the runner (`runner`, or the form's name); run id = `run_id`;
scenario/utterance id = `scenario_id`. Outcome = `success=...` when the file says so. Tool outputs are unwrapped
(`unwrap_tool_result`: MCP `[{"type": "text", "text": ...}]` envelopes and JSON-in-string), so an `{"error": ...}`
inside sets is_error; the raw output is kept in `meta["raw_content"]`.
- Run JSON: per turn (`Step.index` = `index`, else its 1-based position) the turn's text (role agent: kind thought
  when the turn calls tools, else message), then per tool call an action (role agent, tool_name, tool_input =
  the input as JSON) and its result (role tool).
- Plan-execute: per step (`Step.index` = `step`) an action (role agent, agent "planner", content = the task,
  tool_name = `tool`, tool_input = `tool_args` as JSON, server in meta) and an observation (role tool, content =
  the response; a non-empty `error` sets is_error and is appended).
- Agent-as-tool: per turn (`Step.index` = `turn`) the message by role (user -> user, system -> system,
  assistant -> agent, tool -> tool), then per tool call an action (role agent) and its output (role tool).
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import (
    Source,
    StepBuilder,
    finish_trace,
    json_text,
    new_trace,
    numbered,
    unwrap_tool_result,
    with_error,
)
from trajfm.traces.fields import (
    as_dict,
    opt_bool,
    opt_str,
    require_dict,
    require_list,
    to_text,
)
from trajfm.traces.format import Format, combine, item_fit, key_fit
from trajfm.traces.model import Trace

_RUN_KEYS = ("run_id", "scenario_id", "runner", "model", "question", "answer")
_RESULT_KEYS = ("question", "answer", "success")
_PLAN_STEP = ("step", "task", "tool", "tool_args", "response")
_TOOLS_STEP = ("turn", "role", "content")


def _identity(doc: dict[str, Any], form: str) -> dict[str, Any]:
    meta = as_dict(doc.get("runner_meta"))
    model = opt_str(doc.get("model")) or opt_str(meta.get("model_id")) or opt_str(meta.get("model"))
    runner = opt_str(doc.get("runner")) or form
    return {"model": model, "framework": f"AssetOpsBench {runner}", "run_id": opt_str(doc.get("run_id")),
            "scenario": opt_str(doc.get("scenario_id"))}  # fmt: skip


def _trace(doc: dict[str, Any], fmt: str, form: str, builder: StepBuilder, source: Source) -> Trace:
    ident = _identity(doc, form)
    success = opt_bool(doc.get("success"))
    tools = {s.tool_name for s in builder.steps if s.tool_name}
    return finish_trace(
        new_trace(
            source,
            fmt,
            task=to_text(doc.get("question")),
            final_answer=opt_str(doc.get("answer")) if not isinstance(doc.get("answer"), dict | list)
            else to_text(doc.get("answer")),  # fmt: skip
            agent_model=ident["model"],
            utterance_id=ident["scenario"],
            run_id=ident["run_id"],
            multi_agent=None,
            outcome=None if success is None else f"success={str(success).lower()}",
            framework=ident["framework"],
            meta={"form": form, "tools": sorted(tools)},
        ),
        builder.steps,
        source,
    )


def _call_steps(
    builder: StepBuilder, calls: Any, idx: int, sid: str, *, input_key: str, agent: str = "agent"
) -> None:
    """An action and its result for each tool call {name, input|arguments, id, output}."""
    if not isinstance(calls, list):
        return
    for k, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        name = opt_str(call.get("name"))
        args = call.get(input_key, call.get("input", call.get("arguments")))
        args_text = json_text(args)
        cid = opt_str(call.get("id"))
        meta = {"tool_call_id": cid} if cid else {}
        builder.add(index=idx, kind="action", content=f"{name}({args_text or ''})", role="agent",
                    step_id=f"{sid}.call{k}", agent=agent, tool_name=name, tool_input=args_text, meta=meta)  # fmt: skip
        if "output" in call:
            result = unwrap_tool_result(call.get("output"))
            rmeta = {**meta, **result.meta(), "tool_name": name}
            builder.add(index=idx, kind="observation", content=result.text, role="tool", step_id=f"{sid}.out{k}",
                        agent=name, is_error=result.is_error, meta=rmeta)  # fmt: skip


# ---- run JSON ----------------------------------------------------------------------------------------------


def score_run(doc: Any) -> float:
    if not isinstance(doc, dict):
        return 0.0
    traj = doc.get("trajectory")
    if not isinstance(traj, dict):
        return 0.0
    turns = traj.get("turns")
    if not isinstance(turns, list):
        return 0.3 if key_fit(doc, _RUN_KEYS) >= 0.5 else 0.0
    steps = item_fit(turns, ("index", "text", "tool_calls"), content=("text", "tool_calls")) if turns else 0.0
    return combine(key_fit(doc, _RUN_KEYS), steps, key_weight=0.4)


def parse_run(doc: Any, source: Source) -> list[Trace]:
    doc = require_dict(doc, "an AssetOpsBench run", source)
    traj = require_dict(doc.get("trajectory"), "'trajectory'", source)
    turns = require_list(traj.get("turns"), "'trajectory.turns'", source)
    builder = StepBuilder()
    expected = "trajectory turn {n} should be an object with text and tool_calls"
    for pos, idx, turn in numbered(turns, source, expected, key="index"):
        calls = turn.get("tool_calls")
        text = to_text(turn.get("text"))
        if text.strip():
            kind = "thought" if isinstance(calls, list) and calls else "message"
            builder.add(index=idx, kind=kind, content=text, role="agent", step_id=f"t{pos}", agent="agent")
        _call_steps(builder, calls, idx, f"t{pos}", input_key="input")
    return [_trace(doc, "assetops-run", "run", builder, source)]


# ---- plan-execute ------------------------------------------------------------------------------------------


def _history(doc: Any) -> list[Any] | None:
    if not isinstance(doc, dict) or "trajectory" in doc:
        return None
    history = doc.get("history")
    return history if isinstance(history, list) else None


def _history_fit(doc: Any) -> tuple[list[Any], float] | float:
    """(history, fit of the result keys) of a plan-execute or agent-as-tool result with steps; else its score:
    0 when it is neither, a low score for an empty history with the result keys (its loader reports it)."""
    history = _history(doc)
    if history is None:
        return 0.0
    keys = key_fit(doc, _RESULT_KEYS)
    if not history:
        return 0.3 if keys >= 2 / 3 else 0.0
    return history, keys


def score_plan(doc: Any) -> float:
    found = _history_fit(doc)
    if isinstance(found, float):
        return found
    history, keys = found
    return combine(keys, item_fit(history, _PLAN_STEP, content=("task", "response", "tool")), key_weight=0.4)


def parse_plan(doc: Any, source: Source) -> list[Trace]:
    history = require_list(require_dict(doc, "an AssetOpsBench plan-execute result", source).get("history"), "'history'", source)
    builder = StepBuilder()
    expected = "history step {n} should be an object with task, tool and response"
    for pos, idx, item in numbered(history, source, expected, key="step"):
        tool = opt_str(item.get("tool"))
        args_text = json_text(item.get("tool_args"))
        meta: dict[str, Any] = {}
        server = opt_str(item.get("server"))
        if server:
            meta["server"] = server
        builder.add(index=idx, kind="action", content=to_text(item.get("task")), role="agent", step_id=f"{pos}.task",
                    agent="planner", tool_name=tool, tool_input=args_text, meta=dict(meta))  # fmt: skip
        result = unwrap_tool_result(item.get("response"))
        error = item.get("error")
        error_text = to_text(error) if error not in (None, "", False, {}, []) else ""
        text = result.text
        if error_text and error_text not in text:
            text = with_error(text, error_text)
        builder.add(index=idx, kind="observation", content=text, role="tool", step_id=f"{pos}.response",
                    agent=tool, is_error=result.is_error or bool(error_text),
                    meta={**meta, **result.meta(), **({"tool_name": tool} if tool else {})})  # fmt: skip
    return [_trace(doc, "assetops-plan", "plan-execute", builder, source)]


# ---- agent-as-tool -----------------------------------------------------------------------------------------

_ROLE = {"user": "user", "human": "user", "system": "system", "assistant": "agent", "tool": "tool"}


def score_tools(doc: Any) -> float:
    found = _history_fit(doc)
    if isinstance(found, float):
        return found
    history, keys = found
    steps = item_fit(history, _TOOLS_STEP, content=("content", "tool_calls"))
    # Who&When-like {role, content} items alone are not this format: the `turn` numbers and the run's own keys are.
    return combine(keys, steps, key_weight=0.4) if keys else round(0.4 * steps, 4)


def parse_tools(doc: Any, source: Source) -> list[Trace]:
    history = require_list(require_dict(doc, "an AssetOpsBench agent-as-tool result", source).get("history"), "'history'", source)
    builder = StepBuilder()
    expected = "history turn {n} should be an object with role and content"
    for pos, idx, item in numbered(history, source, expected, key="turn"):
        role = (opt_str(item.get("role")) or "").lower()
        step_role = _ROLE.get(role, "agent")
        content = item.get("content")
        if step_role == "tool":
            result = unwrap_tool_result(content)
            builder.add(index=idx, kind="tool_result", content=result.text, role="tool", step_id=f"{pos}",
                        agent=opt_str(item.get("name")), is_error=result.is_error, meta=result.meta())  # fmt: skip
        elif step_role == "system":
            builder.add(index=idx, kind="system", content=to_text(content), role="system", step_id=f"{pos}")
        else:
            text = to_text(content)
            if text.strip() or step_role == "user":
                builder.add(index=idx, kind="message", content=text, role=step_role, step_id=f"{pos}",
                            agent=opt_str(item.get("name")) or ("user" if step_role == "user" else "agent"))  # fmt: skip
        _call_steps(builder, item.get("tool_calls"), idx, f"{pos}", input_key="arguments")
    return [_trace(doc, "assetops-tools", "agent-as-tool", builder, source)]


class AssetOpsRunFormat(Format, scorer=score_run, parser=parse_run):
    name = "assetops-run"
    description = "AssetOpsBench per-run trajectory JSON: turns of text and MCP tool calls with their outputs"
    origin = "IBM AssetOpsBench current runners (`{run_id, scenario_id, runner, model, trajectory: {turns}}`)"


class AssetOpsPlanFormat(Format, scorer=score_plan, parser=parse_plan):
    name = "assetops-plan"
    description = "AssetOpsBench plan-execute results: planned steps with server, tool, arguments, response, error"
    origin = "IBM AssetOpsBench plan-execute runner (`{question, answer, success, history: [{step, task, tool}]}`)"


class AssetOpsToolsFormat(Format, scorer=score_tools, parser=parse_tools):
    name = "assetops-tools"
    description = "AssetOpsBench agent-as-tool results: turns by role with tool calls and their outputs"
    origin = "IBM AssetOpsBench agent-as-tool runner (`{question, answer, success, history: [{turn, role}]}`)"
