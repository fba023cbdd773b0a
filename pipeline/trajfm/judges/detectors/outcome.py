"""How the run's outcome shows at its end: it stopped on a failing result, or it was handed to a person.

`ended_on_failure`: the last result the run received (the last tool result, observation or tool span, or the last
message of a tool or environment speaker) reads as a failure (an error the detectors recognise, a structurally
empty result, or a plain failure verdict at its start: "failed", "unable", "no connection"), and no agent call came
after it. Whatever the final words say, the run stopped on a failure; only an empty result that the final answer
passes on as the answer ("there are no open tickets") is what there was to find, not a failure.

`handed_to_human`: the run's last call hands the conversation to a person (a tool whose name holds one of the
format vocabulary's `handoff_words`), or the final answer says it is transferring the user to a human: the task
was passed on, not done.

Both read the normalized trace only; the hand-off words are data (`judges/formats/_common.json`).
"""

from __future__ import annotations

import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import ACTION_KINDS, Finding, TraceView
from trajfm.judges.detectors.completion import structurally_empty
from trajfm.judges.detectors.errors import error_in

# "failed", "failure" and "denied" are verdicts only where the sentence ends on them or goes on with why, how or
# what for ("Speed test failed: no connection", "Upload failed due to size", "Access denied."); followed by a
# noun they describe the world ("Failure modes for pump P-101: seal leak", "failed logins: 3"), which is data.
_FAILURE_START: Final = re.compile(
    r"^[^\n]{0,80}?\b(?:"
    r"(?:failed|failure|denied)(?=[ \t]*(?:\n|$|[:;,.!?)\]-]|(?:to|with|while|during|when|because|due|after|for|"
    r"on|in|at|by|\d)\b))"
    r"|unable to|could not|cannot|no connection|not reachable|unreachable)\b",
    re.I,
)
# A final answer that passes an empty result on as the answer ("There are no open tickets"): the run ended on an
# empty result, but that was what there was to find, not a failure.
_REPORTS_NOTHING: Final = re.compile(r"\b(?:no|none|nothing|zero|not any|empty|0)\b", re.I)
_HANDOFF_TEXT: Final = tx.Pattern(
    r"\b(?:transferr?(?:ing|ed)?|connect(?:ing)?|hand(?:ing)? (?:you )?over|escalat(?:e|ing|ed))\b[^.\n]{0,40}"
    r"\b(?:a |an )?(?:human|live|real|support) (?:agent|representative|operator|person|colleague)",
    needles=("transfer", "connect", "hand", "escalat"),
    requires=("agent", "representative", "operator", "person", "colleague"),
)


def detect_ended_on_failure(view: TraceView) -> list[Finding]:
    last_result = None
    for s in reversed(view.trace.steps):
        if s.depth > 0 and s.kind != "span":  # nested sub-agent steps are the sub-agent's business
            continue
        if s.kind in ("observation", "tool_result") or (s.kind == "span" and s.tool_name):
            last_result = s
            break
        if s.kind in ACTION_KINDS:
            return []  # the last call has no result: nothing to judge here
    if last_result is None or not last_result.content.strip():
        return []
    m = error_in(view, last_result)
    text = view.head(last_result)
    if m is None:
        m = _FAILURE_START.search(text[:300])
    if m is None and structurally_empty(last_result.content) and not _REPORTS_NOTHING.search(view.final_answer[:600]):
        m = re.search(r"\S[^\n]*", text)
    if m is None:
        return []
    act = next((a for a in view.acts if a.result is last_result), None)
    return [
        Finding(
            kind="ended_on_failure",
            steps=sorted({last_result.index, *([act.index] if act else [])}),
            evidence=tx.line_of(text, m),
            detail=f'the run ended on a failing result ("{tx.short(tx.line_of(text, m), 80)}") with no call after it',
            position=(act.step.position if act else last_result.position),
            agent=(act.step.agent if act else last_result.agent),
            tool=(act.tool or None) if act else None,
            error=tx.short(tx.line_of(text, m), 100),
        )
    ]


def detect_handed_to_human(view: TraceView) -> list[Finding]:
    words = view.vocab.handoff_words
    last = next((a for a in reversed(view.main_acts) if not a.is_finish), None)
    if last is not None and words and not words.isdisjoint(tx.name_words(last.tool)):
        a = last
        return [
            Finding.at(
                "handed_to_human",
                a.step,
                tx.quote(a.step.content) if a.step.content else a.tool,
                f"the run ended by handing the conversation to a person ({a.tool})",
                tool=a.tool,
            )
        ]
    answer = view.final_answer
    m = _HANDOFF_TEXT.search(answer[:3000]) if answer else None
    if m is None:
        return []
    final_step = view.trace.steps[-1] if view.trace.steps else None
    return [
        Finding(
            kind="handed_to_human",
            steps=[final_step.index] if final_step else [],
            evidence=tx.quote_match(answer, m, context=40),
            detail="the final answer hands the user over to a person instead of finishing the task",
            position=final_step.position if final_step else 0,
            agent=final_step.agent if final_step else None,
        )
    ]
