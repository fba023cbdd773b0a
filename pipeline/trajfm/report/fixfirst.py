"""Wiring of the impact figures into the report's figures: impact fields on every mode and family, and the
"fix first" cards (definitions in `impact.py`). Kept apart from `figures.py` so each stays readable."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import polars as pl

from trajfm.report import impact as imp
from trajfm.report.advice import nearest_mode_advice
from trajfm.report.load import RunTables
from trajfm.report.passes import Run


def add_impact(t: RunTables, fig: dict[str, Any], run: Run, f: Any) -> None:
    """Impact fields on every mode and family, and the ranked `fix_first` list (see `impact.py`), from the pass's
    counts (`passes.py`): per mode the 2x2 counts over the traces it was checked on, per family the traces with
    it among the usable ones with an outcome, and per card the first links and the quote candidates.

    Computed from counts and a few rows per card, never a Python object per trace: a run of a million traces has
    a million trace ids per checked mode, which as Python sets and dicts cost gigabytes."""
    n_known, n_completed = int(f.ok["n_known"].sum()), int(f.ok["n_completed"].sum())
    n_failed = n_known - n_completed
    of_by_model = {m["model"]: m for m in fig["models"] if m["n_diagnosed"]}
    cells: dict[str, dict[tuple[bool, bool], int]] = {}
    for mode_id, w, failed, n in (
        f.cube.filter(pl.col("failed").is_not_null()).group_by("mode_id", "_with", "failed").agg(pl.col("n").sum()).iter_rows()
    ):
        cells.setdefault(mode_id, {})[(w, failed)] = int(n)
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

    cards = _Cards(run, context)
    for m in fig["taxonomy"]["modes"]:
        mode_id = m["mode_id"]
        c = cells.get(mode_id, {})
        m.update(imp.impact_from_counts(c.get((True, True), 0), c.get((True, False), 0), c.get((False, True), 0),
                                        c.get((False, False), 0)))  # fmt: skip
        if not m["checked"]:
            continue
        counts = {
            mo: int(n) for mo, n in f.mode_model.filter(pl.col("mode_id") == mode_id).select("agent_model", "n").iter_rows()
        }
        try:
            advice = t.taxonomy.mode(mode_id).suggestion
        except KeyError:
            advice = ""
        of = {name: mm["modes"].get(mode_id, {"of": 0})["of"] for name, mm in of_by_model.items()}
        candidates.append(cards.card("mode", mode_id, m["name"], m, counts, of, advice, ""))
    nv = fig["novel"]
    if nv["clustered"]:
        fam = run.families.total() if run.families.frames else pl.DataFrame(schema={"cluster_id": pl.Int64})
        ab = {
            c: (int(a or 0), int(b or 0))
            for c, a, b in fam.select(
                "cluster_id", *(pl.col(k) if k in fam.columns else pl.lit(0).alias(k) for k in ("a", "b"))
            ).iter_rows()
        }
        fam_model = run.family_model.total() if run.family_model.frames else None
        of = {name: mm["n_diagnosed"] for name, mm in of_by_model.items()}
        names = {mode["mode_id"]: mode["name"] for mode in fig["taxonomy"]["modes"]}
        for fa in nv["families"]:
            a, b = ab.get(fa["cluster_id"], (0, 0))
            fa.update(imp.impact_from_counts(a, b, n_failed - a, n_completed - b), checked=True)
            if fa["is_outliers"]:
                continue
            advice, source = nearest_mode_advice(t.taxonomy, fa, names)
            counts = (
                {}
                if fam_model is None
                else {mo: int(n) for mo, n in fam_model.filter(pl.col("cluster_id") == fa["cluster_id"]).select("model", "n").iter_rows()}
            )  # fmt: skip
            candidates.append(cards.card("family", fa["cluster_id"], fa["name"], fa, counts, of, advice, source))
    fig["fix_first"] = imp.fix_first(candidates)


class _Cards:
    def __init__(self, run: Run, context: Any) -> None:
        self.links = run.links.frame
        self.quotes = run.quotes.frame
        self.context = context

    def card(self, kind, ident, name, figs, counts: dict[str, int], of, advice, source) -> dict[str, Any]:
        """One fix-first candidate: `counts` per model the traces with it."""
        key = f"{kind}:{ident}"
        links: list[str] = []
        if self.links is not None:
            # Failed traces first, taking the models in turn so the links show the problem across models.
            firsts = self.links.filter(pl.col("card") == key)
            by_model = {mo: ids for mo, ids in firsts.group_by("model", maintain_order=True).agg("trace_id").iter_rows()}
            links = [tid for group in zip_longest(*by_model.values()) for tid in group if tid][: imp.TRACE_LINKS]
        quotes = (
            imp.pick_from_candidates(self.quotes.filter(pl.col("card") == key), self.context)
            if self.quotes is not None
            else []
        )
        return {
            "kind": kind,
            "id": ident,
            "name": name,
            "checked": True,
            "n_traces": sum(counts.values()),
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
            "evidence": quotes,
            "trace_ids": links,
        }
