"""What every benchmark shares: the result record, label-spelling normalisation, lenient JSON, running a judge.

Contract:
- A benchmark module (`whowhen`, `agentrx`, `trail`, `mast`, `assetops`) exposes `run(path, settings:
  BenchSettings) -> list[BenchResult]` (one result per dataset part). It reads the human labels itself (never
  through the judge), computes naive baselines from the raw files and labels, loads the traces with the normal
  loaders, runs the judge through the same machinery as `trajfm extract` (`judges.registry.get_judge` +
  `judges.runner.run_judge`) with `BenchSettings.judge_labelled`, and scores the diagnoses.
- `BenchResult.metrics` holds our figures; `baselines` the naive ones computed on the same traces; `published`
  the papers' figures (copied from ../shared/datasets/README.md, cited in `published_source`). Every figure is a
  float in [0, 1] (kappa in [-1, 1]) or nan when it cannot be computed.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from trajfm.errors import TraceLoadError
from trajfm.judges.base import Diagnosis
from trajfm.traces.model import Trace

# Words that label sets add or drop freely ("Tool Selection" / "Tool Selection Errors"); removed before matching.
_GENERIC_WORDS = {"error", "errors", "failure", "failures", "issue", "issues"}


def label_key(name: str) -> str:
    """A spelling-insensitive key for a category name: lower case, punctuation and generic suffix words dropped.

    "Context Handling Failures", "context handling failure" and " Context-Handling Failure" share one key.
    """
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and w not in _GENERIC_WORDS]
    return "".join(words)


class LabelNormaliser:
    """Maps the many spellings of a dataset's category names to taxonomy mode ids, and records the unknown ones."""

    def __init__(self, names_to_ids: dict[str, str], aliases: dict[str, str] | None = None) -> None:
        self._by_key = {label_key(n): i for n, i in names_to_ids.items()}
        for alias, target in (aliases or {}).items():
            self._by_key[label_key(alias)] = target
        self.unknown: dict[str, int] = {}

    def __call__(self, name: str) -> str | None:
        found = self._by_key.get(label_key(name))
        if found is None:
            self.unknown[name] = self.unknown.get(name, 0) + 1
        return found


def read_json_lenient(path: Path) -> Any:
    """Parse a JSON file; on failure retry with trailing commas before `]` / `}` removed (a known defect of one
    TRAIL label file). Raises TraceLoadError naming the file when it still cannot be parsed."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        repaired = re.sub(r",(\s*[\]}])", r"\1", text)
        try:
            return json.loads(repaired)
        except json.JSONDecodeError:
            raise TraceLoadError(
                f"not valid JSON ({first.msg} at line {first.lineno} column {first.colno}), even with trailing "
                "commas removed; fix or remove the file",
                path=str(path),
            ) from first


@dataclass
class BenchResult:
    """The outcome of one benchmark run: our figures, naive and published baselines, and notes."""

    dataset: str
    part: str
    judge: str
    path: str
    n_traces: int
    n_scored: int
    metrics: dict[str, float]
    metric_names: dict[str, str]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    published: dict[str, dict[str, float]] = field(default_factory=dict)
    published_source: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    per_trace: list[dict[str, Any]] = field(default_factory=list)
    judge_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    extra_tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _nan_to_none(asdict(self))


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def merge_results(dataset: str, results: list[BenchResult]) -> dict[str, Any]:
    """The bench.json document for one command (one dataset, possibly several parts)."""
    return {"dataset": dataset, "parts": [r.to_json() for r in results]}


def load_dataset_traces(paths: list[Path], *, fmt: str | None = None) -> list[Trace]:
    """Load traces with the project's loaders (the same code path `trajfm extract` uses).

    One unreadable file never stops the benchmark: the loader records it as a failure, its trace is missing,
    and the benchmark scores it as a wrong (empty) prediction and says how many were missing.
    """
    from trajfm.traces import load_traces

    return list(load_traces(paths, fmt=fmt).traces)


def run_judge_on(
    traces: list[Trace],
    *,
    judge: str,
    judge_options: dict[str, Any],
    taxonomy: str,
    progress: bool = False,
    out: Path | None = None,
    on_result: Callable[[Diagnosis], None] | None = None,
) -> tuple[list[Diagnosis], dict[str, int]]:
    """Run a registered judge over traces with the shared runner; return diagnoses and a count per status.

    Like `trajfm extract`, a judge that makes calls gets the reply cache of the run folder (OUT/cache/), so an
    interrupted LLM bench resumes where it stopped and a re-run costs nothing. `judge_options` may carry
    `concurrency` for the runner; the rest goes to the judge factory.
    """
    from trajfm.judges.registry import get_judge
    from trajfm.judges.runner import run_judge
    from trajfm.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    options = dict(judge_options)
    concurrency = int(options.pop("concurrency", 8))
    the_judge = get_judge(judge, **options)
    cache = None
    if out is not None and the_judge.cacheable:
        from trajfm.judges.cache import JudgeCache

        out.mkdir(parents=True, exist_ok=True)
        cache = JudgeCache.in_run(out)
    try:
        diagnoses = run_judge(
            the_judge,
            traces,
            tax,
            concurrency=concurrency,
            cache=cache,
            progress=progress,
            on_result=on_result,
        )
    finally:
        if cache is not None:
            cache.close()
    status: dict[str, int] = {}
    for d in diagnoses:
        status[d.status] = status.get(d.status, 0) + 1
    return diagnoses, status


L = TypeVar("L")


@dataclass
class Judged(Generic[L]):
    """One labelled item after judging: its loaded trace and diagnosis, both None when the trace was not loaded."""

    label: L
    trace: Trace | None
    diagnosis: Diagnosis | None

    @property
    def ok(self) -> Diagnosis | None:
        """The diagnosis when the judge succeeded, else None (a failed or missing trace is an empty prediction)."""
        d = self.diagnosis
        return d if d is not None and d.status == "ok" else None

    @property
    def status(self) -> str:
        """The judge's status for the per-trace table; "not loaded" when there was no trace to judge."""
        return self.diagnosis.status if self.diagnosis is not None else "not loaded"


