"""Rules detectors: deterministic, offline checks over a trace's normalized steps that emit typed findings.

One module per concern; `DETECTORS` lists them in a fixed order (the order only matters for ties between
findings at the same step). Each detector is `detect(view) -> list[Finding]` over a shared `TraceView`
(`base.py`). Which taxonomy modes a finding kind stands for lives in `mapping.py`, as data.

| module         | finding kinds                                                         |
|----------------|-----------------------------------------------------------------------|
| repetition     | repeated_action, repeated_thought                                     |
| errors         | error_retried_identically, error_unresolved, error_ignored            |
| actions        | invalid_action, action_reasoning_mismatch                             |
| call_errors    | invalid_action (rejected calls in span trees and chat logs)           |
| entities       | hallucinated_entity                                                   |
| completion     | overstated_completion, unverified_subagent_failure                    |
| output         | output_format_ignored, leftover_artefacts                             |
| termination    | continued_after_answer, max_steps_reached, premature_termination, stopped_on_a_guess |
| coverage       | premature_termination (requests never acted on), continued_after_answer (calls after the answer was known) |
| ambiguity      | no_clarification                                                      |
| retrieval      | search_churn                                                          |
| claims         | unsupported_count, contradicted_absence (what an agent tells the user vs its results) |
| model_turns    | invalid_action (failed model calls in span trees), unsupported_answer, claimed_unseen_result, announced_call_missing |
| outcome        | ended_on_failure, handed_to_human (how the run ended)                 |
"""

from __future__ import annotations

from collections.abc import Callable

from trajfm.judges.detectors.actions import detect_action_reasoning_mismatch, detect_invalid_actions
from trajfm.judges.detectors.ambiguity import detect_no_clarification
from trajfm.judges.detectors.base import Act, Finding, TraceView, build_view
from trajfm.judges.detectors.call_errors import detect_rejected_calls
from trajfm.judges.detectors.claims import detect_contradicted_absence, detect_unsupported_counts
from trajfm.judges.detectors.completion import (
    detect_overstated_completion,
    detect_unverified_subagent_failure,
)
from trajfm.judges.detectors.coverage import (
    detect_calls_after_answer_known,
    detect_unmet_requests,
)
from trajfm.judges.detectors.entities import detect_hallucinated_entities
from trajfm.judges.detectors.errors import detect_error_recovery, detect_message_errors
from trajfm.judges.detectors.mapping import FINDING_KINDS, SUPERSEDES, KindSpec, modes_for
from trajfm.judges.detectors.model_turns import (
    detect_announced_calls_not_made,
    detect_failed_model_turns,
    detect_unsupported_answers,
    relocate_to_callers,
)
from trajfm.judges.detectors.outcome import detect_ended_on_failure, detect_handed_to_human
from trajfm.judges.detectors.output import detect_leftover_artefacts, detect_output_format
from trajfm.judges.detectors.repetition import detect_repeated_actions, detect_repeated_thoughts
from trajfm.judges.detectors.retrieval import detect_search_churn
from trajfm.judges.detectors.termination import (
    detect_continued_after_answer,
    detect_stopped_on_a_guess,
    detect_termination,
)
from trajfm.traces.model import Trace

Detector = Callable[[TraceView], list[Finding]]

DETECTORS: tuple[Detector, ...] = (
    detect_invalid_actions,
    detect_rejected_calls,
    detect_failed_model_turns,
    detect_error_recovery,
    detect_message_errors,
    detect_repeated_actions,
    detect_repeated_thoughts,
    detect_search_churn,
    detect_hallucinated_entities,
    detect_unverified_subagent_failure,
    detect_action_reasoning_mismatch,
    detect_no_clarification,
    detect_continued_after_answer,
    detect_calls_after_answer_known,
    detect_termination,
    detect_stopped_on_a_guess,
    detect_unmet_requests,
    detect_overstated_completion,
    detect_unsupported_answers,
    detect_announced_calls_not_made,
    detect_unsupported_counts,
    detect_contradicted_absence,
    detect_output_format,
    detect_leftover_artefacts,
    detect_ended_on_failure,
    detect_handed_to_human,
)


