"""How fast the rules judge is: traces per second on one core, on AssetOpsBench-size traces.

    python benchmarks/bench_rules_judge.py [TRACES...] [--repeat N]

Default input: the bundled corpus (traces/assetops), plus the public AssetOpsBench files when
../shared/datasets is present (real MetaAgent runs with large nested sub-agent trajectories). Loading is not
timed; the judge (`RulesJudge.diagnose`, all detectors and the mapping) is, over `--repeat` passes, in this
process only (one core). Prints traces/s, µs per trace, and the size of the traces judged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from trajfm.judges import _compiled
from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces import load_traces

REPO = Path(__file__).resolve().parents[1]


def _default_inputs() -> list[tuple[str, Path]]:
    out = [("bundled corpus", REPO / "traces" / "assetops")]
    datasets = Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets"))
    if (datasets / "assetopsbench").is_dir():
        out.append(("AssetOpsBench public files", datasets / "assetopsbench"))
    return out


def bench(name: str, paths: list[Path], repeat: int) -> None:
    traces = load_traces(paths).traces
    if not traces:
        print(f"{name}: no traces")
        return
    judge, taxonomy = RulesJudge(), load_taxonomy("mast")
    for t in traces[:50]:  # warm-up: compiled regexes, imports
        judge.diagnose(t, taxonomy)
    passes = []
    for _ in range(repeat):
        t0 = time.process_time()
        for t in traces:
            judge.diagnose(t, taxonomy)
        passes.append(time.process_time() - t0)
    best, median = min(passes), statistics.median(passes)
    chars = [t.n_chars for t in traces]
    steps = [len(t.steps) for t in traces]
    print(
        f"{name}: {len(traces)} traces, median {statistics.median(chars) / 1000:.1f} K chars "
        f"(max {max(chars) / 1000:.0f} K), median {statistics.median(steps):.0f} steps (nested included)\n"
        f"  CPU time per pass: best {best:.3f} s, median {median:.3f} s over {repeat} passes\n"
        f"  {len(traces) / best:,.0f} traces/s on one core (best pass), {len(traces) / median:,.0f} traces/s (median); "
        f"{best / len(traces) * 1e6:,.0f} µs per trace; rules judge modules: {_compiled.STATE}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    inputs = [(str(p), p) for p in args.traces] if args.traces else _default_inputs()
    for name, path in inputs:
        bench(name, [path], args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
