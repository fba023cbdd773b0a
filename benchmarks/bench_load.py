"""Traces loaded per second, per source format, with the project's loaders (`trajfm.traces.load_traces`).

Usage: python benchmarks/bench_load.py [--repeats 5] [--datasets ../shared/datasets]

Loads each source several times and prints the median wall time, traces/s and MB/s per source, then one
summary line. Sources: the bundled corpus (traces/assetops) and, when present, the public datasets (Who&When,
AgentRx tau-bench, TRAIL GAIA span trees, MAST raw logs, AssetOpsBench samples). Sources that are absent are
reported as skipped, never guessed. Not a timed test: run it by hand or from benchmarks/run_all.sh.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _datasets_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("TRAJFM_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def sources(datasets: Path) -> list[tuple[str, Path]]:
    return [
        ("bundled corpus (traces/assetops)", REPO / "traces" / "assetops"),
        ("AssetOpsBench samples", datasets / "assetopsbench"),
        ("Who&When Algorithm-Generated", datasets / "who_and_when" / "Algorithm-Generated"),
        (
            "AgentRx tau-bench (1 file, 100 runs)",
            datasets / "agentrx" / "tau_retail" / "tau_dataset_full.json",
        ),
        ("TRAIL GAIA span trees", datasets / "trail" / "data" / "GAIA"),
        ("MAST human subset (raw logs)", datasets / "mast_mad_human" / "MAD_human_labelled_dataset.json"),
    ]


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _count(loaded: object) -> int:
    traces = loaded if isinstance(loaded, list) else getattr(loaded, "traces", [])
    return len(traces)


def measure(path: Path, repeats: int) -> tuple[int, float]:
    """(traces loaded, median seconds) over `repeats` loads."""
    from trajfm.traces import load_traces

    times, n = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        loaded = load_traces([path])
        times.append(time.perf_counter() - t0)
        n = _count(loaded)
    return n, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--datasets", default=None)
    args = ap.parse_args(argv)
    datasets = _datasets_dir(args.datasets)
    print(
        f"# bench_load  {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}  "
        f"{os.cpu_count()} cpus  python {platform.python_version()}  median of {args.repeats}"
    )
    print(f"{'source':42s} {'traces':>7s} {'MB':>7s} {'median s':>9s} {'traces/s':>9s} {'MB/s':>7s}")
    total_n, total_s, total_mb = 0, 0.0, 0.0
    for name, path in sources(datasets):
        if not path.exists():
            print(f"{name:42s} skipped: {path} not found")
            continue
        mb = _size(path) / 1e6
        n, secs = measure(path, args.repeats)
        total_n, total_s, total_mb = total_n + n, total_s + secs, total_mb + mb
        print(
            f"{name:42s} {n:7d} {mb:7.1f} {secs:9.3f} {n / secs if secs else 0:9.1f} {mb / secs if secs else 0:7.1f}"
        )
    if total_s:
        print(
            f"{'all sources':42s} {total_n:7d} {total_mb:7.1f} {total_s:9.3f} {total_n / total_s:9.1f} "
            f"{total_mb / total_s:7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
