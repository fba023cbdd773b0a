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
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from trajfm.judges.dimensions import DIMENSION_KEYS
from trajfm.report import impact as imp
from trajfm.report import scorecard as sc
from trajfm.report.ambiguity import SIGNALS, comparison_from
from trajfm.report.families import readable
from trajfm.report.fixfirst import add_impact
from trajfm.report.honesty import honesty
from trajfm.report.judge_quality import set_aside_from
from trajfm.report.load import UNKNOWN_MODEL, RunTables
from trajfm.report.passes import Run, accumulate, exact_mean
from trajfm.report.stats import gap_points
from trajfm.report.stats import rate as _rate

TOP_MODES_PER_MODEL = 3
EVIDENCE_PER_MODE = 3
EXAMPLES_PER_FAMILY = 3
EXCERPT_CHARS = 300
ROOT_CAUSE_BINS = 10
KEYWORDS_PER_FAMILY = 6
MAP_TITLE_CHARS = 140
__all__ = ["UNKNOWN_MODEL", "Computed", "compute", "compute_figures", "run_metadata"]


def _excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _setup_label(multi: bool | None) -> str:
    return "unknown" if multi is None else ("multi-agent" if multi else "single-agent")


@dataclass
class Computed:
    """Every figure (summary.json's content), the 2-D map's points and the traces the drill-down shows (rows of
    the traces table, in table order; None: all of them)."""

    figures: dict[str, Any]
    points: list[dict[str, Any]]
    shown_rows: list[int] | None
    n_traces: int


