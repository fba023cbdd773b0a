"""Who&When failure logs (ICML 2025): AG2/CaptainAgent teams and the Magentic-One role form.

Contract:
- A document is an object with `history`: a list of {content, role, name} (Algorithm-Generated) or {content, role}
  where the role is the agent, e.g. "Orchestrator (thought)", "WebSurfer" (Hand-Crafted, Magentic-One).
- One step per history item, kind "message", `Step.index` = 0-based position in `history`, which is what the
  `mistake_step` labels count. A code-executor reply with a non-zero "exitcode:" sets is_error. Agent = `name`,
  else the role with a trailing "(...)" annotation removed (the full role stays in `meta["role"]`).
- Task = `question`; `is_correct` parsed from bool or "True"/"False"; the reference answer (`ground_truth`),
  `question_ID` and `level` go to `Trace.meta`. The failure labels (`mistake_*`) are NOT copied into the trace:
  judges read traces, and a label in the trace would leak the answer. The bench reads them from the source file.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import (
    Source,
    StepBuilder,
    finish_trace,
    opt_bool,
    opt_str,
    require_dict,
    require_list,
    to_text,
)
from trajfm.traces.model import Trace

FORMAT = "whowhen"

_MARKERS = ("question", "question_ID", "mistake_agent", "mistake_step", "is_correct", "ground_truth", "level")


def sniff(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    if "history" not in doc or "trajectory" in doc:
        return False
    # With Who&When's own fields present, a malformed history is this format's error to report, not unknown.
    if any(k in doc for k in _MARKERS):
        return True
    history = doc.get("history")
    return (
        isinstance(history, list)
        and bool(history)
        and isinstance(history[0], dict)
        and "role" in history[0]
        and ("name" in history[0])
    )


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
        builder.add(index=i, kind="message", content=content, step_id=str(i), agent=agent_of(item),
                    is_error=is_execution_error(content), meta=meta)  # fmt: skip
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
    trace = Trace(
        trace_id=source.trace_id(),
        source_path=source.path,
        source_format=FORMAT,
        task=to_text(doc.get("question")),
        utterance_id=opt_str(doc.get("question_ID")),
        is_correct=opt_bool(doc.get("is_correct")),
        multi_agent=len(agents) > 1,
        meta=meta,
    )
    return [finish_trace(trace, builder.steps, source)]
