"""Where a failure started: the step that produced the first error signal, and the first reply to the task.

Not a detector (it emits no finding and no mode): these helpers serve root-cause selection in
`trajfm.judges.rules.select_root_cause`, which needs a *step to blame*, not another symptom.

Contract, framework-neutral (never looks at `Trace.source_format`):
- `first_error_origin(view)`: the first step, in reading order, whose head reads as an error
  (`errors.error_in`: a traceback, a non-zero exit code, an exception name, "execution failed", an HTTP 4xx/5xx,
  a JSON error status ...) or that carries an error label ("Error:", "Exception:") anywhere in its head, mapped
  to the step that *caused* it: for the result of an action, that action (or, when the call went to another
  agent of the trace that answers under its own name, that agent's result: the sub-agent failed); for a chat
  message (a terminal speaking in a multi-agent log without tool calls; where there are tool calls, errors come
  back as tool results and messages are participants speaking) or a result no action owns (an executor's output
  logged as an observation between chat messages), the nearest earlier message by another
  speaker, the one whose code or request produced the output (`base.previous_speaker`: the code's author when a
  coordinator's message only passed that code on to the terminal); in a span tree, for a tool span the model span
  that issued its call (`base.call_writer`), and for a framework step span (one that ran a model
  output: its code failed, its call was rejected) the last model span nested directly under it; otherwise the
  step itself (a failed model call, a span with nothing under it).
  On Who&When's labelled logs this "blame the producer of the first error" rule finds the experts' decisive step
  far more often than any other signal the rules see (see `trajfm bench whowhen`).
  Two kinds of error are not blamed on the call. A failure of the environment itself (an HTTP 5xx, "service" or
  "endpoint unavailable", a timeout, a refused or reset connection, a rate limit, an exception "raised inside"
  the callee, an "internal error"): the call was fine, the service was not, so the step blamed is the agent's
  reaction, the next agent step by another speaker. And an error the agent recovered from (a later call of the
  same tool, or of an alternative tool of the same operation (`text.alternative_tool`: the same words up to a
  qualifier, `lookup_account_by_email` then `lookup_account_by_phone`), succeeded): the run went on past it, so
  it did not decide the outcome. Nor is a bug reproduced on purpose (`errors.meant_to_fail`): its traceback is
  what the agent was looking for.
- `first_reply(view)`: the first agent step after the opening one (the task statement, or an agent restating
  it), skipping system steps and tool output: the earliest point at which an agent made a choice.
- `stalled_from(view)`: the first call of the run's trailing stretch of at least `STALL_MIN_CALLS` calls whose
  results tell nothing new (fewer than two numbers or names that are not already in the task, an earlier result
  or the call itself): where a run that hit its step limit or kept going after its answer stopped progressing.
- `first_state_change(view)`: the first main-level call whose tool name starts with a verb that changes state
  (the `state_changing_verbs` of the format's vocabulary, `judges/formats/`: update, delete, create, send ...): in a failed run
  with no visible error, a wrong reading of the request or of a result becomes consequential there.
"""

from __future__ import annotations

import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import (
    RESULT_KINDS,
    Act,
    TraceView,
    call_writer,
    changes_state,
    is_model_span,
    previous_speaker,
)
from trajfm.judges.detectors.errors import error_in, meant_to_fail, verdict_label_in
from trajfm.traces.model import Step

