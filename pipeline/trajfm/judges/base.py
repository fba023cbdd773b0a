"""The judge protocol and what a judge returns.

A judge takes a `Trace` (and the taxonomy it labels against) and returns a `Diagnosis`: per taxonomy mode whether
it was detected, at which steps (indices as the source numbers them), a short verbatim evidence quote, a
rationale and a confidence; up to a few novel modes (failures the taxonomy does not name); a one-sentence
summary; whether the task was completed; and a root-cause step and agent.

`Judge` is the base class of every judge (built-in or a plugin registered under the entry-point group
`trajfm.judges`, see `trajfm.plugins`). Judges are either synchronous (`diagnose`, e.g. the rules judge) or
asynchronous (`adiagnose`, e.g. the LLM judge). A judge never sleeps and never retries: retry, rate limiting, caching and concurrency wrap any judge in
one place (`trajfm.judges.runner`). A judge signals a failed call with `trajfm.errors.BackendError` and an
unusable reply with `trajfm.errors.ParseError`; the runner turns those into a Diagnosis row with a status.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from trajfm.errors import JudgeError
from trajfm.judges.dimensions import empty_dimensions
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

if TYPE_CHECKING:
    from trajfm.judges.client import EndpointCheck


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
    # Set by extract (`trajfm.judges.quality`): "ok", or the reasons a degenerate reply was set aside.
    judge_quality: str | None = None
    # The six scorecard dimensions (`trajfm.judges.dimensions`): true, false or None (not assessed).
    dimensions: dict[str, bool | None] = field(default_factory=empty_dimensions)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def detected(self) -> list[ModeFinding]:
        return [m for m in self.modes if m.detected]


class Judge:
    """The base class of every judge, built-in or plugin. Subclass it and implement `diagnose` (a sync judge, e.g.
    rules) or `async adiagnose` (a judge that waits on a backend, e.g. the LLM judge); everything else has a
    default that does nothing or says "no calls".

    Attributes a judge sets: `name` (what `--judge` calls it and what its diagnoses record), `model` (the model it
    asks, None for an offline judge), `prompt_version` (changes whenever the same input can give another verdict).

    Capabilities, declared on the class (nothing probes for methods):
    - `cacheable`: store ok verdicts in RUN/cache/ and never judge the same input twice (judges that make calls).
    - `needs_endpoint`: `base_url` must answer before judging starts (checked once, so a dead endpoint fails at
      once instead of every trace spending its retries).
    - `is_async`: set automatically for a subclass that defines `adiagnose`.

    Hooks with defaults (override what applies):
    - `from_options(**options)`: build from CLI options (`--model`, `--base-url`, `--samples`, `--judge-option
      KEY=VALUE`; None means "not given"). The default passes given options to `__init__` and refuses unknown
      ones with a `JudgeError` naming them.
    - `cache_material()`: everything besides the trace that changes the output (model, prompt version,
      parameters); part of every cache key and of the manifest. Default: name and prompt version.
    - `cache_input(trace, taxonomy)`: what this judge reads of the trace, for cache keys. Default: the whole trace.
    - `manifest_info()`: the judge's configuration for manifest.json (never credentials).
    - `plan(traces, taxonomy, skip=...)`: what judging would cost (`--dry-run`). Default: no calls.
    - `prompt_text(taxonomy)`: the instructions sent to a model, for the reply-quality checks ("" by default).
    - `check_endpoint()`: one cheap request to the endpoint (`--dry-run`, and before judging when
      `needs_endpoint`); None for a judge without one.
    - `prepare(concurrency=...)`: told the runner's concurrency before judging. `aclose()`: after an async run.
    """

    name: ClassVar[str] = "judge"
    model: str | None = None
    prompt_version: str = "1"
    base_url: str | None = None
    cacheable: ClassVar[bool] = False
    needs_endpoint: ClassVar[bool] = False
    is_async: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.is_async = cls.adiagnose is not Judge.adiagnose
        if not cls.is_async and cls.diagnose is Judge.diagnose:
            # A judge that judges nothing is a mistake in the subclass: say so when it is defined.
            raise TypeError(f"judge class {cls.__qualname__} must define diagnose() or async adiagnose()")

    @classmethod
    def from_options(cls, **options: Any) -> Judge:
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
        given = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - known)
        if unknown:
            raise JudgeError(
                f"the {cls.name} judge has no option(s) {', '.join(unknown)}"
                + (f"; it takes {', '.join(sorted(known))}" if known else "; it takes none")
            )
        return cls(**given)

    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        raise NotImplementedError(f"{type(self).__name__} is an async judge: call adiagnose")

    async def adiagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        return self.diagnose(trace, taxonomy)

    def cache_material(self) -> dict[str, Any]:
        return {"judge": self.name, "prompt_version": self.prompt_version}

    def cache_input(self, trace: Trace, taxonomy: Taxonomy) -> Any:
        return dataclasses.asdict(trace)

    def manifest_info(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "parameters": self.cache_material(),
        }

    def plan(
        self, traces: Sequence[Trace], taxonomy: Taxonomy, *, skip: set[str] | None = None
    ) -> dict[str, Any]:
        todo = [t for t in traces if not skip or t.trace_id not in skip]
        return {
            "traces": len(traces),
            "traces_to_judge": len(todo),
            "calls": 0,
            "est_tokens_in": 0,
            "note": f"the {self.name} judge makes no calls",
        }

    def prompt_text(self, taxonomy: Taxonomy) -> str:
        """The instructions the judge sends a model (for the reply-quality checks); "" for a judge without one."""
        return ""

    def check_endpoint(self) -> EndpointCheck | None:
        """One cheap request to the judge's endpoint (key accepted? model served?); None for a judge without one."""
        return None

    def prepare(self, *, concurrency: int) -> None:
        return None

    async def aclose(self) -> None:
        return None
