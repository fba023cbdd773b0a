"""Measuring each detector finding kind's precision on the visible labelled sets (for `judges.calibration`).

Which labels can say a finding is right or wrong:
- TRAIL: every error in a trace is labelled with its span, so a finding agrees when one of its steps is a labelled
  error location (a finding elsewhere is a false alarm);
- MAST human subset: per trace and mode, so a finding agrees when a MAST mode its kind maps to is labelled present.
Who&When and AgentRx label only the decisive step of a failed run: a finding at another step may well be right,
so they cannot measure precision and are not used here. The bundled corpus's labels are planted by our own
generator, so it is not used either.
"""

from __future__ import annotations

from pathlib import Path

from trajfm.bench.core import load_dataset_traces
from trajfm.judges.detectors import FINDING_KINDS, build_view, run_detectors

CALIBRATION_DATASETS = ("trail", "mast")


def _add(counts: dict[str, tuple[int, int]], kind: str, agreed: bool) -> None:
    n, k = counts.get(kind, (0, 0))
    counts[kind] = (n + 1, k + int(agreed))


def kind_counts(dataset: str, path: Path) -> dict[str, tuple[int, int]]:
    """{kind: (findings, agreed with the labels)} on one dataset folder (see the module docstring)."""
    counts: dict[str, tuple[int, int]] = {}
    if dataset == "trail":
        from trajfm.bench import trail as tr

        for g, trace in tr.labelled_traces(path):
            spans_of = tr.spans_by_step(trace)
            for f in run_detectors(trace, view=build_view(trace)):
                if f.steps:
                    hit = any(spans_of.get(i, set()) & g.gold_locations for i in f.steps)
                    _add(counts, f.kind, hit)
    elif dataset == "mast":
        from trajfm.bench import mast as ma

        file = path / ma.FILE_NAME if path.is_dir() else path
        records, _ = ma.read_records(path)
        by_record = ma.match_traces(records, load_dataset_traces([file]))
        for r in records:
            t = by_record.get(r.record)
            if t is None:
                continue
            for f in run_detectors(t, view=build_view(t)):
                modes = [m for m in FINDING_KINDS[f.kind].modes.get("mast", ()) if m in r.gold]
                if modes:
                    _add(counts, f.kind, any(r.gold[m] for m in modes))
    return counts


def measure(root: Path, *, exclude: str | None = None) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Pooled counts over the calibration datasets found under ROOT, leaving out `exclude`."""
    from trajfm.bench.lodo import FOLDERS

    total: dict[str, tuple[int, int]] = {}
    used = []
    for name in CALIBRATION_DATASETS:
        folder = root / FOLDERS[name]
        if name == exclude or not folder.exists():
            continue
        used.append(name)
        for kind, (n, k) in kind_counts(name, folder).items():
            n0, k0 = total.get(kind, (0, 0))
            total[kind] = (n0 + n, k0 + k)
    return total, used
