"""Where a failure started: the step that produced the first error signal, and the first reply to the task.

Not a detector (it emits no finding and no mode): these helpers serve root-cause selection in
`trajfm.judges.rules.select_root_cause`, which needs a *step to blame*, not another symptom.

Contract, framework-neutral (never looks at `Trace.source_format`):
- `first_error_origin(view)`: the first step, in reading order, whose head reads as an error
  (`errors.error_in`: a traceback, a non-zero exit code, an exception name, "execution failed", an HTTP 4xx/5xx,
  a JSON error status ...) or that carries an error label ("Error:", "Exception:") anywhere in its head, mapped to the step that *caused* it: for the result of an action, that action; for a
  chat message (a terminal or tool speaking in a multi-agent log), the nearest earlier message by another
  speaker, the one whose code or request produced the output; otherwise the step itself (an error span).
  On Who&When's labelled logs this "blame the producer of the first error" rule finds the experts' decisive step
  far more often than any other signal the rules see (see `trajfm bench whowhen`).
- `first_reply(view)`: the first agent step after the opening one (the task statement, or an agent restating
  it), skipping system steps and tool output: the earliest point at which an agent made a choice.
"""

from __future__ import annotations

import re

from trajfm.judges.detectors.base import RESULT_KINDS, TraceView
from trajfm.judges.detectors.errors import error_in
from trajfm.traces.model import Step

# An error label anywhere in the head ("Code output: Error: cannot open file", "Exception: no results"): tools
# and terminals print one after their own prefix, where `errors.error_in` (which wants it at a line start, to
# keep domain words such as "failure" out) does not look.
_ERROR_LABEL = re.compile(r"\b(?:error|exception|fatal)\s*:", re.I)
HEAD_CHARS = 400

# Steps that carry the environment's words rather than an agent's choice.
_NOT_AGENT_KINDS = frozenset({"system", "observation", "tool_result"})


def _producer(view: TraceView, k: int) -> Step:
    steps = view.trace.steps
    err = steps[k]
    if err.kind in RESULT_KINDS:
        for act in view.acts:
            if act.result is err:
                return act.step
    if err.kind == "message":
        for j in range(k - 1, -1, -1):
            prev = steps[j]
            if prev.kind == "message" and prev.agent != err.agent:
                return prev
    return err


def first_error_origin(view: TraceView) -> Step | None:
    """The step that produced the trace's first error signal (see the module docstring), or None."""
    for k, step in enumerate(view.trace.steps):
        can_show_error = step.kind in RESULT_KINDS or step.kind in ("message", "span")
        if not (can_show_error and step.content):
            continue
        if error_in(view, step) is not None or _ERROR_LABEL.search(view.head(step)[:HEAD_CHARS]):
            return _producer(view, k)
    return None


def first_reply(view: TraceView) -> Step | None:
    """The first agent step after the opening one, or the opening step in a one-step trace."""
    candidates = [s for s in view.trace.steps if s.kind not in _NOT_AGENT_KINDS and s.depth == 0]
    if not candidates:
        return None
    return candidates[1] if len(candidates) > 1 else candidates[0]
