"""How the run ended: looping after the answer, hitting the step limit, ending before the work was done.

`continued_after_answer`: the agent wrote its final answer (a "Final Answer:" in its reasoning or a finish-style
action) and then kept calling tools at later steps, or at the same step called a tool instead of finishing.

`max_steps_reached`: the trace says a step, iteration, round or time limit was hit, or `Trace.meta["max_steps"]` is
reached, or the run stops without a final answer or finish action after many calls (it was cut off, not finished).

`premature_termination`: the run ended without a final answer after only a few calls, or the final answer (or
the last reasoning) still announces work to be done ("next I will", "still need to", "once the data is
available").

`stopped_on_a_guess`: the reasoning that ends the run judges the work done by a hedge rather than by what the
results show (a hedge such as "probably" or "I guess" next to "suffices", "already" or "no further"), and the
answer does not admit a failure. Unlike the kinds above this is the agent's own decision, not a
symptom of how the run ended, so it can be the root cause (at the finishing step).
"""

from __future__ import annotations

import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView
from trajfm.judges.detectors.errors import ADMITS_FAILURE

_FINAL_MARK: Final = re.compile(r"\bfinal answer\s*:", re.I)
# The same, searched in a thought's lower-cased head (`TraceView.low`, memoised; a thought's head is its first
# 3,000 characters) only when the words occur.
_FINAL_MARK_FAST: Final = tx.Pattern(_FINAL_MARK.pattern, needles=("final answer",), folds=True)
_LIMIT: Final = tx.Pattern(
    r"\b(?:max(?:imum)?[ _](?:steps|iterations|turns|rounds|time)|step limit|iteration limit|recursion limit|turn limit"
    r"|time limit)"
    r"[^.\n]{0,30}\b(?:reached|exceeded|hit)\b|\b(?:reached|exceeded|hit) (?:the )?(?:max(?:imum)?|step|iteration|turn)"
    r" (?:limit|number of (?:steps|iterations|turns))|\bagent stopped due to (?:iteration|time) limit",
    # Every match holds "max" or "limit" or "number of" (the limit named), and "reached", "exceeded", "hit" or
    # "stopped": two short lists instead of one long one (most steps hold none of the first).
    needles=("max", "limit", "number of"),
    requires=("reached", "exceeded", "hit", "stopped"),
)
_PENDING: Final = tx.Pattern(
    r"\b(?:next,? (?:i|we) (?:will|would|need|should|can)|"
    r"(?:i will|i'll) now(?! (?:close|end|finish|conclude|wrap|stop|sign off|say goodbye)\b)|then (?:i|we) (?:will|would)|"
    r"still needs? to|remaining steps?|not yet (?:been )?(?:done|completed|performed|run|executed)|"
    r"to be (?:done|continued|completed)|once (?:the|this|that) [^.\n]{1,40} (?:is|are) (?:available|ready|done),? "
    r"(?:i|we)\b|(?:i|we)(?: will|'ll| can| would) [^.\n]{1,60}? once (?:the|this|that) [^.\n]{1,40} (?:is|are) "
    r"(?:available|ready|done)|"
    r"(?:i|we) (?:would|will) need to (?:first )?(?:call|run|use|retrieve|download|fetch|analy[sz]e|check)|"
    r"in (?:the|my) next step|let me (?:now )?(?:call|run|use|retrieve|download|fetch|analy[sz]e))\b",
    # every branch holds one of these
    needles=("next", "now", "then ", "still need", "remaining step", "not yet", "to be ", "once ", "need to",
             "let me "),  # fmt: skip
)
CUT_OFF_MIN_ACTS: Final = 6
# Stopping on a hedge: sufficiency asserted by guess ("should be enough"), not established by a result.
# Stopping on a guess, read as two word classes in one sentence rather than as set phrases: a hedge (should,
# probably, I think, presumably, no need ...) followed within a few words by "this suffices" or "stop" (enough,
# sufficient, already, conclude, wrap up, skip, the gist, further).
_GUESSED_STOP: Final = tx.Pattern(
    r"\b(?:should|ought to|probably|likely|i think|i guess|i suppose|presumably|seems?|no need)\b[^.!?;\n]{0,40}?"
    r"\b(?:enough|sufficient|suffices?|already|conclude|wrap (?:it )?up|skip|gist|further)\b",
    needles=(
        "should",
        "ought",
        "probably",
        "likely",
        "think",
        "guess",
        "suppose",
        "presumably",
        "seem",
        "no need",
    ),
    requires=("enough", "sufficient", "suffice", "already", "conclude", "wrap", "skip", "gist", "further"),
)