# The finding kinds each detector can emit, where a detector emits kinds only it emits: a detector whose kinds are
# all switched off (judges/calibration.py) need not run. A kind that supersedes another (`SUPERSEDES`) is never
# skipped this way: its findings still decide which other findings stand.
DETECTOR_KINDS: dict[Detector, frozenset[str]] = {
    detect_output_format: frozenset({"output_format_ignored"}),
    detect_search_churn: frozenset({"search_churn"}),
    detect_repeated_thoughts: frozenset({"repeated_thought"}),
    detect_leftover_artefacts: frozenset({"leftover_artefacts"}),
    detect_no_clarification: frozenset({"no_clarification"}),
    detect_hallucinated_entities: frozenset({"hallucinated_entity"}),
}


def run_detectors(
    trace: Trace,
    detectors: tuple[Detector, ...] = DETECTORS,
    *,
    view: TraceView | None = None,
    skip_kinds: frozenset[str] = frozenset(),
) -> list[Finding]:
    """All findings for one trace, ordered by where they start in the trace (then by detector order).

    `view`: the trace's `build_view(trace)` when the caller already built it (the rules judge shares it with
    root-cause selection, so the per-trace pairing and memoised checks are computed once). `skip_kinds`: kinds the
    caller drops anyway; a detector that emits only such kinds (`DETECTOR_KINDS`) is not run (same result, less
    work)."""
    if view is None:
        view = build_view(trace)
    found: list[Finding] = []
    for detect in _to_run(detectors, skip_kinds):
        found.extend(detect(view))
    unknown = [f.kind for f in found if f.kind not in FINDING_KINDS]
    if unknown:  # a detector bug, not user input: fail loudly rather than drop the finding
        raise ValueError(
            f"detector emitted unknown finding kind(s) {unknown}; add them to detectors/mapping.py"
        )
    found = _drop_superseded(relocate_to_callers(view, found))
    # sorted() is stable: findings at the same position keep detector order.
    return sorted(found, key=lambda f: f.position)


_SUPERSEDING = frozenset(SUPERSEDES)
_plans: dict[tuple[tuple[Detector, ...], frozenset[str]], tuple[Detector, ...]] = {}


def _to_run(detectors: tuple[Detector, ...], skip_kinds: frozenset[str]) -> tuple[Detector, ...]:
    """The detectors that must run when the kinds `skip_kinds` are dropped (see `run_detectors`); computed once per
    (detectors, skip_kinds), as the judge asks the same for every trace."""
    key = (detectors, skip_kinds)
    plan = _plans.get(key)
    if plan is None:
        plan = tuple(
            d
            for d in detectors
            if not (
                (kinds := DETECTOR_KINDS.get(d)) is not None
                and skip_kinds
                and kinds <= skip_kinds
                and not kinds & _SUPERSEDING
            )
        )
        if len(_plans) < 64:
            _plans[key] = plan
    return plan


def _drop_superseded(found: list[Finding]) -> list[Finding]:
    """Drop a finding that a more specific one explains at the same step (see `mapping.SUPERSEDES`)."""
    if not any(g.kind in _SUPERSEDING for g in found):
        return found  # no finding supersedes another
    out = []
    for f in found:
        covered = any(
            g is not f and f.kind in SUPERSEDES.get(g.kind, ()) and set(f.steps) & set(g.steps) for g in found
        )
        if not covered:
            out.append(f)
    return out


__all__ = [
    "DETECTORS",
    "FINDING_KINDS",
    "Act",
    "Detector",
    "Finding",
    "KindSpec",
    "TraceView",
    "build_view",
    "modes_for",
    "run_detectors",
]
