"""Time and peak memory of `trajfm cluster` (the whole stage: model load, embedding, UMAP/HDBSCAN, stability,
naming, novelty, writing tables) for 513 items (IBM's count of novel modes) and 100,000 items.

Usage:  python benchmarks/bench_cluster.py [--sizes 513,100000] [--datasets DIR] [--seed 0]

Items are made by resampling the 198 real LLM-written novel modes (`assetopsbench/addtional_fm.csv`) and
perturbing them, so the texts look like judge output but are not all identical:
- each item starts from a real (title, description) row drawn with replacement;
- 0, 1 or 2 word edits (probabilities 0.3 / 0.5 / 0.2) to the description: drop a word, swap two neighbours, or
  replace a word from a small synonym table (system/agent, failed/did not manage, answer/response, ...);
- with probability 0.5 an instance detail is appended ("for asset Chiller 6", "(sensor 'Supply Temp 3')"), as
  real descriptions name assets and sensors; with probability 0.1 the title gets a synonym swap.
Each size runs in a fresh subprocess with a fresh run folder (no embedding cache), so model load and numba
compilation are included. Peak memory is the child's maximum resident set size (getrusage RUSAGE_CHILDREN).
The script prints the counts that drive the cost: items, distinct texts, and texts actually embedded.

Choices for scale (documented in trajfm.clustering): duplicates are embedded and fitted once; instance details
are masked before embedding (so many perturbed texts collapse); UMAP runs only from 2,000 distinct texts, with
umap's default epochs; HDBSCAN's parameter scan runs on at most 3,000 distinct texts and the winner is refitted on
all; stability rounds draw from at most 3,000 distinct texts; core_dist_n_jobs=1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYNONYMS = {
    "system": "agent",
    "agent": "system",
    "failed": "did not manage",
    "answer": "response",
    "response": "answer",
    "data": "readings",
    "task": "request",
    "error": "failure",
    "provide": "give",
    "handle": "deal with",
    "lack": "absence",
    "inadequate": "insufficient",
    "insufficient": "inadequate",
    "user's": "operator's",
    "despite": "even though",
    "necessary": "required",
}
ASSETS = [
    "Chiller 6",
    "Chiller 9",
    "AHU 3 East",
    "AHU 4 West",
    "Condenser Pump 1",
    "Air Compressor B",
    "Boiler 2",
    "Cooling Tower 5",
    "PMP-R0102",
    "CWC04009",
    "CU02013",
    "MAIN site",
    "RIVERSIDE site",
]
SENSORS = ["Supply Temp 3", "Return Pressure", "Power kW", "Vibration X", "Flow Rate", "Humidity 2"]


def _perturb(rng: random.Random, title: str, desc: str) -> tuple[str, str]:
    words = desc.split()
    for _ in range(rng.choices((0, 1, 2), weights=(0.3, 0.5, 0.2))[0]):
        if len(words) < 4:
            break
        i = rng.randrange(len(words) - 1)
        op = rng.randrange(3)
        if op == 0:
            del words[i]
        elif op == 1:
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            cands = [j for j, w in enumerate(words) if w.lower() in SYNONYMS]
            if cands:
                j = rng.choice(cands)
                words[j] = SYNONYMS[words[j].lower()]
    desc = " ".join(words)
    if rng.random() < 0.5:
        desc += rng.choice(
            [f" This concerned asset {rng.choice(ASSETS)}.", f" (sensor '{rng.choice(SENSORS)}')"]
        )
    if rng.random() < 0.1:
        tw = title.split()
        cands = [j for j, w in enumerate(tw) if w.lower() in SYNONYMS]
        if cands:
            j = rng.choice(cands)
            tw[j] = SYNONYMS[tw[j].lower()].title()
            title = " ".join(tw)
    return title, desc


def make_csv(source: Path, n: int, seed: int, out: Path) -> None:
    import polars as pl

    base = pl.read_csv(source)
    rows = list(zip(base["title"], base["description"], strict=True))
    rng = random.Random(seed)
    made = [_perturb(rng, *rng.choice(rows)) for _ in range(n)]
    pl.DataFrame({"title": [t for t, _ in made], "description": [d for _, d in made]}).write_csv(out)


def child(csv: Path, run: Path, seed: int) -> None:
    t0 = time.perf_counter()
    from trajfm.clustering.stage import ClusterOptions, run_cluster

    out = run_cluster(run, ClusterOptions(from_csv=csv, seed=seed))
    m = out.manifest
    print(
        json.dumps(
            {
                "wall_in_process_s": round(time.perf_counter() - t0, 2),
                "items": m["counts"]["items"],
                "distinct_texts": m["counts"]["distinct_texts"],
                "embedded": m["embedder"]["computed"],
                "clusters": m["counts"]["clusters"],
                "outlier_share": m["outliers"]["share"],
                "partition_stability": m["stability"].get("partition_ari"),
                "reducer": m["reducer"]["name"],
                "params": {
                    k: m["parameters"].get(k) for k in ("min_cluster_size", "min_samples", "selection")
                },
                "timings": m["timings"],
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="513,100000")
    ap.add_argument(
        "--datasets",
        type=Path,
        default=Path(
            os.environ.get("TRAJFM_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
        ),
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", nargs=2, metavar=("CSV", "RUN"))
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.seed)
        return 0
    source = args.datasets / "assetopsbench" / "addtional_fm.csv"
    if not source.exists():
        print(f"skipped: {source} not found (set TRAJFM_DATASETS)")
        return 0
    print(
        f"{'items':>8} {'distinct':>9} {'embedded':>9} {'clusters':>8} {'outliers':>8} {'stab.':>6} "
        f"{'wall s':>7} {'peak MB':>8}  phases (s)"
    )
    status = 0
    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "modes.csv"
            make_csv(source, n, args.seed, csv)
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(csv),
                    str(Path(tmp) / "run"),
                    "--seed",
                    str(args.seed),
                ],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            # ru_maxrss of children is the largest child so far: sizes run in increasing order, so it is this one.
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            print(f"{n:>8} failed:\n{proc.stderr[-2000:]}")
            status = 1
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        phases = " ".join(f"{k[:-2]} {v:.1f}" for k, v in r["timings"].items() if k != "total_s")
        stab = "-" if r["partition_stability"] is None else f"{r['partition_stability']:.2f}"
        print(
            f"{r['items']:>8} {r['distinct_texts']:>9} {r['embedded']:>9} {r['clusters']:>8} "
            f"{r['outlier_share']:>8.1%} {stab:>6} {wall:>7.1f} {peak_mb:>8.0f}  {phases}; reducer {r['reducer']}, "
            f"hdbscan {r['params']}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
