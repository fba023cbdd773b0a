"""Loaders on the real public datasets in ../shared/datasets (skipped when absent).

Every human label that points at a step must resolve to a step of the loaded trace: Who&When `mistake_step`
(0-based into history), AgentRx `step_number` (1-based into traj), TRAIL `location` (a span id).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from trajfm.traces import Trace, load_traces
from trajfm.traces.load import decode_json

pytestmark = pytest.mark.datasets

DATASETS = ("who_and_when", "agentrx", "trail", "assetopsbench", "mast_mad_human")


@pytest.fixture(scope="module")
def everything(datasets_dir: Path):
    return load_traces([datasets_dir / d for d in DATASETS])


def test_every_trace_loads_with_the_readme_counts(everything) -> None:
    assert everything.failures == []
    counts = Counter(t.source_format for t in everything.traces)
    # README: Who&When 126; AgentRx 100 runs (+ the 29 failed ones, a subset, in a second file); TRAIL 113;
    # AssetOpsBench 6 + 3; MAST human subset 19 records.
    assert counts == {"whowhen": 126, "agentrx": 129, "otel": 113, "assetops": 9, "mast": 19}
    ids = [t.trace_id for t in everything.traces]
    assert len(ids) == len(set(ids))


def test_non_traces_are_skipped_not_failed(everything) -> None:
    notes = Counter(s.note for s in everything.skipped)
    assert notes["span-level error annotations (a label file), not a trace"] == 117
    assert notes["failure labels (a label file), not a trace"] == 1
    assert notes["task/scenario descriptions without steps, not a trace"] == 10
    assert notes["JSON lines of task/scenario descriptions without steps, not a trace"] == 3
    skipped = {Path(s.path).name for s in everything.skipped}
    assert {"FORMAT.md", "SCENARIO_STATS.md", "addtional_fm.csv", "all_utterance.jsonl"} <= skipped


def test_whowhen_every_mistake_step_resolves(datasets_dir: Path) -> None:
    folder = datasets_dir / "who_and_when" / "Algorithm-Generated"
    result = load_traces([folder])
    by_name = {Path(t.source_path).name: t for t in result.traces}
    checked = 0
    for path in sorted(folder.glob("*.json")):
        label = json.loads(path.read_text())
        step = int(label["mistake_step"])
        trace = by_name[path.name]
        assert step in trace.step_indices(), f"{path.name}: mistake_step {step} not a step"
        # the step is the history item the label counts
        at = [s for s in trace.steps if s.index == step]
        assert at[0].content == (label["history"][step]["content"] or "")
        failed_runs = [h for h in label["history"] if (h["content"] or "").lstrip().startswith("exitcode: ")]
        failed_runs = [h for h in failed_runs if not h["content"].lstrip().startswith("exitcode: 0 ")]
        assert sum(s.is_error for s in trace.steps) == len(failed_runs)
        checked += 1
    assert checked == 126


def _tau_traces(datasets_dir: Path, name: str) -> dict[str, Trace]:
    result = load_traces([datasets_dir / "agentrx" / "tau_retail" / name])
    assert not result.failures
    return {str(t.meta["task_id"]): t for t in result.traces}


def test_agentrx_every_step_number_resolves(datasets_dir: Path) -> None:
    gt = json.loads((datasets_dir / "agentrx" / "ground_truth" / "tau_ground_truth.json").read_text())
    failed = _tau_traces(datasets_dir, "tau_dataset_failed.json")
    full = _tau_traces(datasets_dir, "tau_dataset_full.json")
    assert len(failed) == 29 and len(full) == 100
    checked = 0
    for run in gt:
        trace = failed[str(run["trajectory_id"])]
        for failure in run["failures"]:
            step = int(failure["step_number"])
            assert step in trace.step_indices(), f"run {run['trajectory_id']}: step {step} not a step"
            checked += 1
        # runs present in both files load to the same steps
        twin = full.get(str(run["trajectory_id"]))
        if twin is not None and twin.meta.get("trial") == trace.meta.get("trial"):
            assert [s.content for s in twin.steps] == [s.content for s in trace.steps]
    assert checked == sum(len(r["failures"]) for r in gt) > 0


def test_trail_every_location_span_resolves(datasets_dir: Path) -> None:
    trail = datasets_dir / "trail"
    result = load_traces([trail / "data" / "GAIA"])
    assert not result.failures and len(result.traces) == 113
    by_name = {Path(t.source_path).name: t for t in result.traces}
    checked, without_trace, evidence_total, evidence_at_span = 0, 0, 0, 0
    for label_path in sorted((trail / "processed_annotations_gaia").glob("*.json")):
        labels = decode_json(label_path.read_bytes())  # one file has a trailing comma
        trace = by_name.get(label_path.name)
        if trace is None:
            without_trace += 1
            continue
        span_of = {s.step_id: s for s in trace.steps}
        for error in labels["errors"]:
            assert error["location"] in span_of, f"{label_path.name}: span {error['location']} not a step"
            checked += 1
            # fidelity: the annotator's evidence should be readable at the span it is located at
            span = span_of[error["location"]]
            quote = (error.get("evidence") or "").strip()[:60]
            evidence_total += bool(quote)
            evidence_at_span += bool(quote) and (quote in span.content or quote in (span.tool_input or ""))
    assert without_trace == 4  # 117 label files, 113 raw traces
    assert checked > 500
    # Measured: 236 of 547 quotes (first 60 chars) appear verbatim at their span (many are paraphrased);
    # without the newest LLM input message it was 139. Guard against losing span text.
    assert evidence_at_span / evidence_total > 0.4
    # one step per span, time-ordered, index = position
    for t in result.traces:
        assert [s.index for s in t.steps] == list(range(len(t.steps)))
        starts = [s.start_time for s in t.steps]
        assert starts == sorted(starts)


def test_assetops_model_from_path_and_nested_sub_agent_steps(datasets_dir: Path) -> None:
    result = load_traces([datasets_dir / "assetopsbench"])
    assert not result.failures
    traces = {t.trace_id: t for t in result.traces}
    assert len(traces) == 9
    coda = [t for t in traces.values() if "trajectories_codabench" in t.trace_id]
    assert len(coda) == 6
    for t in coda:
        assert t.agent_model == "llama-4-maverick-17b-128e-instruct-fp8" and t.vendor == "meta-llama"
        assert t.run_id and t.run_id.startswith("2025-07-29T")
        assert t.utterance_id == Path(t.source_path).name
    samples = {t.agent_model for t in traces.values() if "sample_trajectories" in t.trace_id}
    assert samples == {"claude-4-sonnet", "mistral-large"}
    with_nested = [t for t in traces.values() if any(s.depth == 1 for s in t.steps)]
    # exactly the files whose trajectroy_log carries a sub-agent run (7 of 9), with every sub-step kept
    for t in traces.values():
        raw_log = json.loads(Path(t.source_path).read_text())["trajectroy_log"]
        subs = [json.loads(e["step_trajectory_json"]) for e in raw_log if e.get("step_trajectory_json")]
        n_sub_items = sum(len(sub["trajectory"]) for sub in subs)
        nested_ids = {s.step_id.rsplit(".", 1)[0] for s in t.steps if s.depth == 1}
        assert len(nested_ids) == n_sub_items, t.trace_id
    assert len(with_nested) == 7
    for t in with_nested:
        by_id = {s.step_id: s for s in t.steps}
        for s in t.steps:
            if s.depth == 1:
                parent = by_id[s.parent_id]
                assert parent.kind == "observation" and parent.depth == 0 and parent.index == s.index
    # raw trajectory indices are 1-based and match trajectroy_log[i].step
    path = next(p for p in (datasets_dir / "assetopsbench").rglob("1001"))
    raw = json.loads(path.read_text())
    t = next(t for t in traces.values() if t.source_path == str(path))
    assert {s.index for s in t.steps if s.depth == 0} == set(range(1, len(raw["trajectory"]) + 1))
    errors = [s for s in t.steps if s.is_error and s.depth == 0]
    assert errors and all(s.content.startswith("Error encountered") for s in errors)
    assert t.review_status == "Accomplished" and t.multi_agent is True


def test_mast_records_keep_their_text(datasets_dir: Path) -> None:
    path = datasets_dir / "mast_mad_human" / "MAD_human_labelled_dataset.json"
    result = load_traces([path])
    raw = decode_json(path.read_bytes())
    assert len(result.traces) == len(raw) == 19
    for t, rec in zip(result.traces, raw, strict=True):
        assert t.meta["record"] == raw.index(rec) or rec["trace"] == raw[t.meta["record"]]["trace"]
        if not rec["trace"].lstrip().startswith("{"):
            assert "\n".join(s.content for s in t.steps) == rec["trace"]
    assert sum(len(t.steps) > 1 for t in result.traces) == 19  # every log has recognisable speakers
