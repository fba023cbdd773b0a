"""AgentRx (Barke et al. 2026): the critical failure step of a failed run, its agent and its category.

Data (PATH = the agentrx folder):
- tau-bench retail part: `tau_retail/tau_dataset_failed.json` (the failed runs with `task_id`, `traj`; the
  `_full` file lacks two labelled runs) and
  `ground_truth/tau_ground_truth.json` (per failed run: `trajectory_id` = `task_id`, `failures` with
  `step_number` (1-based into `traj`), `failure_category`, `failed_agent`, and one `root_cause.failure_id`, an int
  or a string).
- Magentic-One part: `magentic_dataset/<id>.json` with `ground_truth/magentic_one_ground_truth.json` in the same
  label schema. Supported when present; it is not in ../shared/datasets, so it was never measured here.

Metric: root-cause step accuracy (exact, +-1, +-3), root-cause agent accuracy (case-insensitive) and category
agreement (the judge's root-cause category, run with `taxonomy/agentrx.json`, against the gold category).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajfm.bench import baselines as bl
from trajfm.bench import metrics as m
from trajfm.bench.core import (
    BenchResult,
    BenchSettings,
    LabelNormaliser,
    Timer,
    layout_root,
    load_dataset_traces,
    not_loaded_notes,
    read_json_lenient,
)
from trajfm.errors import UsageError
from trajfm.judges.base import Diagnosis
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Trace

METRIC_NAMES = {
    "step_acc": "root-cause step accuracy",
    "step_acc_pm1": "step accuracy +-1",
    "step_acc_pm3": "step accuracy +-3",
    "agent_acc": "root-cause agent accuracy",
    "category_acc": "root-cause category agreement",
}
# Older releases of the label set call plan adherence "instruction adherence".
CATEGORY_ALIASES = {"Instruction Adherence Failure": "plan_adherence_failure"}


def category_normaliser() -> LabelNormaliser:
    tax = load_taxonomy("agentrx")
    return LabelNormaliser({mode.name: mode.id for mode in tax.modes}, CATEGORY_ALIASES)


@dataclass
class FailedRun:
    run_id: str
    part: str
    source: Path
    record: int | None
    speakers: list[str | None]
    contents: list[str]
    root_step: int
    root_agent: str
    root_category: str | None
    raw_category: str


def _root_failure(gt: dict[str, Any], where: str, skipped: list[str]) -> _Root | None:
    """The failure `root_cause.failure_id` names (ids compared as text: one release stores an int id as a string),
    with its 1-based step number as an int; None, and a line in `skipped`, when the label cannot be used (the id
    names no failure, or the step number is not a number). One unusable label leaves out that run only."""
    tid = gt.get("trajectory_id")
    want = str((gt.get("root_cause") or {}).get("failure_id", "")).strip()
    for f in gt.get("failures") or []:
        if str(f.get("failure_id", "")).strip() == want:
            try:
                step = int(str(f.get("step_number")).strip())
            except ValueError:
                skipped.append(f"{where}: trajectory {tid}: root-cause step_number {f.get('step_number')!r} is "
                               "not a number; the run is left out")  # fmt: skip
                return None
            return _Root(step, str(f.get("failed_agent", "")), str(f.get("failure_category", "")))
    skipped.append(
        f"{where}: trajectory {tid}: root_cause.failure_id {want!r} names no failure; the run is left out"
    )
    return None


@dataclass(frozen=True)
class _Root:
    step: int
    agent: str
    category: str


def _tau_speaker_content(item: dict[str, Any]) -> tuple[str | None, str]:
    role = item.get("role")
    content = item.get("content")
    text = "" if content is None else str(content)
    if item.get("tool_calls"):
        text = (text + "\n" if text else "") + str(item["tool_calls"])
    return (str(role) if role else None), text


def tau_runs_file(root: Path) -> Path:
    failed = root / "tau_retail" / "tau_dataset_failed.json"
    return failed if failed.is_file() else root / "tau_retail" / "tau_dataset_full.json"


def read_tau(root: Path, *, limit: int | None = None, skipped: list[str] | None = None) -> list[FailedRun]:
    """The labelled tau-bench runs; a label that cannot be used (no such run, no such root failure) is left out
    with a line in `skipped`."""
    skipped = [] if skipped is None else skipped
    gt_path = root / "ground_truth" / "tau_ground_truth.json"
    # The failed-runs file holds every labelled run (the "full" file lacks task ids 104 and 105).
    runs_path = tau_runs_file(root)
    labels = read_json_lenient(gt_path)
    records = read_json_lenient(runs_path)
    by_task = {str(r["task_id"]): (i, r) for i, r in enumerate(records)}
    norm = category_normaliser()
    out = []
    for gt in labels[: limit if limit is not None else None]:
        key = str(gt["trajectory_id"])
        if key not in by_task:
            skipped.append(
                f"{gt_path}: trajectory {key} has no run with that task_id in {runs_path}; left out"
            )
            continue
        record_no, record = by_task[key]
        failure = _root_failure(gt, str(gt_path), skipped)
        if failure is None:
            continue
        pairs = [_tau_speaker_content(item) for item in record["traj"]]
        out.append(
            FailedRun(
                run_id=key,
                part="tau-bench retail",
                source=runs_path,
                record=record_no,
                speakers=[p[0] for p in pairs],
                contents=[p[1] for p in pairs],
                root_step=failure.step,
                root_agent=failure.agent,
                root_category=norm(failure.category),
                raw_category=failure.category,
            )
        )
    return out


def read_magentic(
    root: Path, *, limit: int | None = None, skipped: list[str] | None = None
) -> list[FailedRun]:
    """The Magentic-One part: labels only; speakers come from the loaded traces (format not seen here). A label
    that cannot be used is left out with a line in `skipped`."""
    skipped = [] if skipped is None else skipped
    gt_path = root / "ground_truth" / "magentic_one_ground_truth.json"
    labels = read_json_lenient(gt_path)
    norm = category_normaliser()
    out = []
    for gt in labels[: limit if limit is not None else None]:
        key = str(gt["trajectory_id"])
        src = root / "magentic_dataset" / f"{key}.json"
        root_f = _root_failure(gt, str(gt_path), skipped)
        if root_f is None:
            continue
        out.append(
            FailedRun(
                run_id=key,
                part="Magentic-One",
                source=src,
                record=None,
                speakers=[],
                contents=[],
                root_step=root_f.step,
                root_agent=root_f.agent,
                root_category=norm(root_f.category),
                raw_category=root_f.category,
            )
        )
    return out


def root_cause_category(d: Diagnosis) -> str | None:
    """The category the judge gives the root cause: the detected mode citing the root-cause step, else the
    most confident detected mode; with none detected, the mode the judge filed the root cause under
    (`extra["root_cause_mode"]`: the rules judge's taxonomy fallback by who acted at the root-cause step)."""
    found = d.detected
    if not found:
        filed = d.extra.get("root_cause_mode")
        return str(filed["mode"]) if isinstance(filed, dict) and filed.get("mode") else None
    if d.root_cause_step is not None:
        at_root = [f for f in found if d.root_cause_step in f.steps]
        if at_root:
            return max(at_root, key=lambda f: f.confidence).mode_id
    return max(found, key=lambda f: f.confidence).mode_id


def _agent_name(name: str | None) -> str | None:
    return bl.agent_key(name) if name else None


def score(runs: list[FailedRun], preds: list[tuple[str | None, int | None, str | None]]) -> dict[str, float]:
    """Step / agent / category accuracy of (agent, step, category) predictions, one per run."""
    gold_steps = [r.root_step for r in runs]
    steps = [p[1] for p in preds]
    return {
        "step_acc": m.step_accuracy_within(steps, gold_steps, 0),
        "step_acc_pm1": m.step_accuracy_within(steps, gold_steps, 1),
        "step_acc_pm3": m.step_accuracy_within(steps, gold_steps, 3),
        "agent_acc": m.accuracy(
            [_agent_name(p[0]) for p in preds], [_agent_name(r.root_agent) for r in runs]
        ),
        "category_acc": m.accuracy([p[2] for p in preds], [r.root_category for r in runs]),
    }


def _as_step(guess: tuple[str | None, int]) -> tuple[str | None, int]:
    """Positions are 0-based; AgentRx step numbers are 1-based."""
    return guess[0], guess[1] + 1


def naive_baselines(runs: list[FailedRun]) -> dict[str, dict[str, float]]:
    runs = [r for r in runs if r.contents]
    n = len(runs)
    if n == 0:
        return {}
    top_cat = bl.most_common([r.root_category for r in runs if r.root_category])
    top_agent = bl.most_common([r.root_agent for r in runs]) or ""
    rnd = {
        "step_acc": sum(bl.expected_random_step(len(r.contents), r.root_step, 0, first=1) for r in runs) / n,
        "step_acc_pm1": sum(bl.expected_random_step(len(r.contents), r.root_step, 1, first=1) for r in runs)
        / n,
        "step_acc_pm3": sum(bl.expected_random_step(len(r.contents), r.root_step, 3, first=1) for r in runs)
        / n,
        "agent_acc": sum(bl.expected_random_agent(r.speakers, r.root_agent) for r in runs) / n,
        "category_acc": 1 / len(load_taxonomy("agentrx").modes),
    }
    out = {"random (expected)": rnd}

    def positional(guesses: list[tuple[str | None, int]]) -> dict[str, float]:
        return score(runs, [(a, s, top_cat) for a, s in guesses])

    out[f"first {top_agent} step, modal category (label prior)"] = positional(
        [_as_step(bl.first_step_of(r.speakers, top_agent)) for r in runs]
    )
    out[f"last {top_agent} step, modal category (label prior)"] = positional(
        [_as_step(_last_of(r.speakers, top_agent)) for r in runs]
    )
    out["speaker before first error signal, modal category"] = positional(
        [_as_step(bl.blame_before_first_error(r.speakers, r.contents)) for r in runs]
    )
    return out


def _last_of(speakers: list[str | None], agent: str) -> tuple[str | None, int]:
    want = bl.agent_key(agent)
    for pos in range(len(speakers) - 1, -1, -1):
        if bl.agent_key(speakers[pos]) == want:
            return speakers[pos], pos
    return bl.last_position(speakers)


def match_traces(runs: list[FailedRun], traces: list[Trace]) -> dict[str, Trace]:
    """Map each run id to its loaded trace: by task id / record number for tau, by file name for Magentic-One."""
    out: dict[str, Trace] = {}
    by_record: dict[str, Trace] = {}
    for t in traces:
        for key in (t.utterance_id, t.meta.get("task_id"), t.meta.get("record")):
            if key is not None:
                by_record.setdefault(str(key), t)
        by_record.setdefault(Path(t.source_path).stem, t)
    for r in runs:
        found = by_record.get(r.run_id)
        if found is not None:
            out[r.run_id] = found
    return out


def mark_known_failed(traces: Iterable[Trace]) -> int:
    """Mark failed every trace that records no outcome of its own; return how many were marked.

    Every labelled AgentRx run failed: the labels name the failure that sank it, and the benchmark asks where it
    started. The tau-bench records carry that as a reward of 0; the Magentic-One logs carry no outcome, so without
    this the judge would treat them as runs of unknown outcome and name a root cause only where a detector fired.
    """
    marked = 0
    for t in traces:
        if t.is_correct is None and t.reward is None:
            t.is_correct = False
            marked += 1
    return marked


def _fill_from_traces(runs: list[FailedRun], matched: dict[str, Trace]) -> None:
    """Runs read from labels only (Magentic-One) take their speakers and contents from the loaded trace."""
    for r in runs:
        t = matched.get(r.run_id)
        if not r.contents and t is not None:
            r.speakers = [s.agent for s in t.steps]
            r.contents = [s.content for s in t.steps]


def _skipped_note(skipped: list[str]) -> list[str]:
    """One note for the labels left out (they are not scored at all), quoting the first few reasons."""
    if not skipped:
        return []
    shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    return [f"{len(skipped)} labelled run(s) left out, their labels unusable: {shown}"]


def _score_part(
    part: str,
    runs: list[FailedRun],
    traces: list[Trace],
    settings: BenchSettings,
    *,
    path: Path,
    seconds_before: float,
    skipped: list[str],
) -> BenchResult:
    with Timer() as timer:
        matched = match_traces(runs, traces)
        marked = mark_known_failed(matched.values())
        _fill_from_traces(runs, matched)
        judged, status = settings.judge_labelled(runs, lambda r: r.run_id, matched, taxonomy="agentrx")
        preds: list[tuple[str | None, int | None, str | None]] = []
        per_trace = []
        for j in judged:
            r, d = j.label, j.ok
            if d is not None:
                pred = (d.root_cause_agent, d.root_cause_step, root_cause_category(d))
            else:
                pred = (None, None, None)
            preds.append(pred)
            per_trace.append(
                {
                    "trajectory_id": r.run_id,
                    "gold_step": r.root_step,
                    "gold_agent": r.root_agent,
                    "gold_category": r.root_category,
                    "pred_agent": pred[0],
                    "pred_step": pred[1],
                    "pred_category": pred[2],
                    "status": j.status,
                }
            )
        metrics = score(runs, preds)
    return BenchResult(
        dataset="agentrx",
        part=part,
        judge=settings.judge,
        path=str(path),
        n_traces=len(runs),
        n_scored=sum(1 for p in preds if p[1] is not None),
        metrics=metrics,
        metric_names=METRIC_NAMES,
        baselines=naive_baselines(runs),
        published={},
        published_source="AgentRx publishes its own scores per domain; none are listed in ../shared/datasets/README.md",
        notes=_skipped_note(skipped)
        + not_loaded_notes(len(runs), len(matched), "runs", "wrong")
        + (
            [
                f"{marked} of {len(matched)} runs record no outcome in their file; judged as the failed runs the "
                "labels say they are (AgentRx labels failed runs only)."
            ]
            if marked
            else []
        ),
        per_trace=per_trace,
        judge_status=status,
        seconds=seconds_before + timer.seconds,
    )


def _read_tau_part(root: Path, limit: int | None) -> tuple[list[FailedRun], list[Trace], list[str]]:
    skipped: list[str] = []
    runs = read_tau(root, limit=limit, skipped=skipped)
    return runs, load_dataset_traces([tau_runs_file(root)]), skipped


def _read_magentic_part(root: Path, limit: int | None) -> tuple[list[FailedRun], list[Trace], list[str]]:
    skipped: list[str] = []
    runs = read_magentic(root, limit=limit, skipped=skipped)
    return runs, load_dataset_traces([r.source for r in runs if r.source.is_file()]), skipped


OUTCOME_PART = "tau-bench retail outcomes"
OUTCOME_METRICS = {
    "outcome_acc": "task-completed accuracy of the judge's own reading (before the reward decides)",
    "failed_precision": "precision of its 'failed' verdicts",
    "failed_recall": "recall of the failed runs",
}


def _own_reading(d: Diagnosis) -> bool | None:
    """The judge's reading of whether the task was done, before any outcome the trace records decided it."""
    own = d.extra.get("judge_task_completed", d.task_completed) if d.extra else d.task_completed
    return own if isinstance(own, bool) else None


def outcome_scores(gold: list[bool], pred: list[bool | None]) -> dict[str, float]:
    """Accuracy of completed/failed readings against the rewards (None, no reading, counts as wrong), and the
    precision and recall of "failed"."""
    hits = [p is not None and p == g for g, p in zip(gold, pred, strict=True)]
    tp = sum(1 for g, p in zip(gold, pred, strict=True) if p is False and not g)
    fp = sum(1 for g, p in zip(gold, pred, strict=True) if p is False and g)
    fn = sum(1 for g, p in zip(gold, pred, strict=True) if p is not False and not g)
    precision, recall, _ = m.prf(tp, fp, fn)
    return {
        "outcome_acc": sum(hits) / len(hits) if hits else m.NAN,
        "failed_precision": precision,
        "failed_recall": recall,
    }


def score_outcomes(path: Path, settings: BenchSettings) -> BenchResult | None:
    """Every tau-bench run of `tau_retail/tau_dataset_full.json` (rewards 0/1): does the judge's own reading of
    the outcome match the reward? (`score_outcome_traces`.)"""
    file = path / "tau_retail" / "tau_dataset_full.json"
    if not file.is_file():
        return None
    return score_outcome_traces(
        load_dataset_traces([file]), settings, dataset="agentrx", part=OUTCOME_PART, path=file
    )


def score_outcome_traces(
    loaded: list[Trace], settings: BenchSettings, *, dataset: str, part: str, path: Path
) -> BenchResult:
    """The judge's own reading of each run's outcome against the run's reward (1 = succeeded). The reward decides
    `task_completed` when a trace carries it, so the judge's reading is taken from `extra["judge_task_completed"]`
    (the rules judge keeps it there; other judges' own `task_completed` is used as it is). Runs without a reward
    are not scored."""
    with Timer() as timer:
        traces = [t for t in loaded if t.reward is not None]
        if settings.limit is not None:
            traces = traces[: settings.limit]
        gold = [t.reward is not None and t.reward >= 1 for t in traces]
        judged, status = settings.judge_labelled(
            traces, lambda t: t.trace_id, {t.trace_id: t for t in traces}, taxonomy="agentrx"
        )
        pred = [_own_reading(j.ok) if j.ok is not None else None for j in judged]
        metrics = outcome_scores(gold, pred)
    unrewarded = len(loaded) - sum(1 for t in loaded if t.reward is not None)
    return BenchResult(
        dataset=dataset,
        part=part,
        judge=settings.judge,
        path=str(path),
        n_traces=len(traces),
        n_scored=sum(1 for p in pred if p is not None),
        metrics=metrics,
        metric_names=OUTCOME_METRICS,
        baselines={
            "always succeeded": outcome_scores(gold, [True] * len(gold)),
            "always failed": outcome_scores(gold, [False] * len(gold)),
        },
        published={},
        notes=[
            "The reward stays in each trace and decides task_completed; scored here is the judge's own reading "
            "of the outcome, what it says of runs that record none. Baselines: a constant verdict."
        ]
        + ([f"{unrewarded} loaded runs carry no reward and are not scored."] if unrewarded else []),
        per_trace=[
            {"trace_id": t.trace_id, "succeeded": g, "judge_completed": p, "status": j.status}
            for t, g, p, j in zip(traces, gold, pred, judged, strict=True)
        ],
        judge_status=status,
        seconds=timer.seconds,
    )


# (part, its label file under the agentrx folder, reader of its runs and traces), in the order they are scored.
PARTS = (
    ("tau-bench retail", Path("ground_truth") / "tau_ground_truth.json", _read_tau_part),
    ("Magentic-One", Path("ground_truth") / "magentic_one_ground_truth.json", _read_magentic_part),
)


def run(path: Path, settings: BenchSettings) -> list[BenchResult]:
    """Score a judge on the AgentRx parts found under PATH (the agentrx folder, or a checkout of AgentRx's
    repository, whose files sit under data/)."""
    if not path.is_dir():
        raise UsageError(f"AgentRx path {path} is not a folder; pass the agentrx folder")
    path = layout_root(path, lambda p: any((p / labels).is_file() for _, labels, _ in PARTS), ("data",))
    present = [(part, read) for part, labels, read in PARTS if (path / labels).is_file()]
    if not present:
        raise UsageError(
            f"no AgentRx labels under {path}: expected ground_truth/tau_ground_truth.json or "
            "ground_truth/magentic_one_ground_truth.json"
        )
    results = []
    for part, read in present:
        with Timer() as t0:
            runs, traces, skipped = read(path, settings.limit)
        results.append(
            _score_part(part, runs, traces, settings, path=path, seconds_before=t0.seconds, skipped=skipped)
        )
    if "Magentic-One" not in [part for part, _ in present]:  # then the one result is the tau-bench part
        results[0].notes.append("The Magentic-One part is not in this folder and was not measured.")
    outcomes = score_outcomes(path, settings)
    if outcomes is not None:
        results.append(outcomes)
    return results
