"""Every figure of the report, computed from the run tables with polars.

`compute_figures(tables)` returns a plain JSON-able dict; it is written as `summary.json` and every number the
HTML shows comes from it, so the two never disagree. Definitions (tests recompute them independently):
- A trace is *diagnosed* when its diagnoses row has status `ok`. Rates are over diagnosed traces; traces whose
  judge call failed are counted in `overview.statuses` and left out of rates rather than counted as clean.
- A *flag* is one (trace, mode) row with `detected`. `share_flags` = flags of a mode / all flags (IBM's measure);
  `share_traces` = diagnosed traces with the mode / diagnosed traces.
- Completion is the judge's `task_completed` over diagnosed traces where it is not null; `source_correct` is the
  source's own `is_correct` where the source records it.
- A mode is *checked* on a trace when the judge gave a verdict (`detected` not null); a judge that has no way
  to check a mode leaves it null. Rates of a mode are over the traces where it was checked, and a mode checked
  on no trace is "not checked" (`checked` false, no rate), never 0%.
- Intervals are 95% Wilson score intervals. The scorecard (`scorecard.py`) and impact / fix-first figures
  (`impact.py`) define theirs in their own modules.
- Root-cause position of a trace = (root_cause_step - first step index) / (last step index - first step index),
  0 when the trace has one step index; steps outside the trace's index range are counted, not binned.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TypeVar, cast

import polars as pl

from trajfm.judges.dimensions import DIMENSION_KEYS
from trajfm.report import impact as imp
from trajfm.report import scorecard as sc
from trajfm.report.ambiguity import ambiguity_figures
from trajfm.report.families import readable_keywords
from trajfm.report.fixfirst import add_impact
from trajfm.report.honesty import honesty
from trajfm.report.judge_quality import set_aside_summary, usable
from trajfm.report.load import UNKNOWN_MODEL, RunTables
from trajfm.report.stats import gap_points
from trajfm.report.stats import rate as _rate

TOP_MODES_PER_MODEL = 3
EVIDENCE_PER_MODE = 3
EXAMPLES_PER_FAMILY = 3
EXCERPT_CHARS = 300
ROOT_CAUSE_BINS = 10


def _excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _setup_label(multi: bool | None) -> str:
    return "unknown" if multi is None else ("multi-agent" if multi else "single-agent")


def compute_figures(
    t: RunTables,
    *,
    readiness_bar: float = sc.DEFAULT_READINESS_BAR,
    merges: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    traces = t.traces.with_columns(pl.col("agent_model").fill_null(UNKNOWN_MODEL))
    diag = t.diagnoses  # one row per trace: the first where a trace was judged twice (no copy when none was)
    if diag["trace_id"].is_duplicated().any():
        diag = diag.unique("trace_id", keep="first", maintain_order=True)
    diag_ok = usable(diag)  # status ok, and not a degenerate reply set aside (report/judge_quality.py)
    ok_ids = diag_ok["trace_id"]
    dtraces = traces.join(diag.select("trace_id", "status", "task_completed"), on="trace_id", how="left")
    ok = _only_ok(dtraces, ok_ids)
    # The detected modes (load.py), and per mode and model the usable traces it was checked on (`_checked`).
    detected = _unique_pairs(_only_ok(t.modes, ok_ids))
    flags = detected.join(traces.select("trace_id", "agent_model"), on="trace_id", how="left")
    known = ok.filter(pl.col("task_completed").is_not_null()).select(
        "trace_id", failed=pl.col("task_completed").not_()
    )
    checked, cells = _checked(t, ok, known, flags)
    novel = t.novel_modes.filter(pl.col("trace_id").is_in(ok_ids.implode()))
    n_diag = ok.height
    scored = sc.with_scores(diag_ok.select("trace_id", *DIMENSION_KEYS)).join(
        traces.select("trace_id", "agent_model"), on="trace_id", how="left"
    )
    tool_res = sc.tool_results(t.steps, ok.select("trace_id", "agent_model"))  # per model

    figures: dict[str, Any] = {
        "overview": _overview(t, traces, diag, ok, flags, novel),
        "taxonomy": _taxonomy(t, flags, checked, n_diag),
        "models": _models(t, ok, flags, checked, novel, scored, tool_res, readiness_bar),
        "agent_setup": _agent_setup(ok, flags, traces),
        "novel": _novel(t, novel, n_diag, merges or []),
        "feedback": [],
        "cooccurrence": _cooccurrence(t, flags),
        "root_cause": _root_cause(t, diag),
    }
    figures["overview"]["readiness"] = sc.readiness(scored, readiness_bar)
    figures["overview"]["dimensions"] = sc.dimension_rates(scored)
    figures["overview"]["tool_call_success"] = sc.tool_call_success(tool_res)
    figures["scorecard"] = {
        "bar": readiness_bar,
        "dimensions": sc.dimension_definitions(),
        "tool_calls": sc.tool_call_correlation([m for m in figures["models"] if m["n_diagnosed"]]),
        "judge_is_agent": sc.judge_is_agent(diag_ok, traces),
    }
    figures["setup_gap"] = _setup_gap(figures["agent_setup"])
    figures["ambiguity"], by_model = ambiguity_figures(
        list(t.parts("steps")),  # read twice (once per signal)
        [p.select("trace_id", "final_answer") for p in t.parts("traces")],
        ok,
        [m["model"] for m in figures["models"]],
    )
    for m in figures["models"]:
        m["ambiguity"] = by_model[m["model"]]
    figures["feedback"] = _feedback(t, figures["models"], flags)
    add_impact(t, figures, ok, flags, cells, traces)
    figures["honesty"] = honesty(t, diag)
    figures["judge_quality"] = set_aside_summary(diag)
    return figures


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def _unique_pairs(frame: Frame) -> Frame:
    """One row per (trace, mode): a 64-bit hash per row finds duplicates without a table of the strings, so the
    copy `unique` makes is paid only when there are some (or on a hash collision)."""
    probe = frame.lazy().select(pl.struct("trace_id", "mode_id").hash().is_duplicated().any())
    return frame.unique(["trace_id", "mode_id"]) if probe.collect(engine="streaming").item() else frame


def _checked(
    t: RunTables, ok: pl.DataFrame, known: pl.DataFrame, flags: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, tuple[int, int, int, int]]]:
    """(mode_id, agent_model, len): usable traces each mode was checked on (a verdict, `detected` not null), per
    model; and per mode the 2x2 table of `impact.impact_from_counts` over the checked traces with an outcome
    (failed / completed, with / without the mode).

    The verdicts are most of the modes table (a row per trace and mode): they are read one mode at a time by
    the streaming engine and joined to the usable traces into counts (model x outcome x flagged), so neither
    the table nor one mode's trace ids are held; only the join's table of the usable traces."""
    mode_ids = [m.id for m in t.taxonomy.modes] + sorted(
        set(flags["mode_id"].unique().to_list()) - set(t.taxonomy.ids)
    )
    # One row per usable trace: its model and, where it has an outcome, whether it failed.
    usable_traces = ok.select("trace_id", "agent_model").join(known, on="trace_id", how="left").lazy()
    counts: list[pl.DataFrame] = []
    cells: dict[str, tuple[int, int, int, int]] = {}
    for mode_id in mode_ids:
        on = t.checked.filter(pl.col("mode_id") == mode_id).select("trace_id")
        # A (trace, mode) pair twice in the table counts once; probed on 64-bit hashes (8 bytes a row).
        if on.select(pl.col("trace_id").hash().is_duplicated().any()).collect(engine="streaming").item():
            on = on.unique("trace_id", keep="first", maintain_order=True)
        with_it = flags.filter(pl.col("mode_id") == mode_id).select("trace_id").unique()
        cube = (
            on.join(usable_traces, on="trace_id", how="inner")
            .join(with_it.lazy().with_columns(_with=pl.lit(True)), on="trace_id", how="left")
            .group_by("agent_model", "failed", pl.col("_with").fill_null(False))
            .len()
            .collect(engine="streaming")
        )
        counts.append(cube.group_by("agent_model").agg(pl.col("len").sum()).select(
            pl.lit(mode_id).alias("mode_id"), "agent_model", "len"
        ))  # fmt: skip
        n = {
            (w, f): int(k)
            for w, f, k in cube.filter(pl.col("failed").is_not_null())
            .group_by("_with", "failed")
            .agg(pl.col("len").sum())
            .iter_rows()
        }
        cells[mode_id] = (n.get((True, True), 0), n.get((True, False), 0), n.get((False, True), 0),
                          n.get((False, False), 0))  # fmt: skip
    return pl.concat(counts), cells


def _only_ok(df: pl.DataFrame, ok_ids: pl.Series) -> pl.DataFrame:
    """The rows of usable traces; the frame itself when every row is (no copy of a large table)."""
    keep = pl.col("trace_id").is_in(ok_ids.implode())
    return df if df.select(keep.all()).item() else df.filter(keep)


def _setup_gap(setups: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Single- minus multi-agent task completion, in points, with a Newcombe 95% interval."""
    by = {s["setup"]: s["completion"] for s in setups}
    single, multi = by.get("single-agent"), by.get("multi-agent")
    gap = gap_points(single, multi) if single and multi else None
    return None if gap is None else {"single": single["rate"], "multi": multi["rate"], **gap}  # type: ignore[index]


