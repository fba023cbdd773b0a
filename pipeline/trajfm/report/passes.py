"""One pass over a run's traces, a part at a time, into the small aggregates every figure is computed from.

A part is one batch of whole traces (`load.Part`: the same-named shard of every stage-1 table, the layout both
engines write), so a trace's diagnosis, flags, novel modes and steps are all in its part: the joins on trace ids
run inside a part, and what is kept across parts is keyed by small things (model, mode, family, status, value
of a score), never by trace. Memory is bounded by a part plus those aggregates; what still grows with the run:
one byte per scored trace and two per model (the readiness mean is a sequential float sum whose exact value
depends on the order of the scores; they are kept as codes, `Scores`), and the assignment lookup of the
clustered novel modes (`load.RunTables.assignments`). Rows that name a trace outside their part (a run folder
put together by hand) make `accumulate` return None; the caller then runs it again over one part of the whole
tables, as the report did before.

What each aggregate is, and the definitions it serves, is in `figures.py`; this module only counts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from typing import Any

import numpy as np
import polars as pl

from trajfm.judges.dimensions import DIMENSION_KEYS
from trajfm.report import impact as imp
from trajfm.report import scorecard as sc
from trajfm.report.ambiguity import ambiguous_traces
from trajfm.report.judge_quality import usable
from trajfm.report.load import UNKNOWN_MODEL, Part, RunTables

TRACE_COLUMNS = ("trace_id", "agent_model", "multi_agent", "is_correct")
DIAGNOSIS_COLUMNS = (
    "trace_id", "judge", "judge_model", "status", "task_completed", "root_cause_step", "source_outcome",
    "tokens_in", "tokens_out", "latency_s", "calls", "cached", "judge_quality",
    "dim_task_completion", "dim_data_retrieval", "dim_result_verification", "dim_sequence", "dim_clarity",
    "dim_hallucination",
)  # fmt: skip
EVIDENCE_PER_MODE = 3  # figures.EVIDENCE_PER_MODE
EXAMPLES_PER_FAMILY = 3  # figures.EXAMPLES_PER_FAMILY
NO_MODEL = "\x00"  # the key of scores whose trace has no model (Scores)
REDUCE_EVERY = 32  # parts of an aggregate held before they are summed into one frame


class Sums:
    """Frames of counts keyed by a few columns, summed over the parts (reduced every REDUCE_EVERY parts)."""

    def __init__(self, keys: tuple[str, ...], mins: tuple[str, ...] = ()) -> None:
        self.keys = list(keys)
        self.mins = set(mins)  # columns kept as their least value, not summed
        self.frames: list[pl.DataFrame] = []

    def add(self, df: pl.DataFrame) -> None:
        self.frames.append(df)
        if len(self.frames) >= REDUCE_EVERY:
            self.frames = [self.total()]

    def total(self) -> pl.DataFrame:
        df = pl.concat(self.frames, how="diagonal_relaxed")
        values = [c for c in df.columns if c not in self.keys]
        return df.group_by(self.keys, maintain_order=True).agg(
            [pl.col(c).min() if c in self.mins else pl.col(c).sum() for c in values]
        )


class Firsts:
    """The first rows per group of a sort over the whole run, from each part's first rows: `reduce` must keep,
    of a frame sorted as the run is, the rows the whole run's reduction would keep (a top-k per group is such a
    reduction: a row in the run's first k of its group is in its part's first k)."""

    def __init__(self, reduce: Any) -> None:
        self.reduce = reduce
        self.frame: pl.DataFrame | None = None

    def add(self, df: pl.DataFrame) -> None:
        both = df if self.frame is None else pl.concat([self.frame, df], how="vertical_relaxed")
        self.frame = self.reduce(both)


class Scores:
    """Per-trace readiness scores in table order, as one-byte codes of their (few) distinct values, with the
    model of each: `values(model)` gives them back as the same Python floats, so the mean and interval
    (`stats.mean_interval`, sequential float sums) are the ones the whole list would give."""

    def __init__(self) -> None:
        self.lut: list[float] = []
        self.code_of: dict[float, int] = {}
        self.models: dict[str, int] = {}  # model (NO_MODEL for none) -> code
        self.codes: list[np.ndarray] = []
        self.model_codes: list[np.ndarray] = []

    def add(self, scores: pl.Series, models: pl.Series) -> None:
        for v in scores.unique().to_list():
            if v not in self.code_of:
                self.code_of[v] = len(self.lut)
                self.lut.append(v)
        models = models.fill_null(NO_MODEL)
        for m in models.unique().to_list():
            self.models.setdefault(m, len(self.models))
        if len(self.lut) > 255 or len(self.models) > 65535:  # scores of another kind: keep them whole
            raise OverflowError("too many distinct scores")
        self.codes.append(scores.replace_strict(self.code_of, return_dtype=pl.UInt8).to_numpy())
        self.model_codes.append(models.replace_strict(self.models, return_dtype=pl.UInt16).to_numpy())

    def values(self, model: str | None = None, *, every: bool = True) -> _Values:
        if every:
            return _Values(self.lut, self.codes)
        code = self.models.get(NO_MODEL if model is None else model)
        if code is None:
            return _Values(self.lut, [])
        return _Values(self.lut, [c[m == code] for c, m in zip(self.codes, self.model_codes, strict=True)])


class _Values(Collection[float]):
    """Scores given back in table order (sized and iterable twice, as `stats.mean_interval` needs)."""

    def __contains__(self, value: object) -> bool:
        return any(v == value for v in self)

    def __init__(self, lut: list[float], chunks: list[np.ndarray]) -> None:
        self.lut, self.chunks = lut, chunks
        self.n = sum(len(c) for c in chunks)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[float]:
        return chain.from_iterable(map(self.lut.__getitem__, c.tolist()) for c in self.chunks)


@dataclass
class Run:
    """What the pass kept (see the module docstring)."""

    n_traces: int = 0
    traces: Sums = field(default_factory=lambda: Sums(("agent_model", "multi_agent")))
    ok: Sums = field(default_factory=lambda: Sums(("agent_model", "multi_agent")))
    statuses: Sums = field(default_factory=lambda: Sums(("status",)))
    judges: Sums = field(default_factory=lambda: Sums(("judge", "judge_model")))
    spend: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("calls", "tokens_in", "tokens_out", "cached"), 0)
    )
    latency: float = 0.0  # judge latency, seconds
    quality: Sums = field(default_factory=lambda: Sums(("judge_quality",)))
    diag_ok: dict[str, int] = field(
        default_factory=lambda: {"status_ok": 0, "usable": 0, "source_outcome": 0}
    )
    judge_names: set[str | None] = field(default_factory=set)
    mode_model: Sums = field(default_factory=lambda: Sums(("agent_model", "mode_id")))
    combos: Sums = field(default_factory=lambda: Sums(("combo",)))
    cube: Sums = field(default_factory=lambda: Sums(("mode_id", "agent_model", "failed", "_with")))
    dims: Sums = field(default_factory=lambda: Sums(("agent_model",)))
    scores: Scores | None = field(default_factory=Scores)
    score_lists: dict[str | None, list[float]] = field(default_factory=dict)  # when codes overflow
    all_scores: list[float] = field(default_factory=list)
    tools: Sums = field(default_factory=lambda: Sums(("agent_model",)))
    self_judged: Sums = field(default_factory=lambda: Sums(("agent_model", "judge_model")))
    rc: dict[str, int] = field(default_factory=lambda: {"n_with": 0, "inside": 0})
    rc_values: Sums = field(default_factory=lambda: Sums(("rel",)))
    titles: Sums = field(default_factory=lambda: Sums(("title",)))
    amb: Sums = field(default_factory=lambda: Sums(("agent_model", "_flagged")))
    amb_signals: Sums = field(default_factory=lambda: Sums(("signal",)))
    families: Sums = field(default_factory=lambda: Sums(("cluster_id",)))
    family_model: Sums = field(default_factory=lambda: Sums(("cluster_id", "model")))
    keywords_found: set[tuple[int, str]] = field(default_factory=set)
    points: Sums = field(default_factory=lambda: Sums(("cluster_id", "px", "py"), mins=("first",)))
    examples: Firsts = field(default_factory=lambda: Firsts(_example_firsts))
    point_models: Sums = field(default_factory=lambda: Sums(("cluster_id", "px", "py", "model")))
    point_probs: Sums = field(default_factory=lambda: Sums(("cluster_id", "px", "py", "probability")))
    feedback: Firsts = field(default_factory=lambda: Firsts(_feedback_firsts))
    links: Firsts = field(default_factory=lambda: Firsts(_link_firsts))
    quotes: Firsts = field(default_factory=lambda: Firsts(_quote_firsts))
    shown_found: list[int] = field(default_factory=list)  # rows (table order) of traces with a finding
    shown_rest: list[int] = field(default_factory=list)


def _feedback_firsts(df: pl.DataFrame) -> pl.DataFrame:
    return (
        df.sort(["has_ev", "evidence_verified", "trace_id"], descending=[True, True, False], nulls_last=True,
                maintain_order=True)
        .group_by(["agent_model", "mode_id"], maintain_order=True)
        .head(EVIDENCE_PER_MODE)
    )  # fmt: skip


def _example_firsts(df: pl.DataFrame) -> pl.DataFrame:
    return (
        df.sort(["probability", "novel_id"], descending=[True, False], nulls_last=True, maintain_order=True)
        .group_by("cluster_id", maintain_order=True)
        .head(EXAMPLES_PER_FAMILY)
    )


def _link_firsts(df: pl.DataFrame) -> pl.DataFrame:
    return (
        df.sort(["later", "trace_id"], maintain_order=True)
        .group_by(["card", "model"], maintain_order=True)
        .head(imp.TRACE_LINKS)
    )


def _quote_firsts(df: pl.DataFrame) -> pl.DataFrame:
    groups = [imp.quote_candidates(g) for _, g in df.group_by("card", maintain_order=True)]
    return pl.concat(groups, how="vertical_relaxed") if groups else df.clear()


def accumulate(
    t: RunTables, parts: Sequence[Part], *, max_traces: int, keywords: dict[int, list[str]] | None = None
) -> Run | None:
    """The pass (see the module docstring); None when there are several parts and a part's rows name traces
    outside it (with one part, the whole tables, nothing is checked)."""
    run = Run()
    offset = 0
    for part in parts:
        if not _part(
            t, part, run, offset, max_traces=max_traces, whole=len(parts) == 1, keywords=keywords or {}
        ):
            return None
        offset = run.n_traces
    return run


def _sum_col(df: pl.DataFrame, col: str) -> int:
    return int(df[col].fill_null(0).sum())


def _part(
    t: RunTables,
    part: Part,
    run: Run,
    offset: int,
    *,
    max_traces: int,
    whole: bool,
    keywords: dict[int, list[str]],
) -> bool:
    check = not whole
    traces = (
        part.traces.select(TRACE_COLUMNS)
        .collect()
        .with_columns(pl.col("agent_model").fill_null(UNKNOWN_MODEL))
    )
    diag = part.diagnoses.select(DIAGNOSIS_COLUMNS).collect()
    modes = (
        part.modes.filter(pl.col("detected").is_not_null())
        .select("trace_id", "mode_id", "detected")
        .collect()
    )
    novel = part.novel_modes.select("novel_id", "trace_id", "title").collect()
    ids = traces["trace_id"].implode()
    if check and any(
        df.filter(~pl.col("trace_id").is_in(ids)).height for df in (diag, modes, novel)
    ):  # rows of traces in another part: the parts are not batches of whole traces
        return False
    found = pl.concat(
        [modes.filter("detected").select("trace_id"), novel.select("trace_id"),
         diag.filter(pl.col("status") != "ok").select("trace_id")]
    )["trace_id"].implode()  # fmt: skip
    is_found = traces.select(pl.col("trace_id").is_in(found))["trace_id"].to_numpy()
    numbers = np.arange(offset, offset + traces.height)
    if len(run.shown_found) < max_traces:
        run.shown_found.extend(numbers[is_found][: max_traces - len(run.shown_found)].tolist())
    if len(run.shown_rest) < max_traces:
        run.shown_rest.extend(numbers[~is_found][: max_traces - len(run.shown_rest)].tolist())
    run.n_traces += traces.height

    if diag["trace_id"].is_duplicated().any():  # the first row where a trace was judged twice
        diag = diag.unique("trace_id", keep="first", maintain_order=True)
    diag_ok = usable(diag)
    ok_ids = diag_ok["trace_id"].implode()
    ok = traces.join(diag.select("trace_id", "status", "task_completed"), on="trace_id", how="left").filter(
        pl.col("trace_id").is_in(ok_ids)
    )
    known = ok.filter(pl.col("task_completed").is_not_null()).select(
        "trace_id", failed=pl.col("task_completed").not_()
    )
    flags = (
        modes.filter(pl.col("detected") & pl.col("trace_id").is_in(ok_ids))
        .select("trace_id", "mode_id")
        .unique(maintain_order=True)
    )
    flags = flags.join(
        traces.select("trace_id", "agent_model"), on="trace_id", how="left", maintain_order="left"
    )
    novel_ok = novel.filter(pl.col("trace_id").is_in(ok_ids))
    steps = (
        part.steps.select("trace_id", "index", "kind", "is_error", "content")
        .group_by("trace_id")
        .agg(
            lo=pl.col("index").min(),
            hi=pl.col("index").max(),
            calls=pl.col("kind").is_in(list(sc.RESULT_KINDS)).sum().cast(pl.Int64),
            ok_calls=(
                pl.col("kind").is_in(list(sc.RESULT_KINDS))
                & ~pl.col("is_error").fill_null(False)
                & ~sc.EMPTY.fill_null(False)
            )
            .sum()
            .cast(pl.Int64),
        )
        .collect()
    )
    if check and steps.filter(~pl.col("trace_id").is_in(ids)).height:
        return False

    # Traces, and usable traces with what they have, by model and setup.
    run.traces.add(traces.group_by("agent_model", "multi_agent").agg(
        n=pl.len(), n_src=pl.col("is_correct").is_not_null().sum(), src_true=pl.col("is_correct").sum().cast(pl.Int64)
    ))  # fmt: skip
    per_trace = flags.group_by("trace_id").agg(n_flags=pl.len())
    amb = ambiguous_traces(
        list(t.parts("steps")) if whole else [part.steps],  # read twice (once per signal)
        [p.select("trace_id", "final_answer") for p in t.parts("traces")] if whole
        else [part.traces.select("trace_id", "final_answer")],
    ).filter(pl.col("trace_id").is_in(ok["trace_id"].implode()))  # fmt: skip
    okf = ok.join(per_trace, on="trace_id", how="left").with_columns(
        n_flags=pl.col("n_flags").fill_null(0),
        has_novel=pl.col("trace_id").is_in(novel_ok["trace_id"].implode()),
        _flagged=pl.col("trace_id").is_in(amb["trace_id"].implode()),
    )
    run.ok.add(okf.group_by("agent_model", "multi_agent").agg(
        n_diag=pl.len(), n_known=pl.col("task_completed").is_not_null().sum(),
        n_completed=pl.col("task_completed").sum().cast(pl.Int64), n_flags=pl.col("n_flags").sum().cast(pl.Int64),
        n_any=(pl.col("n_flags") > 0).sum(), n_novel_traces=pl.col("has_novel").sum(),
    ))  # fmt: skip
    run.amb.add(okf.filter(pl.col("task_completed").is_not_null()).group_by("agent_model", "_flagged").agg(
        n_known=pl.len(), n_completed=pl.col("task_completed").sum().cast(pl.Int64)
    ))  # fmt: skip
    run.amb_signals.add(amb.group_by("signal").agg(n=pl.len()))

    # Diagnoses: statuses, judges, spend, honesty, set-aside replies.
    run.statuses.add(diag.group_by(pl.col("status").cast(pl.String)).agg(n=pl.len()))
    run.judges.add(diag.group_by("judge", "judge_model").agg(n=pl.len()))
    for k in ("calls", "tokens_in", "tokens_out"):
        run.spend[k] += _sum_col(diag, k)
    run.spend["cached"] += int(diag["cached"].fill_null(False).sum())
    # polars' sum of each part, added in part order: the float total polars gave for the whole column read shard
    # by shard (its chunks), so the same figure as before; it can differ in the last digits when cut otherwise.
    run.latency += float(diag["latency_s"].fill_null(0.0).sum())
    status_ok = diag.filter(pl.col("status") == "ok")
    run.diag_ok["status_ok"] += status_ok.height
    run.diag_ok["usable"] += diag_ok.height
    run.diag_ok["source_outcome"] += status_ok.filter(pl.col("source_outcome").is_not_null()).height
    run.quality.add(status_ok.group_by("judge_quality").agg(n=pl.len()))
    run.judge_names.update(diag["judge"].unique().to_list())

    # Flags: per model and mode, and the set of modes of each trace (categories, co-occurrence).
    run.mode_model.add(flags.group_by("agent_model", "mode_id").agg(n=pl.len()))
    run.combos.add(
        flags.group_by("trace_id").agg(combo=pl.col("mode_id").sort()).group_by("combo").agg(n=pl.len())
    )
    # Verdicts: per mode, model, outcome and flagged, the usable traces it was checked on.
    usable_traces = ok.select("trace_id", "agent_model").join(known, on="trace_id", how="left")
    checked = modes.select("trace_id", "mode_id").unique(maintain_order=True)
    run.cube.add(
        checked.join(usable_traces, on="trace_id", how="inner")
        .join(flags.select("trace_id", "mode_id", _with=pl.lit(True)), on=["trace_id", "mode_id"], how="left")
        .group_by("mode_id", "agent_model", "failed", pl.col("_with").fill_null(False))
        .agg(n=pl.len())
    )

    # Scorecard: dimensions, readiness scores, tool results, judges grading their own model.
    scored = sc.with_scores(diag_ok.select("trace_id", *DIMENSION_KEYS)).join(
        traces.select("trace_id", "agent_model"), on="trace_id", how="left", maintain_order="left"
    )
    run.dims.add(scored.group_by("agent_model").agg(
        *[x for k in DIMENSION_KEYS for x in (pl.col(k).is_not_null().sum().alias(f"{k}:of"),
                                              pl.col(k).sum().cast(pl.Int64).alias(f"{k}:n"))],
        **{"passed:of": pl.col("passed").is_not_null().sum(), "passed:n": pl.col("passed").sum().cast(pl.Int64)},
    ))  # fmt: skip
    s = scored.filter(pl.col("score").is_not_null())
    if run.scores is not None:
        try:
            run.scores.add(s["score"], s["agent_model"])
        except OverflowError:
            run.all_scores = list(run.scores.values())
            for m in run.scores.models:
                name = None if m == NO_MODEL else m
                run.score_lists[name] = list(run.scores.values(name, every=False))
            run.scores = None
    if run.scores is None:
        run.all_scores.extend(s["score"].to_list())
        for m, v in s.select("agent_model", "score").iter_rows():
            run.score_lists.setdefault(m, []).append(v)
    run.tools.add(
        steps.select("trace_id", "calls", "ok_calls").filter(pl.col("trace_id").is_in(ok["trace_id"].implode()))
        .join(ok.select("trace_id", "agent_model"), on="trace_id").group_by("agent_model")
        .agg(pl.col("calls").sum(), pl.col("ok_calls").sum())
    )  # fmt: skip
    run.self_judged.add(sc.self_judged(diag_ok, traces))

    # Root cause position (over diagnoses with status ok, as before the usable filter).
    rc = (
        status_ok.filter(pl.col("root_cause_step").is_not_null())
        .select("trace_id", "root_cause_step")
        .join(steps.select("trace_id", "lo", "hi"), on="trace_id", how="left")
    )
    inside = rc.filter(
        pl.col("lo").is_not_null() & (pl.col("root_cause_step") >= pl.col("lo")) & (pl.col("root_cause_step") <= pl.col("hi"))
    ).select(
        rel=pl.when(pl.col("hi") > pl.col("lo"))
        .then((pl.col("root_cause_step") - pl.col("lo")) / (pl.col("hi") - pl.col("lo")))
        .otherwise(0.0)
    )  # fmt: skip
    run.rc["n_with"] += rc.height
    run.rc["inside"] += inside.height
    run.rc_values.add(inside.group_by("rel").agg(n=pl.len()))

    # Novel modes: titles of usable traces; families, their impact, keywords, cards and the map.
    run.titles.add(novel_ok.group_by("title").agg(n=pl.len()))
    if t.clustered:
        _families(t, part, run, traces, novel, novel_ok, known, keywords)

    # Quoted rows: the feedback's first flags per model and mode, the fix-first cards' links and quotes.
    if flags.height:
        text = part.modes.filter(pl.col("detected").fill_null(False)).select(
            "trace_id", "mode_id", "mode_name", "steps", "evidence", "evidence_verified", "rationale"
        ).collect()  # fmt: skip
        rows = text.join(flags, on=["trace_id", "mode_id"], how="inner", maintain_order="left")
        run.feedback.add(_feedback_firsts(
            rows.with_columns(has_ev=pl.col("evidence").fill_null("").str.len_chars() > 0)
        ))  # fmt: skip
        cards = (
            rows.select(
                "trace_id", "mode_id", "steps", "evidence", model=pl.col("agent_model"),
                verified=pl.col("evidence_verified"),
            )
            .sort("trace_id", maintain_order=True)
            .unique(["mode_id", "trace_id"], keep="first", maintain_order=True)
            .select(pl.concat_str(pl.lit("mode:"), "mode_id").alias("card"), pl.exclude("mode_id"))
        )  # fmt: skip
        _cards(run, cards, known)
    return True


def _cards(run: Run, rows: pl.DataFrame, known: pl.DataFrame) -> None:
    """Links (failed traces first, per model) and quote candidates of fix-first cards (`card`: mode:ID or
    family:ID); `rows` one per finding (trace_id, model, steps, evidence, verified), in the card's order."""
    rows = rows.select("card", "trace_id", "model", "steps", "evidence", "verified")
    per_trace = rows.unique(["card", "trace_id"], keep="first", maintain_order=True).select(
        "card", "trace_id", "model"
    )
    run.links.add(_link_firsts(
        per_trace.join(known, on="trace_id", how="left").with_columns(later=pl.col("failed").fill_null(False).not_())
        .select("card", "model", "later", "trace_id")
    ))  # fmt: skip
    run.quotes.add(_quote_firsts(rows.join(known, on="trace_id", how="left", maintain_order="left")))


