"""What an agent tells the user against what its tool results say.

`unsupported_count`: a count nothing it was given contains.

In a log where an agent calls tools and talks to a user (a tool-calling chat), what the agent tells the user
about the world should come from the results it got. A count ("11 available options", "3 orders") whose number
appears in no earlier step (task, system prompt, user message, tool call or result) and is not the length of a list
in a result (a JSON list, or a listing's lines) was worked out by the agent itself from a result, and counting
entries of a long result by reading is where models misread: the finding points at that message. Only whole numbers followed by a word are counts; amounts with decimals are usually
sums the agent computed, and they are not checked.

`contradicted_absence`: the agent says an entity has no X ("item #A115 does not have a serial number") while
an earlier result that names the same entity (an id with four or more digits) has a field named like X
("tracking_id"): it overlooked what the result showed.

Framework-neutral: both need message steps by an agent that also makes tool calls, so ReAct logs (no messages),
multi-agent chats without tool calls and span trees are not checked. At most one finding of each kind per trace
(the first).
"""

from __future__ import annotations

import re
from typing import Any, Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import RESULT_KINDS, Finding, TraceView
from trajfm.traces.model import Step

_USER_ROLES: Final = frozenset({"user", "human", "customer", "client"})
# "11 available T-shirt options": a whole number, then one to three words; not part of an id, price, date or
# version ("#A123", "$12", "12.5", "2024-07-15", "v2", "12:30", "3/4").
_COUNT: Final = re.compile(r"(?<![\w.$#/:,-])(\d{1,4}) (?:[A-Za-z][\w-]* ){0,2}[A-Za-z][\w-]*")
_NUMBER: Final = re.compile(r"\d+")


def _checked(st: Step, callers: set[str]) -> bool:
    """A message an agent that makes tool calls sent (not the user's side): where counts are checked."""
    return st.kind == "message" and st.agent in callers and (st.agent or "").lower() not in _USER_ROLES


def _list_lengths(text: str) -> set[str]:
    """The counts a result's structure states without writing them: the length of every list in a JSON result
    (to three levels), and for a plain-text listing its number of non-blank lines. "I found 2 papers" after a
    two-element list is a count the agent read off correctly; "3 papers" after it is not."""
    value = tx.json_container(text)
    if value is not None:
        out: set[str] = set()
        _collect(value, out, 3)
        return out
    lines = [line for line in text.splitlines() if line.strip()]
    return {str(len(lines))} if len(lines) > 1 else set()


def _collect(value: Any, out: set[str], depth: int) -> None:
    if isinstance(value, list):
        out.add(str(len(value)))
        children: Any = value
    elif isinstance(value, dict):
        children = value.values()
    else:
        return
    if depth > 1:
        for child in children:
            _collect(child, out, depth - 1)


def detect_unsupported_counts(view: TraceView) -> list[Finding]:
    if "message" not in view.kinds:
        return []  # only messages are checked
    callers = {a.step.agent for a in view.acts if a.step.agent}
    if not callers:
        return []
    steps = view.trace.steps
    # Only messages by a calling agent are checked, and the scan stops at the last one: the numbers of the steps
    # after it are never compared. A ReAct log (no such message) skips reading its long results for numbers.
    last = next((k for k in range(len(steps) - 1, -1, -1) if _checked(steps[k], callers)), -1)
    if last < 0:
        return []
    seen: set[str] = set(_NUMBER.findall(view.task))
    unparsed: list[str] = []  # results whose list lengths are not in `seen` yet: parsed only when a count needs them
    for st in steps[: last + 1]:
        text = st.content or ""
        if _checked(st, callers):
            for m in _COUNT.finditer(text):
                if m.group(1) not in seen and unparsed:
                    for result in unparsed:
                        seen.update(_list_lengths(result))
                    unparsed.clear()
                if m.group(1) not in seen:
                    return [
                        Finding.at(
                            "unsupported_count",
                            st,
                            tx.quote_match(text, m, context=30),
                            f'the agent reported "{tx.short(m.group(0), 60)}" but no earlier step contains the '
                            f"number {m.group(1)}: it counted a result by itself",
                            confidence=0.5,
                        )
                    ]
        seen.update(_NUMBER.findall(text))
        if st.kind in RESULT_KINDS:
            unparsed.append(text)
        if st.tool_input:
            seen.update(_NUMBER.findall(st.tool_input))
    return []


_ABSENCE: Final = re.compile(
    r"\b(?:does not|doesn't|did not|didn't|do not|don't) (?:have|include|contain|show|list) (?:a |an |any )?"
    r"([a-z]+)|\b(?:has|have|had|there (?:is|are|was|were)) no ([a-z]+)",
    re.I,
)
_ENTITY_ID: Final = re.compile(r"#?[A-Za-z]*\d{4,}")
# Nouns too general to name a field ("no problem", "no other option", "does not have any details").
_VAGUE: Final = frozenset(
    [
        "other",
        "more",
        "further",
        "such",
        "problem",
        "issue",
        "issues",
        "access",
        "information",
        "record",
        "records",
        "details",
        "data",
        "need",
        "way",
        "idea",
        "longer",
    ]
)


def detect_contradicted_absence(view: TraceView) -> list[Finding]:
    if "message" not in view.kinds:
        return []  # only messages are checked
    callers = {a.step.agent for a in view.acts if a.step.agent}
    if not callers:
        return []
    results: list[str] = []
    for st in view.trace.steps:
        if st.kind in RESULT_KINDS:
            results.append(st.content or "")
            continue
        if not (st.kind == "message" and st.agent in callers and (st.agent or "").lower() not in _USER_ROLES):
            continue
        text = st.content or ""
        ids = set(_ENTITY_ID.findall(text))
        if not ids:
            continue
        for m in _ABSENCE.finditer(text):
            noun = (m.group(1) or m.group(2) or "").lower()
            if len(noun) < 4 or noun in _VAGUE:
                continue
            # a field name (a quoted JSON key) that starts like the noun, in a result about the same entity
            field = re.compile(r'"' + re.escape(noun[:6]) + r'[\w ]*"\s*:')
            shown = next(
                (r for r in results if ids & set(_ENTITY_ID.findall(r)) and field.search(r.lower())), None
            )
            if shown is not None:
                return [
                    Finding.at(
                        "contradicted_absence",
                        st,
                        tx.quote_match(text, m, context=40),
                        f'the agent said "{tx.short(m.group(0), 60)}" but an earlier result about '
                        f"{sorted(ids)[0]} has a {noun} field",
                    )
                ]
    return []