def compute_figures(
    t: RunTables,
    *,
    readiness_bar: float = sc.DEFAULT_READINESS_BAR,
    merges: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return compute(t, readiness_bar=readiness_bar, merges=merges).figures


def compute(
    t: RunTables,
    *,
    readiness_bar: float = sc.DEFAULT_READINESS_BAR,
    merges: list[dict[str, Any]] | None = None,
    max_traces: int = 10_000,
) -> Computed:
    """One pass over the run's parts (`passes.py`), then the figures from what it kept."""
    keywords = {
        c["cluster_id"]: [k for k in (c["keywords"] or []) if readable(k)]
        for c in (t.clusters.iter_rows(named=True) if t.clusters is not None else [])
    }
    run = accumulate(t, t.trace_parts(), max_traces=max_traces, keywords=keywords)
    if run is None:  # parts that are not batches of whole traces: the whole tables as one part
        run = accumulate(t, t.trace_parts(whole=True), max_traces=max_traces, keywords=keywords)
    assert run is not None
    f = _Totals(run)
    figures: dict[str, Any] = {
        "overview": _overview(run, f),
        "taxonomy": _taxonomy(t, run, f),
        "models": _models(t, run, f, readiness_bar),
        "agent_setup": _agent_setup(f),
        "novel": _novel(t, run, f, merges or []),
        "feedback": [],
        "cooccurrence": _cooccurrence(t, f),
        "root_cause": _root_cause(run),
    }
    figures["overview"]["readiness"] = sc.readiness_from(
        run.scores.values() if run.scores is not None else run.all_scores, f.dim_counts(None)["passed"],
        f.dim_counts(None), readiness_bar,
    )  # fmt: skip
    figures["overview"]["dimensions"] = sc.dimension_rates_from(f.dim_counts(None))
    figures["overview"]["tool_call_success"] = _rate(f.tool_ok, f.tool_calls)
    figures["scorecard"] = {
        "bar": readiness_bar,
        "dimensions": sc.dimension_definitions(),
        "tool_calls": sc.tool_call_correlation([m for m in figures["models"] if m["n_diagnosed"]]),
        "judge_is_agent": sc.judge_is_agent(run.self_judged.total()),
    }
    figures["setup_gap"] = _setup_gap(figures["agent_setup"])
    figures["ambiguity"], by_model = _ambiguity(run, f, [m["model"] for m in figures["models"]])
    for m in figures["models"]:
        m["ambiguity"] = by_model[m["model"]]
    figures["feedback"] = _feedback(t, run, figures["models"])
    add_impact(t, figures, run, f)
    figures["honesty"] = honesty(t, run)
    figures["judge_quality"] = set_aside_from(run.diag_ok["status_ok"], run.diag_ok["usable"], run.quality.total())
    shown = None
    if run.n_traces > max_traces:
        shown = sorted((run.shown_found + run.shown_rest)[:max_traces])
    return Computed(figures, _points(t, run), shown, run.n_traces)


class _Totals:
    """The pass's aggregates summed over parts, and lookups of them."""

    def __init__(self, run: Run) -> None:
        self.traces = run.traces.total()
        self.ok = run.ok.total()
        self.mode_model = run.mode_model.total()
        self.cube = run.cube.total()
        self.dims = run.dims.total()
        tools = run.tools.total()
        self.tools = {m: (int(c), int(k)) for m, c, k in tools.select("agent_model", "calls", "ok_calls").iter_rows()}
        self.tool_calls = sum(c for c, _ in self.tools.values())
        self.tool_ok = sum(k for _, k in self.tools.values())
        self.combos = [(list(c), int(n)) for c, n in run.combos.total().iter_rows()]
        self.n_diag = int(self.ok["n_diag"].sum())
        self.n_flags = int(self.mode_model["n"].sum())

    def dim_counts(self, model: str | None) -> dict[str, tuple[int, int]]:
        """Per dimension and "passed": (true, assessed), of one model (None: every scored trace)."""
        rows = self.dims if model is None else self.dims.filter(pl.col("agent_model") == model)
        return {k: (int(rows[f"{k}:n"].sum()), int(rows[f"{k}:of"].sum())) for k in (*DIMENSION_KEYS, "passed")}


def _overview(run: Run, f: _Totals) -> dict[str, Any]:
    n_diag = f.n_diag
    n_known, n_completed = int(f.ok["n_known"].sum()), int(f.ok["n_completed"].sum())
    n_any = int(f.ok["n_any"].sum())
    judges = (
        run.judges.total()
        .sort(["n", "judge"], descending=[True, False])
        .iter_rows()
    )
    models = f.traces.group_by("agent_model").agg(pl.col("n").sum())
    return {
        "n_traces": int(f.traces["n"].sum()),
        "n_diagnosed": n_diag,
        "statuses": dict(sorted((s, int(n)) for s, n in run.statuses.total().iter_rows())),
        "n_models": models.height,
        "models": [
            {"model": m, "n_traces": int(n)}
            for m, n in models.sort(["n", "agent_model"], descending=[True, False]).iter_rows()
        ],
        "judges": [{"judge": j, "judge_model": jm, "n_traces": int(n)} for j, jm, n in judges],
        "completion": _rate(n_completed, n_known),
        "source_correct": _rate(int(f.traces["src_true"].sum()), int(f.traces["n_src"].sum())),
        "n_flags": f.n_flags,
        "modes_per_trace": (f.n_flags / n_diag) if n_diag else None,
        "traces_with_any_mode": _rate(n_any, n_diag),
        "n_novel_modes": int(run.titles.total()["n"].sum()),
        "traces_with_novel": _rate(int(f.ok["n_novel_traces"].sum()), n_diag),
        "calls": run.spend["calls"],
        "tokens_in": run.spend["tokens_in"],
        "tokens_out": run.spend["tokens_out"],
        "cached": run.spend["cached"],
        "judge_latency_s": run.latency,
    }


def _taxonomy(t: RunTables, run: Run, f: _Totals) -> dict[str, Any]:
    per_mode = {m: int(n) for m, n in f.mode_model.group_by("mode_id").agg(pl.col("n").sum()).iter_rows()}
    n_checked = {m: int(n) for m, n in f.cube.group_by("mode_id").agg(pl.col("n").sum()).iter_rows()}
    n_flags = f.n_flags
    n_diag = f.n_diag
    known = {m.id for m in t.taxonomy.modes}
    modes: list[dict[str, Any]] = [
        {"mode_id": m.id, "name": m.name, "category": m.category, "category_name": m.category_name}
        for m in t.taxonomy.modes
    ]
    # A judge may flag codes the taxonomy file does not list (e.g. a custom judge); show them, never drop them.
    extra = sorted(set(per_mode) - known)
    if extra:
        for r in (
            t.flag_rows()
            .filter(pl.col("mode_id").is_in(extra))
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
        mode_ids = {k for k, c in cat_of.items() if c == cat}
        in_cat = sum(per_mode.get(k, 0) for k in mode_ids)
        n_traces = sum(n for combo, n in f.combos if mode_ids.intersection(combo))
        categories.append(
            {
                "category": cat,
                "name": t.taxonomy.categories.get(cat, cat),
                "n_flags": in_cat,
                "share_flags": (in_cat / n_flags) if n_flags else None,
                "n_traces": n_traces,
                "share_traces": (n_traces / n_diag) if n_diag else None,
            }
        )
    return {"name": t.taxonomy.name, "title": t.taxonomy.title, "modes": modes, "categories": categories}


def _models(t: RunTables, run: Run, f: _Totals, bar: float) -> list[dict[str, Any]]:
    out = []
    checked_of = {
        (mo, md): int(n)
        for md, mo, n in f.cube.group_by("mode_id", "agent_model").agg(pl.col("n").sum()).iter_rows()
    }
    by_model = f.ok.group_by("agent_model").agg(pl.exclude("multi_agent").sum())
    counts = by_model.sort(["n_diag", "agent_model"], descending=[True, False])
    all_traces = {m: int(n) for m, n in f.traces.group_by("agent_model").agg(pl.col("n").sum()).iter_rows()}
    for r in counts.iter_rows(named=True):
        model, n = r["agent_model"], int(r["n_diag"])
        per_mode = {
            md: int(k) for md, k in f.mode_model.filter(pl.col("agent_model") == model).select("mode_id", "n").iter_rows()
        }
        dims = f.dim_counts(model)
        scores = run.scores.values(model, every=False) if run.scores is not None else run.score_lists.get(model, [])
        calls, ok_calls = f.tools.get(model, (0, 0))
        out.append(
            {
                "model": model,
                "n_traces": all_traces.get(model, n),
                "n_diagnosed": n,
                "completion": _rate(int(r["n_completed"]), int(r["n_known"])),
                "modes_per_trace": int(r["n_flags"]) / n,
                "traces_with_novel": _rate(int(r["n_novel_traces"]), n),
                "modes": {
                    m.id: _rate(per_mode.get(m.id, 0), checked_of.get((model, m.id), 0))
                    for m in t.taxonomy.modes
                }
                | {
                    k: _rate(v, checked_of.get((model, k), 0))
                    for k, v in per_mode.items()
                    if k not in t.taxonomy.ids
                },
                "dimensions": sc.dimension_rates_from(dims),
                "readiness": sc.readiness_from(scores, dims["passed"], dims, bar),
                "tool_call_success": _rate(ok_calls, calls),
            }
        )
    # Traces of a model whose every diagnosis failed still show up, with no rates.
    diagnosed = set(counts["agent_model"].to_list())
    for model, n in sorted(all_traces.items()):
        if model not in diagnosed:
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
                    "readiness": sc.readiness_from([], (0, 0), {}, bar),
                    "tool_call_success": _rate(0, 0),
                }
            )
    return out


