"""The six scorecard dimensions of a diagnosed trace, and the per-trace readiness score built from them.

The AssetOpsBench study scores every run on six dimensions and calls a model ready for deployment when its mean
score reaches a bar (85 points). trajfm keeps the dimensions on every diagnosis (`diagnoses.dim_*`, each true,
false, or null for "not assessed"):

- `dim_task_completion`: the final answer accomplishes the task.
- `dim_data_retrieval`: the data the agent relied on was retrieved correctly (right calls, right entities, results
  read as they were).
- `dim_result_verification`: the agent checked its results (errors, empty results, sub-agent verdicts) before
  relying on them or reporting them.
- `dim_sequence`: the agent's actions came in a sensible order (no loops, no malformed or contradictory calls,
  stopped when done and not before).
- `dim_clarity`: the answer is clear and justified by what the trace shows.
- `dim_hallucination`: the agent stated or used something the trace does not support (true is bad).

Score of one trace (the study's rule): the share of the five positive dimensions met, minus 0.2 when it
hallucinates, floored at 0; it *passes* when all five hold and it does not hallucinate. A dimension the judge
did not assess (null) is left out: the share is over the positive dimensions assessed, and a trace with no
positive dimension assessed has no score. The report states which dimensions each judge assessed.

The LLM judge assesses all six in the same call as the failure modes (`trajfm.judges.prompt`). The rules judge
fills what its detectors can measure (`rules_dimensions`): completion from its own verdict; retrieval,
verification, sequence and hallucination from the kinds of finding that speak to each (a trace with no tool call
has no retrieval or sequence to judge: null); clarity it cannot measure (always null).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

DIMENSIONS: tuple[tuple[str, str, str], ...] = (
    ("dim_task_completion", "task completion", "true when the final answer accomplishes the task"),
    (
        "dim_data_retrieval",
        "data retrieval",
        "true when the data the agent relied on was retrieved correctly: right calls, right entities, results "
        "read as returned",
    ),
    (
        "dim_result_verification",
        "result verification",
        "true when the agent checked errors, empty results and other agents' verdicts before relying on them or "
        "reporting them",
    ),
    (
        "dim_sequence",
        "agent sequence",
        "true when the actions came in a sensible order: no loops, no malformed or contradictory calls, stopped "
        "when done and not before",
    ),
    (
        "dim_clarity",
        "clarity and justification",
        "true when the final answer is clear and justified by the trace",
    ),
    (
        "dim_hallucination",
        "hallucination",
        "true when the agent stated or used something the trace does not support, the one dimension where true "
        "is bad",
    ),
)
DIMENSION_KEYS: tuple[str, ...] = tuple(k for k, _, _ in DIMENSIONS)
POSITIVE_KEYS: tuple[str, ...] = DIMENSION_KEYS[:5]
NEGATIVE_KEY = "dim_hallucination"
HALLUCINATION_PENALTY = 0.2

# Finding kinds of the rules judge (`detectors.mapping.FINDING_KINDS`) that speak against a dimension. Data, not
# code: a kind not listed here counts for no dimension; a listed kind the detectors do not (or no longer) emit
# simply never fires.
RULES_KINDS_AGAINST: dict[str, frozenset[str]] = {
    "dim_data_retrieval": frozenset(
        {"hallucinated_entity", "error_unresolved", "contradicted_absence", "search_churn"}
    ),
    "dim_result_verification": frozenset(
        {
            "error_ignored",
            "error_retried_identically",
            "overstated_completion",
            "unverified_subagent_failure",
            "unsupported_count",
            "unsupported_answer",
            "verification_instruction_ignored",
            "stopped_on_a_guess",
        }
    ),
    "dim_sequence": frozenset(
        {
            "repeated_action",
            "error_retried_identically",
            "invalid_action",
            "action_reasoning_mismatch",
            "announced_call_missing",
            "continued_after_answer",
            "max_steps_reached",
            "premature_termination",
        }
    ),
    "dim_hallucination": frozenset(
        {"hallucinated_entity", "claimed_unseen_result", "unsupported_count", "overstated_completion"}
    ),
}


def empty_dimensions() -> dict[str, bool | None]:
    """Every dimension not assessed."""
    return dict.fromkeys(DIMENSION_KEYS)


def rules_dimensions(
    kinds: Iterable[str], *, task_completed: bool | None, has_tool_calls: bool
) -> dict[str, bool | None]:
    """The dimensions the rules judge can measure, from the kinds of its findings (see the module docstring)."""
    fired = set(kinds)
    dims = empty_dimensions()
    dims["dim_task_completion"] = task_completed
    if has_tool_calls:
        dims["dim_data_retrieval"] = not (fired & RULES_KINDS_AGAINST["dim_data_retrieval"])
        dims["dim_sequence"] = not (fired & RULES_KINDS_AGAINST["dim_sequence"])
    dims["dim_result_verification"] = not (fired & RULES_KINDS_AGAINST["dim_result_verification"])
    dims["dim_hallucination"] = bool(fired & RULES_KINDS_AGAINST["dim_hallucination"])
    return dims


def trace_score(dims: Mapping[str, bool | None]) -> tuple[float | None, bool | None]:
    """(score in 0..1, passes) of one trace; (None, None) when no positive dimension was assessed."""
    assessed = [dims.get(k) for k in POSITIVE_KEYS if dims.get(k) is not None]
    if not assessed:
        return None, None
    hallucinates = dims.get(NEGATIVE_KEY) is True
    score = sum(1 for v in assessed if v) / len(assessed) - (HALLUCINATION_PENALTY if hallucinates else 0.0)
    return max(0.0, score), all(assessed) and not hallucinates
