"""`trajfm bench`: score a judge on public human-labelled traces with each dataset's own metric.

One module per dataset (`whowhen`, `agentrx`, `trail`, `mast`, `assetops`, `tau`), each exposing
`run(path, settings: BenchSettings) -> list[BenchResult]` (one result per dataset part).
`run_bench` runs one, writes RUN/bench.json, and returns the results; `trajfm.bench.table` prints them beside the
published and naive baselines. Shared scoring lives in `metrics`, naive guesses in `baselines`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from trajfm.bench.core import BenchResult, BenchSettings, merge_results, write_bench_json
from trajfm.errors import UsageError

DATASETS = ("whowhen", "agentrx", "trail", "mast", "assetops", "tau")
PROTOCOLS = ("shipped", "lodo")
PROTOCOL_NOTES = {
    "shipped": "protocol shipped: the judge as installed; its root-cause weights were fitted on the visible "
    "labelled sets (Who&When, AgentRx, TRAIL), so on those sets these figures are in-sample",
    "lodo": "",
}


def run_bench(
    dataset: str,
    path: Path,
    *,
    out: Path | None = None,
    judge: str = "rules",
    judge_options: dict[str, Any] | None = None,
    limit: int | None = None,
    progress: bool = False,
    protocol: str = "shipped",
    fit_root: Path | None = None,
) -> list[BenchResult]:
    """Run the `dataset` benchmark on PATH with `judge`; write OUT/bench.json (and the tables as OUT/bench.md)
    when `out` is given.

    `protocol`: "shipped" scores the judge as installed (its shipped weights were fitted on the visible sets, so
    on those the figures are in-sample); "lodo" refits the rules judge's fitted parts without DATASET first
    (`trajfm.bench.lodo`; datasets found under `fit_root`, default PATH's parent) and scores left-out."""
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    lodo_note = None
    if protocol == "lodo":
        if judge != "rules":
            raise UsageError(
                "--protocol lodo refits the rules judge's fitted parts; use it with --judge rules"
            )
        if out is None:
            raise UsageError("--protocol lodo needs --out (the refitted weights are written there)")
        from trajfm.bench.lodo import lodo_judge_options

        extra, lodo_note = lodo_judge_options(dataset, Path(path), Path(out), fit_root)
        judge_options = {**(judge_options or {}), **extra}
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    module = importlib.import_module(f"trajfm.bench.{dataset}")
    settings = BenchSettings(
        judge=judge,
        judge_options=judge_options or {},
        limit=limit,
        progress=progress,
        out=Path(out) if out is not None else None,
    )
    results: list[BenchResult] = module.run(Path(path), settings)
    for r in results:
        r.notes.insert(0, lodo_note or PROTOCOL_NOTES[protocol])
    if out is not None:
        document = merge_results(dataset, results)
        document["options"] = {
            "judge": judge,
            "judge_options": judge_options or {},
            "limit": limit,
            "protocol": protocol,
        }
        write_bench_json(Path(out), document)
        from trajfm.bench.table import markdown
        from trajfm.runfolder import atomic_write_text

        atomic_write_text(Path(out) / "bench.md", markdown(results))
    return results


__all__ = ["DATASETS", "BenchResult", "run_bench"]
