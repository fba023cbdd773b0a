"""The readiness scorecard: six dimensions, readiness score per model against a bar, tool-call success.

Definitions (tests recompute them from the tables):
- Dimension rate of a model: traces where the dimension is true / diagnosed traces where it is not null (the
  judge assessed it). A dimension no trace of the run has a verdict on is "not assessed" (`of` = 0).
- Trace score and pass: `trajfm.judges.dimensions.trace_score` (share of the five positive dimensions met,
  minus 0.2 when it hallucinates; pass = all assessed positives true and no hallucination).
- Readiness of a model: mean trace score on a 0-100 scale with a 95% normal interval over the model's scored
  traces, the share that pass (Wilson interval), the bar (`--readiness-bar`, 85 by default) and whether the
  mean reaches it (`meets`; `meets_surely` when even the interval's low end does).
- Tool-call success of a model: tool results (steps of kind observation / tool_result) that are neither errors
  nor empty, over all tool results of its diagnosed traces. The correlation is Pearson's r between models'
  tool-call success and their task completion (models with both), as the study's "tool accuracy predicts
  success" finding.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import polars as pl

from trajfm.judges.dimensions import (
    DIMENSION_KEYS,
    DIMENSIONS,
    HALLUCINATION_PENALTY,
    NEGATIVE_KEY,
    POSITIVE_KEYS,
)
from trajfm.report.stats import mean_interval, pearson
from trajfm.report.stats import rate as _rate

DEFAULT_READINESS_BAR = 85.0
RESULT_KINDS = ("observation", "tool_result")
EMPTY_RESULTS = ("", "[]", "{}", "null", "none", '""', "''")
EMPTY = pl.col("content").fill_null("").str.strip_chars().str.to_lowercase().is_in(list(EMPTY_RESULTS))


def with_scores(diag_ok: pl.DataFrame) -> pl.DataFrame:
    """`diag_ok` with `score` (0..1 or null) and `passed` (bool or null) per trace: `trace_score` written as
    polars expressions (the same float operations in the same order, so the same values), no Python row loop."""
    positives = [pl.col(k) for k in POSITIVE_KEYS]
    n_assessed = pl.sum_horizontal([c.is_not_null().cast(pl.Int64) for c in positives])
    n_true = pl.sum_horizontal([c.fill_null(False).cast(pl.Int64) for c in positives])
    hallucinates = pl.col(NEGATIVE_KEY).fill_null(False)
    raw = n_true / n_assessed - pl.when(hallucinates).then(HALLUCINATION_PENALTY).otherwise(0.0)
    return diag_ok.with_columns(
        score=pl.when(n_assessed > 0).then(pl.when(raw < 0.0).then(0.0).otherwise(raw)).cast(pl.Float64),
        passed=pl.when(n_assessed > 0).then((n_true == n_assessed) & hallucinates.not_()).cast(pl.Boolean),
    )


def dimension_rates_from(dims: dict[str, tuple[int, int]]) -> dict[str, dict[str, Any]]:
    """Per dimension, the rate of true among the assessed, from counts {dimension: (true, assessed)}."""
    return {key: _rate(*dims.get(key, (0, 0))) for key in DIMENSION_KEYS}


def readiness_from(
    scores: Collection[float], passed: tuple[int, int], dims: dict[str, tuple[int, int]], bar: float
) -> dict[str, Any]:
    """The readiness figures from the scores (in table order) and counts: passed (true, not null), per dimension
    (true, assessed)."""
    mean, lo, hi = mean_interval(scores)
    assessed = [k for k in DIMENSION_KEYS if dims.get(k, (0, 0))[1]]
    score = None if mean is None else 100 * mean
    return {
        "score": score,
        "ci_low": None if lo is None else 100 * lo,
        "ci_high": None if hi is None else 100 * hi,
        "n_scored": len(scores),
        "pass_share": _rate(*passed),
        "bar": bar,
        "meets": None if score is None else score >= bar,
        "meets_surely": None if lo is None else 100 * lo >= bar,
        "dims_assessed": assessed,
        "positive_dims_assessed": [k for k in POSITIVE_KEYS if k in assessed],
    }


def tool_results(steps: pl.DataFrame | pl.LazyFrame, models: pl.DataFrame) -> pl.DataFrame:
    """Per model of `models` (trace_id, agent_model: the traces counted): tool results and how many came back
    without error and not empty. Counted per trace by the streaming engine first (only the per-trace counts are
    held; a join of the steps themselves buffers their text), then summed per model."""
    res = steps.lazy().filter(pl.col("kind").is_in(list(RESULT_KINDS)))
    empty = EMPTY
    return (
        res.group_by("trace_id")
        .agg(calls=pl.len(), ok_calls=(~pl.col("is_error").fill_null(False) & ~empty).sum().cast(pl.Int64))
        .join(models.lazy(), on="trace_id")
        .group_by("agent_model")
        .agg(pl.col("calls").sum(), pl.col("ok_calls").sum())
        .collect(engine="streaming")
    )


def tool_call_success(per_model: pl.DataFrame) -> dict[str, Any]:
    """Tool results without error and not empty over all tool results, of the models in `per_model`."""
    return _rate(int(per_model["ok_calls"].sum()), int(per_model["calls"].sum()))


def tool_call_correlation(models: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = [
        (m["model"], m["tool_call_success"]["rate"], m["completion"]["rate"])
        for m in models
        if m["tool_call_success"]["rate"] is not None and m["completion"]["rate"] is not None
    ]
    ranked = sorted(pairs, key=lambda p: (-p[1], p[0]))
    return {
        "correlation_with_completion": pearson([p[1] for p in pairs], [p[2] for p in pairs]),
        "n_models": len(pairs),
        "best": {"model": ranked[0][0], "rate": ranked[0][1]} if ranked else None,
        "worst": {"model": ranked[-1][0], "rate": ranked[-1][1]} if ranked else None,
    }


def dimension_definitions() -> list[dict[str, Any]]:
    return [
        {
            "key": k,
            "label": label,
            "short": k.removeprefix("dim_").replace("_", " ").replace("result ", "").replace("data ", ""),
            "meaning": meaning,
            "bad_when_true": k == "dim_hallucination",
        }
        for k, label, meaning in DIMENSIONS
    ]


def self_judged(diag: pl.DataFrame, traces: pl.DataFrame) -> pl.DataFrame:
    """(agent_model, judge_model, n): traces whose judge model has the agent's model's name (or the reverse)."""
    return (
        diag.filter(pl.col("judge_model").is_not_null())
        .join(traces.select("trace_id", "agent_model"), on="trace_id")
        .filter(
            pl.col("agent_model").is_not_null()
            & (
                pl.col("judge_model")
                .str.to_lowercase()
                .str.contains(pl.col("agent_model").str.to_lowercase(), literal=True)
                | pl.col("agent_model")
                .str.to_lowercase()
                .str.contains(pl.col("judge_model").str.to_lowercase(), literal=True)
            )
        )
        .group_by("agent_model", "judge_model")
        .agg(n=pl.len())
    )


def judge_is_agent(pairs: pl.DataFrame) -> list[dict[str, Any]]:
    """Models judged by a judge model of the same name (the agent grading itself): a warning for the report.
    `pairs`: `self_judged` summed over the run."""
    return [
        {"model": m, "judge_model": j, "n_traces": n} for m, j, n in pairs.sort("agent_model").iter_rows()
    ]