def _overview(t: RunTables, traces, diag, ok, flags, novel) -> dict[str, Any]:
    n_diag = ok.height
    known = ok.filter(pl.col("task_completed").is_not_null())
    n_completed = int(known["task_completed"].sum())
    src = traces.filter(pl.col("is_correct").is_not_null())
    n_any = flags["trace_id"].n_unique()
    n_novel_traces = novel["trace_id"].n_unique()
    judges = (
        diag.group_by("judge", "judge_model")
        .len()
        .sort(["len", "judge"], descending=[True, False])
        .iter_rows()
    )
    return {
        "n_traces": traces.height,
        "n_diagnosed": n_diag,
        "statuses": dict(sorted(diag.group_by("status").len().iter_rows())),
        "n_models": traces["agent_model"].n_unique(),
        "models": [
            {"model": m, "n_traces": n}
            for m, n in traces.group_by("agent_model")
            .len()
            .sort(["len", "agent_model"], descending=[True, False])
            .iter_rows()
        ],
        "judges": [{"judge": j, "judge_model": jm, "n_traces": n} for j, jm, n in judges],
        "completion": _rate(n_completed, known.height),
        "source_correct": _rate(int(src["is_correct"].sum()), src.height),
        "n_flags": flags.height,
        "modes_per_trace": (flags.height / n_diag) if n_diag else None,
        "traces_with_any_mode": _rate(n_any, n_diag),
        "n_novel_modes": novel.height,
        "traces_with_novel": _rate(n_novel_traces, n_diag),
        "calls": int(diag["calls"].fill_null(0).sum()),
        "tokens_in": int(diag["tokens_in"].fill_null(0).sum()),
        "tokens_out": int(diag["tokens_out"].fill_null(0).sum()),
        "cached": int(diag["cached"].fill_null(False).sum()),
        "judge_latency_s": float(diag["latency_s"].fill_null(0.0).sum()),
    }


