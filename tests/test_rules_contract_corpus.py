"""The rules judge's outcome contract (issue 13) held on every real trace we have, not only on hand-made ones:

- a trace whose run is known to have failed (the source's own outcome), or that the judge finds not completed,
  always has a root-cause step, agent and confidence;
- a trace judged completed has no root cause unless a decisive failure was detected;
- a mode no enabled rule checks is `detected = None` ("not checked"), never `False`; a mode some enabled rule
  checks is never None.

Run over the bundled corpus (always) and over the visible labelled datasets through their own loaders (when
../shared/datasets is present), with the taxonomy each is benched with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trajfm.judges.base import Diagnosis
from trajfm.judges.calibration import trace_shape
from trajfm.judges.detectors import FINDING_KINDS
from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import Taxonomy, load_taxonomy
from trajfm.traces import load_traces
from trajfm.traces.model import Trace

REPO = Path(__file__).resolve().parents[1]
JUDGE = RulesJudge()


def contract_breaches(trace: Trace, d: Diagnosis, taxonomy: Taxonomy) -> list[str]:
    """What in one diagnosis breaks the contract (empty: none)."""
    out = []
    decisive = [f for f in d.extra["findings"] if FINDING_KINDS[f["kind"]].decisive and f["steps"]]
    named = (d.root_cause_step, d.root_cause_agent, d.root_cause_confidence)
    if d.source_outcome == "failed" and d.task_completed is not False:
        out.append("the source says failed but the verdict is not 'not completed'")
    if d.task_completed is False and (named[0] is None or named[2] is None):
        out.append(f"failed run (basis {d.extra['completion_basis']}) without a root cause: {named}")
    if d.root_cause_step is not None and d.root_cause_step not in trace.step_indices():
        out.append(f"root cause at step {d.root_cause_step}, which the trace does not have")
    if d.task_completed is True and named != (None, None, None) and not decisive:
        out.append(f"completed run with a root cause {named} but no decisive finding")
    checked = {
        m
        for k, spec in FINDING_KINDS.items()
        if k not in JUDGE.off_by_shape[trace_shape(trace)]
        for m in spec.modes.get(taxonomy.name, ())
    }
    for m in d.modes:
        if m.mode_id in checked and m.detected is None:
            out.append(f"mode {m.mode_id} has a rule but is written as not checked")
        if m.mode_id not in checked and m.detected is not None:
            out.append(f"mode {m.mode_id} has no enabled rule but is written as {m.detected}")
    return out


def check_all(traces: list[Trace], taxonomy_name: str) -> dict[str, int]:
    taxonomy = load_taxonomy(taxonomy_name)
    breaches: list[str] = []
    counts = {"traces": 0, "failed": 0, "completed": 0, "unknown": 0}
    for t in traces:
        d = JUDGE.diagnose(t, taxonomy)
        assert d.status == "ok", (t.trace_id, d.status)
        counts["traces"] += 1
        counts[{False: "failed", True: "completed", None: "unknown"}[d.task_completed]] += 1
        breaches += [f"{t.trace_id}: {b}" for b in contract_breaches(t, d, taxonomy)]
    assert not breaches, f"{len(breaches)} breaches, first: {breaches[:5]}"
    return counts


def test_contract_holds_on_every_bundled_trace() -> None:
    traces = load_traces([REPO / "traces"]).traces
    counts = check_all(traces, "mast")
    assert counts["traces"] >= 800
    # the corpus has both outcomes, so both halves of the contract were exercised
    assert counts["failed"] > 50 and counts["completed"] > 50, counts


# dataset folder under ../shared/datasets, the taxonomy its bench uses
DATASETS = (
    ("who_and_when", "mast"),
    ("agentrx", "agentrx"),
    ("trail", "trail"),
    ("mast_mad_human", "mast"),
    ("assetopsbench", "mast"),
)


@pytest.mark.datasets
@pytest.mark.parametrize(("folder", "taxonomy"), DATASETS)
def test_contract_holds_on_every_visible_dataset_trace(
    datasets_dir: Path, folder: str, taxonomy: str
) -> None:
    path = datasets_dir / folder
    if not path.exists():
        pytest.skip(f"{path} not present")
    traces = load_traces([path]).traces
    assert traces, f"no traces loaded from {path}"
    counts = check_all(traces, taxonomy)
    if folder in ("who_and_when", "agentrx"):
        # every labelled run there failed and the source says so (is_correct false, reward below 1)
        assert counts["failed"] > 0, counts