# An error label anywhere in the head ("Code output: Error: cannot open file", "Exception: no results"): tools
# and terminals print one after their own prefix, where `errors.error_in` (which wants it at a line start, to
# keep domain words such as "failure" out) does not look.
_ERROR_LABEL: Final = tx.Pattern(r"\b(?:error|exception|fatal)\s*:", needles=("error", "exception", "fatal"), folds=True)
HEAD_CHARS: Final = 400
# The environment failed, not the call: server errors, unavailability, timeouts, dropped connections, throttling.
# The alternation `\b(?:(?:http|status|error|code)\s*:?\s*5\d\d\b|5\d\d (?:internal server error|...)|...)`,
# searched one branch at a time (`tx.AnyOf`: the same match; each branch then opens with a literal that `re` finds
# by a fast scan, where the alternation was tried at every position), each only when its own words occur. With
# folds: re.IGNORECASE's matches, searched in the lower-cased text (re.IGNORECASE is several times slower).
_ENVIRONMENT: Final = tx.AnyOf(
    tx.Pattern(r"\bhttp\s*:?\s*5\d\d\b", needles=("http",), folds=True),
    tx.Pattern(r"\bstatus\s*:?\s*5\d\d\b", needles=("status",), folds=True),
    tx.Pattern(r"\berror\s*:?\s*5\d\d\b", needles=("error",), folds=True),
    tx.Pattern(r"\bcode\s*:?\s*5\d\d\b", needles=("code",), folds=True),
    tx.Pattern(
        r"\b5\d\d (?:internal server error|bad gateway|service unavailable|gateway time-?out)",
        needles=("internal server error", "bad gateway", "service unavailable", "gateway time"),
        folds=True,
    ),
    tx.Pattern(
        r"\b(?:service|endpoint|server|backend|host|api) (?:is )?(?:temporarily )?unavailable",
        needles=("unavailable",),
        folds=True,
    ),
    tx.Pattern(r"\btimed? ?out\b(?!\s*=)", needles=("time",), folds=True),
    tx.Pattern(r"\bconnection (?:refused|reset|aborted|error|closed)", needles=("connection ",), folds=True),
    tx.Pattern(r"\brate limit", needles=("rate limit",), folds=True),
    tx.Pattern(r"\btoo many requests", needles=("too many requests",), folds=True),
    tx.Pattern(r"\bupstream service", needles=("upstream service",), folds=True),
    tx.Pattern(r"\braised inside", needles=("raised inside",), folds=True),
    tx.Pattern(r"\binternal (?:server )?error", needles=("internal ",), folds=True),
    # every match holds one of these (the single pattern's needles)
    gate=(
        "http",
        "status",
        "error",
        "code",
        "unavailable",
        "bad gateway",
        "gateway time",
        "tim",
        "connection ",
        "rate limit",
        "too many requests",
        "upstream service",
        "raised inside",
        "internal ",
    ),
)
# Steps that carry the environment's words rather than an agent's choice.
_NOT_AGENT_KINDS: Final = frozenset({"system", "observation", "tool_result"})


def _producer(view: TraceView, k: int) -> Step:
    steps = view.trace.steps
    err = steps[k]
    if err.kind in RESULT_KINDS:
        for act in view.acts:
            if act.result is err:
                # A call to another agent of the trace (the result speaks as the agent the call named): that
                # agent failed at its task, not the caller at its request.
                if (
                    err.agent
                    and act.tool
                    and err.agent.lower() == act.tool.lower() != (act.step.agent or "").lower()
                ):
                    return err
                return act.step
    if err.kind == "message" or err.kind in RESULT_KINDS:
        # a chat message, or a result no action owns (an executor's output in a chat log): the message it answers
        return previous_speaker(steps, k) or err
    if err.kind == "span" and not is_model_span(err):
        # A span tree: a tool span ran the call a model span wrote; a framework step span reports what went wrong
        # with the model output it ran (its code failed, its call was rejected), the last model span under it.
        if err.tool_name:
            return call_writer(view, err) or err
        nested = [s for s in steps[k + 1 :] if s.parent_id == err.step_id and is_model_span(s)]
        if nested:
            return nested[-1]
    return err


def _failed(view: TraceView, step: Step) -> bool:
    """Memoised per trace: `_recovered` asks it of every later call for every failed one."""
    key = ("failed", step.position)
    v = view.memo.get(key)
    if v is None:
        v = view.memo[key] = error_in(view, step) is not None or bool(
            verdict_label_in(_ERROR_LABEL, view.head(step)[:HEAD_CHARS], view.low(step)[:HEAD_CHARS])
        )
    return v  # type: ignore[return-value]


def _recovered(view: TraceView, act: Act) -> bool:
    """A later call of the same operation succeeded: the agent got past this error."""
    for b in view.acts:
        if b.step.position <= act.step.position or b.result is None or b.step.depth != act.step.depth:
            continue
        if (b.tool == act.tool or tx.alternative_tool(b.tool, act.tool)) and not _failed(view, b.result):
            return True
    return False


def first_error_origin(view: TraceView) -> Step | None:
    """The step that produced the trace's first error signal (see the module docstring), or None. Memoised per
    trace: the root-cause pick and its feature table both ask."""
    key = ("first_error_origin", -1)
    if key not in view.memo:
        view.memo[key] = _first_error_origin(view)
    return view.memo[key]  # type: ignore[return-value]