def _taxonomy(t: RunTables, flags: pl.DataFrame, checked: pl.DataFrame, n_diag: int) -> dict[str, Any]:
    per_mode = dict(flags.group_by("mode_id").len().iter_rows())
    n_checked = dict(checked.group_by("mode_id").agg(pl.col("len").sum()).iter_rows())
    n_flags = flags.height
    known = {m.id for m in t.taxonomy.modes}
    modes: list[dict[str, Any]] = [
        {"mode_id": m.id, "name": m.name, "category": m.category, "category_name": m.category_name}
        for m in t.taxonomy.modes
    ]
    # A judge may flag codes the taxonomy file does not list (e.g. a custom judge); show them, never drop them.
    extra = flags.filter(~pl.col("mode_id").is_in(list(known))).unique("mode_id").sort("mode_id")
    for r in (
        t.flag_rows()
        .filter(pl.col("mode_id").is_in(extra["mode_id"].implode()))
        .select("mode_id", "mode_name", "category")
        .collect(engine="streaming")
        .unique("mode_id", keep="first", maintain_order=True)
        .sort("mode_id")
        .iter_rows(named=True)
    ):
        modes.append(
            {
                "mode_id": r["mode_id"],
                "name": r["mode_name"],
                "category": r["category"],
                "category_name": t.taxonomy.categories.get(r["category"], r["category"]),
            }
        )
    for m in modes:
        n = per_mode.get(m["mode_id"], 0)
        of = n_checked.get(m["mode_id"], 0)
        m.update(
            checked=of > 0,
            n_checked=of,
            n_traces=n,
            share_traces=(n / of) if of else None,
            share_flags=(n / n_flags) if n_flags else None,
        )
    cat_of = {m["mode_id"]: m["category"] for m in modes}
    categories = []
    for cat in dict.fromkeys(m["category"] for m in modes):
        mode_ids = [k for k, c in cat_of.items() if c == cat]
        in_cat = flags.filter(pl.col("mode_id").is_in(mode_ids))
        categories.append(
            {
                "category": cat,
                "name": t.taxonomy.categories.get(cat, cat),
                "n_flags": in_cat.height,
                "share_flags": (in_cat.height / n_flags) if n_flags else None,
                "n_traces": in_cat["trace_id"].n_unique(),
                "share_traces": (in_cat["trace_id"].n_unique() / n_diag) if n_diag else None,
            }
        )
    return {"name": t.taxonomy.name, "title": t.taxonomy.title, "modes": modes, "categories": categories}


