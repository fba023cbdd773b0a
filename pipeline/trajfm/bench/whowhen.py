"""Who&When (ICML 2025): which agent, at which step, caused a multi-agent run to fail.

Data: one JSON file per failed run with `history` (items `{content, role, name}`; Magentic-One logs of the
Hand-Crafted part carry the agent in `role` and no `name`), `mistake_agent`, `mistake_step` (0-based index into
`history`, stored as a string) and `mistake_reason`. PATH is a part folder (`Algorithm-Generated/`,
`Hand-Crafted/`) or the dataset folder holding the parts; each part is scored separately.

Metric (the paper's): agent-level accuracy (predicted root-cause agent == `mistake_agent`, case-insensitive) and
step-level accuracy (predicted root-cause step == `mistake_step`), plus step accuracy within +-1 and +-3 steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajfm.bench import baselines as bl
from trajfm.bench import metrics as m
from trajfm.bench.core import (
    BenchResult,
    BenchSettings,
    Timer,
    load_dataset_traces,
    not_loaded_notes,
    read_json_lenient,
)
from trajfm.errors import TraceLoadError, UsageError
from trajfm.traces.model import Trace

PARTS = ("Algorithm-Generated", "Hand-Crafted")
METRIC_NAMES = {
    "agent_acc": "agent accuracy",
    "step_acc": "step accuracy",
    "step_acc_pm1": "step accuracy +-1",
    "step_acc_pm3": "step accuracy +-3",
}
PUBLISHED = {
    # Who&When paper, Table 1, GPT-4o without the ground-truth answer (../shared/datasets/README.md).
    "Algorithm-Generated": {
        "GPT-4o all-at-once (paper)": {"agent_acc": 0.511, "step_acc": 0.135},
        "GPT-4o step-by-step (paper)": {"agent_acc": 0.260, "step_acc": 0.153},
        "GPT-4o binary search (paper)": {"agent_acc": 0.301, "step_acc": 0.166},
        "random (paper)": {"agent_acc": 0.291, "step_acc": 0.191},
    },
}
PUBLISHED_SOURCE = (
    "Who&When paper Table 1 (GPT-4o, judge without ground truth), via ../shared/datasets/README.md"
)


@dataclass
class FailedRun:
    """One labelled log: where it is, who spoke at each step, what the experts blamed."""

    path: Path
    rel: str
    speakers: list[str | None]
    contents: list[str]
    mistake_agent: str
    mistake_step: int


def find_parts(path: Path) -> list[tuple[str, Path]]:
    """The parts under PATH: PATH itself when it holds the JSON logs, else its known part subfolders."""
    if not path.exists():
        raise UsageError(
            f"Who&When path {path} does not exist; pass the who_and_when folder or one of its parts"
        )
    if path.is_file() or any(path.glob("*.json")):
        return [(path.name if path.is_dir() else path.parent.name, path)]
    parts = [(name, path / name) for name in PARTS if (path / name).is_dir()]
    if not parts:
        raise UsageError(
            f"no Who&When logs under {path}: expected *.json files or the folders {', '.join(PARTS)}"
        )
    return parts


def _speaker(item: dict[str, Any]) -> str | None:
    """The agent of a history item: `name`, else the role without a Magentic-One annotation such as
    "Orchestrator (thought)" (the labels name the agent, "Orchestrator")."""
    name = item.get("name")
    if name:
        return str(name)
    role = str(item.get("role") or "").strip()
    if role.endswith(")") and " (" in role:
        role = role[: role.index(" (")].strip()
    return role or None


def read_runs(
    part_dir: Path, *, limit: int | None = None, skipped: list[str] | None = None
) -> list[FailedRun]:
    """Read the labelled logs of one part, in a stable order (numeric file names sort numerically). A file that is
    not a labelled Who&When log (bad JSON, no history or labels) is left out with a line in `skipped`; when no file
    of the part is one, that is an error naming the first."""
    skipped = [] if skipped is None else skipped
    files = [part_dir] if part_dir.is_file() else list(part_dir.glob("*.json"))
    files.sort(key=lambda p: (int(p.stem) if p.stem.isdigit() else 10**9, p.name))
    if limit is not None:
        files = files[:limit]
    runs = []
    problems = []
    for f in files:
        try:
            raw = read_json_lenient(f)
            history = raw["history"]
            step = int(str(raw["mistake_step"]).strip())
            agent = str(raw["mistake_agent"])
            if not isinstance(history, list):
                raise TypeError(f"history is a {type(history).__name__}, not a list")
            speakers = [_speaker(h) for h in history]
            contents = [str(h.get("content") or "") for h in history]
        except (KeyError, TypeError, ValueError, AttributeError, TraceLoadError) as exc:
            problems.append(
                f"{f}: not a labelled Who&When log ({exc}); it needs history, mistake_agent and mistake_step"
            )
            continue
        runs.append(
            FailedRun(
                path=f,
                rel=f.name,
                speakers=speakers,
                contents=contents,
                mistake_agent=agent,
                mistake_step=step,
            )
        )
    if problems and not runs:
        raise UsageError(
            problems[0] + (f" (and {len(problems) - 1} more files like it)" if len(problems) > 1 else "")
        )
    skipped += problems
    return runs


def _same_agent(pred: str | None, gold: str) -> bool:
    return pred is not None and bl.agent_key(pred) == bl.agent_key(gold)


def score(runs: list[FailedRun], predictions: list[tuple[str | None, int | None]]) -> dict[str, float]:
    """Agent and step accuracy (exact, +-1, +-3) of (agent, step) predictions, one per run."""
    gold_steps = [r.mistake_step for r in runs]
    steps = [p[1] for p in predictions]
    return {
        "agent_acc": m.accuracy(
            [1 if _same_agent(p[0], r.mistake_agent) else 0 for p, r in zip(predictions, runs, strict=True)],
            [1] * len(runs),
        ),
        "step_acc": m.step_accuracy_within(steps, gold_steps, 0),
        "step_acc_pm1": m.step_accuracy_within(steps, gold_steps, 1),
        "step_acc_pm3": m.step_accuracy_within(steps, gold_steps, 3),
    }


def naive_baselines(runs: list[FailedRun]) -> dict[str, dict[str, float]]:
    """Random (expected), positional and error-signal baselines on the same runs."""
    n = len(runs)
    out: dict[str, dict[str, float]] = {}
    if n == 0:
        return out
    out["random (expected)"] = {
        "agent_acc": sum(bl.expected_random_agent(r.speakers, r.mistake_agent) for r in runs) / n,
        "step_acc": sum(bl.expected_random_step(len(r.contents), r.mistake_step) for r in runs) / n,
        "step_acc_pm1": sum(bl.expected_random_step(len(r.contents), r.mistake_step, 1) for r in runs) / n,
        "step_acc_pm3": sum(bl.expected_random_step(len(r.contents), r.mistake_step, 3) for r in runs) / n,
    }
    out["always step 0"] = score(runs, [bl.fixed_position(r.speakers, 0) for r in runs])
    out["always step 1"] = score(runs, [bl.fixed_position(r.speakers, 1) for r in runs])
    out["last step"] = score(runs, [bl.last_position(r.speakers) for r in runs])
    out["speaker before first error signal"] = score(
        runs, [bl.blame_before_first_error(r.speakers, r.contents) for r in runs]
    )
    top = bl.most_common([r.mistake_agent for r in runs])
    if top is not None:
        out[f"first step of most-blamed agent ({top}; label prior)"] = score(
            runs, [bl.first_step_of(r.speakers, top) for r in runs]
        )
    return out


def match_traces(runs: list[FailedRun], traces: list[Trace]) -> dict[str, Trace]:
    """Map each run's file name to its loaded trace (by the trace's source path)."""
    by_name: dict[str, Trace] = {}
    for t in traces:
        by_name.setdefault(Path(t.source_path).name, t)
    return {r.rel: by_name[r.rel] for r in runs if r.rel in by_name}


def run(path: Path, settings: BenchSettings) -> list[BenchResult]:
    """Score a judge on every Who&When part found under PATH."""
    results = []
    parts = find_parts(path)
    for part, part_dir in parts:
        with Timer() as timer:
            skipped: list[str] = []
            runs = read_runs(part_dir, limit=settings.limit, skipped=skipped)
            traces = load_dataset_traces([r.path for r in runs])
            matched = match_traces(runs, traces)
            judged, status = settings.judge_labelled(runs, lambda r: r.rel, matched, taxonomy="mast")
            predictions: list[tuple[str | None, int | None]] = []
            per_trace = []
            for j in judged:
                r, d = j.label, j.ok
                pred = (d.root_cause_agent, d.root_cause_step) if d is not None else (None, None)
                predictions.append(pred)
                per_trace.append(
                    {
                        "file": r.rel,
                        "gold_agent": r.mistake_agent,
                        "gold_step": r.mistake_step,
                        "pred_agent": pred[0],
                        "pred_step": pred[1],
                        "status": j.status,
                    }
                )
            metrics = score(runs, predictions)
        notes = []
        if part == "Algorithm-Generated" and "Hand-Crafted" not in [name for name, _ in parts]:
            notes.append("The Hand-Crafted (Magentic-One) part is not in this folder and was not measured.")
        if skipped:
            shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
            notes.append(f"{len(skipped)} file(s) left out, not labelled Who&When logs: {shown}")
        notes += not_loaded_notes(len(runs), len(matched), "logs", "wrong")
        results.append(
            BenchResult(
                dataset="whowhen",
                part=part,
                judge=settings.judge,
                path=str(part_dir),
                n_traces=len(runs),
                n_scored=sum(1 for p in predictions if p != (None, None)),
                metrics=metrics,
                metric_names=METRIC_NAMES,
                baselines=naive_baselines(runs),
                published=PUBLISHED.get(part, {}),
                published_source=PUBLISHED_SOURCE,
                notes=notes,
                per_trace=per_trace,
                judge_status=status,
                seconds=timer.seconds,
            )
        )
    return results