def _agent_setup(f: _Totals) -> list[dict[str, Any]]:
    out = []
    for multi in (False, True, None):
        pick = pl.col("multi_agent").is_null() if multi is None else pl.col("multi_agent") == multi
        allt = f.traces.filter(pick)
        n_all = int(allt["n"].sum())
        if n_all == 0:
            continue
        mine = f.ok.filter(pick)
        n_mine = int(mine["n_diag"].sum())
        n_flags = int(mine["n_flags"].sum())
        out.append(
            {
                "setup": _setup_label(multi),
                "n_traces": n_all,
                "n_diagnosed": n_mine,
                "completion": _rate(int(mine["n_completed"].sum()), int(mine["n_known"].sum())),
                "source_correct": _rate(int(allt["src_true"].sum()), int(allt["n_src"].sum())),
                "modes_per_trace": (n_flags / n_mine) if n_mine else None,
                "traces_with_any_mode": _rate(int(mine["n_any"].sum()), n_mine),
            }
        )
    return out


def _novel(t: RunTables, run: Run, f: _Totals, merges: list[dict[str, Any]]) -> dict[str, Any]:
    titles = run.titles.total()
    n_novel = int(titles["n"].sum())
    top_titles = [
        {"title": title, "n": int(n)}
        for title, n in titles.sort(["n", "title"], descending=[True, False]).head(15).iter_rows()
    ]
    base: dict[str, Any] = {
        "clustered": t.clustered,
        "n_novel_modes": n_novel,
        "n_distinct_titles": titles.height,
        "top_titles": top_titles,
        "merged": merges,
    }
    if not t.clustered:
        base["note"] = "The cluster stage was not run for this run folder (no clusters.parquet): " + (
            "there are no novel failure modes to group."
            if n_novel == 0
            else "run `trajfm cluster RUN` and then `trajfm report RUN` to group the novel modes into families."
        )
        base["families"] = []
        return base
    assert t.clusters is not None
    # "New since baseline" means something only when the cluster stage was given a baseline run.
    cluster_stage = t.manifest.get("stages", {}).get("cluster", {})
    base["baseline_given"] = bool(
        cluster_stage.get("baseline") or (cluster_stage.get("options") or {}).get("baseline")
    )
    n_items = t.n_assignments()
    n_out = t.n_assignments(outliers=True)
    fam = run.families.total() if run.families.frames else pl.DataFrame(schema={"cluster_id": pl.Int64})
    n_traces = {c: int(n or 0) for c, n in fam.select("cluster_id", pl.col("n_traces") if "n_traces" in fam.columns else pl.lit(0)).iter_rows()}
    # The examples: each family's first members by probability (then novel_id), kept by the pass; their text read.
    firsts = run.examples.frame if run.examples.frame is not None else pl.DataFrame(
        schema={"cluster_id": pl.Int64, "novel_id": pl.String}
    )
    texts = t.novel_texts(firsts["novel_id"])
    text_of = {r["novel_id"]: r for r in texts.unique("novel_id", keep="first", maintain_order=True).iter_rows(named=True)}
    families = []
    for c in t.clusters.sort(["cluster_id"]).iter_rows(named=True):
        examples = [text_of.get(i, {"novel_id": i}) for i in
                    firsts.filter(pl.col("cluster_id") == c["cluster_id"])["novel_id"].to_list()]  # fmt: skip
        families.append(
            {
                "cluster_id": c["cluster_id"],
                "name": c["name"],
                "is_outliers": c["cluster_id"] == -1,
                "size": c["size"],
                "share": c["share"],
                "n_traces": n_traces.get(c["cluster_id"], 0),
                "keywords": [
                    k for k in (c["keywords"] or []) if readable(k) and (c["cluster_id"], k) in run.keywords_found
                ][:KEYWORDS_PER_FAMILY],
                "nearest_mode": c["nearest_mode"],
                "similarity": c["similarity"],
                "is_novel": c["is_novel"],
                "new_since_baseline": c["new_since_baseline"] if base["baseline_given"] else None,
                "stability": c["stability"],
                "definition": c["definition"],
                "examples": [
                    {
                        "novel_id": e["novel_id"],
                        "trace_id": e.get("trace_id"),
                        "title": e.get("title"),
                        "description": _excerpt(e.get("description")),
                        "steps": list(e.get("steps") or []),
                        "evidence": _excerpt(e.get("evidence")),
                    }
                    for e in examples
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


def _feedback(t: RunTables, run: Run, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    firsts = run.feedback.frame
    for m in models:
        ranked = sorted(
            ((k, v) for k, v in m["modes"].items() if v["n"] > 0), key=lambda kv: (-kv[1]["n"], kv[0])
        )[:TOP_MODES_PER_MODEL]
        top = []
        for mode_id, rate in ranked:
            # The first flags of this model and mode with their text (has evidence, verified, trace id), kept by
            # the pass from each part's first ones.
            assert firsts is not None
            rows = firsts.filter((pl.col("agent_model") == m["model"]) & (pl.col("mode_id") == mode_id))
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


def _cooccurrence(t: RunTables, f: _Totals) -> dict[str, Any]:
    single: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for combo, n in f.combos:  # the sorted modes of a trace, and how many traces have exactly these
        for i, a in enumerate(combo):
            single[a] += n
            for b in combo[i + 1 :]:
                pairs[(a, b)] += n
    order = [m.id for m in t.taxonomy.modes] + sorted(set(single) - set(t.taxonomy.ids))
    present = [m for m in order if m in single]
    cells = []
    for a in present:
        for b in present:
            n = single[a] if a == b else pairs[(min(a, b), max(a, b))]
            cells.append({"a": a, "b": b, "n": n, "share_of_a": n / single[a] if single[a] else None})
    top_pairs = [
        {"a": a, "b": b, "n": n} for (a, b), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    ]
    return {"modes": present, "cells": cells, "top_pairs": top_pairs}


def _root_cause(run: Run) -> dict[str, Any]:
    values = run.rc_values.total().sort("rel")
    bins = [0] * ROOT_CAUSE_BINS
    for rel, n in values.iter_rows():
        bins[min(int(rel * ROOT_CAUSE_BINS), ROOT_CAUSE_BINS - 1)] += int(n)
    n_inside = run.rc["inside"]
    return {
        "n_with_root_cause": run.rc["n_with"],
        "n_outside_trace": run.rc["n_with"] - n_inside,
        "median_position": _median(values, n_inside),
        "bins": [
            {"lo": i / ROOT_CAUSE_BINS, "hi": (i + 1) / ROOT_CAUSE_BINS, "n": n} for i, n in enumerate(bins)
        ],
    }


def _median(values: pl.DataFrame, n: int) -> float | None:
    """The median of `n` values given as sorted (rel, n) counts: polars' median of the one or two middle values,
    which is its median of all of them."""
    if not n:
        return None
    middle, seen = [], 0
    wanted = [(n - 1) // 2, n // 2]
    for rel, k in values.iter_rows():
        while wanted and wanted[0] < seen + k:
            middle.append(rel)
            wanted.pop(0)
        seen += k
    return float(cast(float, pl.Series(middle, dtype=pl.Float64).median()))


def _ambiguity(run: Run, f: _Totals, models: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ambiguity figures (`ambiguity.py`) from the pass's counts."""
    amb = run.amb.total()
    signals = {s: int(n) for s, n in run.amb_signals.total().iter_rows()}
    run_wide = {
        "signals": SIGNALS,
        "n_flagged": sum(signals.values()),
        "of": f.n_diag,
        "by_signal": {signal: signals.get(signal, 0) for signal in SIGNALS},
        **comparison_from(amb),
    }
    per_model = {m: comparison_from(amb.filter(pl.col("agent_model") == m)) for m in models}
    return run_wide, per_model


def _points(t: RunTables, run: Run) -> list[dict[str, Any]]:
    """The 2-D map's points (empty when the run was not clustered): novel modes of one family at the same place
    (identical texts embed identically) are one point whose `count` sizes it, so 305 items never show as 12
    indistinguishable dots."""
    if not t.clustered or not run.points.frames:
        return []
    assert t.clusters is not None
    keys = ["cluster_id", "px", "py"]
    pts = run.points.total().sort("first")
    models = run.point_models.total().group_by(keys).agg(models=pl.len())
    probs = run.point_probs.total()
    mean = {
        (c, x, y): exact_mean(g, "probability")
        for (c, x, y), g in probs.group_by(keys, maintain_order=True)
    }
    pts = pts.join(models, on=keys, how="left", maintain_order="left")
    texts = t.novel_texts(pts["first"]).unique("novel_id", keep="first")
    text_of = {r["novel_id"]: (r["title"], r["trace_id"]) for r in texts.iter_rows(named=True)}
    names = dict(t.clusters.select("cluster_id", "name").iter_rows())
    out = []
    for r in pts.iter_rows(named=True):
        title, trace = text_of.get(r["first"], (None, None))
        out.append(
            {
                "x": r["px"],
                "y": r["py"],
                "family": names.get(r["cluster_id"]) or f"cluster {r['cluster_id']}",
                "title": (title or "")[:MAP_TITLE_CHARS],
                "trace": trace,
                "models": r["models"],
                "probability": mean[(r["cluster_id"], r["px"], r["py"])],
                "count": r["count"],
            }
        )
    return out


def _setup_gap(setups: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Single- minus multi-agent task completion, in points, with a Newcombe 95% interval."""
    by = {s["setup"]: s["completion"] for s in setups}
    single, multi = by.get("single-agent"), by.get("multi-agent")
    gap = gap_points(single, multi) if single and multi else None
    return None if gap is None else {"single": single["rate"], "multi": multi["rate"], **gap}  # type: ignore[index]


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
