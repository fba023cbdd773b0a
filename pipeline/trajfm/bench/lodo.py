"""`trajfm bench --protocol lodo`: score the rules judge on a dataset with weights fitted without it.

Contract: `lodo_judge_options(dataset, path, out, fit_root)` measures each detector kind's precision on the
calibration datasets (`bench.calibrate`) except `dataset` (OUT/calibration_lodo.json; kinds under 0.5 are off),
then fits the root-cause step scorer on every visible dataset that carries root-cause labels
(`rootcause_data.ROOT_CAUSE_DATASETS`, found under `fit_root`) except `dataset`, with those kinds off
(OUT/root_cause_lodo.json), and returns the judge options that make the rules judge use both, with a note saying
what was measured and fitted on what. A dataset that gives no root-cause labels (MAST, the
bundled corpus) is scored with weights fitted on all of them: nothing of it was seen in fitting either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trajfm.errors import UsageError

# Where each dataset sits under a datasets folder (../shared/datasets).
FOLDERS = {"whowhen": "who_and_when", "agentrx": "agentrx", "trail": "trail", "mast": "mast_mad_human"}


def default_fit_root(path: Path) -> Path:
    """The folder holding the visible datasets: the parent of PATH when PATH is one of them."""
    path = path.resolve()
    for candidate in (path.parent, path.parent.parent):
        if any((candidate / f).is_dir() for f in FOLDERS.values()):
            return candidate
    return path.parent


def lodo_judge_options(
    dataset: str, path: Path, out: Path, fit_root: Path | None = None
) -> tuple[dict[str, Any], str]:
    from trajfm.bench.calibrate import measure
    from trajfm.bench.rootcause_data import (
        ROOT_CAUSE_DATASETS,
        examples,
        labelled_failures,
        user_request_counts,
    )
    from trajfm.judges.calibration import Calibration, measured
    from trajfm.judges.rootcause.fit import fit

    root = fit_root or default_fit_root(path)
    out.mkdir(parents=True, exist_ok=True)
    counts, cal_used = measure(root, exclude=dataset)
    cal_doc = measured(counts, cal_used)
    cal_doc["notes"] = f"lodo: measured without {dataset}"
    calibration = out / "calibration_lodo.json"
    calibration.write_text(json.dumps(cal_doc, indent=1) + "\n", encoding="utf-8")
    off = Calibration.from_dict(cal_doc).off_by_shape()
    used: list[str] = []
    data = []
    fired = agreed = 0
    for name in ROOT_CAUSE_DATASETS:
        folder = root / FOLDERS[name]
        if name == dataset or not folder.is_dir():
            continue
        pairs = labelled_failures(name, folder)
        ex = examples(pairs, name, off)
        n, k = user_request_counts(pairs, off)
        fired, agreed = fired + n, agreed + k
        if ex:
            used.append(f"{name} ({len(ex)})")
            data += ex
    if not data:
        raise UsageError(
            f"--protocol lodo found no other labelled dataset to fit on under {root} (looked for "
            f"{', '.join(FOLDERS[n] for n in ROOT_CAUSE_DATASETS if n != dataset)}); pass --fit-root DIR"
        )
    model = fit(data)
    weights = out / "root_cause_lodo.json"
    doc = model.to_dict()
    doc["user_request"] = {"fired": fired, "agreed": agreed}
    doc["notes"] = f"lodo: fitted without {dataset}"
    weights.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    note = (
        f"protocol lodo: root-cause step scorer fitted on {', '.join(used)} only, not on {dataset} "
        f"({weights.name}); detector precision measured per trace shape ({calibration.name}): "
        + "; ".join(
            f"{shape} on {', '.join(cal_used.get(shape, [])) or 'nothing'} "
            f"(off: {', '.join(sorted(off[shape])) or 'none'})"
            for shape in sorted(off)
        )
        + "; user-request root cause on the same "
        f"fitting sets: fired {fired}, at a labelled step {agreed}"
    )
    return {"root_cause_model": str(weights), "calibration": str(calibration)}, note
