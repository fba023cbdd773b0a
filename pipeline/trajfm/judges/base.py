"""The judge protocol and what a judge returns.

A judge takes a `Trace` (and the taxonomy it labels against) and returns a `Diagnosis`: per taxonomy mode whether
it was detected, at which steps (indices as the source numbers them), a short verbatim evidence quote, a
rationale and a confidence; up to a few novel modes (failures the taxonomy does not name); a one-sentence
summary; whether the task was completed; and a root-cause step and agent.

Judges are either synchronous (`diagnose`, e.g. the rules judge) or asynchronous (`adiagnose`, e.g. the LLM
judge). A judge never sleeps and never retries: retry, rate limiting, caching and concurrency wrap any judge in
one place (`trajfm.judges.runner`). A judge signals a failed call with `trajfm.errors.BackendError` and an
unusable reply with `trajfm.errors.ParseError`; the runner turns those into a Diagnosis row with a status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from trajfm.judges.dimensions import empty_dimensions
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace


@dataclass(slots=True)
class ModeFinding:
    """The verdict on one taxonomy mode for one trace. `detected` is None when the judge did not check the mode
    (the rules judge has no rule for it; an LLM reply left it out): "not checked", which counts neither as found
    nor as absent."""

    mode_id: str
    detected: bool | None
    steps: list[int] = field(default_factory=list)
    evidence: str = ""
    evidence_verified: bool = False
    rationale: str = ""
    confidence: float = 1.0


@dataclass(slots=True)
class NovelMode:
    """A failure the taxonomy does not name, described by the judge."""

    title: str
    description: str
    steps: list[int] = field(default_factory=list)
    evidence: str = ""


@dataclass(slots=True)
class Diagnosis:
    """Everything a judge says about one trace. `status` is ok | parse_error | backend_error | skipped."""

    trace_id: str
    judge: str
    judge_model: str | None = None
    prompt_version: str | None = None
    status: str = "ok"
    error: str | None = None
    task_completed: bool | None = None
    summary: str = ""
    root_cause_step: int | None = None
    root_cause_agent: str | None = None
    root_cause_confidence: float | None = (
        None  # how sure the judge is of the root-cause step (0..1), if it says
    )
    source_outcome: str | None = (
        None  # what the trace itself records: "failed" | "succeeded" | None (unknown)
    )
    modes: list[ModeFinding] = field(default_factory=list)
    novel: list[NovelMode] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    calls: int = 0
    cached: bool = False
    raw_reply: str | None = None
    # The six scorecard dimensions (`trajfm.judges.dimensions`): true, false or None (not assessed).
    dimensions: dict[str, bool | None] = field(default_factory=empty_dimensions)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def detected(self) -> list[ModeFinding]:
        return [m for m in self.modes if m.detected]


@runtime_checkable
class Judge(Protocol):
    """What every judge provides. `cache_material` returns everything that changes the output (model, prompt
    version, parameters, taxonomy version), used for cache keys and the manifest."""

    name: str
    model: str | None
    prompt_version: str

    def cache_material(self) -> dict[str, Any]: ...


class SyncJudge(Judge, Protocol):
    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis: ...


class AsyncJudge(Judge, Protocol):
    async def adiagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis: ...
