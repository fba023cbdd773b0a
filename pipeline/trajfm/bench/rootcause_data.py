"""Labelled root-cause examples from the visible datasets, for fitting and left-out scoring of the step scorer.

Contract: `labelled_failures(dataset, path)` returns `(trace, gold step numbers)` pairs for the datasets whose
labels point at the step where a run went wrong: Who&When (`mistake_step`, every part found), AgentRx
(`step_number` of the root failure) and TRAIL (every labelled error location, as step numbers of the loaded
trace). MAST (per-trace mode labels) and the bundled corpus (labels planted by our own generator) give none:
an empty list. `examples(pairs, dataset)` turns them into `fit.Example`s by running the rules detectors, so the
features are exactly those the judge computes at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from trajfm.bench.core import load_dataset_traces
from trajfm.judges.calibration import trace_shape
from trajfm.judges.detectors import FINDING_KINDS, build_view, run_detectors
from trajfm.judges.rootcause.features import StepTable, step_features
from trajfm.judges.rootcause.fit import Example
from trajfm.traces.model import Trace

ROOT_CAUSE_DATASETS = ("whowhen", "agentrx", "trail")


def labelled_failures(dataset: str, path: Path) -> list[tuple[Trace, set[int]]]:
    if dataset == "whowhen":
        from trajfm.bench import whowhen as ww

        out = []
        for _, part_dir in ww.find_parts(path):
            runs = ww.read_runs(part_dir)
            matched = ww.match_traces(runs, load_dataset_traces([r.path for r in runs]))
            out += [(matched[r.rel], {r.mistake_step}) for r in runs if r.rel in matched]
        return out
    if dataset == "agentrx":
        from trajfm.bench import agentrx as ax

        out = []
        for _part, labels, read in ax.PARTS:
            if not (path / labels).is_file():
                continue
            failed, traces, _skipped = read(path, None)
            by_run = ax.match_traces(failed, traces)
            out += [(by_run[r.run_id], {r.root_step}) for r in failed if r.run_id in by_run]
        return out
    if dataset == "trail":
        from trajfm.bench import trail as tr

        out = []
        for g, t in tr.labelled_traces(path):
            index_of = {s.step_id: s.index for s in t.steps}
            steps = {index_of[loc] for loc in g.gold_locations if loc in index_of}
            if steps:
                out.append((t, steps))
        return out
    return []


def _off_for(trace: Trace, off: Mapping[str, frozenset[str]] | None) -> frozenset[str]:
    return off.get(trace_shape(trace), frozenset()) if off else frozenset()


def step_table(trace: Trace, off: Mapping[str, frozenset[str]] | None = None) -> StepTable:
    """The root-cause candidates of a trace and their feature rows, computed the way the rules judge computes them
    (`off`: per trace shape, the finding kinds the judge's calibration switches off, dropped here too)."""
    from trajfm.judges.rules import evidence_pick

    view = build_view(trace)
    skip = _off_for(trace, off)
    findings = [f for f in run_detectors(trace, view=view) if f.kind not in skip]
    decisive = [f for f in findings if FINDING_KINDS[f.kind].decisive and f.steps]
    picked = evidence_pick(decisive, trace, view)
    return step_features(view, findings, picked[0] if picked else None)


def user_request_counts(
    pairs: list[tuple[Trace, set[int]]], off: Mapping[str, frozenset[str]] | None = None
) -> tuple[int, int]:
    """(fired, agreed) of the rules judge's user-request root cause (`rules.carried_out_request`) on labelled
    failed traces: how often the judge's own root-cause choice (`rules.choose_root_cause`, the run known to have
    failed) places it there, and how often at a labelled step. Its measured precision is that rule's confidence."""
    from trajfm.judges.rootcause.model import load_model
    from trajfm.judges.rules import choose_root_cause

    model = load_model()  # not used when the rule fires: it decides before the scorer is asked
    fired = agreed = 0
    for trace, gold in pairs:
        view = build_view(trace)
        skip = _off_for(trace, off)
        findings = [f for f in run_detectors(trace, view=view) if f.kind not in skip]
        step, _, _, _, basis = choose_root_cause(findings, trace, view, model, known_failed=True)
        if basis == "user request":
            fired += 1
            agreed += int(step in gold)
    return fired, agreed


def examples(
    pairs: list[tuple[Trace, set[int]]], dataset: str, off: Mapping[str, frozenset[str]] | None = None
) -> list[Example]:
    """Feature tables of labelled failed traces (`step_table`), with the candidates the labels point at."""
    out = []
    for trace, gold in pairs:
        table = step_table(trace, off)
        hits = [i for i, s in enumerate(table.steps) if s.index in gold]
        out.append(Example(dataset=dataset, rows=table.rows, gold=hits))
    return out
