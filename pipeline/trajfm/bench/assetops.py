"""The bundled AssetOpsBench-style corpus (`traces/assetops/`): does the judge find the behaviours we planted?

Data: the corpus folder with the sidecar `labels.jsonl`, one JSON object per trace: `{trace_path (relative to
the corpus folder, without the `.gz` the file on disk may carry), model, scenario, multi_agent, task_success,
behaviours: [{id, mast, novel_family, steps}], decisive_step, decisive_agent}` (contract in the team brief).

Metrics:
- per MAST mode: precision / recall / F1 of the judge's detected modes against the union of the modes the
  planted behaviours imply, over all traces; micro-averaged overall;
- per planted behaviour: precision / recall. A behaviour counts as found when the judge names it in
  `Diagnosis.extra["behaviours"]`, or, for a behaviour with a novel family, reports a novel mode whose title is
  that family's title (optionally followed by a qualifier), or, for one without, detects every MAST mode it implies. `clean_success` counts as found
  when the judge detects nothing at all. Since several behaviours imply the same mode, behaviour-level figures
  are the stricter test;
- root cause: decisive step and agent accuracy where the sidecar gives them.
Synthetic, planted labels: this measures that the detectors do what they claim, not accuracy on real failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajfm.bench import baselines as bl
from trajfm.bench import metrics as m
from trajfm.bench.core import (
    BenchResult,
    BenchSettings,
    Timer,
    label_key,
    load_dataset_traces,
    not_loaded_notes,
)
from trajfm.errors import UsageError
from trajfm.judges.base import Diagnosis
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Trace

SIDECAR = "labels.jsonl"
METRIC_NAMES = {
    "mode_precision_micro": "MAST mode precision (micro)",
    "mode_recall_micro": "MAST mode recall (micro)",
    "mode_f1_micro": "MAST mode F1 (micro)",
    "behaviour_precision_micro": "behaviour precision (micro)",
    "behaviour_recall_micro": "behaviour recall (micro)",
    "decisive_step_acc": "decisive step accuracy",
    "decisive_agent_acc": "decisive agent accuracy",
}


@dataclass
class PlantedTrace:
    trace_path: Path
    rel: str
    behaviours: list[dict[str, Any]]
    decisive_step: int | None
    decisive_agent: str | None

    @property
    def behaviour_ids(self) -> set[str]:
        return {str(b["id"]) for b in self.behaviours}

    @property
    def modes(self) -> set[str]:
        return {str(code) for b in self.behaviours for code in (b.get("mast") or [])}


def read_sidecar(root: Path, *, limit: int | None = None) -> list[PlantedTrace]:
    sidecar = root / SIDECAR
    if not sidecar.is_file():
        raise UsageError(
            f"no {SIDECAR} in {root}: the assetops bench needs the corpus folder with its sidecar labels"
        )
    out = []
    for lineno, line in enumerate(sidecar.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rel = str(row["trace_path"])
            behaviours = list(row.get("behaviours") or [])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{sidecar} line {lineno}: not a label row ({exc!r}); it needs trace_path and behaviours"
            ) from exc
        step = row.get("decisive_step")
        path = root / rel
        if not path.exists() and path.with_name(path.name + ".gz").exists():
            path = path.with_name(path.name + ".gz")  # trace_path has no .gz; the bundled corpus is gzipped
        out.append(
            PlantedTrace(
                trace_path=path,
                rel=rel,
                behaviours=behaviours,
                decisive_step=int(step) if step is not None else None,
                decisive_agent=row.get("decisive_agent"),
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out


def behaviours_found(d: Diagnosis, catalogue: dict[str, dict[str, Any]]) -> set[str]:
    """Which planted behaviour ids a diagnosis shows (see the module docstring for the rule)."""
    named = d.extra.get("behaviours")
    if isinstance(named, list | tuple | set):
        return {str(b) for b in named}
    detected = {f.mode_id for f in d.detected}
    titles = {label_key(n.title) for n in d.novel}
    found = set()
    for bid, spec in catalogue.items():
        family = spec.get("novel_family")
        modes = {str(c) for c in spec.get("mast") or []}
        if bid == "clean_success":
            if not detected and not d.novel:
                found.add(bid)
        elif family:
            # Judges title a novel mode by its family, sometimes with a qualifier ("... (IoTAgent)").
            fam = label_key(str(family))
            if any(t.startswith(fam) for t in titles):
                found.add(bid)
        elif modes and modes <= detected:
            found.add(bid)
    return found


def _catalogue(planted: list[PlantedTrace]) -> dict[str, dict[str, Any]]:
    cat: dict[str, dict[str, Any]] = {}
    for p in planted:
        for b in p.behaviours:
            cat.setdefault(str(b["id"]), b)
    cat.setdefault("clean_success", {"id": "clean_success", "mast": [], "novel_family": None})
    return cat


def _prf_rows(gold: list[set[str]], pred: list[set[str]], labels: list[str]) -> list[dict[str, Any]]:
    return [{"label": lab, **row} for lab, row in m.per_label_prf(pred, gold, labels).items()]


def score(
    planted: list[PlantedTrace], diagnoses: list[Diagnosis | None]
) -> tuple[dict[str, float], dict[str, list]]:
    catalogue = _catalogue(planted)
    gold_modes = [p.modes for p in planted]
    pred_modes = [{f.mode_id for f in d.detected} if d is not None else set() for d in diagnoses]
    gold_beh = [p.behaviour_ids or {"clean_success"} for p in planted]
    pred_beh = [behaviours_found(d, catalogue) if d is not None else set() for d in diagnoses]
    mp, mr, mf = m.set_prf_micro(pred_modes, gold_modes)
    bp, br, _ = m.set_prf_micro(pred_beh, gold_beh)
    with_step = [(p, d) for p, d in zip(planted, diagnoses, strict=True) if p.decisive_step is not None]
    with_agent = [(p, d) for p, d in zip(planted, diagnoses, strict=True) if p.decisive_agent]
    metrics = {
        "mode_precision_micro": mp,
        "mode_recall_micro": mr,
        "mode_f1_micro": mf,
        "behaviour_precision_micro": bp,
        "behaviour_recall_micro": br,
        "decisive_step_acc": m.accuracy(
            [d.root_cause_step if d else None for _, d in with_step], [p.decisive_step for p, _ in with_step]
        ),
        "decisive_agent_acc": m.accuracy(
            [(d.root_cause_agent or "").lower() if d and d.root_cause_agent else None for _, d in with_agent],
            [str(p.decisive_agent).lower() for p, _ in with_agent],
        ),
    }
    tables = {
        "per_mode": _prf_rows(gold_modes, pred_modes, load_taxonomy("mast").ids),
        "per_behaviour": _prf_rows(gold_beh, pred_beh, sorted(catalogue)),
    }
    return metrics, tables


def naive_baselines(planted: list[PlantedTrace]) -> dict[str, dict[str, float]]:
    if not planted:
        return {}
    all_modes = load_taxonomy("mast").ids
    from trajfm.judges.base import ModeFinding

    def fake(modes: list[str], step: int | None = None, agent: str | None = None) -> Diagnosis:
        return Diagnosis(
            trace_id="", judge="baseline", modes=[ModeFinding(mode_id=x, detected=True) for x in modes],
            root_cause_step=step, root_cause_agent=agent,
        )  # fmt: skip

    top_agent = bl.most_common([str(p.decisive_agent) for p in planted if p.decisive_agent])
    return {
        "every mode always": score(planted, [fake(all_modes) for _ in planted])[0],
        "no mode ever": score(planted, [fake([]) for _ in planted])[0],
        f"no mode, root cause step 1 by {top_agent} (label prior)": score(
            planted, [fake([], 1, top_agent) for _ in planted]
        )[0],
    }


def run(path: Path, settings: BenchSettings) -> list[BenchResult]:
    with Timer() as timer:
        planted = read_sidecar(path, limit=settings.limit)
        traces = load_dataset_traces([p.trace_path for p in planted if p.trace_path.exists()])
        by_path: dict[str, Trace] = {}
        for t in traces:
            by_path.setdefault(Path(t.source_path).as_posix(), t)
        matched: dict[str, Trace] = {}
        for p in planted:
            for key, t in by_path.items():
                if key == p.rel or key.endswith("/" + p.rel) or Path(key) == p.trace_path:
                    matched[p.rel] = t
                    break
        judged, status = settings.judge_labelled(planted, lambda p: p.rel, matched, taxonomy="mast")
        ds: list[Diagnosis | None] = []
        per_trace = []
        catalogue = _catalogue(planted)
        for j in judged:
            p, ok = j.label, j.ok
            ds.append(ok)
            per_trace.append(
                {
                    "trace": p.rel,
                    "gold_behaviours": sorted(p.behaviour_ids),
                    "pred_behaviours": sorted(behaviours_found(ok, catalogue)) if ok else [],
                    "gold_modes": sorted(p.modes),
                    "pred_modes": sorted(f.mode_id for f in ok.detected) if ok else [],
                    "gold_step": p.decisive_step,
                    "pred_step": ok.root_cause_step if ok else None,
                    "status": j.status,
                }
            )
        metrics, tables = score(planted, ds)
    notes = ["Synthetic corpus with planted behaviours: checks the detectors, not accuracy on real failures."]
    notes += not_loaded_notes(len(planted), len(matched), "traces", "empty")
    return [
        BenchResult(
            dataset="assetops",
            part="bundled corpus",
            judge=settings.judge,
            path=str(path),
            n_traces=len(planted),
            n_scored=sum(1 for d in ds if d is not None),
            metrics=metrics,
            metric_names=METRIC_NAMES,
            baselines=naive_baselines(planted),
            notes=notes,
            per_trace=per_trace,
            judge_status=status,
            seconds=timer.seconds,
            extra_tables=tables,
        )
    ]
