"""Wiring of the impact figures into the report's figures: impact fields on every mode and family, and the
"fix first" cards (definitions in `impact.py`). Kept apart from `figures.py` so each stays readable."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import polars as pl

from trajfm.report import impact as imp
from trajfm.report.advice import nearest_mode_advice
from trajfm.report.load import UNKNOWN_MODEL, RunTables


def add_impact(t: RunTables, fig: dict[str, Any], ok, flags, checked, traces) -> None:
    """Impact fields on every mode and family, and the ranked `fix_first` list (see `impact.py`)."""
    failed = imp.outcomes(ok)
    model_of = dict(traces.select("trace_id", "agent_model").iter_rows())
    checked_ids = {m: set(ids) for m, ids in checked.group_by("mode_id").agg("trace_id").iter_rows()}
    flag_ids = {m: set(ids) for m, ids in flags.group_by("mode_id").agg("trace_id").iter_rows()}
    of_by_model = {m["model"]: m for m in fig["models"] if m["n_diagnosed"]}
    candidates: list[dict[str, Any]] = []
    answers = dict(t.traces.select("trace_id", "final_answer").iter_rows())

    def context(trace_id: str, steps: list[int]) -> list[str]:
        """The texts a quote of this trace may come from: its cited steps first, then the final answer."""
        rows = t.steps.lazy().filter(pl.col("trace_id") == trace_id).collect()
        cited = rows.filter(pl.col("index").is_in(steps)) if steps else rows
        texts = [x for x in cited["content"].to_list() + cited["tool_input"].to_list() if x]
        return texts + [answers.get(trace_id) or ""]

    for m in fig["taxonomy"]["modes"]:
        mode_id = m["mode_id"]
        universe = {tid: f for tid, f in failed.items() if tid in checked_ids.get(mode_id, set())}
        with_ids = flag_ids.get(mode_id, set())
        m.update(imp.impact_of(with_ids, universe))
        if not m["checked"]:
            continue
        rows = [
            {"trace_id": r["trace_id"], "model": r["agent_model"], "steps": r["steps"], "evidence": r["evidence"],
             "verified": r["evidence_verified"]}
            for r in flags.filter(pl.col("mode_id") == mode_id).sort("trace_id").iter_rows(named=True)
        ]  # fmt: skip
        try:
            advice = t.taxonomy.mode(mode_id).suggestion
        except KeyError:
            advice = ""
        of = {name: mm["modes"].get(mode_id, {"of": 0})["of"] for name, mm in of_by_model.items()}
        candidates.append(
            _card("mode", mode_id, m["name"], m, with_ids, rows, failed, model_of, of, advice, "", context)
        )
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
            with_ids = set(mine["trace_id"].to_list())
            f.update(imp.impact_of(with_ids, failed), checked=True)
            if f["is_outliers"]:
                continue
            advice, source = nearest_mode_advice(t.taxonomy, f, names)
            rows = [
                {"trace_id": r["trace_id"], "model": model_of.get(r["trace_id"], UNKNOWN_MODEL),
                 "steps": r["steps"], "evidence": r["evidence"], "verified": False}
                for r in mine.iter_rows(named=True)
            ]  # fmt: skip
            card = _card(
                "family",
                f["cluster_id"],
                f["name"],
                f,
                with_ids,
                rows,
                failed,
                model_of,
                of,
                advice,
                source,
                context,
            )
            candidates.append(card)
    fig["fix_first"] = imp.fix_first(candidates)


def _card(
    kind, ident, name, figs, with_ids, rows, failed, model_of, of, advice, source, context
) -> dict[str, Any]:
    # Failed traces first, taking the models in turn so the links show the problem across models.
    by_model: dict[str, list[str]] = {}
    for tid in sorted(with_ids, key=lambda tid: (failed.get(tid) is not True, tid)):
        by_model.setdefault(model_of.get(tid, UNKNOWN_MODEL), []).append(tid)
    links = [tid for group in zip_longest(*by_model.values()) for tid in group if tid][: imp.TRACE_LINKS]
    return {
        "kind": kind,
        "id": ident,
        "name": name,
        "checked": True,
        "n_traces": len(with_ids),
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
        "models": imp.per_model(with_ids, model_of, of),
        "advice": advice,
        "advice_from": source or "the taxonomy's advice for this mode",
        "evidence": imp.pick_quotes(rows, failed, context),
        "trace_ids": links,
    }
