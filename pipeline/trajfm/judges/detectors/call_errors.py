"""Calls the environment rejected for their form, blamed on the step that issued them (`invalid_action`).

`actions.detect_invalid_actions` checks ReAct actions whose result is a separate step. This module covers the
layouts it does not reach, where the rejection shows up away from the call:
- span trees, where a tool span carries call and result together and the call was written by an earlier model
  span (the model output that named the tool), or where a parent step span reports that the framework could not
  parse the model output of its child span;
- multi-agent chat logs, where a terminal or tool speaks the error in its own message after the message whose
  code or request it rejected;
- tool results that reject the arguments in words the other detector does not look for (Python's
  "unexpected keyword argument", "missing 1 required positional argument", a schema "validation error").

A rejected form is a formatting problem of the caller, not of the tool, so the finding points at the caller:
- result of an action: the action;
- a model span: itself (its own output was rejected);
- a tool span: the model span that wrote its call (`base.call_writer`, the rule the first-error origin uses too),
  else the span itself;
- span without a tool name (a step span whose output says the model output could not be parsed): the last model
  span nested under it, else the nearest earlier model span;
- chat message, or a result no action owns (an executor's output in a chat log): the nearest earlier message
  by another speaker (`base.previous_speaker`).
Only the head of a step is scanned (`ERROR_HEAD_CHARS`), like the other error detectors.
"""

from __future__ import annotations

from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import (
    ACTION_KINDS,
    RESULT_KINDS,
    Finding,
    TraceView,
    call_writer,
    is_model_span,
    previous_speaker,
)
from trajfm.traces.model import Step

ERROR_HEAD_CHARS: Final = 600

# One branch at a time (`tx.AnyOf`: the same matches as their alternation), each searched only when its own words
# occur; the gate is the coarser list the single pattern had (most results hold none of it).
REJECTED_CALL: Final = tx.AnyOf(
    tx.Pattern(r"unexpected keyword argument", needles=("unexpected keyword argument",)),
    tx.Pattern(
        r"missing \d+ required (?:positional |keyword-only )?arguments?", needles=("missing ",), requires=(" required ",)
    ),
    tx.Pattern(
        r"takes (?:from )?\d+ (?:to \d+ )?positional arguments? but \d+ (?:were|was) given",
        needles=("positional argument",),
    ),
    tx.Pattern(r"got multiple values for (?:keyword )?argument", needles=("got multiple values for ",)),
    tx.Pattern(r"error in code parsing", needles=("error in code parsing",)),
    tx.Pattern(r"regex pattern .{0,120}? (?:was|is) not found", needles=("regex pattern ",)),
    tx.Pattern(r"(?:code|tool call|function call|output) (?:could not|cannot) be parsed", needles=(" be parsed",)),
    tx.Pattern(r"\bvalidation errors? for\b", needles=("validation error",)),
    tx.Pattern(r"invalid (?:arguments?|parameters?|input) (?:for|to|provided|given)\b", needles=("invalid ",)),
    tx.Pattern(
        r"required (?:argument|parameter|property) [\w'\"`]{1,40} (?:is )?(?:missing|not provided)",
        needles=("required ",),
    ),
    gate=("argument", "pars", "regex", "validation", "invalid", "required"),
)


def _written_by_model(step: Step) -> bool:
    """An action, or a model call's span (`base.is_model_span`, as `origin` reads it), or a step naming its model."""
    return step.kind in ACTION_KINDS or is_model_span(step) or bool(step.meta.get("model"))


def _caller(view: TraceView, k: int) -> Step:
    steps = view.trace.steps
    err = steps[k]
    if err.kind in RESULT_KINDS:
        for act in view.acts:
            if act.result is err and act.step is not err:
                return act.step
        # A result no action owns: in a chat log, an executor's output answers the message whose code it ran.
        # (Relayed again under another header, it answers the same message: one rejected call, one finding.)
        answered = previous_speaker(steps, k)
        if answered is not None:
            return answered
    if err.kind == "span":
        if is_model_span(err):
            return err  # the model call itself: its own output was rejected
        if err.tool_name:
            return call_writer(view, err) or err
        nested = [s for s in steps[k + 1 :] if s.parent_id == err.step_id and _written_by_model(s)]
        if nested:
            return nested[-1]
        for j in range(k - 1, -1, -1):
            if _written_by_model(steps[j]):
                return steps[j]
        return err
    if err.kind == "message":
        return previous_speaker(steps, k) or err
    return err


def detect_rejected_calls(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    seen: set[int] = set()
    for k, step in enumerate(view.trace.steps):
        if not (step.kind in RESULT_KINDS or step.kind in ("span", "message")) or not step.content:
            continue
        head = view.head(step)[:ERROR_HEAD_CHARS]
        m = REJECTED_CALL.search(head, view.low(step)[:ERROR_HEAD_CHARS])
        if m is None:
            continue
        caller = _caller(view, k)
        if caller.position in seen:
            continue
        seen.add(caller.position)
        evidence = tx.quote_match(step.content, m)
        tool = step.tool_name or caller.tool_name
        out.append(
            Finding.at(
                "invalid_action",
                caller,
                evidence,
                f"step {caller.index}: the call{f' to {tool}' if tool else ''} was rejected for its form "
                f'(step {step.index}: "{tx.short(evidence, 90)}")',
                tool=tool,
                error=tx.short(evidence, 100),
            )
        )
    return out
