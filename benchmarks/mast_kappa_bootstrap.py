"""How uncertain the MAST kappa is: a bootstrap over the human-labelled records of a MAST bench result.

    python benchmarks/mast_kappa_bootstrap.py [BENCH_JSON] [--resamples N] [--seed S]

BENCH_JSON is the `bench.json` that `benchmarks/lodo_table.py` writes for MAST (default: runs/lodo/mast/bench.json,
the left-out run; `--out DIR` of that script moves it). Records are drawn with replacement, as many as there are,
and Cohen's kappa over (record, mode) cells is recomputed on each draw with the judge's own predictions and the
annotators' labels from the file, over the modes the judge checks (the bench's per-mode table). Prints the point
figure and the 95% percentile interval. Draws whose cells hold one class only (kappa undefined) are left out and
counted.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

from trajfm.bench import metrics as m

REPO = Path(__file__).resolve().parents[1]


def kappa(rows: list[dict[str, Any]], modes: list[str]) -> float:
    pred: list[bool] = []
    gold: list[bool] = []
    for r in rows:
        for mode in modes:
            pred.append(mode in r["pred"])
            gold.append(mode in r["gold"])
    return m.cohen_kappa(pred, gold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench_json", nargs="?", type=Path, default=REPO / "runs" / "lodo" / "mast" / "bench.json")
    ap.add_argument("--resamples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    if not args.bench_json.is_file():
        raise SystemExit(f"{args.bench_json}: no such file; run `python benchmarks/lodo_table.py` first")
    doc = json.loads(args.bench_json.read_text(encoding="utf-8"))
    part = doc["parts"][0]
    modes = [r["mode"] for r in part["extra_tables"]["per_mode"]]
    rows = [r for r in part["per_trace"] if r["status"] == "ok"]
    rng = random.Random(args.seed)
    draws = [kappa([rng.choice(rows) for _ in rows], modes) for _ in range(args.resamples)]
    defined = sorted(k for k in draws if not math.isnan(k))
    lo = defined[int(0.025 * len(defined))]
    hi = defined[max(0, int(0.975 * len(defined)) - 1)]
    print(f"{args.bench_json}: {len(rows)} records, {len(modes)} checked modes ({', '.join(modes)})")
    print(f"kappa {kappa(rows, modes):.3f}; 95% bootstrap interval {lo:.3f} to {hi:.3f} "
          f"({len(defined)} of {len(draws)} draws defined, seed {args.seed})")  # fmt: skip


if __name__ == "__main__":
    main()