def _models(t: RunTables, ok, flags, checked, novel, scored, tool_res, bar) -> list[dict[str, Any]]:
    out = []
    checked_of = {(mo, md): n for md, mo, n in checked.iter_rows()}
    counts = ok.group_by("agent_model").len().sort(["len", "agent_model"], descending=[True, False])
    all_traces = dict(
        t.traces.with_columns(pl.col("agent_model").fill_null(UNKNOWN_MODEL))
        .group_by("agent_model")
        .len()
        .iter_rows()
    )
    novel_by_model = novel.join(ok.select("trace_id", "agent_model"), on="trace_id")
    for model, n in counts.iter_rows():
        mine = ok.filter(pl.col("agent_model") == model)
        known = mine.filter(pl.col("task_completed").is_not_null())
        mflags = flags.filter(pl.col("agent_model") == model)
        per_mode = dict(mflags.group_by("mode_id").len().iter_rows())
        mscored = scored.filter(pl.col("agent_model") == model)
        out.append(
            {
                "model": model,
                "n_traces": all_traces.get(model, n),
                "n_diagnosed": n,
                "completion": _rate(int(known["task_completed"].sum()), known.height),
                "modes_per_trace": mflags.height / n,
                "traces_with_novel": _rate(
                    novel_by_model.filter(pl.col("agent_model") == model)["trace_id"].n_unique(), n
                ),
                "modes": {
                    m.id: _rate(per_mode.get(m.id, 0), checked_of.get((model, m.id), 0))
                    for m in t.taxonomy.modes
                }
                | {
                    k: _rate(v, checked_of.get((model, k), 0))
                    for k, v in per_mode.items()
                    if k not in t.taxonomy.ids
                },
                "dimensions": sc.dimension_rates(mscored),
                "readiness": sc.readiness(mscored, bar),
                "tool_call_success": sc.tool_call_success(tool_res.filter(pl.col("agent_model") == model)),
            }
        )
    # Traces of a model whose every diagnosis failed still show up, with no rates.
    for model, n in sorted(all_traces.items()):
        if model not in counts["agent_model"].to_list():
            out.append(
                {
                    "model": model,
                    "n_traces": n,
                    "n_diagnosed": 0,
                    "completion": _rate(0, 0),
                    "modes_per_trace": None,
                    "traces_with_novel": _rate(0, 0),
                    "modes": {m.id: _rate(0, 0) for m in t.taxonomy.modes},
                    "dimensions": {k: _rate(0, 0) for k in DIMENSION_KEYS},
                    "readiness": sc.readiness(scored.clear(), bar),
                    "tool_call_success": _rate(0, 0),
                }
            )
    return out


