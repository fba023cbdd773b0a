"""Measure each rules-detector finding kind's precision on the visible labelled sets; write the shipped file.

    python benchmarks/calibrate_detectors.py [--datasets DIR] [--out FILE]

TRAIL (span-level error locations) and the MAST human subset (per-mode labels) are the sets whose labels can call
a finding wrong (see `trajfm.bench.calibrate`). Prints per trace shape (span trees, message logs) and kind:
findings, agreed, precision, and whether the kind is on by default on that shape (kinds under 0.5 precision on at
least `min_findings` findings of a shape are off on it). Writes
`pipeline/trajfm/judges/detector_calibration.json`. In-sample for TRAIL and MAST; `trajfm bench --protocol lodo`
re-measures without the scored set.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from trajfm.bench.calibrate import measure
from trajfm.judges.calibration import DEFAULT_CALIBRATION, SHAPES, Calibration, measured

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets")),
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION)
    args = ap.parse_args()
    counts, used = measure(args.datasets)
    doc = measured(counts, used)
    doc["notes"] = "measured by benchmarks/calibrate_detectors.py (in-sample for the datasets listed)"
    cal = Calibration.from_dict(doc)
    for shape in SHAPES:
        table = cal.for_shape(shape)
        print(f"{shape} traces: measured on {', '.join(used.get(shape, [])) or 'nothing'}")
        print(f"  {'kind':34s} {'findings':>8s} {'agreed':>6s} {'precision':>9s}  default")
        for kind, (n, k) in sorted(counts.get(shape, {}).items()):
            p = f"{k / n:.3f}" if n else "-"
            state = (
                "off"
                if not table.enabled(kind)
                else ("on" if kind in table.precision else "on (too few to measure)")
            )
            print(f"  {kind:34s} {n:8d} {k:6d} {p:>9s}  {state}")
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
