"""Stage 3: a run folder -> report.html (self-contained), summary.json (every figure), summary.md.

Entry point: `build_report(run_dir, taxonomy=None, budget=None, readiness_bar=85, baseline=None) -> ReportResult`
(see `build.py`). Modules: load (read the run tables), families (merge near-identical families, readable
keywords), figures (every number), scorecard (six dimensions, readiness, tool-call success), impact and fixfirst
(failed/completed with each mode and family, lift, the ranked fix-first cards), honesty (synthetic corpus, judge
reliability, sampling), baseline (change since an earlier run), charts (Altair/Vega-Lite specs), drilldown (the
per-trace payload), render (jinja2 + safe inlining), summary (JSON and markdown), feedback (`trajfm feedback`).
"""

from trajfm.report.build import ReportResult, build_report
from trajfm.report.drilldown import TextBudget

__all__ = ["ReportResult", "TextBudget", "build_report"]
