"""Stage 3: a run folder -> report.html (self-contained), summary.json (every figure), summary.md.

Entry point: `build_report(run_dir, taxonomy=None, budget=None) -> ReportResult` (see `build.py`).
Modules: load (read the run tables), figures (every number), charts (Altair/Vega-Lite specs), drilldown (the
per-trace payload), render (jinja2 + safe inlining), summary (JSON and markdown).
"""

from trajfm.report.build import ReportResult, build_report
from trajfm.report.drilldown import TextBudget

__all__ = ["ReportResult", "TextBudget", "build_report"]