def _agent_setup(ok, flags, traces) -> list[dict[str, Any]]:
    out = []
    any_mode = flags["trace_id"].unique().implode()
    for multi in (False, True, None):
        allt = traces.filter(
            pl.col("multi_agent").is_null() if multi is None else pl.col("multi_agent") == multi
        )
        if allt.height == 0:
            continue
        mine = ok.filter(pl.col("multi_agent").is_null() if multi is None else pl.col("multi_agent") == multi)
        known = mine.filter(pl.col("task_completed").is_not_null())
        src = allt.filter(pl.col("is_correct").is_not_null())
        n_flags = flags.filter(pl.col("trace_id").is_in(mine["trace_id"].implode())).height
        out.append(
            {
                "setup": _setup_label(multi),
                "n_traces": allt.height,
                "n_diagnosed": mine.height,
                "completion": _rate(int(known["task_completed"].sum()), known.height),
                "source_correct": _rate(int(src["is_correct"].sum()), src.height),
                "modes_per_trace": (n_flags / mine.height) if mine.height else None,
                "traces_with_any_mode": _rate(mine.filter(pl.col("trace_id").is_in(any_mode)).height, mine.height),
            }
        )
    return out


def _novel(t: RunTables, novel: pl.DataFrame, n_diag: int, merges: list[dict[str, Any]]) -> dict[str, Any]:
    top_titles = [
        {"title": title, "n": n}
        for title, n in novel.group_by("title")
        .len()
        .sort(["len", "title"], descending=[True, False])
        .head(15)
        .iter_rows()
    ]
    base: dict[str, Any] = {
        "clustered": t.clustered,
        "n_novel_modes": novel.height,
        "n_distinct_titles": novel["title"].n_unique(),
        "top_titles": top_titles,
        "merged": merges,
    }
    if not t.clustered:
        base["note"] = "The cluster stage was not run for this run folder (no clusters.parquet): " + (
            "there are no novel failure modes to group."
            if novel.height == 0
            else "run `trajfm cluster RUN` and then `trajfm report RUN` to group the novel modes into families."
        )
        base["families"] = []
        return base
    assert t.clusters is not None and t.novel_assignments is not None
    # "New since baseline" means something only when the cluster stage was given a baseline run.
    cluster_stage = t.manifest.get("stages", {}).get("cluster", {})
    base["baseline_given"] = bool(
        cluster_stage.get("baseline") or (cluster_stage.get("options") or {}).get("baseline")
    )
    assign = t.novel_assignments.join(t.novel_modes, on="novel_id", how="left")
    n_items = t.novel_assignments.height
    n_out = t.novel_assignments.filter(pl.col("cluster_id") == -1).height
    families = []
    for c in t.clusters.sort(["cluster_id"]).iter_rows(named=True):
        members = assign.filter(pl.col("cluster_id") == c["cluster_id"]).drop("title", "trace_id")
        members = members.join(t.novel_texts(members["novel_id"]), on="novel_id", how="left", maintain_order="left")
        examples = members.sort(["probability", "novel_id"], descending=[True, False], nulls_last=True).head(
            EXAMPLES_PER_FAMILY
        )
        families.append(
            {
                "cluster_id": c["cluster_id"],
                "name": c["name"],
                "is_outliers": c["cluster_id"] == -1,
                "size": c["size"],
                "share": c["share"],
                "n_traces": members["trace_id"].drop_nulls().n_unique(),
                "keywords": readable_keywords(
                    list(c["keywords"] or []),
                    members["title"].drop_nulls().to_list() + members["description"].drop_nulls().to_list(),
                ),
                "nearest_mode": c["nearest_mode"],
                "similarity": c["similarity"],
                "is_novel": c["is_novel"],
                "new_since_baseline": c["new_since_baseline"] if base["baseline_given"] else None,
                "stability": c["stability"],
                "definition": c["definition"],
                "examples": [
                    {
                        "novel_id": e["novel_id"],
                        "trace_id": e["trace_id"],
                        "title": e["title"],
                        "description": _excerpt(e["description"]),
                        "steps": list(e["steps"] or []),
                        "evidence": _excerpt(e["evidence"]),
                    }
                    for e in examples.iter_rows(named=True)
                ],
            }
        )
    base.update(
        n_clustered_items=n_items,
        n_outliers=n_out,
        outlier_share=(n_out / n_items) if n_items else None,
        n_families=sum(1 for f in families if not f["is_outliers"]),
        families=families,
    )
    return base


