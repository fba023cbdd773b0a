"""Proceeding on an ambiguous request without asking for clarification.

Two signals, both generic:
- the environment says the request is ambiguous: several matches, "which one", "please specify", "did you mean";
- the agent's own reasoning says something needed was not given and it will assume or pick one ("the location is not
  specified, I will assume", "no time range was given, so I'll use").
The finding is raised when, after such a signal, the agent never asked: no step or final answer puts a question
to the user (a sentence ending in "?" that asks which / what / could you / please confirm), no clarification tool.
"""

from __future__ import annotations

import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView

_ENV_AMBIGUOUS: Final = tx.Pattern(
    r"\b(?:ambiguous|multiple \w+ (?:match|found|named|with)|more than one (?:\w+ )?(?:match|entry|record|item)|"
    r"more than one \w+ (?:matches|named|with|found|exists)|which (?:one|of these)|"
    r"please (?:specify|clarify|be more specific)|did you mean|could refer to)\b",
    needles=("ambiguous", "multiple", "more than one", "which", "please", "did you mean", "could refer"),
)
# The alternation `\b(?:(?:is|was|...) not (?:specified|...)|...|by default,? i(?:'ll| will))`, searched one branch
# at a time (`tx.AnyOf`: the same match; each branch opens with a literal or a few, where the alternation was tried
# at every position of the reasoning), each only when its own words occur.
_AGENT_ASSUMES: Final = tx.AnyOf(
    tx.Pattern(
        r"\b(?:is|was|were|are|wasn't|isn't|weren't|aren't) not (?:specified|provided|given|mentioned|stated|clear)",
        needles=("not ",),
    ),
    tx.Pattern(
        r"\b(?:wasn't|isn't|weren't|aren't) (?:specified|provided|given|mentioned|stated|clear)",
        needles=("n't",),
    ),
    tx.Pattern(
        r"\b(?:not|never) (?:specified|provided|given|mentioned) (?:in|by) the (?:task|question|request|user)",
        needles=("not ", "never"),
    ),
    tx.Pattern(
        r"\bno [a-z ]{1,40} (?:was|were|is|are) (?:given|specified|provided|mentioned|named|stated)",
        needles=("no ",),
    ),
    tx.Pattern(r"\bunspecified", needles=("unspecified",)),
    tx.Pattern(r"\bis ambiguous", needles=("is ambiguous",)),
    tx.Pattern(r"\bunclear which", needles=("unclear which",)),
    tx.Pattern(r"\bwithout (?:a |any )?(?:specific|specified)", needles=("without",)),
    tx.Pattern(r"\bpresumably", needles=("presumably",)),
    tx.Pattern(
        r"\b(?:most likely|probably) (?:the user|they|you|this|it) (?:means?|meant|wants?|refers?)",
        needles=("likely", "probably"),
    ),
    tx.Pattern(r"\bi(?:'ll| will| shall)? assume", needles=("assume",)),
    tx.Pattern(r"\bassuming (?:that |the |it |a |an )", needles=("assuming ",)),
    tx.Pattern(
        r"\bi(?:'ll| will) (?:just )?(?:pick|choose|go with|default to|take)\b[^.\n]{0,40}\bas (?:the|a|an)\b",
        needles=("pick", "choose", "go with", "default", "take"),
    ),
    tx.Pattern(
        r"\bi(?:'ll| will) (?:just )?(?:pick|choose|go with|default to)",
        needles=("pick", "choose", "go with", "default"),
    ),
    tx.Pattern(r"\bby default,? i(?:'ll| will)", needles=("by default",)),
    # every match holds one of these (the single pattern's needles)
    gate=(
        "not ",
        "n't",
        "never",
        "no ",
        "unspecified",
        "ambiguous",
        "unclear",
        "without",
        "presumably",
        "likely",
        "probably",
        "assum",
        "pick",
        "choose",
        "go with",
        "default",
        "take",
    ),  # fmt: skip
)
ASKS_USER: Final = tx.Pattern(
    r"(?:which|what|could you|can you|would you|do you|please (?:confirm|specify|clarify)|did you mean)[^?\n]{0,200}\?",
    needles=("?",),  # every match ends in one: text without a question mark asks nothing
)
_CLARIFY_TOOL: Final = re.compile(r"ask|clarif|human|user_input|request_info", re.I)


def detect_no_clarification(view: TraceView) -> list[Finding]:
    signal = None  # (step, match, source text, what)
    for a in view.main_acts:
        if a.thought is not None:
            thought = a.thought.content[:2000]
            # an ASCII head lowers to the same length, so the memoised lower-cased head lines up with it
            m = _AGENT_ASSUMES.search(thought, view.low(a.thought)[:2000] if thought.isascii() else None)
            if m:
                signal = (
                    a.thought,
                    m,
                    a.thought.content,
                    "the agent's reasoning notes missing information and assumes",
                )
                break
        if a.result is not None and a.result is not a.step:
            head = view.head(a.result)[:1500]
            m = _ENV_AMBIGUOUS.search(head, view.low(a.result)[:1500])
            if m:
                signal = (a.result, m, a.result.content, "a tool reported the request as ambiguous")
                break
    if signal is None:
        for st in view.messages[:20]:
            m = _AGENT_ASSUMES.search(st.content[:2000])
            if m and st.kind == "message":
                signal = (st, m, st.content, "the agent notes missing information and assumes")
                break
    if signal is None:
        return []
    step, m, src, what = signal
    # Did the agent ask? A clarification tool, or a question to the user after the signal.
    if any(_CLARIFY_TOOL.search(a.tool) for a in view.main_acts if a.tool):
        return []
    if ASKS_USER.search(view.final_answer[:3000]):
        return []
    for st in view.trace.steps:
        if (
            st.position > step.position
            and st.kind in ("message", "answer")
            and ASKS_USER.search(st.content[:2000])
        ):
            return []
    return [
        Finding.at(
            "no_clarification",
            step,
            tx.quote_match(src, m, context=60),
            f'{what} ("{tx.short(m.group(0), 40)}") and went on without asking the user',
        )
    ]
