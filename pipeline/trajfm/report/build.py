"""Stage 3 entry point: a run folder -> report.html, summary.json, summary.md.

`build_report(run_dir)` reads the run tables (`load.py`), computes every figure (`figures.py`), builds the charts
(`charts.py`) and the trace drill-down payload (`drilldown.py`), renders one self-contained HTML file
(`render.py`) and writes the three files atomically into the run folder, then records its section of
manifest.json. Works without the cluster stage's tables: the report then says why there are no families.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from trajfm.report.charts import build_charts
from trajfm.report.drilldown import TextBudget, build_drilldown
from trajfm.report.figures import UNKNOWN_MODEL, compute_figures, run_metadata
from trajfm.report.load import RunTables, load_run
from trajfm.report.render import clean_json, render_html
from trajfm.report.summary import summary_json, summary_markdown
from trajfm.runfolder import atomic_write_text
from trajfm.runlock import recover, run_lock
from trajfm.safetext import show_bidi

MAP_TITLE_CHARS = 140


@dataclass
class ReportResult:
    """What `build_report` wrote and how long it took."""

    html_path: Path
    summary_json_path: Path
    summary_md_path: Path
    html_bytes: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    step_chars_shown: int = 0  # the drill-down's per-step cap after fitting the text budget


def map_points(t: RunTables) -> list[dict[str, Any]]:
    """One point per clustered novel mode, for the 2-D map (empty when the run was not clustered)."""
    if not t.clustered:
        return []
    assert t.clusters is not None and t.novel_assignments is not None
    pts = (
        t.novel_assignments.filter(pl.col("x").is_not_null() & pl.col("y").is_not_null())
        .join(t.novel_modes.select("novel_id", "trace_id", "title"), on="novel_id", how="left")
        .join(t.clusters.select("cluster_id", pl.col("name").alias("family")), on="cluster_id", how="left")
        .join(
            t.traces.select("trace_id", pl.col("agent_model").fill_null(UNKNOWN_MODEL).alias("model")),
            on="trace_id",
            how="left",
        )
        .sort("novel_id")
    )
    return [
        {
            "x": round(r["x"], 4),
            "y": round(r["y"], 4),
            "family": r["family"] or f"cluster {r['cluster_id']}",
            "title": (r["title"] or "")[:MAP_TITLE_CHARS],
            "trace": r["trace_id"],
            "model": r["model"],
            "probability": r["probability"],
        }
        for r in pts.iter_rows(named=True)
    ]


def build_report(
    run_dir: Path | str,
    *,
    taxonomy: str | Path | None = None,
    budget: TextBudget | None = None,
) -> ReportResult:
    """Write the report of one complete run, under the folder's lock (an interrupted extract is finished first;
    a folder that mixes runs is refused by the table readers)."""
    root = Path(run_dir)
    if not root.is_dir():  # the reader says what is missing; no lock file in a folder that is not a run
        return _build_report(run_dir, taxonomy=taxonomy, budget=budget)
    with run_lock(root, "trajfm report"):
        recover(root)
        return _build_report(run_dir, taxonomy=taxonomy, budget=budget)


def _build_report(
    run_dir: Path | str,
    *,
    taxonomy: str | Path | None = None,
    budget: TextBudget | None = None,
) -> ReportResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    t0 = started
    tables = load_run(run_dir, taxonomy=taxonomy)
    t0 = lap("load", t0)
    figures = compute_figures(tables)
    meta = run_metadata(tables.manifest)
    t0 = lap("figures", t0)
    charts = build_charts(figures, map_points(tables))
    t0 = lap("charts", t0)
    drill = build_drilldown(tables, budget)
    t0 = lap("drilldown", t0)
    generated_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    root = tables.run.root
    title = root.resolve().name
    extract = tables.manifest.get("stages", {}).get("extract", {})
    cost = extract.get("cost_usd", extract.get("cost"))
    html = render_html(
        {
            "title": title,
            "generated_at": generated_at,
            "fig": figures,
            "meta": meta,
            "cost": cost,
            "charts": charts,
            "has_map": "novel_map" in charts,
            "drill": drill,
            "drill_caps": {"step": drill["step_cap"], "evidence": drill["evidence_step_cap"]},
            "mode_names": {m["mode_id"]: m["name"] for m in figures["taxonomy"]["modes"]},
        }
    )
    t0 = lap("render", t0)
    summary = clean_json(summary_json(figures, meta, generated_at))
    html_path, json_path, md_path = root / "report.html", root / "summary.json", root / "summary.md"
    # Bidi controls in trace text or file names would reorder what a reader sees: shown as <U+202E> instead.
    atomic_write_text(html_path, show_bidi(html))
    atomic_write_text(json_path, json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    atomic_write_text(md_path, show_bidi(summary_markdown(summary, title)))
    lap("write", t0)
    seconds = time.perf_counter() - started
    html_bytes = html_path.stat().st_size
    tables.run.update_manifest(
        "report",
        {
            "seconds": round(seconds, 3),
            "timings": timings,
            "html_bytes": html_bytes,
            "clustered": tables.clustered,
            "taxonomy": tables.taxonomy.name,
            "step_chars_shown": drill["step_cap"],
            "steps_truncated": drill["n_steps_truncated"],
            "outputs": ["report.html", "summary.json", "summary.md"],
        },
    )
    return ReportResult(
        html_path, json_path, md_path, html_bytes, seconds, timings, summary, drill["step_cap"]
    )