def _feedback(t: RunTables, models: list[dict[str, Any]], flags: pl.DataFrame) -> list[dict[str, Any]]:
    out = []
    for m in models:
        ranked = sorted(
            ((k, v) for k, v in m["modes"].items() if v["n"] > 0), key=lambda kv: (-kv[1]["n"], kv[0])
        )[:TOP_MODES_PER_MODEL]
        top = []
        for mode_id, rate in ranked:
            # The flags of this model and mode with their text, read lazily: sorted and cut to the first
            # EVIDENCE_PER_MODE by the streaming engine (a top-k), never held whole.
            mine = flags.filter((pl.col("agent_model") == m["model"]) & (pl.col("mode_id") == mode_id))
            rows = (
                t.flag_rows()
                .filter(pl.col("mode_id") == mode_id)
                .join(mine.lazy().select("trace_id"), on="trace_id", how="inner")
                .with_columns(has_ev=pl.col("evidence").fill_null("").str.len_chars() > 0)
                .sort(
                    ["has_ev", "evidence_verified", "trace_id"],
                    descending=[True, True, False],
                    nulls_last=True,
                    maintain_order=True,
                )
                .head(EVIDENCE_PER_MODE)
                .collect(engine="streaming")
            )
            try:
                fm = t.taxonomy.mode(mode_id)
                name, suggestion = fm.name, fm.suggestion
            except KeyError:
                name = rows["mode_name"][0] if rows.height else mode_id
                suggestion = ""
            top.append(
                {
                    "mode_id": mode_id,
                    "name": name,
                    "n": rate["n"],
                    "rate": rate["rate"],
                    "suggestion": suggestion,
                    "evidence": [
                        {
                            "trace_id": r["trace_id"],
                            "steps": list(r["steps"] or []),
                            "excerpt": imp.sentence_cut(r["evidence"], EXCERPT_CHARS),
                            "verified": bool(r["evidence_verified"]),
                            "rationale": _excerpt(r["rationale"], 200),
                        }
                        for r in rows.iter_rows(named=True)
                    ],
                }
            )
        out.append({"model": m["model"], "n_diagnosed": m["n_diagnosed"], "top_modes": top})
    return out


