"""Measuring each detector finding kind's precision on the visible labelled sets (for `judges.calibration`).

Which labels can say a finding is right or wrong:
- TRAIL: every error in a trace is labelled with its span, so a finding agrees when one of its steps is a labelled
  error location (a finding elsewhere is a false alarm);
- MAST human subset: per trace and mode, so a finding agrees when a MAST mode its kind maps to is labelled present.
Who&When and AgentRx label only the decisive step of a failed run: a finding at another step may well be right,
so they cannot measure precision and are not used here. The bundled corpus's labels are planted by our own
generator, so it is not used either. Counts are kept per trace shape (`judges.calibration.trace_shape`): TRAIL's
traces are span trees, the MAST subset's are message logs.
"""

from __future__ import annotations

from pathlib import Path

from trajfm.bench.core import load_dataset_traces
from trajfm.judges.calibration import trace_shape
from trajfm.judges.detectors import FINDING_KINDS, build_view, run_detectors
from trajfm.traces.model import Trace

CALIBRATION_DATASETS = ("trail", "mast")


Counts = dict[str, dict[str, tuple[int, int]]]  # {trace shape: {kind: (findings, agreed)}}


def _add(counts: Counts, trace: Trace, kind: str, agreed: bool) -> None:
    table = counts.setdefault(trace_shape(trace), {})
    n, k = table.get(kind, (0, 0))
    table[kind] = (n + 1, k + int(agreed))


def kind_counts(dataset: str, path: Path) -> Counts:
    """{trace shape: {kind: (findings, agreed with the labels)}} on one dataset folder (see the module docstring;
    shapes: `judges.calibration.trace_shape`)."""
    counts: Counts = {}
    if dataset == "trail":
        from trajfm.bench import trail as tr

        for g, trace in tr.labelled_traces(path):
            spans_of = tr.spans_by_step(trace)
            for f in run_detectors(trace, view=build_view(trace)):
                if f.steps:
                    hit = any(spans_of.get(i, set()) & g.gold_locations for i in f.steps)
                    _add(counts, trace, f.kind, hit)
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
                    _add(counts, t, f.kind, any(r.gold[m] for m in modes))
    return counts


def measure(root: Path, *, exclude: str | None = None) -> tuple[Counts, dict[str, list[str]]]:
    """Pooled counts per trace shape over the calibration datasets found under ROOT, leaving out `exclude`, and per
    shape the datasets that had traces of it."""
    from trajfm.bench.lodo import FOLDERS

    total: Counts = {}
    used: dict[str, list[str]] = {}
    for name in CALIBRATION_DATASETS:
        folder = root / FOLDERS[name]
        if name == exclude or not folder.exists():
            continue
        for shape, table in kind_counts(name, folder).items():
            used.setdefault(shape, []).append(name)
            into = total.setdefault(shape, {})
            for kind, (n, k) in table.items():
                n0, k0 = into.get(kind, (0, 0))
                into[kind] = (n0 + n, k0 + k)
    return total, used
