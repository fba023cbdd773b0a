"""Which requests were ambiguous, and how task completion differs on them (the AssetOpsBench study's drop under
ambiguous requests), from what the traces carry, whichever judge produced the run.

A trace is flagged *ambiguous* on the signals the rules judge's no-clarification detector reads
(`judges/detectors/ambiguity.py`), found in the steps and final answer:
- `assumes`: an agent thought or message says something needed was not given and it assumes or picks one
  ("the location is not specified, I will assume");
- `tool`: a tool result says the request is ambiguous (several matches, "which one", "please specify");
- `asked`: the run ends with the agent asking the user a clarifying question (its final answer asks which/what).
The first signal in step order names the trace's reason; `asked` counts only when no step signal was seen.
A request can be ambiguous without any of these (an agent that silently picks one reading): it then counts with
the rest, so the gap shown is a lower bound of what ambiguity costs where agents do not say so.

Completion is the judge's `task_completed` over diagnosed traces that have it, as everywhere in the report;
`drop_points` = completion on the rest minus completion on flagged traces, with a Newcombe 95% interval.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from trajfm.judges.detectors.ambiguity import _AGENT_ASSUMES, _ENV_AMBIGUOUS, ASKS_USER
from trajfm.report.stats import gap_points, rate
from trajfm.traces.model import default_role

AGENT_CHARS = 2000  # how much of a thought or message is scanned, as the detector does
TOOL_CHARS = 1500  # how much of a tool result
ANSWER_CHARS = 3000  # how much of the final answer
SIGNALS = {
    "assumes": "the agent said something needed was not given and assumed or picked",
    "tool": "a tool reported the request as ambiguous",
    "asked": "the agent ended by asking the user which or what was meant",
}


def with_roles(steps: pl.DataFrame) -> pl.DataFrame:
    """`steps` with every role filled: a table whose loader left `role` empty (a hand-built or migrated one)
    gets the role its kind implies (`traces.model.default_role`), as trace readers do."""
    missing = pl.col("role").is_null() | (pl.col("role") == "")
    if steps.filter(missing).height == 0:
        return steps
    pairs = steps.filter(missing).select("kind", "agent").unique()
    implied = pairs.with_columns(
        pl.Series("implied", [default_role(k, a) for k, a in pairs.iter_rows()], dtype=pl.String)
    )
    return (
        steps.join(implied, on=["kind", "agent"], how="left", nulls_equal=True)
        .with_columns(pl.when(missing).then(pl.col("implied")).otherwise(pl.col("role")).alias("role"))
        .drop("implied")
    )


def _candidates(
    steps: pl.DataFrame | pl.LazyFrame, role: str, kinds: tuple[str, ...] | None, chars: int, needles
) -> pl.DataFrame:
    """Steps of `role` (and `kinds`) whose scanned head contains one of the pattern's needles (a cheap filter
    before the regex). The needle filter runs first, lazily over the whole table (it does not depend on the
    role), so only the steps that may match are held."""
    head = pl.col("content").fill_null("").str.slice(0, chars)
    rows = steps.lazy().select("trace_id", "position", "role", "kind", "agent", head.alias("head"))
    if needles:
        rows = rows.filter(pl.col("head").str.to_lowercase().str.contains_any(list(needles)))
    found = with_roles(rows.collect(engine="streaming")).filter(pl.col("role") == role)
    if kinds is not None:
        found = found.filter(pl.col("kind").is_in(kinds))
    return found.select("trace_id", "position", "head")


def ambiguous_traces(steps: pl.DataFrame | pl.LazyFrame, traces: pl.DataFrame) -> dict[str, str]:
    """trace id -> the signal that flags it (a key of SIGNALS), for flagged traces only."""
    found: dict[str, tuple[int, str]] = {}
    for role, kinds, chars, pattern, signal in (
        ("agent", ("thought", "message"), AGENT_CHARS, _AGENT_ASSUMES, "assumes"),
        ("tool", None, TOOL_CHARS, _ENV_AMBIGUOUS, "tool"),
    ):
        for tid, pos, head in _candidates(steps, role, kinds, chars, pattern.needles).iter_rows():
            if (tid not in found or pos < found[tid][0]) and pattern.search(head):
                found[tid] = (pos, signal)
    flagged = {tid: signal for tid, (_, signal) in found.items()}
    for tid, answer in traces.select("trace_id", "final_answer").iter_rows():
        if tid not in flagged and answer and ASKS_USER.search(answer[:ANSWER_CHARS]):
            flagged[tid] = "asked"
    return flagged


def _comparison(known: pl.DataFrame, flagged: set[str]) -> dict[str, Any]:
    """Completion on flagged traces and on the rest (`known`: diagnosed traces with a completion verdict)."""
    is_flagged = pl.col("trace_id").is_in(list(flagged))
    amb, rest = known.filter(is_flagged), known.filter(~is_flagged)
    ambiguous = rate(int(amb["task_completed"].sum()), amb.height)
    others = rate(int(rest["task_completed"].sum()), rest.height)
    gap = gap_points(others, ambiguous)
    return {
        "ambiguous": ambiguous,
        "rest": others,
        **(gap or dict.fromkeys(("drop_points", "ci_low", "ci_high"))),
    }


def ambiguity_figures(
    steps: pl.DataFrame | pl.LazyFrame, traces: pl.DataFrame, ok: pl.DataFrame, models: list[str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run-wide figures (the comparison over all diagnosed traces, how many traces each signal flagged) and
    the comparison per model of `models`. `ok`: the diagnosed traces (trace_id, agent_model, task_completed)."""
    ok_ids = set(ok["trace_id"].to_list())
    flagged = {tid: s for tid, s in ambiguous_traces(steps, traces).items() if tid in ok_ids}
    known = ok.filter(pl.col("task_completed").is_not_null())
    by_signal = dict.fromkeys(SIGNALS, 0)
    for signal in flagged.values():
        by_signal[signal] += 1
    run_wide = {
        "signals": SIGNALS,
        "n_flagged": len(flagged),
        "of": len(ok_ids),
        "by_signal": by_signal,
        **_comparison(known, set(flagged)),
    }
    per_model = {m: _comparison(known.filter(pl.col("agent_model") == m), set(flagged)) for m in models}
    return run_wide, per_model
