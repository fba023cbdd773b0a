"""Counts an agent reports that nothing it was given contains: `unsupported_count`.

In a log where an agent calls tools and talks to a user (a tool-calling chat), what the agent tells the user
about the world should come from the results it got. A count ("11 available options", "3 orders") whose number
appears in no earlier step (task, system prompt, user message, tool call or result) was worked out by the agent
itself from a result, and counting entries of a long result by reading is where models misread: the finding
points at that message. Only whole numbers followed by a word are counts; amounts with decimals are usually
sums the agent computed, and they are not checked.

Framework-neutral: it needs message steps by an agent that also makes tool calls, so ReAct logs (no messages),
multi-agent chats without tool calls and span trees are not checked. At most one finding per trace (the first).
"""

from __future__ import annotations

import re

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView

_USER_ROLES = frozenset({"user", "human", "customer", "client"})
# "11 available T-shirt options": a whole number, then one to three words; not part of an id, price, date or
# version ("#W123", "$12", "12.5", "2024-07-15", "v2", "12:30", "3/4").
_COUNT = re.compile(r"(?<![\w.$#/:,-])(\d{1,4}) (?:[A-Za-z][\w-]* ){0,2}[A-Za-z][\w-]*")
_NUMBER = re.compile(r"\d+")


def detect_unsupported_counts(view: TraceView) -> list[Finding]:
    callers = {a.step.agent for a in view.acts if a.step.agent}
    if not callers:
        return []
    seen: set[str] = set(_NUMBER.findall(view.task))
    for st in view.trace.steps:
        text = st.content or ""
        if st.kind == "message" and st.agent in callers and (st.agent or "").lower() not in _USER_ROLES:
            for m in _COUNT.finditer(text):
                if m.group(1) not in seen:
                    return [
                        Finding(
                            kind="unsupported_count",
                            steps=[st.index],
                            evidence=tx.quote_match(text, m, context=30),
                            detail=(
                                f'the agent reported "{tx.short(m.group(0), 60)}" but no earlier step contains the '
                                f"number {m.group(1)}: it counted a result by itself"
                            ),
                            position=st.position,
                            agent=st.agent,
                            confidence=0.5,
                        )
                    ]
        seen.update(_NUMBER.findall(text))
        if st.tool_input:
            seen.update(_NUMBER.findall(st.tool_input))
    return []
