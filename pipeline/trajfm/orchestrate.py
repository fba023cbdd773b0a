"""`trajfm run TRACES... --out RUN`: extract -> cluster -> report in one run folder.

Calls the real stage functions (`trajfm.extract.run_extract`, `trajfm.clustering.stage.run_cluster`,
`trajfm.report.build_report`) with the options of each, in order. The cluster stage is skipped when the extract
stage found no novel failure modes (there is nothing to group); any clusters left in the folder by an earlier run
are then removed so the report cannot show stale families, and the report says the stage was skipped. The
orchestration is recorded in the manifest's "run" section (stages run or skipped, why, and wall times).

The run folder's lock (`trajfm.runlock.run_lock`) is taken by extract once its checks pass and kept until the
report is written, so no other trajfm process can write into the folder between the stages (each stage takes the
same lock again, which is reentrant within a process).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from trajfm.extract import ExtractResult
from trajfm.report import ReportResult, TextBudget, build_report
from trajfm.runfolder import RunFolder
from trajfm.runlock import run_lock


@dataclass
class PipelineResult:
    run_dir: Path
    report: ReportResult
    clustered: bool
    cluster_skip_reason: str | None
    seconds: dict[str, float] = field(default_factory=dict)
    load_failures: list[str] = field(default_factory=list)
    extract: ExtractResult | None = None  # what the extract stage did (calls, cache hits, failed traces)


def run_pipeline(
    inputs: list[Path],
    out: Path,
    *,
    extract_options: dict[str, Any] | None = None,
    cluster_options: dict[str, Any] | None = None,
    cluster: bool = True,
    taxonomy: str | None = None,
    budget: TextBudget | None = None,
    report_options: dict[str, Any] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> PipelineResult:
    """Run all three stages into `out`. Option dicts are passed to each stage's options as keyword arguments.
    `on_stage(message)` is told when the cluster and report stages start (the CLI shows it: they have no bar)."""
    say = on_stage or (lambda _message: None)
    from trajfm.clustering.stage import ClusterOptions, check_options, run_cluster
    from trajfm.extract import run_extract

    by_taxonomy: dict[str, Any] = {"taxonomy": taxonomy} if taxonomy else {}
    if cluster:  # a wrong cluster option should stop the run before extract spends judge calls, not after
        check_options(ClusterOptions(**by_taxonomy, **(cluster_options or {})))
    advice = (report_options or {}).get("advice")
    if advice is not None:  # likewise a missing --advice llm model or endpoint
        from trajfm.report.advice import LlmAdviser

        LlmAdviser(advice.base_url, advice.model)
    with contextlib.ExitStack() as held:
        # Extract takes the folder's lock once its checks pass and the folder exists; `hold` keeps it until the
        # report is written (a failing check leaves nothing behind: no folder, no lock file).
        def hold(root: Path) -> None:
            held.enter_context(run_lock(root, "trajfm run", relabel=True))

        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        extracted = run_extract(list(inputs), out, **by_taxonomy, **(extract_options or {}), on_locked=hold)
        seconds["extract"] = round(time.perf_counter() - t0, 3)

        run = RunFolder.open(out)
        n_novel = run.scan_table("novel_modes").select(pl.len()).collect().item()  # counted, not read
        skip_reason = None
        if not cluster:
            skip_reason = "the cluster stage was turned off (--no-cluster)"
        elif n_novel == 0:
            skip_reason = "extract found no novel failure modes, so there is nothing to group"
        if skip_reason is None:
            say(f"clustering {n_novel} novel failure modes into families ...")
            t0 = time.perf_counter()
            run_cluster(out, ClusterOptions(**by_taxonomy, **(cluster_options or {})))
            seconds["cluster"] = round(time.perf_counter() - t0, 3)
        else:
            # Tables from an earlier run in this folder would describe other traces: drop them.
            for table in ("clusters", "novel_assignments"):
                run.remove_table(table)

        say("writing the report ...")
        t0 = time.perf_counter()
        report = build_report(out, taxonomy=taxonomy, budget=budget, **(report_options or {}))
        seconds["report"] = round(time.perf_counter() - t0, 3)
        run.update_manifest(
            "run",
            {
                "inputs": [str(p) for p in inputs],
                "stages": ["extract", *(["cluster"] if skip_reason is None else []), "report"],
                "cluster_skipped": skip_reason,
                "seconds": seconds,
            },
        )
        failures = [str(f) for f in extracted.load_failures]
        return PipelineResult(Path(out), report, skip_reason is None, skip_reason, seconds, failures, extracted)
