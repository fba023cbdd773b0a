"""tau-bench runs with rewards (any domain: retail, airline, ...): does the judge's own reading of each run's
outcome match its reward?

Data (PATH): a tau-bench results file (a JSON list of runs with `task_id`, `reward`, `info`, `traj`), or a folder
of such files (searched recursively). Each run with a reward is one scored trace; the reward (1 = the task was
done) is the label. tau-bench records the reward in the run itself, and the reward decides the diagnosis'
`task_completed`, so what is scored is the judge's own reading before the reward decides
(`agentrx.score_outcome_traces`). Metrics: task-completed accuracy, and the precision and recall of "failed";
baselines: a constant verdict ("always succeeded", "always failed").
"""

from __future__ import annotations

from pathlib import Path

from trajfm.bench.agentrx import score_outcome_traces
from trajfm.bench.core import BenchResult, BenchSettings
from trajfm.errors import UsageError


def run_files(path: Path) -> list[Path]:
    """The JSON files under PATH (PATH itself when it is a file), in a stable order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"tau-bench path {path} does not exist; pass a results file or a folder of them")
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if not files:
        raise UsageError(f"no JSON files under {path}: pass a tau-bench results file or a folder of them")
    return files


def run(path: Path, settings: BenchSettings) -> list[BenchResult]:
    """Score the judge's outcome reading on every rewarded tau-bench run under PATH (one result for all files);
    files or records that are not runs are named in a note."""
    from trajfm.traces import load_traces

    loaded = load_traces(run_files(path))
    traces = list(loaded.traces)
    if not any(t.reward is not None for t in traces):
        raise UsageError(
            f"no run under {path} carries a reward: expected tau-bench results (runs with task_id, reward, traj)"
        )
    name = path.stem if path.is_file() else path.name
    result = score_outcome_traces(
        traces, settings, dataset="tau", part=f"runs with rewards ({name})", path=path
    )
    unread = [str(f) for f in loaded.failures] + [f"{s.path}: {s.note}" for s in loaded.skipped]
    if unread:
        shown = "; ".join(unread[:3]) + (f"; and {len(unread) - 3} more" if len(unread) > 3 else "")
        result.notes.append(f"{len(unread)} file(s) or records were not read as runs: {shown}")
    return [result]