def _cooccurrence(t: RunTables, flags: pl.DataFrame) -> dict[str, Any]:
    single = Counter(dict(flags.group_by("mode_id").len().iter_rows()))
    order = [m.id for m in t.taxonomy.modes] + sorted(set(single) - set(t.taxonomy.ids))
    present = [m for m in order if m in single]
    # Traces per pair of modes (a < b) flagged together: a self-join on the trace, counted by polars.
    pair = flags.lazy().select("trace_id", "mode_id").unique()
    pairs: Counter[tuple[str, str]] = Counter(
        {
            (a, b): n
            for a, b, n in pair.join(pair, on="trace_id", suffix="_b")
            .filter(pl.col("mode_id") < pl.col("mode_id_b"))
            .group_by("mode_id", "mode_id_b")
            .len()
            .collect(engine="streaming")
            .iter_rows()
        }
    )
    cells = []
    for a in present:
        for b in present:
            n = single[a] if a == b else pairs[(min(a, b), max(a, b))]
            cells.append({"a": a, "b": b, "n": n, "share_of_a": n / single[a] if single[a] else None})
    top_pairs = [
        {"a": a, "b": b, "n": n} for (a, b), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    ]
    return {"modes": present, "cells": cells, "top_pairs": top_pairs}


def _root_cause(t: RunTables, diag: pl.DataFrame) -> dict[str, Any]:
    rc = diag.filter((pl.col("status") == "ok") & pl.col("root_cause_step").is_not_null()).select(
        "trace_id", "root_cause_step"
    )
    spans = (
        t.steps.lazy()
        .join(rc.lazy().select("trace_id"), on="trace_id", how="semi")
        .group_by("trace_id")
        .agg(lo=pl.col("index").min(), hi=pl.col("index").max())
        .collect(engine="streaming")
    )
    rc = rc.join(spans, on="trace_id", how="left")
    inside = rc.filter(
        pl.col("lo").is_not_null()
        & (pl.col("root_cause_step") >= pl.col("lo"))
        & (pl.col("root_cause_step") <= pl.col("hi"))
    ).with_columns(
        rel=pl.when(pl.col("hi") > pl.col("lo"))
        .then((pl.col("root_cause_step") - pl.col("lo")) / (pl.col("hi") - pl.col("lo")))
        .otherwise(0.0)
    )
    bins = [0] * ROOT_CAUSE_BINS
    for rel in inside["rel"].to_list():
        bins[min(int(rel * ROOT_CAUSE_BINS), ROOT_CAUSE_BINS - 1)] += 1
    return {
        "n_with_root_cause": rc.height,
        "n_outside_trace": rc.height - inside.height,
        "median_position": float(cast(float, inside["rel"].median())) if inside.height else None,
        "bins": [
            {"lo": i / ROOT_CAUSE_BINS, "hi": (i + 1) / ROOT_CAUSE_BINS, "n": n} for i, n in enumerate(bins)
        ],
    }


def run_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the report shows about how the run was made: per stage its recorded settings, shortened."""

    def short(v: Any) -> str:
        s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
        return s if len(s) <= 240 else s[:239] + "…"

    def flat(section: dict[str, Any]) -> dict[str, str]:
        # One level of nesting becomes "key.sub" rows: readable without hiding anything.
        out: dict[str, str] = {}
        for k, v in sorted(section.items()):
            if isinstance(v, dict) and v:
                out.update({f"{k}.{sk}": short(sv) for sk, sv in sorted(v.items())})
            else:
                out[k] = short(v)
        return out

    stages = {
        name: flat(section)
        for name, section in manifest.get("stages", {}).items()
        if isinstance(section, dict)
    }
    versions = {k: v for k, v in (manifest.get("package_versions") or {}).items() if v}
    extract = manifest.get("stages", {}).get("extract") or {}
    return {
        # What the judge spent (calls, tokens, cost when prices were given) and whether the run is a sample.
        "judge_spend": extract.get("cost") if isinstance(extract.get("cost"), dict) else None,
        "sample": extract.get("sample") if isinstance(extract.get("sample"), dict) else None,
        "trajfm_version": manifest.get("trajfm_version"),
        "schema_version": manifest.get("schema_version"),
        "machine": manifest.get("machine", {}),
        "stages": stages,
        "package_versions": versions,
    }
