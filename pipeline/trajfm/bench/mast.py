"""MAST human-labelled subset (`MAD_human_labelled_dataset.json`): per-mode agreement with the annotators.

Data: a JSON list of records `{round, mas_name, benchmark_name, trace_id, trace (raw text), annotations: [
{"failure mode": "<code> <name>\\n\\n<definition>", annotator_1..3: bool}]}`. Three taxonomy versions (18, 17 and
the final 14 modes) renumber the codes, so older modes are mapped to the final 14 by name (`OLD_NAME_TO_MODE`);
modes with no final counterpart are dropped, and a final mode a record's version does not have is not scored
for that record.

Metric: per mode, F1 of the judge's detection against the annotators' majority (2 of 3) and Cohen's kappa;
overall accuracy and kappa over all scored (trace, mode) cells. The labels of this subset are known to be
unreliable (identical label vectors across unrelated traces, two copies of one trace with different labels):
the result carries that warning and should not be read as a measure of judge quality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajfm.bench import metrics as m
from trajfm.bench.core import (
    BenchResult,
    BenchSettings,
    Timer,
    label_key,
    load_dataset_traces,
    not_loaded_notes,
    read_json_lenient,
)
from trajfm.errors import UsageError
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Trace

FILE_NAME = "MAD_human_labelled_dataset.json"
UNRELIABLE_WARNING = (
    "The MAST human-labelled subset's labels are known to be unreliable: groups of unrelated traces share "
    "byte-identical label vectors and records 3 and 8 are one trace with different labels. These figures do "
    "not measure judge quality."
)
# Mode names of all three taxonomy versions -> final MAST mode id. None: no counterpart in the final 14.
OLD_NAME_TO_MODE: dict[str, str | None] = {
    # final version (codes kept, names as the file spells them and as taxonomy/mast.json spells them)
    "Disobey Task Specification": "1.1",
    "Disobey Role Specification": "1.2",
    "Step Repetition": "1.3",
    "Loss of Conversation History": "1.4",
    "Unaware of Termination Conditions": "1.5",
    "Conversation reset": "2.1",
    "Fail to ask for clarification": "2.2",
    "Task derailment": "2.3",
    "Information Withholding": "2.4",
    "Information Witholding": "2.4",
    "Ignored Other Agents' Input": "2.5",
    "Reasoning-Action Mismatch": "2.6",
    "Action-Reasoning Mismatch": "2.6",
    "Premature Termination": "3.1",
    "No or Incomplete Verification": "3.2",
    "No or Incorrect Verification": "3.2",
    "Incorrect Verification": "3.3",
    "Weak Verification": "3.3",
    # older versions
    "Poor task constraint compliance": "1.1",
    "Disobey role specification": "1.2",
    "Inconsistency between reasoning and action": "2.6",
    "Unaware of stopping conditions": "1.5",
    "Fail to elicit clarification": "2.2",
    "Derailment from task": "2.3",
    "Withholding relevant information": "2.4",
    "Ignoring suggestions from agents": "2.5",
    "Ill specified termination condition leading to premature termination": "3.1",
    # The final definitions of 3.2 and 3.3 name their predecessors.
    "Lack of critical verification": "3.2",
    "Lack of result verification": "3.3",
    "Undetected conversation ambiguities and contradictions": None,
    "Unbatched repetitive execution": None,
    "Backtracking interruption": None,
    "Disagreement induced inaction": None,
    "Waiting for known information": None,
}
_BY_KEY = {label_key(k): v for k, v in OLD_NAME_TO_MODE.items()}
METRIC_NAMES = {
    "accuracy": "accuracy over (trace, mode) cells",
    "kappa": "Cohen's kappa over cells",
    "f1_micro": "F1 (pooled cells)",
    "f1_macro": "F1 (mean over modes with a positive)",
}
PUBLISHED = {
    "human annotators (paper)": {"kappa": 0.88},
    "o1 judge vs humans (paper)": {"accuracy": 0.94, "kappa": 0.77},
}
PUBLISHED_SOURCE = "MAST paper (Cemri et al. 2025), via ../shared/datasets/README.md"


@dataclass
class LabelledRecord:
    record: int
    mas_name: str
    round: str
    gold: dict[str, bool]  # final mode id -> annotators' majority


def mode_of(label: str) -> tuple[str | None, bool]:
    """Final mode id of an annotation's `failure mode` string, and whether the name was recognised."""
    first_line = label.strip().split("\n", 1)[0]
    name = re.sub(r"^\s*\d+(\.\d+)?\s*", "", first_line).strip()
    key = label_key(name)
    if key in _BY_KEY:
        return _BY_KEY[key], True
    return None, False


def read_records(path: Path, *, limit: int | None = None) -> tuple[list[LabelledRecord], list[str]]:
    file = path / FILE_NAME if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"no {FILE_NAME} at {path}; pass the mast_mad_human folder or the file")
    raw = read_json_lenient(file)
    unknown: set[str] = set()
    out = []
    for i, rec in enumerate(raw[: limit if limit is not None else None]):
        gold: dict[str, bool] = {}
        for ann in rec.get("annotations", []):
            mode, known = mode_of(str(ann.get("failure mode", "")))
            if not known:
                unknown.add(str(ann.get("failure mode", "")).split("\n", 1)[0])
            if mode is None:
                continue
            votes = [bool(ann.get(f"annotator_{k}")) for k in (1, 2, 3)]
            majority = sum(votes) >= 2
            # Two old modes can map to one final mode: the final mode is present if either is.
            gold[mode] = gold.get(mode, False) or majority
        out.append(
            LabelledRecord(
                record=i, mas_name=str(rec.get("mas_name")), round=str(rec.get("round")), gold=gold
            )
        )
    notes = [f"unrecognised mode names, not scored: {sorted(unknown)}"] if unknown else []
    return out, notes