def _first_error_origin(view: TraceView) -> Step | None:
    acts_by_result = {id(a.result): a for a in view.acts if a.result is not None}
    acts_by_step = {id(a.step): a for a in view.acts}
    # In a log with tool calls, errors come back as tool results; a message there is a participant speaking
    # ("splitting the payment is not supported" is an answer, not a failure of the previous speaker).
    shown_by = ("span",) if view.acts else ("message", "span")
    for k, step in enumerate(view.trace.steps):
        can_show_error = step.kind in RESULT_KINDS or step.kind in shown_by
        if not (can_show_error and step.content):
            continue
        if _failed(view, step):
            act = acts_by_result.get(id(step))
            if act is not None and (_recovered(view, act) or meant_to_fail(view, act)):
                continue
            # only the error's own words, not a traceback's source lines ("timeout=timeout")
            if _ENVIRONMENT.search(view.head(step)[:HEAD_CHARS].split("Traceback", 1)[0]):
                reaction = _reaction(view, k)
                if reaction is not None:
                    return reaction
                continue
            producer = _producer(view, k)
            # A step span reporting the failed call of the model span under it reports that call's error: the same
            # exemptions apply (recovered by a later call, a bug reproduced on purpose).
            made = acts_by_step.get(id(producer)) if producer is not step else None
            if made is not None and made is not act and (_recovered(view, made) or meant_to_fail(view, made)):
                continue
            return producer
    return None


def _reaction(view: TraceView, k: int) -> Step | None:
    """The first agent step after the failed step k, at the level of the step that failed, by another speaker."""
    steps = view.trace.steps
    err = steps[k]
    for st in steps[k + 1 :]:
        if st.kind in _NOT_AGENT_KINDS or st.depth > err.depth or not st.agent:
            continue
        if err.kind == "message" and st.agent == err.agent:
            continue
        return st
    return None


STALL_MIN_CALLS: Final = 3
# Information a result can add: numbers (readings, counts, ids) and names (capitalised words). Lower-case words
# are not counted: results phrase the same nothing ("no change from the earlier answer", "nothing new") in ever
# new words. Two new items at least, so one capitalised sentence opening ("Done:") is not news.
# Searched as two patterns, numbers and names, each opening with a character class (`re` then skips to the positions
# that can start a match): the same set as one alternation gives, as the two kinds share no character (digits and
# dots, letters), so neither branch's matches change where the other's start; `[A-Z](?<!\w[A-Z])` is `\b[A-Z]`.
_INFO_NUMBER: Final = re.compile(r"\d\d*(?:\.\d+)?")
_INFO_NAME: Final = re.compile(r"[A-Z](?<!\w[A-Z])[A-Za-z]+")
MIN_NEW_ITEMS: Final = 2


# For ASCII text: every character that cannot be part of a number (not a digit, not a dot) mapped to a space, and the
# names pattern with ASCII `\w` (which reads an ASCII text as the Unicode one does).
_NOT_NUMBER: Final = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isdigit() or chr(c) == ".")})
_INFO_NAME_ASCII: Final = re.compile(_INFO_NAME.pattern, re.ASCII)


def _info_words(text: str) -> set[str]:
    """The numbers and names of `text`, lower-cased (see `_INFO_NUMBER`)."""
    if not text.isascii():
        return set(_INFO_NUMBER.findall(text)).union(map(str.lower, _INFO_NAME.findall(text)))
    # A number is made of digits and dots only, so `_INFO_NUMBER` finds in the text exactly what it finds in each
    # run of digits and dots, and a run without a dot is one number (a translation and a split scan the text several
    # times faster than the regex, which tests every character).
    out: set[str] = set()
    for run in text.translate(_NOT_NUMBER).split():
        if "." in run:
            out.update(_INFO_NUMBER.findall(run))
        else:
            out.add(run)
    for name in _INFO_NAME_ASCII.findall(text):
        out.add(name.lower())
    return out


def stalled_from(view: TraceView) -> Step | None:
    """The first call of the trailing no-progress stretch (see the module docstring), or None."""
    acts = [a for a in view.main_acts if not a.is_finish]
    if len(acts) < STALL_MIN_CALLS:
        return None
    seen: set[str] = _info_words(view.task)
    new_info: list[bool] = []
    for a in acts:
        own = _info_words(f"{a.tool} {a.args}")
        got = _info_words(view.head(a.result)[:2000]) if a.result is not None else set()
        new_info.append(len(got - seen - own) >= MIN_NEW_ITEMS)
        seen |= got | own
    k = len(acts)
    while k > 0 and not new_info[k - 1]:
        k -= 1
    if len(acts) - k < STALL_MIN_CALLS:
        return None
    return acts[k].step


def first_state_change(view: TraceView) -> Step | None:
    """The first main-level call of a state-changing tool (see the module docstring), or None."""
    for a in view.main_acts:
        if changes_state(view, a):
            return a.step
    return None


def first_reply(view: TraceView) -> Step | None:
    """The first agent step after the opening one, or the opening step in a one-step trace."""
    candidates = [s for s in view.trace.steps if s.kind not in _NOT_AGENT_KINDS and s.depth == 0]
    if not candidates:
        return None
    return candidates[1] if len(candidates) > 1 else candidates[0]