@dataclass(frozen=True)
class BenchSettings:
    """What `run_bench` tells every benchmark module: which judge with which options, how many labelled items
    at most, whether to show progress, and the run folder (whose cache/ a judge that makes calls uses)."""

    judge: str = "rules"
    judge_options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    progress: bool = False
    out: Path | None = None

    def judge_labelled(
        self,
        labels: Sequence[L],
        key: Callable[[L], Hashable],
        matched: Mapping[Any, Trace],
        *,
        taxonomy: str,
    ) -> tuple[list[Judged[L]], dict[str, int]]:
        """Judge the loaded traces in label order (`matched` maps `key(label)` to its trace); return one `Judged`
        per label, in label order, and a count of diagnoses per status."""
        ordered = [matched[key(x)] for x in labels if key(x) in matched]
        diagnoses, status = run_judge_on(
            ordered,
            judge=self.judge,
            judge_options=self.judge_options,
            taxonomy=taxonomy,
            progress=self.progress,
            out=self.out,
        )
        by_trace = {d.trace_id: d for d in diagnoses}
        judged = []
        for x in labels:
            t = matched.get(key(x))
            judged.append(Judged(x, t, by_trace.get(t.trace_id) if t is not None else None))
        return judged, status


def layout_root(path: Path, holds: Callable[[Path], bool], inner: Sequence[str]) -> Path:
    """The folder that holds a dataset's layout: PATH itself when `holds(PATH)`, else the first of its `inner`
    sub-folders that does (a checkout of the dataset's repository keeps its files one level down, in data/ or
    benchmarking/), else PATH (whose error then names the layout expected)."""
    if holds(path):
        return path
    for name in inner:
        if holds(path / name):
            return path / name
    return path


def not_loaded_notes(n_labelled: int, n_loaded: int, items: str, scored_as: str) -> list[str]:
    """The note saying how many labelled items had no loaded trace and how they were scored (none when all did)."""
    missing = n_labelled - n_loaded
    if not missing:
        return []
    return [f"{missing} of {n_labelled} {items} could not be loaded and are scored as {scored_as}."]


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def write_bench_json(out: Path, document: dict[str, Any]) -> Path:
    """Write RUN/bench.json atomically (creates RUN)."""
    from trajfm.runfolder import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    target = out / "bench.json"
    atomic_write_text(target, json.dumps(document, indent=1, sort_keys=False, default=str) + "\n")
    return target