def detect_continued_after_answer(view: TraceView) -> list[Finding]:
    acts = view.main_acts
    for k, a in enumerate(acts):
        answered_at = None
        ev = ""
        if a.is_finish:
            answered_at = a
            ev = tx.quote(a.step.content, max_len=100)
        elif a.thought is not None:
            m = _FINAL_MARK_FAST.search(a.thought.content[:3000], view.low(a.thought))
            if m:
                answered_at = a
                ev = tx.quote_match(a.thought.content, m, context=0, max_len=100)
        if answered_at is None:
            continue
        after = [b for b in acts[k + 1 :] if not b.is_finish]
        if not answered_at.is_finish:
            after = [answered_at, *after]  # the tool call at the very step that gave the answer
        if not after:
            continue
        steps = sorted({answered_at.index} | {b.index for b in after})
        tools = sorted({b.tool for b in after if b.tool})
        return [
            Finding(
                kind="continued_after_answer",
                steps=steps,
                evidence=ev,
                detail=(
                    f"the agent had its final answer at step {answered_at.index} but went on to call "
                    f"{', '.join(tools) or 'more tools'} ({len(after)} more call(s))"
                ),
                position=(answered_at.thought or answered_at.step).position,
                agent=answered_at.step.agent,
                tool=tools[0] if tools else None,
            )
        ]
    return []


def detect_termination(view: TraceView) -> list[Finding]:
    """max_steps_reached or premature_termination (at most one of them)."""
    trace = view.trace
    if not trace.steps:
        return []
    answer = view.final_answer.strip()
    acts = view.main_acts
    finished = any(a.is_finish for a in acts)
    last = trace.steps[-1]
    # An explicit limit message in the last results or messages.
    for st in reversed(trace.steps[-6:]):
        low = view.low(st)
        if len(low) == len(view.head(st)) and tx._none_in(_LIMIT.needles, low):
            continue  # none of the needles in the whole head, so none in its first 1,500 characters either
        m = _LIMIT.search(view.head(st)[:1500], low[:1500])
        if m:
            return [
                _limit_finding(
                    view, tx.quote_match(st.content, m), "the trace reports that the step limit was hit"
                )
            ]
    max_steps = trace.meta.get("max_steps") if isinstance(trace.meta, dict) else None
    n_main = len({a.index for a in acts})
    if isinstance(max_steps, int) and max_steps > 0 and n_main >= max_steps and not finished:
        ev = tx.quote(last.content, max_len=100) or tx.quote(acts[-1].step.content, max_len=100)
        return [_limit_finding(view, ev, f"the run used all {max_steps} allowed steps without finishing")]
    if not answer and not acts:
        # A chat log without tool calls keeps its answer in its last message, not in `final_answer`: the
        # absence of a final-answer field says nothing about how the run ended.
        return []
    if not answer and not finished:
        if len(acts) >= CUT_OFF_MIN_ACTS:
            ev = tx.quote(acts[-1].step.content, max_len=100)
            return [_limit_finding(view, ev, f"the run stopped after {len(acts)} calls with no final answer")]
        ev_step = acts[-1].step if acts else last
        return [
            Finding.at(
                "premature_termination",
                ev_step,
                tx.quote(ev_step.content, max_len=100),
                f"the run ended after {len(acts)} call(s) without any final answer",
            )
        ]
    if not answer and finished:
        fin = next(a for a in acts if a.is_finish)
        return [
            Finding.at(
                "premature_termination",
                fin.step,
                tx.quote(fin.step.content, max_len=100),
                f"the agent finished at step {fin.index} with an empty answer",
            )
        ]
    # The answer or the last reasoning announces work still to do.
    m = _PENDING.search(answer[:3000])
    if m:
        idx = view.last_index()
        return [
            Finding(
                kind="premature_termination",
                steps=[idx] if idx is not None else [],
                evidence=tx.quote_match(answer, m, context=50),
                detail='the final answer announces work that was never done ("'
                + tx.short(m.group(0), 50)
                + '")',
                position=last.position,
                agent=acts[-1].step.agent if acts else last.agent,
            )
        ]
    return []


def detect_stopped_on_a_guess(view: TraceView) -> list[Finding]:
    fin = next((a for a in view.main_acts if a.is_finish), None)
    if fin is None or fin.thought is None:
        return []
    # the reasoning before its own "Final Answer:" (the answer itself is judged elsewhere)
    text = fin.thought.content[:3000]
    if _FINAL_MARK_FAST.search(text, view.low(fin.thought)) is not None:
        text = _FINAL_MARK.split(text, maxsplit=1)[0]
    m = _GUESSED_STOP.search(text)
    if m is None or ADMITS_FAILURE.search(view.final_answer[:3000]):
        return []
    return [
        Finding(
            kind="stopped_on_a_guess",
            steps=[fin.index],
            evidence=tx.quote_match(text, m, context=40),
            detail=f'the agent ended the run on a guess that it had enough ("{tx.short(m.group(0), 50)}")',
            position=fin.thought.position,
            agent=fin.step.agent,
        )
    ]


def _limit_finding(view: TraceView, evidence: str, detail: str) -> Finding:
    last = view.trace.steps[-1]
    acts = view.main_acts
    return Finding(
        kind="max_steps_reached",
        steps=sorted({a.index for a in acts[-3:]}) or [last.index],
        evidence=evidence,
        detail=detail,
        position=(acts[-1].step if acts else last).position,
        agent=acts[-1].step.agent if acts else last.agent,
    )
