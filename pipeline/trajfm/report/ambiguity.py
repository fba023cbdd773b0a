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

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import polars as pl

from trajfm.judges.detectors import text as tx
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


Parts = pl.DataFrame | pl.LazyFrame | Sequence[pl.LazyFrame]  # a sequence: the steps are read once per signal


def _parts(frames: Parts) -> Iterable[pl.LazyFrame]:
    return [frames.lazy()] if isinstance(frames, pl.DataFrame | pl.LazyFrame) else frames


def _candidates(
    steps: Parts, role: str, kinds: tuple[str, ...] | None, chars: int, needles
) -> Iterator[pl.DataFrame]:
    """Steps of `role` (and `kinds`) whose scanned head contains one of the pattern's needles (a cheap filter
    before the regex), in table order, a part of the table at a time (`RunTables.parts`): the needle filter
    runs in polars on the part (it does not depend on the role), so only that part's steps that may match are
    held while the regex runs on them."""
    head = pl.col("content").fill_null("").str.slice(0, chars)
    for part in _parts(steps):
        rows = part.select("trace_id", "position", "role", "kind", "agent", head.alias("head"))
        if needles:
            rows = rows.filter(pl.col("head").str.to_lowercase().str.contains_any(list(needles)))
        found = with_roles(rows.collect()).filter(pl.col("role") == role)
        if kinds is not None:
            found = found.filter(pl.col("kind").is_in(kinds))
        yield found.select("trace_id", "position", "head")


def ambiguous_traces(steps: Parts, traces: Parts) -> pl.DataFrame:
    """(trace_id, signal) of the flagged traces (signal: a key of SIGNALS), in no particular order. `steps` and
    `traces` (trace_id, final_answer) are frames, or the lazy parts of the tables (`RunTables.parts`), read one
    at a time.

    The regexes run in Python on the candidate rows of one part at a time; matches are kept as polars frames,
    and the first signal of a trace (its lowest step position; on a tie, the agent's before the tool's, then
    table order) is chosen by polars."""
    matches: list[pl.DataFrame] = []
    seen = 0
    signals: tuple[tuple[str, tuple[str, ...] | None, int, tx.Pattern | tx.AnyOf, str], ...] = (
        ("agent", ("thought", "message"), AGENT_CHARS, _AGENT_ASSUMES, "assumes"),
        ("tool", None, TOOL_CHARS, _ENV_AMBIGUOUS, "tool"),
    )
    for rank, (role, kinds, chars, pattern, signal) in enumerate(signals):
        # (an `AnyOf` split from one pattern keeps that pattern's needles as its gate: the same cheap filter)
        needles = pattern.gate if isinstance(pattern, tx.AnyOf) and pattern.gate else pattern.needles
        for batch in _candidates(steps, role, kinds, chars, needles):
            hit = [pattern.search(head) is not None for head in batch["head"].to_list()]
            batch = batch.with_columns(
                _hit=pl.Series(hit, dtype=pl.Boolean), _seq=pl.int_range(seen, seen + batch.height, dtype=pl.Int64)
            )
            seen += batch.height
            matches.append(
                batch.filter("_hit").select("trace_id", "position", "_seq", _rank=pl.lit(rank), signal=pl.lit(signal))
            )
    in_steps = (
        pl.concat(matches)
        .sort("position", "_rank", "_seq")
        .unique("trace_id", keep="first")
        .select("trace_id", "signal")
        if matches
        else pl.DataFrame(schema={"trace_id": pl.String, "signal": pl.String})
    )
    asked: list[pl.DataFrame] = []
    for part in _parts(traces):
        batch = (
            part.select("trace_id", answer=pl.col("final_answer").str.slice(0, ANSWER_CHARS))
            .filter(pl.col("answer").str.contains("?", literal=True))  # ASKS_USER's needle: no "?", no match
            .collect()
        )
        hit = [ASKS_USER.search(a) is not None for a in batch["answer"].to_list()]
        asked.append(batch.filter(pl.Series(hit, dtype=pl.Boolean)).select("trace_id", signal=pl.lit("asked")))
    if asked:
        answered = pl.concat(asked).join(in_steps, on="trace_id", how="anti")
        return pl.concat([in_steps, answered.unique("trace_id", keep="first")])
    return in_steps


def _comparison(known: pl.DataFrame, flagged: pl.Series) -> dict[str, Any]:
    """Completion on flagged traces and on the rest (`known`: diagnosed traces with a completion verdict)."""
    is_flagged = pl.col("trace_id").is_in(flagged.implode())
    amb, rest = known.filter(is_flagged), known.filter(~is_flagged)
    ambiguous = rate(int(amb["task_completed"].sum()), amb.height)
    others = rate(int(rest["task_completed"].sum()), rest.height)
    gap = gap_points(others, ambiguous)
    return {
        "ambiguous": ambiguous,
        "rest": others,
        **(gap or dict.fromkeys(("drop_points", "ci_low", "ci_high"))),
    }


def comparison_from(counts: pl.DataFrame) -> dict[str, Any]:
    """`_comparison` from counts of diagnosed traces with a completion verdict: (_flagged, n_known,
    n_completed) rows, summed here."""
    amb, rest = counts.filter(pl.col("_flagged")), counts.filter(~pl.col("_flagged"))
    ambiguous = rate(int(amb["n_completed"].sum()), int(amb["n_known"].sum()))
    others = rate(int(rest["n_completed"].sum()), int(rest["n_known"].sum()))
    gap = gap_points(others, ambiguous)
    return {
        "ambiguous": ambiguous,
        "rest": others,
        **(gap or dict.fromkeys(("drop_points", "ci_low", "ci_high"))),
    }


def ambiguity_figures(
    steps: Parts,
    traces: Parts,
    ok: pl.DataFrame,
    models: list[str],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run-wide figures (the comparison over all diagnosed traces, how many traces each signal flagged) and
    the comparison per model of `models`. `ok`: the diagnosed traces (trace_id, agent_model, task_completed);
    `steps`, `traces` (trace_id, final_answer): frames, or the tables' lazy parts (see `ambiguous_traces`)."""
    ok_ids = ok["trace_id"].unique()
    flagged = ambiguous_traces(steps, traces).filter(pl.col("trace_id").is_in(ok_ids.implode()))
    known = ok.filter(pl.col("task_completed").is_not_null())
    counted = dict(flagged.group_by("signal").len().iter_rows())
    by_signal = {signal: counted.get(signal, 0) for signal in SIGNALS}
    ids = flagged["trace_id"]
    run_wide = {
        "signals": SIGNALS,
        "n_flagged": flagged.height,
        "of": ok_ids.len(),
        "by_signal": by_signal,
        **_comparison(known, ids),
    }
    per_model = {m: _comparison(known.filter(pl.col("agent_model") == m), ids) for m in models}
    return run_wide, per_model
