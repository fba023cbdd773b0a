"""Stage 3 entry point: a run folder -> report.html, summary.json, summary.md.

`build_report(run_dir)` reads the run tables (`load.py`), computes every figure (`figures.py`), builds the charts
(`charts.py`) and the trace drill-down payload (`drilldown.py`), renders one self-contained HTML file
(`render.py`) and writes the three files atomically into the run folder, then records its section of
manifest.json. Works without the cluster stage's tables: the report then says why there are no families.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trajfm.errors import UsageError
from trajfm.report.advice import AdviceOptions, LlmAdviser, write_family_advice
from trajfm.report.baseline import compare
from trajfm.report.charts import build_charts
from trajfm.report.drilldown import TextBudget, build_drilldown
from trajfm.report.families import merge_near_identical
from trajfm.report.figures import compute, compute_figures, run_metadata
from trajfm.report.load import RunTables, load_run
from trajfm.report.render import clean_json, render_html
from trajfm.report.scorecard import DEFAULT_READINESS_BAR
from trajfm.report.summary import summary_json, summary_markdown
from trajfm.runfolder import atomic_write_text
from trajfm.runlock import recover, run_lock
from trajfm.safetext import show_bidi


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


def run_figures(
    run_dir: Path | str,
    *,
    taxonomy: str | Path | None = None,
    readiness_bar: float = DEFAULT_READINESS_BAR,
) -> tuple[dict[str, Any], RunTables]:
    """Every figure of one run folder (what summary.json holds, without run metadata), and its tables."""
    tables, merges = merge_near_identical(load_run(run_dir, taxonomy=taxonomy))
    return compute_figures(tables, readiness_bar=readiness_bar, merges=merges), tables


def build_report(
    run_dir: Path | str,
    *,
    taxonomy: str | Path | None = None,
    budget: TextBudget | None = None,
    readiness_bar: float = DEFAULT_READINESS_BAR,
    baseline: Path | str | None = None,
    advice: AdviceOptions | None = None,
) -> ReportResult:
    """Write report.html, summary.json and summary.md into the run folder. With `baseline` (an earlier run
    folder), the report and summary also say how each mode and family changed since (`baseline.py`). With
    `advice`, an LLM writes the advice of the novel families on the fix-first list (`advice.py`).

    Runs under the folder's lock: an interrupted extract is finished first, and a folder that mixes runs is
    refused by the table readers."""
    root = Path(run_dir)
    is_run = root.is_dir()  # else the reader says what is missing; no lock file in a folder that is not a run
    with run_lock(root, "trajfm report") if is_run else contextlib.nullcontext():
        if is_run:
            recover(root)
        return _build_report(run_dir, taxonomy, budget, readiness_bar, baseline, advice)


def _build_report(
    run_dir: Path | str,
    taxonomy: str | Path | None,
    budget: TextBudget | None,
    readiness_bar: float,
    baseline: Path | str | None,
    advice: AdviceOptions | None,
) -> ReportResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    t0 = started
    tables, merges = merge_near_identical(load_run(run_dir, taxonomy=taxonomy))
    adviser = None
    if advice is not None:  # configured before any work: a missing model or endpoint stops here
        adviser = LlmAdviser(advice.base_url, advice.model, redact=advice.redact,
                             cache_path=tables.run.cache_dir / "advice_cache.json")  # fmt: skip
    t0 = lap("load", t0)
    budget = budget or TextBudget()
    computed = compute(tables, readiness_bar=readiness_bar, merges=merges, max_traces=budget.max_traces)
    figures = computed.figures
    if adviser is not None:
        write_family_advice(figures, adviser)
    figures["baseline"] = None
    if baseline is not None:
        if Path(baseline).resolve() == tables.run.root.resolve():
            raise UsageError(f"--baseline {baseline} is the run being reported; give an earlier run folder")
        old, _ = run_figures(baseline, taxonomy=taxonomy, readiness_bar=readiness_bar)
        if old["taxonomy"]["name"] != figures["taxonomy"]["name"]:
            raise UsageError(
                f"--baseline {baseline} was judged against taxonomy {old['taxonomy']['name']}, this run against "
                f"{figures['taxonomy']['name']}: modes cannot be compared; pick a baseline judged the same way"
            )
        figures["baseline"] = compare(figures, old, str(baseline))
    meta = run_metadata(tables.manifest)
    t0 = lap("figures", t0)
    charts = build_charts(figures, computed.points)
    t0 = lap("charts", t0)
    drill = build_drilldown(tables, budget, computed.shown_rows, computed.n_traces)
    drill_total = drill.pop("n_traces_total")
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
            "drill_total": drill_total,
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
            "readiness_bar": readiness_bar,
            "baseline": str(baseline) if baseline is not None else None,
            "advice": adviser.describe() if adviser is not None else {"advice": "nearest"},
        },
    )
    return ReportResult(
        html_path, json_path, md_path, html_bytes, seconds, timings, summary, drill["step_cap"]
    )