def _f1(gold: list[bool], pred: list[bool]) -> float:
    """F1 of binary predictions against binary gold, cell by cell."""
    tp = sum(1 for a, b in zip(gold, pred, strict=True) if a and b)
    fp = sum(1 for a, b in zip(gold, pred, strict=True) if b and not a)
    fn = sum(1 for a, b in zip(gold, pred, strict=True) if a and not b)
    return m.prf(tp, fp, fn)[2]


def score(
    records: list[LabelledRecord], preds: list[set[str] | None], skip: frozenset[str] = frozenset()
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Overall figures and a per-mode table; a None prediction (judge failed) is scored as all modes absent.
    Modes in `skip` (ones the judge does not check: detected is null) are left out of every figure."""
    mode_ids = [mode for mode in load_taxonomy("mast").ids if mode not in skip]
    cells_g: list[bool] = []
    cells_p: list[bool] = []
    per_mode = []
    f1s = []
    for mode in mode_ids:
        g, p = [], []
        for rec, pred in zip(records, preds, strict=True):
            if mode in rec.gold:
                g.append(rec.gold[mode])
                p.append(mode in (pred or set()))
        if not g:
            continue
        f1 = _f1(g, p)
        if any(g):
            f1s.append(f1)
        per_mode.append(
            {
                "mode": mode,
                "n": len(g),
                "gold_yes": sum(g),
                "pred_yes": sum(p),
                "f1": f1 if any(g) or any(p) else None,
                "kappa": m.cohen_kappa(p, g),
            }
        )
        cells_g.extend(g)
        cells_p.extend(p)
    metrics = {
        "accuracy": m.accuracy(cells_p, cells_g),
        "kappa": m.cohen_kappa(cells_p, cells_g),
        "f1_micro": _f1(cells_g, cells_p),
        "f1_macro": sum(f1s) / len(f1s) if f1s else m.NAN,
    }
    return metrics, per_mode


def naive_baselines(records: list[LabelledRecord]) -> dict[str, dict[str, float]]:
    if not records:
        return {}
    all_modes = set(load_taxonomy("mast").ids)
    return {
        "no mode ever": score(records, [set() for _ in records])[0],
        "every mode always": score(records, [set(all_modes) for _ in records])[0],
    }


def match_traces(records: list[LabelledRecord], traces: list[Trace]) -> dict[int, Trace]:
    """Records are matched to traces by their position in the file (the loader numbers records in order).
    Only the given records are matched (a --limit keeps the first N), like the other datasets' matchers."""
    out: dict[int, Trace] = {}
    for t in traces:
        rec = t.meta.get("record", t.meta.get("record_index"))
        if rec is None and t.trace_id.rsplit("#", 1)[-1].isdigit():
            rec = int(t.trace_id.rsplit("#", 1)[-1])
        if rec is not None:
            out.setdefault(int(rec), t)
    if not out and len(traces) == len(records):
        out = dict(enumerate(traces))
    wanted = {r.record for r in records}
    return {k: t for k, t in out.items() if k in wanted}


def run(path: Path, settings: BenchSettings) -> list[BenchResult]:
    with Timer() as timer:
        records, notes = read_records(path, limit=settings.limit)
        file = path / FILE_NAME if path.is_dir() else path
        traces = load_dataset_traces([file])
        matched = match_traces(records, traces)
        judged, status = settings.judge_labelled(records, lambda r: r.record, matched, taxonomy="mast")
        preds: list[set[str] | None] = []
        unchecked: set[str] = set()
        per_trace = []
        for j in judged:
            r, d = j.label, j.ok
            pred = {f.mode_id for f in d.detected} if d is not None else None
            if d is not None:  # modes the judge did not check (detected is None) are left out of the cells
                unchecked.update(f.mode_id for f in d.modes if f.detected is None)
            preds.append(pred)
            per_trace.append(
                {
                    "record": r.record,
                    "mas": r.mas_name,
                    "round": r.round,
                    "gold": sorted(k for k, v in r.gold.items() if v),
                    "pred": sorted(pred or []),
                    "status": j.status,
                }
            )
        metrics, per_mode = score(records, preds, frozenset(unchecked))
    if unchecked:
        notes.append(
            f"modes the judge does not check ({', '.join(sorted(unchecked))}) are left out of its figures "
            "(not checked is not absent); the naive baselines are scored on every mode"
        )
    notes += not_loaded_notes(len(records), len(matched), "records", "no modes")
    return [
        BenchResult(
            dataset="mast",
            part="MAD human-labelled",
            judge=settings.judge,
            path=str(file),
            n_traces=len(records),
            n_scored=sum(1 for p in preds if p is not None),
            metrics=metrics,
            metric_names=METRIC_NAMES,
            baselines=naive_baselines(records),
            published=PUBLISHED,
            published_source=PUBLISHED_SOURCE,
            notes=notes,
            warnings=[UNRELIABLE_WARNING],
            per_trace=per_trace,
            judge_status=status,
            seconds=timer.seconds,
            extra_tables={"per_mode": per_mode},
        )
    ]
