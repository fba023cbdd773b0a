"""Fit the rules judge's root-cause step scorer on the visible labelled sets and write the shipped weights.

    python benchmarks/fit_root_cause.py [--datasets DIR] [--out FILE] [--l2 X]

Reads Who&When, AgentRx and TRAIL from DIR (default ../shared/datasets or $TRAJFM_DATASETS), computes the step
features the judge computes at run time, fits a conditional logit (each dataset weighs the same) and writes
`pipeline/trajfm/judges/rootcause/root_cause_weights.json`, with the user-request rule's firings and hits on the
same traces (its confidence). Prints, per dataset, the in-sample hit rate of the
top-scored step (in-sample: for left-out figures run `trajfm bench DATASET PATH --protocol lodo`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from trajfm.bench.rootcause_data import ROOT_CAUSE_DATASETS, examples, labelled_failures, user_request_counts
from trajfm.judges.calibration import load_calibration
from trajfm.judges.rootcause.fit import DEFAULT_L2, fit
from trajfm.judges.rootcause.model import DEFAULT_WEIGHTS, RootCauseModel

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"whowhen": "who_and_when", "agentrx": "agentrx", "trail": "trail"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets"))
    ap.add_argument("--datasets", type=Path, default=default)
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--l2", type=float, default=DEFAULT_L2)
    args = ap.parse_args()
    off = load_calibration().off_by_shape()  # run calibrate_detectors.py first
    print(f"finding kinds off by default (shipped calibration): {', '.join(sorted(off)) or 'none'}")
    by_set = {}
    fired = agreed = 0
    for name in ROOT_CAUSE_DATASETS:
        folder = args.datasets / FOLDERS[name]
        if folder.is_dir():
            pairs = labelled_failures(name, folder)
            by_set[name] = examples(pairs, name, off)
            n, k = user_request_counts(pairs, off)
            fired, agreed = fired + n, agreed + k
            print(f"{name}: {len(by_set[name])} labelled failed traces; user-request rule fired {n}, at a "
                  f"labelled step {k}")
    model = fit([e for ex in by_set.values() for e in ex], l2=args.l2)
    for name, ex in by_set.items():
        hits = sum(1 for e in ex if (p := model.pick_rows(e.rows)) is not None and p in e.gold)
        print(f"  in-sample top-step hit rate on {name}: {hits / max(len(ex), 1):.3f}")
    doc = model.to_dict()
    doc["user_request"] = {"fired": fired, "agreed": agreed}
    confidence = RootCauseModel.from_dict(doc).user_request_confidence()
    print(f"user-request root cause: fired {fired}, agreed {agreed}, confidence "
          f"{'unmeasured (default)' if confidence is None else confidence}")
    doc["notes"] = "fitted by benchmarks/fit_root_cause.py on the visible labelled sets (in-sample for them)"
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(doc["weights"], indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
