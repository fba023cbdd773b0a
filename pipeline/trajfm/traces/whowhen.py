"""Who&When failure logs (ICML 2025): AG2/CaptainAgent teams and the Magentic-One role form.

Contract:
- A document is an object with `history`: a list of {content, role, name} (Algorithm-Generated) or {content, role}
  where the role is the agent, e.g. "Orchestrator (thought)", "WebSurfer" (Hand-Crafted, Magentic-One).
- One step per history item, kind "message", `Step.index` = 0-based position in `history`, which is what the
  `mistake_step` labels count. A code-executor reply with a non-zero "exitcode:" sets is_error. Agent = `name`,
  else the role with a trailing "(...)" annotation removed (the full role stays in `meta["role"]`).
- Role: a speaker named user/human -> user, a "system" role -> system, a code executor's reply ("exitcode: N")
  -> tool, anyone else -> agent (AG2's own user/assistant roles say nothing about who speaks).
- Task = `question`; `is_correct` parsed from bool or "True"/"False"; the reference answer (`ground_truth`),
  `question_ID` and `level` go to `Trace.meta`. The failure labels (`mistake_*`) are NOT copied into the trace:
  judges read traces, and a label in the trace would leak the answer. The bench reads them from the source file.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import Source, StepBuilder, one_trace
from trajfm.traces.fields import opt_bool, opt_str, require_dict, require_list, to_text
from trajfm.traces.format import Format, combine, item_fit, key_fit
from trajfm.traces.model import Trace

FORMAT = "whowhen"

_MARKERS = ("question", "question_ID", "is_correct", "ground_truth", "level")
USER_NAMES = frozenset({"user", "human"})


def score(doc: Any) -> float:
    """Keys of a Who&When log, and history items with content and role (name optional)."""
    if not isinstance(doc, dict):
        return 0.0
    history = doc.get("history")
    if history is None or "trajectory" in doc:
        return 0.0
    keys = key_fit(doc, _MARKERS)
    if not isinstance(history, list) or not history:
        # Who&When's own keys with a malformed or empty history: this format's error to report, not "unknown".
        return 0.3 if keys else 0.0
    if keys < 0.4:
        # Without (most of) Who&When's own keys, {content, role} items are any chat log: only the AG2 `name` makes it this one.
        return round(0.7 * item_fit(history, ("content", "role", "name"), content=("content",)), 4)
    return combine(keys, item_fit(history, ("content", "role"), content=("content",)))


def role_of(item: dict[str, Any], agent: str | None, content: str) -> str:
    if (agent or "").lower() in USER_NAMES:
        return "user"
    if (opt_str(item.get("role")) or "").lower() == "system":
        return "system"
    if content.lstrip().startswith("exitcode:"):
        return "tool"
    return "agent"


def agent_of(item: dict[str, Any]) -> str | None:
    name = opt_str(item.get("name"))
    if name:
        return name
    role = opt_str(item.get("role"))
    if role and role.endswith(")") and " (" in role:
        # Magentic-One: "Orchestrator (thought)", "Orchestrator (-> WebSurfer)" are the Orchestrator speaking.
        role = role[: role.index(" (")].strip() or role
    return role


def is_execution_error(content: str) -> bool:
    """AG2's code executor reports "exitcode: N (execution failed)"; any non-zero exit code is a tool error."""
    head = content.lstrip()[:24]
    if not head.startswith("exitcode:"):
        return False
    code = head[len("exitcode:") :].split(None, 1)[0] if head[len("exitcode:") :].strip() else ""
    return code != "0"


def parse(doc: Any, source: Source) -> list[Trace]:
    doc = require_dict(doc, "a Who&When log", source)
    history = require_list(doc.get("history"), "'history'", source)
    builder = StepBuilder()
    for i, item in enumerate(history):
        if not isinstance(item, dict):
            raise source.error(f"history[{i}] should be an object with content and role")
        meta: dict[str, Any] = {}
        role = opt_str(item.get("role"))
        if role:
            meta["role"] = role
        content = to_text(item.get("content"))
        agent = agent_of(item)
        builder.add(index=i, kind="message", content=content, role=role_of(item, agent, content), step_id=str(i),
                    agent=agent, is_error=is_execution_error(content), meta=meta)  # fmt: skip
    meta = {}
    for key, out in (
        ("question_ID", "question_id"),
        ("level", "level"),
        ("ground_truth", "reference_answer"),
    ):
        value = opt_str(doc.get(key))
        if value is not None:
            meta[out] = value
    agents = {s.agent for s in builder.steps if s.agent}
    return one_trace(source, FORMAT, builder.steps, task=to_text(doc.get("question")), meta=meta,
                     utterance_id=opt_str(doc.get("question_ID")), is_correct=opt_bool(doc.get("is_correct")),
                     multi_agent=len(agents) > 1)  # fmt: skip


class WhoWhenFormat(Format, scorer=score, parser=parse):
    name = FORMAT
    description = "Who&When failure logs: a `history` of {content, role, name} messages, also the Magentic-One role form"
    origin = "Who&When (ICML 2025) dataset, AG2/CaptainAgent and Magentic-One teams; JSON"
    has_final_answer = False  # the logs end with the team's last message, not a marked answer
