"""tau2-bench results files: one trace per simulation.

Shape: `{timestamp, info: {agent_info: {implementation, llm}, user_info: {implementation, llm},
environment_info: {domain_name, policy}}, tasks: [{id, description, user_scenario}], simulations: [{id, task_id,
trial, termination_reason, reward_info: {reward, ...}, messages: [{role, content, tool_calls: [{id, name,
arguments, requestor}], turn_idx, error, requestor}]}]}`. A single simulation object (`{id, task_id, messages,
termination_reason}`) is read too.

Contract:
- One trace per simulation, trace id `<file>#<simulation id>` (its position when it has no id). Steps in message
  order; `Step.index` = the message's `turn_idx` (its position when absent).
- The domain policy (`environment_info.policy`, or the simulation's own `policy`) is the first step: kind
  system, role system, index 0.
- Roles: assistant -> agent (tool_call when it calls tools: name and arguments of the first call, all calls in
  meta), user -> user (the simulated customer; a user's own tool calls stay user steps, kind tool_call), tool ->
  tool, or user when the call it answers was the user's (`requestor`). Tool results are unwrapped
  (`unwrap_tool_result`); the message's `error` flag sets is_error.
- Task = the simulated user's first message (what the agent was asked); the scenario's persona and instructions
  are simulator configuration and stay in `Trace.meta["user_instructions"]`, never the task.
- Final answer = the agent's last text message. Outcome = `termination_reason=...` plus `reward=...`;
  reward -> `Trace.reward`, is_correct = reward >= 1. Model = `info.agent_info.llm` (the user simulator's model
  goes to meta); framework = "tau2-bench"; run = the file's `timestamp`; scenario = the domain.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import (
    Source,
    StepBuilder,
    finish_trace,
    first_content,
    last_content,
    new_trace,
    numbered,
    tool_calls,
    unwrap_tool_result,
    with_calls,
)
from trajfm.traces.fields import as_dict, opt_float, opt_str, require_dict, require_list, to_text
from trajfm.traces.format import Format, combine, item_fit, key_fit
from trajfm.traces.model import Trace

FORMAT = "tau2"

_FILE_KEYS = ("info", "tasks", "simulations", "timestamp")
_SIM_KEYS = ("task_id", "termination_reason", "reward_info", "messages")
_MSG_KEYS = ("role", "content", "turn_idx")


def _is_simulation(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("messages"), list) and "termination_reason" in doc


def score(doc: Any) -> float:
    if not isinstance(doc, dict):
        return 0.0
    sims = doc.get("simulations")
    if isinstance(sims, list):
        first = sims[0] if sims else None
        sim_fit = key_fit(first, _SIM_KEYS) if isinstance(first, dict) else 0.0
        msgs = first.get("messages") if isinstance(first, dict) else None
        msg_fit = item_fit(msgs, _MSG_KEYS, content=("content", "tool_calls")) if isinstance(msgs, list) else 0.0
        return combine(key_fit(doc, _FILE_KEYS), 0.5 * sim_fit + 0.5 * msg_fit) if sims else 0.3
    if _is_simulation(doc):
        msg_fit = item_fit(doc["messages"], _MSG_KEYS, content=("content", "tool_calls"))
        return combine(key_fit(doc, _SIM_KEYS), msg_fit)
    return 0.0


def parse(doc: Any, source: Source) -> list[Trace]:
    doc = require_dict(doc, "a tau2-bench results file", source)
    if "simulations" not in doc:
        return [_simulation(doc, {}, {}, source)]
    sims = require_list(doc.get("simulations"), "'simulations'", source)
    if not sims:
        raise source.error("empty trajectory: 'simulations' is empty")
    info = as_dict(doc.get("info"))
    tasks: dict[str, dict[str, Any]] = {}
    for task in doc.get("tasks") or []:
        if isinstance(task, dict) and opt_str(task.get("id")) is not None:
            tasks[str(opt_str(task.get("id")))] = task
    run = opt_str(doc.get("timestamp"))
    traces = []
    for n, sim in enumerate(sims):
        sim_id = opt_str(sim.get("id")) if isinstance(sim, dict) else None
        traces.append(_simulation(sim, info, tasks, source.with_record(sim_id or n), run=run))
    return traces


def _simulation(
    sim: Any, info: dict[str, Any], tasks: dict[str, dict[str, Any]], source: Source, *, run: str | None = None
) -> Trace:
    sim = require_dict(sim, "a tau2-bench simulation", source)
    messages = require_list(sim.get("messages"), "'messages'", source)
    env = as_dict(info.get("environment_info"))
    agent_info = as_dict(info.get("agent_info"))
    user_info = as_dict(info.get("user_info"))
    builder = StepBuilder()
    policy = to_text(sim.get("policy", env.get("policy")))
    if policy.strip():
        builder.add(index=0, kind="system", content=policy, role="system", step_id="policy",
                    meta={"source": "policy"})  # fmt: skip
    requestor_of: dict[str, str] = {}  # tool call id -> who asked (assistant | user)
    expected = "message {n} should be an object with role and content"
    for pos, idx, msg in numbered(messages, source, expected, key="turn_idx", start=0):
        _add_message(builder, msg, idx, f"m{pos}", requestor_of)
    reward_info = as_dict(sim.get("reward_info"))
    reward = opt_float(reward_info.get("reward"))
    termination = opt_str(sim.get("termination_reason"))
    outcome_parts = []
    if termination:
        outcome_parts.append(f"termination_reason={termination}")
    if reward is not None:
        outcome_parts.append(f"reward={reward:g}")
    task_id = opt_str(sim.get("task_id"))
    meta: dict[str, Any] = {}
    scenario = tasks.get(task_id or "", {}).get("user_scenario")
    if scenario is not None:
        meta["user_instructions"] = to_text(scenario)
    user_model = opt_str(user_info.get("llm"))
    if user_model:
        meta["user_model"] = user_model
    for key in ("trial", "seed", "duration", "agent_cost", "user_cost"):
        value = sim.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            meta[key] = value
    implementation = opt_str(agent_info.get("implementation"))
    if implementation:
        meta["agent_implementation"] = implementation
    trace = new_trace(
        source,
        FORMAT,
        task=first_content(builder.steps, role="user", kind="message"),
        final_answer=last_content(builder.steps),
        agent_model=opt_str(agent_info.get("llm")),
        scenario=opt_str(env.get("domain_name")),
        utterance_id=task_id,
        run_id=run,
        multi_agent=False,
        reward=reward,
        is_correct=None if reward is None else reward >= 1.0,
        outcome="; ".join(outcome_parts) or None,
        framework="tau2-bench",
        meta=meta,
    )
    return finish_trace(trace, builder.steps, source)


def _add_message(
    builder: StepBuilder, msg: dict[str, Any], idx: int, sid: str, requestor_of: dict[str, str]
) -> None:
    role = (opt_str(msg.get("role")) or "").lower()
    content = to_text(msg.get("content"))
    calls = msg.get("tool_calls")
    meta: dict[str, Any] = {"role": role} if role else {}
    if role in ("assistant", "user") and isinstance(calls, list) and calls:
        parsed = tool_calls(calls)
        requestor_of.update((c["id"], role) for c in parsed if c["id"])
        meta["tool_calls"] = parsed
        first = parsed[0] if parsed else {"name": None, "arguments": ""}
        builder.add(index=idx, kind="tool_call", content=with_calls(content, parsed),
                    role="agent" if role == "assistant" else "user", step_id=sid,
                    agent="assistant" if role == "assistant" else "user", tool_name=first["name"],
                    tool_input=first["arguments"] or None, meta=meta)  # fmt: skip
        return
    if role == "tool":
        result = unwrap_tool_result(msg.get("content"))
        meta.update(result.meta())
        cid = opt_str(msg.get("id", msg.get("tool_call_id")))
        asked_by = opt_str(msg.get("requestor")) or requestor_of.get(cid or "", "assistant")
        if cid:
            meta["tool_call_id"] = cid
        meta["requestor"] = asked_by
        is_error = msg.get("error") is True or result.is_error
        builder.add(index=idx, kind="tool_result", content=result.text,
                    role="user" if asked_by == "user" else "tool", step_id=sid, agent="tool",
                    is_error=is_error, meta=meta)  # fmt: skip
        return
    if role == "system":
        builder.add(index=idx, kind="system", content=content, role="system", step_id=sid, meta=meta)
        return
    is_user = role == "user"
    builder.add(index=idx, kind="message", content=content, role="user" if is_user else "agent", step_id=sid,
                agent="user" if is_user else "assistant", meta=meta)  # fmt: skip


class Tau2Format(Format, scorer=score, parser=parse):
    name = FORMAT
    description = "tau2-bench results: simulations of an agent and a simulated user, with reward and termination"
    origin = "sierra-research tau2-bench `results` JSON (`{info, tasks, simulations}`), or one simulation"