def _families(
    t: RunTables, part: Part, run: Run, traces: pl.DataFrame, novel: pl.DataFrame, novel_ok: pl.DataFrame,
    known: pl.DataFrame, keywords: dict[int, list[str]],
) -> None:  # fmt: skip
    if part.assignments is not None:  # this batch's assignments shard
        members = novel.join(part.assignments.collect(), on="novel_id", how="inner")
    else:
        lookup, is_hash = t.lookup()
        keyed = novel.with_columns(key=pl.col("novel_id").hash() if is_hash else pl.col("novel_id"))
        look = lookup.filter(pl.col("key").is_in(keyed["key"].implode()))
        members = keyed.join(look, on="key", how="inner").drop("key")
    members = members.sort("novel_id", maintain_order=True)
    run.examples.add(_example_firsts(members.select("cluster_id", "novel_id", "probability")))
    run.families.add(members.group_by("cluster_id").agg(n_traces=pl.col("trace_id").drop_nulls().n_unique()))
    # Map points: novel modes with a position, by family and rounded position.
    pts = (
        members.filter(pl.col("x").is_not_null() & pl.col("y").is_not_null())
        .join(traces.select("trace_id", model=pl.col("agent_model")), on="trace_id", how="left")
        .with_columns(px=pl.col("x").round(3), py=pl.col("y").round(3))
    )
    run.points.add(pts.group_by("cluster_id", "px", "py").agg(count=pl.len(), first=pl.col("novel_id").min()))
    run.point_models.add(pts.group_by("cluster_id", "px", "py", "model").agg(n=pl.len()))
    run.point_probs.add(pts.group_by("cluster_id", "px", "py", "probability").agg(n=pl.len()))
    # Keywords: which of a family's keywords occur, as whole words, in one of its members' title or description.
    want = {c: ks for c, ks in keywords.items() if any((c, k) not in run.keywords_found for k in ks)}
    if want:
        texts = (
            part.novel_modes.select("novel_id", "title", "description")
            .collect()
            .join(members.select("novel_id", "cluster_id"), on="novel_id", how="inner")
        )
        from trajfm.report.families import keyword_in

        for c, title, description in texts.select("cluster_id", "title", "description").iter_rows():
            for k in want.get(c, ()):
                if (c, k) not in run.keywords_found and (keyword_in(k, title) or keyword_in(k, description)):
                    run.keywords_found.add((c, k))
    # Impact and cards: novel modes of usable traces.
    mine = members.filter(pl.col("trace_id").is_in(novel_ok["trace_id"].implode()))
    with_it = mine.select("cluster_id", "trace_id").unique().join(known, on="trace_id", how="inner")
    run.families.add(with_it.group_by("cluster_id").agg(
        a=pl.col("failed").sum().cast(pl.Int64), b=pl.col("failed").not_().sum().cast(pl.Int64)
    ))  # fmt: skip
    models = traces.select("trace_id", model=pl.col("agent_model"))
    rows = (
        mine.filter(pl.col("cluster_id") != -1)
        .join(part.novel_modes.select("novel_id", "steps", "evidence").collect(), on="novel_id", how="left",
              maintain_order="left")
        .join(models, on="trace_id", how="left", maintain_order="left")
        .select(
            pl.concat_str(pl.lit("family:"), pl.col("cluster_id").cast(pl.String)).alias("card"), "trace_id",
            model=pl.col("model").fill_null(UNKNOWN_MODEL), steps="steps", evidence="evidence",
            verified=pl.lit(False),
        )
    )  # fmt: skip
    run.family_model.add(
        rows.unique(["card", "trace_id"])
        .group_by(pl.col("card").str.slice(7).cast(pl.Int64).alias("cluster_id"), "model")
        .agg(n=pl.len())
    )
    _cards(run, rows, known)


def exact_mean(values: pl.DataFrame, col: str) -> float | None:
    """The mean of a column given as (value, n) counts, correctly rounded."""
    total = sum(
        (Fraction(v) * n for v, n in values.select(col, "n").iter_rows() if v is not None), Fraction(0)
    )
    count = int(values.filter(pl.col(col).is_not_null())["n"].sum())
    return float(total / count) if count else None
