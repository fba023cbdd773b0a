"""Wiring of the impact figures into the report's figures: impact fields on every mode and family, and the
"fix first" cards (definitions in `impact.py`). Kept apart from `figures.py` so each stays readable."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import polars as pl

from trajfm.report import impact as imp
from trajfm.report.advice import nearest_mode_advice
from trajfm.report.load import UNKNOWN_MODEL, RunTables


def add_impact(t: RunTables, fig: dict[str, Any], ok, flags, cells, traces) -> None:
    """Impact fields on every mode and family, and the ranked `fix_first` list (see `impact.py`). `cells`: per
    mode the 2x2 counts over the traces it was checked on (`figures._checked`).

    Computed with polars joins, never a Python object per trace: a run of a million traces has a million
    trace ids per checked mode, which as Python sets and dicts cost gigabytes."""
    known = ok.filter(pl.col("task_completed").is_not_null()).select(
        "trace_id", failed=pl.col("task_completed").not_()
    )
    models = traces.select("trace_id", model=pl.col("agent_model"))
    of_by_model = {m["model"]: m for m in fig["models"] if m["n_diagnosed"]}
    candidates: list[dict[str, Any]] = []

    def context(trace_id: str, steps: list[int]) -> list[str]:
        """The texts a quote of this trace may come from: its cited steps first, then the final answer."""
        rows = t.steps.lazy().filter(pl.col("trace_id") == trace_id).collect()
        cited = rows.filter(pl.col("index").is_in(steps)) if steps else rows
        texts = [x for x in cited["content"].to_list() + cited["tool_input"].to_list() if x]
        answer = (
            t.scan("traces").filter(pl.col("trace_id") == trace_id).select("final_answer").head(1).collect()
        )["final_answer"].to_list()
        return texts + [(answer[0] if answer else None) or ""]

    for m in fig["taxonomy"]["modes"]:
        mode_id = m["mode_id"]
        m.update(imp.impact_from_counts(*cells.get(mode_id, (0, 0, 0, 0))))
        flagged = flags.filter(pl.col("mode_id") == mode_id).select("trace_id", "agent_model")
        if not m["checked"]:
            continue
        # The flags' text, read for this mode only (one row per trace, as `flags` has).
        rows = (
            t.flag_rows()
            .filter(pl.col("mode_id") == mode_id)
            .join(flagged.lazy(), on="trace_id", how="inner")
            .select(
                "trace_id", "steps", "evidence", model=pl.col("agent_model"), verified=pl.col("evidence_verified")
            )
            .sort("trace_id", maintain_order=True)
            .unique("trace_id", keep="first", maintain_order=True)
            .collect(engine="streaming")
        )
        try:
            advice = t.taxonomy.mode(mode_id).suggestion
        except KeyError:
            advice = ""
        of = {name: mm["modes"].get(mode_id, {"of": 0})["of"] for name, mm in of_by_model.items()}
        candidates.append(_card("mode", mode_id, m["name"], m, rows, known, of, advice, "", context))
    nv = fig["novel"]
    if nv["clustered"]:
        assert t.novel_assignments is not None
        members = t.novel_assignments.join(t.novel_modes, on="novel_id", how="inner").filter(
            pl.col("trace_id").is_in(ok["trace_id"].implode())
        )
        of = {name: mm["n_diagnosed"] for name, mm in of_by_model.items()}
        names = {mode["mode_id"]: mode["name"] for mode in fig["taxonomy"]["modes"]}
        for f in nv["families"]:
            mine = members.filter(pl.col("cluster_id") == f["cluster_id"]).sort("novel_id")
            f.update(imp.impact_from_frames(mine.select("trace_id").unique(), known), checked=True)
            if f["is_outliers"]:
                continue
            advice, source = nearest_mode_advice(t.taxonomy, f, names)
            texts = t.novel_texts(mine["novel_id"]).select("novel_id", "steps", "evidence")
            rows = (
                mine.join(texts, on="novel_id", how="left", maintain_order="left")
                .join(models, on="trace_id", how="left", maintain_order="left")
            ).select(
                "trace_id",
                model=pl.col("model").fill_null(UNKNOWN_MODEL),
                steps=pl.col("steps"),
                evidence=pl.col("evidence"),
                verified=pl.lit(False),
            )
            candidates.append(_card("family", f["cluster_id"], f["name"], f, rows, known, of, advice, source, context))
    fig["fix_first"] = imp.fix_first(candidates)


def _card(kind, ident, name, figs, rows: pl.DataFrame, known: pl.DataFrame, of, advice, source, context) -> dict[str, Any]:
    """One fix-first candidate. `rows`: trace_id, model, steps, evidence, verified, one per finding (a trace may
    have several novel modes in one family); `known`: trace_id -> failed for traces with an outcome."""
    per_trace = rows.unique("trace_id", keep="first", maintain_order=True).select("trace_id", "model")
    # Failed traces first, taking the models in turn so the links show the problem across models.
    ordered = (
        per_trace.join(known, on="trace_id", how="left")
        .with_columns(later=pl.col("failed").fill_null(False).not_())
        .sort(["later", "trace_id"])
    )
    firsts = ordered.group_by("model", maintain_order=True).head(imp.TRACE_LINKS)
    by_model = {mo: ids for mo, ids in firsts.group_by("model", maintain_order=True).agg("trace_id").iter_rows()}
    links = [tid for group in zip_longest(*by_model.values()) for tid in group if tid][: imp.TRACE_LINKS]
    counts = dict(per_trace.group_by("model").len().iter_rows())
    return {
        "kind": kind,
        "id": ident,
        "name": name,
        "checked": True,
        "n_traces": per_trace.height,
        **{
            k: figs[k]
            for k in (
                "failed_with",
                "completed_with",
                "fail_rate_with",
                "fail_rate_without",
                "lift",
                "lift_ci_low",
                "lift_ci_high",
                "excess_failed",
            )
        },  # fmt: skip
        "models": imp.per_model_counts(counts, of),
        "advice": advice,
        "advice_from": source or "the taxonomy's advice for this mode",
        "evidence": imp.pick_quotes_frame(rows, known, context),
        "trace_ids": links,
    }
