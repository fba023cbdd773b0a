"""SWE-agent trajectories (`.traj` files), in both forms SWE-agent has written.

Shapes:
- Trajectory form: `{trajectory: [{thought, action, observation, response, state, execution_time, query}],
  history: [...], info: {exit_status, submission, model_stats, ...}, replay_config, environment}`.
- History-only form: `{history: [{role, content, agent, message_type, thought, action, tool_calls}], info}` (no
  `trajectory`, or an empty one): the steps are read from the model's message history.

Contract:
- Trajectory form: each item i (1-based, `Step.index = i`) gives a thought (role agent), an action (role agent,
  tool_name = the command's first word, tool_input = the whole command) and an observation (role tool; a
  result starting "Error" or a traceback sets is_error). The history's system prompt becomes a system step and
  its first user message (the issue, i.e. the task) a user step, both with index 0.
- History-only form: system -> system step; the first user message -> user step (the task); later user/tool
  messages are observations (SWE-agent sends command output back as user messages: role tool); assistant
  messages -> action steps (role agent; tool_name from the first tool call or the action's first word). Index =
  the number of assistant turns so far (1-based), so the observation shares its action's index.
- Task = `replay_config.problem_statement.text` when present, else the first user message. Final answer =
  `info.submission` (the patch or answer submitted). Outcome = `exit_status=...` plus `submitted` or `no
  submission`. Model = `replay_config.agent.model.name` or `info.model_name` (never a folder name); framework =
  "SWE-agent" (with `info.swe_agent_version` when present). Model stats go to meta.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import Source, StepBuilder, finish_trace, new_trace
from trajfm.traces.fields import as_dict, loads_maybe, opt_str, require_dict, require_list, to_text
from trajfm.traces.format import Format, item_fit, key_fit
from trajfm.traces.model import Trace

FORMAT = "sweagent"

_TOP_KEYS = ("info", "history", "environment", "replay_config")
_TRAJ_STEP = ("action", "observation", "thought", "response")
_HISTORY_STEP = ("role", "content", "agent")
_INFO_KEYS = ("exit_status", "submission")


def score(doc: Any) -> float:
    if not isinstance(doc, dict):
        return 0.0
    traj = doc.get("trajectory")
    history = doc.get("history")
    info = doc.get("info")
    # exit_status and submission are SWE-agent's own; model_stats alone is shared with other formats.
    info_fit = key_fit(info, _INFO_KEYS) if isinstance(info, dict) else 0.0
    if isinstance(traj, list) and traj:
        steps = item_fit(traj, _TRAJ_STEP, content=("action", "observation"))
    elif isinstance(history, list) and history and (traj is None or traj == []):
        steps = item_fit(history, _HISTORY_STEP, content=("content",))
    else:
        return 0.3 if info_fit and ("trajectory" in doc or "history" in doc) else 0.0
    if info_fit == 0.0 and "replay_config" not in doc:
        # SWE-agent's own keys are all missing: a thought/action/observation list alone is not enough to claim it.
        return round(0.5 * steps, 4)
    return round(0.25 * key_fit(doc, _TOP_KEYS) + 0.25 * info_fit + 0.5 * steps, 4)


def _command_name(action: str) -> str | None:
    head = action.strip().split(None, 1)
    return head[0] if head else None


def _is_error_output(text: str) -> bool:
    head = text.lstrip()[:200]
    return head.startswith(("Error", "ERROR", "Traceback (most recent call last)")) or "command not found" in head


def _replay(doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("replay_config")
    value = loads_maybe(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _model(doc: dict[str, Any], info: dict[str, Any]) -> str | None:
    agent = _replay(doc).get("agent")
    model = agent.get("model") if isinstance(agent, dict) else None
    if isinstance(model, dict):
        name = opt_str(model.get("name", model.get("model_name")))
        if name:
            return name
    return opt_str(info.get("model_name")) or opt_str(info.get("model"))


def _task(doc: dict[str, Any]) -> str | None:
    problem = _replay(doc).get("problem_statement")
    if isinstance(problem, dict):
        return opt_str(problem.get("text"))
    return None


def parse(doc: Any, source: Source) -> list[Trace]:
    doc = require_dict(doc, "a SWE-agent trajectory", source)
    info = as_dict(doc.get("info"))
    history = doc.get("history")
    history = history if isinstance(history, list) else []
    traj = doc.get("trajectory")
    builder = StepBuilder()
    if isinstance(traj, list) and traj:
        _prelude(builder, history)
        _trajectory_steps(builder, traj, source)
        form = "trajectory"
    else:
        require_list(doc.get("history"), "'history' (the history-only form has no trajectory)", source)
        _history_steps(builder, history, source)
        form = "history"
    submission = opt_str(info.get("submission"))
    exit_status = opt_str(info.get("exit_status"))
    outcome = []
    if exit_status:
        outcome.append(f"exit_status={exit_status}")
    outcome.append("submitted" if submission else "no submission")
    task = _task(doc) or next((s.content for s in builder.steps if s.role == "user" and s.content), "")
    version = opt_str(info.get("swe_agent_version"))
    meta: dict[str, Any] = {"form": form}
    if isinstance(info.get("model_stats"), dict):
        meta["model_stats"] = info["model_stats"]
    instance = opt_str(_replay(doc).get("problem_statement", {}).get("id")) if isinstance(
        _replay(doc).get("problem_statement"), dict) else None  # fmt: skip
    trace = new_trace(
        source,
        FORMAT,
        task=task,
        final_answer=submission,
        agent_model=_model(doc, info),
        utterance_id=instance,
        multi_agent=False,
        outcome="; ".join(outcome),
        framework=f"SWE-agent {version}" if version else "SWE-agent",
        meta=meta,
    )
    return [finish_trace(trace, builder.steps, source)]


def _prelude(builder: StepBuilder, history: list[Any]) -> None:
    """The system prompt and the first user message (the issue) from the history, as index-0 steps."""
    seen_user = False
    for n, item in enumerate(history):
        if not isinstance(item, dict):
            continue
        role = (opt_str(item.get("role")) or "").lower()
        if role == "system":
            builder.add(index=0, kind="system", content=to_text(item.get("content")), role="system",
                        step_id=f"h{n}", meta={"message_type": opt_str(item.get("message_type")) or "system"})  # fmt: skip
        elif role == "user" and not seen_user:
            seen_user = True
            builder.add(index=0, kind="message", content=to_text(item.get("content")), role="user", step_id=f"h{n}",
                        agent="user")  # fmt: skip
        elif role == "assistant":
            break


def _trajectory_steps(builder: StepBuilder, traj: list[Any], source: Source) -> None:
    for i, item in enumerate(traj, start=1):
        if not isinstance(item, dict):
            raise source.error(f"trajectory step {i} should be an object with action and observation")
        thought = to_text(item.get("thought"))
        if thought.strip():
            builder.add(index=i, kind="thought", content=thought, role="agent", step_id=f"{i}.thought",
                        agent="agent")  # fmt: skip
        action = to_text(item.get("action"))
        if action.strip():
            builder.add(index=i, kind="action", content=action, role="agent", step_id=f"{i}.action", agent="agent",
                        tool_name=_command_name(action), tool_input=action.strip())  # fmt: skip
        if "observation" in item:
            obs = to_text(item.get("observation"))
            builder.add(index=i, kind="observation", content=obs, role="tool", step_id=f"{i}.observation",
                        agent="environment", is_error=_is_error_output(obs))  # fmt: skip


def _history_steps(builder: StepBuilder, history: list[Any], source: Source) -> None:
    turn = 0
    seen_user = False
    for n, item in enumerate(history):
        if not isinstance(item, dict):
            raise source.error(f"history[{n}] should be an object with role and content")
        role = (opt_str(item.get("role")) or "").lower()
        content = to_text(item.get("content"))
        mtype = opt_str(item.get("message_type"))
        meta = {"message_type": mtype} if mtype else {}
        if role == "system":
            builder.add(index=turn, kind="system", content=content, role="system", step_id=f"h{n}", meta=meta)
        elif role == "assistant":
            turn += 1
            action = to_text(item.get("action"))
            tool_name, tool_input = None, action.strip() or None
            calls = item.get("tool_calls")
            if isinstance(calls, list) and calls and isinstance(calls[0], dict):
                function = calls[0].get("function")
                fn = function if isinstance(function, dict) else calls[0]
                tool_name = opt_str(fn.get("name"))
                args = fn.get("arguments")
                tool_input = to_text(args) if args is not None else tool_input
            if tool_name is None and action.strip():
                tool_name = _command_name(action)
            builder.add(index=turn, kind="action", content=content, role="agent", step_id=f"h{n}", agent="agent",
                        tool_name=tool_name, tool_input=tool_input, meta=meta)  # fmt: skip
        elif role in ("user", "tool") and (seen_user or role == "tool" or mtype == "observation" and turn > 0):
            builder.add(index=turn, kind="observation", content=content, role="tool", step_id=f"h{n}",
                        agent="environment", is_error=_is_error_output(content), meta=meta)  # fmt: skip
        elif role == "user":
            seen_user = True
            builder.add(index=turn, kind="message", content=content, role="user", step_id=f"h{n}", agent="user",
                        meta=meta)  # fmt: skip
        else:
            builder.add(index=turn, kind="message", content=content, role="agent", step_id=f"h{n}",
                        agent=opt_str(item.get("agent")), meta=meta)  # fmt: skip


class SweAgentFormat(Format, scorer=score, parser=parse):
    name = FORMAT
    description = "SWE-agent trajectories: thought/action/observation steps or the message history, exit status"
    origin = "SWE-agent `.traj` files (JSON), both the trajectory form and the history-only form"
