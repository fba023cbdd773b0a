"""Write pipeline/trajfm/report/judge_reliability.json (the judge accuracy the report quotes) from `trajfm bench`
results, so the report's figure and the benchmark have one source.

    python benchmarks/judge_reliability.py [--runs DIR] [--datasets DIR] [--run] [--out FILE]

Reads DIR/DATASET/bench.json for every row of `lodo_table.ROWS` (the folders `python benchmarks/lodo_table.py
--out DIR` writes; default DIR runs/lodo). With --run, a dataset whose bench.json is missing is benchmarked first
(`trajfm bench DATASET PATH --protocol lodo --out DIR/DATASET`). Each figure keeps the bench's value, the best
naive baseline computed on the same traces and the protocol it was measured under; rows without a result are
left out and named on stdout. Judges other than the rules judge have no bench result here and are written as
not measured. Never edit the JSON by hand: re-run this script after re-measuring.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from lodo_table import ROWS  # noqa: E402

DEFAULT_OUT = REPO / "pipeline" / "trajfm" / "report" / "judge_reliability.json"
RULES_CAVEAT = (
    "Figures are left-out where the protocol is lodo (the judge's fitted parts refitted without the dataset "
    "scored). On real traces its mode labels barely agree with human labels (see the MAST row); treat per-mode "
    "rates as leads to check in the traces, not as measurements. Where a trace records its own outcome (a final "
    "review status, is_correct, a reward), that outcome decides task completion; elsewhere the judge decides it "
    "from its own findings, and modes that block completion then fail those traces by construction."
)
NOT_MEASURED = {
    "llm": "No LLM judge has been scored with trajfm bench yet (no model endpoint was reachable when the "
    "benchmarks ran); its accuracy on this run is unknown."
}


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def figures_from_bench(
    document: dict[str, Any], label: str, metrics: tuple[str, ...], part_name: str | None = None
) -> list[dict[str, Any]]:
    """The report's figures for one bench.json document: `metrics` of its part named `part_name` (None: its first
    part), each beside the best naive baseline of the same run."""
    parts = [p for p in document["parts"] if part_name is None or p.get("part") == part_name]
    if not parts:
        return []
    part = parts[0]
    protocol = (document.get("options") or {}).get("protocol", "shipped")
    out = []
    for metric in metrics:
        ours = _finite(part["metrics"].get(metric))
        if ours is None:
            continue
        naive = [(_finite(v.get(metric)), name) for name, v in part.get("baselines", {}).items()]
        naive = [(v, name) for v, name in naive if v is not None]
        best, best_name = max(naive) if naive else (None, None)
        out.append(
            {
                "dataset": label,
                "metric": part["metric_names"].get(metric, metric),
                "value": round(ours, 3),
                "best_naive": None if best is None else round(best, 3),
                "best_naive_name": best_name,
                "protocol": protocol,
                "n_traces": part["n_traces"],
            }
        )
    return out


def reliability_document(runs: Path) -> tuple[dict[str, Any], list[str]]:
    """The judge_reliability.json document from the bench.json files under RUNS, and the rows not found."""
    figures, missing, dates = [], [], []
    for dataset, _folder, part, metrics, label in ROWS:
        path = runs / dataset / "bench.json"
        if not path.is_file():
            missing.append(f"{label}: no {path}")
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        if (document.get("options") or {}).get("judge", "rules") != "rules":
            missing.append(f"{label}: {path} scores another judge")
            continue
        figures += figures_from_bench(document, label, metrics, part)
        dates.append(time.strftime("%Y-%m-%d", time.gmtime(path.stat().st_mtime)))
    protocols = sorted({f["protocol"] for f in figures})
    rules = {
        "measured": (
            f"{max(dates)} with trajfm bench --protocol {'/'.join(protocols)} (benchmarks/lodo_table.py)"
            if figures
            else None
        ),
        "figures": figures,
        "caveat": RULES_CAVEAT,
    }
    document = {
        "_about": "Accuracy of the built-in judges as measured by `trajfm bench`, written by "
        "`python benchmarks/judge_reliability.py` from the bench.json results; do not edit by hand. The report "
        "quotes these next to the figures a judge produced.",
        "rules": rules,
        **{
            name: {"measured": None, "figures": [], "caveat": caveat} for name, caveat in NOT_MEASURED.items()
        },
    }
    return document, missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=REPO / "runs" / "lodo")
    ap.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets")),
    )
    ap.add_argument("--run", action="store_true", help="benchmark the datasets whose bench.json is missing")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    if args.run:
        from trajfm.bench import run_bench

        for dataset, folder, _part, _metrics, label in ROWS:
            if (args.runs / dataset / "bench.json").is_file():
                continue
            path = args.datasets / folder if folder else REPO / "traces" / "assetops"
            if not path.exists():
                print(f"{label}: not found at {path}")
                continue
            print(f"benchmarking {label} ...", flush=True)
            run_bench(dataset, path, out=args.runs / dataset, protocol="lodo", fit_root=args.datasets)
    document, missing = reliability_document(args.runs)
    for line in missing:
        print(f"left out: {line}")
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for f in document["rules"]["figures"]:
        print(f"{f['dataset']}: {f['metric']} {f['value']} (best naive {f['best_naive']}, {f['protocol']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
