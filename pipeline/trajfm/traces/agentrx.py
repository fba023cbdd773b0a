"""AgentRx runs: tau-bench records (`traj` of chat messages with tool calls) and Magentic-One message lists.

Contract:
- tau-bench: a record {task_id, trial, reward, info, traj}; a file holds one record or a list of them (one
  trace per record, trace id `<file>#<record number>`, 0-based). One step per `traj` message; `Step.index` is the
  1-based position in `traj` (what the ground truth's `step_number` counts; the messages' own `index` field agrees
  and is kept in meta when it differs). Roles map to kinds: system -> system, user -> message, assistant with
  tool_calls -> tool_call (tool_name/tool_input from the first call, all calls in meta), assistant -> message,
  tool -> tool_result (an "Error..." result sets is_error). Task = `info.task.instruction` (the simulated user's
  goal); roles: system -> system, user -> user (the simulated customer), assistant -> agent, tool -> tool;
  reward -> `Trace.reward`, and `is_correct` = reward >= 1 (tau rewards are 0/1).
- Magentic-One: a list of {content, role} whose roles name agents (not only system/user/assistant/tool): one trace,
  one step per message, `Step.index` 1-based like tau, agent = role without its "(...)" annotation; a human/user
  speaker has role user, the rest role agent.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import (
    Source,
    StepBuilder,
    finish_trace,
    new_trace,
    numbered,
    tool_calls,
    unwrap_tool_result,
    with_calls,
)
from trajfm.traces.fields import dumps, opt_float, opt_int, opt_str, require_dict, require_list, to_text
from trajfm.traces.format import Format, combine, item_fit, key_fit
from trajfm.traces.model import Trace
from trajfm.traces.whowhen import USER_NAMES, agent_of

FORMAT = "agentrx"

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer", "human", "ai"})


def is_tau_record(doc: Any) -> bool:
    return isinstance(doc, dict) and "traj" in doc


def is_magentic_list(doc: Any) -> bool:
    """A list of {content, role} where at least one role is an agent name rather than a chat role."""
    if not isinstance(doc, list) or not doc:
        return False
    roles = []
    for item in doc[:50]:
        if not (isinstance(item, dict) and "role" in item and "content" in item):
            return False
        roles.append(str(item.get("role")).lower())
    return any(r not in CHAT_ROLES for r in roles)


_TAU_KEYS = ("task_id", "reward", "info", "trial")


def score(doc: Any) -> float:
    """A tau-bench record (keys and `traj` messages with role and content), or a Magentic-One message list."""
    if isinstance(doc, list):
        return 0.85 if is_magentic_list(doc) else 0.0
    if not isinstance(doc, dict) or "traj" not in doc:
        return 0.0
    traj = doc.get("traj")
    steps = item_fit(traj, ("role", "content"), content=("content", "tool_calls")) if isinstance(traj, list) else 0
    return combine(key_fit(doc, _TAU_KEYS), steps)


def chat_role(role: str) -> str:
    """The step role of an OpenAI-style chat role."""
    lrole = role.lower()
    if lrole in ("system", "developer"):
        return "system"
    if lrole in ("user", "human"):
        return "user"
    if lrole in ("tool", "function", "ipython"):
        return "tool"
    return "agent"


def parse(doc: Any, source: Source) -> list[Trace]:
    if is_magentic_list(doc):
        return [_parse_magentic(doc, source)]
    if isinstance(doc, list):
        if not doc:
            raise source.error("empty list: no AgentRx records")
        return [_parse_tau(rec, source.with_record(n)) for n, rec in enumerate(doc)]
    return [_parse_tau(doc, source)]


def add_chat_message(builder: StepBuilder, msg: dict[str, Any], *, index: int, step_id: str) -> None:
    """One OpenAI-style chat message as a step (shared with the generic chat loader)."""
    role = opt_str(msg.get("role")) or ""
    content = to_text(msg.get("content"))
    meta: dict[str, Any] = {"role": role} if role else {}
    native = opt_int(msg.get("index"))
    if native is not None and native != index:
        meta["native_index"] = native
    calls = msg.get("tool_calls")
    lrole = role.lower()
    if lrole == "assistant" and isinstance(calls, list) and calls:
        parsed = tool_calls(calls)
        meta["tool_calls"] = parsed
        first = parsed[0] if parsed else {"name": None, "arguments": ""}
        builder.add(index=index, kind="tool_call", content=with_calls(content, parsed), role="agent", step_id=step_id,
                    agent="assistant", tool_name=first["name"], tool_input=first["arguments"] or None, meta=meta)  # fmt: skip
        return
    if lrole in ("tool", "function"):
        name = opt_str(msg.get("name"))
        call_id = opt_str(msg.get("tool_call_id"))
        if call_id:
            meta["tool_call_id"] = call_id
        result = unwrap_tool_result(msg.get("content"))
        content = result.text
        meta.update(result.meta())
        is_error = result.is_error or content.lstrip()[:5].lower() == "error"
        builder.add(index=index, kind="tool_result", content=content, role="tool", step_id=step_id, agent="tool",
                    tool_name=name, is_error=is_error, meta=meta)  # fmt: skip
        return
    kind = "system" if lrole in ("system", "developer") else "message"
    # A system prompt is configuration, not a participant: no agent, so per-agent counts stay meaningful.
    agent = None if kind == "system" else (opt_str(msg.get("name")) or role or None)
    builder.add(index=index, kind=kind, content=content, role=chat_role(role), step_id=step_id, agent=agent,
                meta=meta)


def _parse_tau(rec: Any, source: Source) -> Trace:
    rec = require_dict(rec, "an AgentRx tau-bench record", source)
    traj = require_list(rec.get("traj"), "'traj'", source)
    builder = StepBuilder()
    for i, _, msg in numbered(traj, source, "traj message {n} should be an object with role and content"):
        add_chat_message(builder, msg, index=i, step_id=str(i))
    info = rec.get("info") if isinstance(rec.get("info"), dict) else {}
    task_raw = info.get("task")
    task_block = task_raw if isinstance(task_raw, dict) else {}
    reward = opt_float(rec.get("reward"))
    final = next((s.content for s in reversed(builder.steps) if s.kind == "message" and s.agent == "assistant"
                  and s.content), None)  # fmt: skip
    meta: dict[str, Any] = {}
    for key in ("task_id", "trial"):
        if key in rec and not isinstance(rec[key], dict | list):
            meta[key] = rec[key] if isinstance(rec[key], int | str) else dumps(rec[key])
    user_id = opt_str(task_block.get("user_id"))
    if user_id:
        meta["user_id"] = user_id
    trace = new_trace(source, FORMAT, task=to_text(task_block.get("instruction")), final_answer=final,
                      utterance_id=opt_str(rec.get("task_id")), run_id=opt_str(rec.get("trial")), multi_agent=False,
                      reward=reward, is_correct=None if reward is None else reward >= 1.0, meta=meta)  # fmt: skip
    return finish_trace(trace, builder.steps, source)


def _parse_magentic(messages: list[Any], source: Source) -> Trace:
    builder = StepBuilder()
    for i, _, msg in numbered(messages, source, "message {n} should be an object with content and role"):
        role = opt_str(msg.get("role"))
        agent = agent_of(msg)
        step_role = "user" if (agent or "").lower() in USER_NAMES else "agent"
        builder.add(index=i, kind="message", content=to_text(msg.get("content")), role=step_role, step_id=str(i),
                    agent=agent, meta={"role": role} if role else {})  # fmt: skip
    task = next((s.content for s in builder.steps if (s.agent or "").lower() in ("human", "user")), "")
    agents = {s.agent for s in builder.steps if s.agent}
    trace = new_trace(source, FORMAT, task=task, multi_agent=len(agents - {"human", "user"}) > 1,
                      meta={"form": "magentic_one"})  # fmt: skip
    return finish_trace(trace, builder.steps, source)


class AgentRxFormat(Format, scorer=score, parser=parse):
    name = FORMAT
    description = "tau-bench runs (`traj` of chat messages with tool calls, reward) and Magentic-One {content, role} lists"
    origin = "AgentRx dataset (tau-bench retail runs, Magentic-One logs); JSON"
    whole_list = staticmethod(is_magentic_list)  # type: ignore[assignment]

    def expects_final_answer(self, trace: Trace) -> bool:
        return trace.meta.get("form") != "magentic_one"  # Magentic-One lists mark no answer
