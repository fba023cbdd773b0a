"""Fake judges for tests (ours and users'): scripted outcomes per trace, no model, no network.

Contract:
- `ScriptedJudge(script)` is a sync judge. `script` maps a trace id to a list of outcomes used one per call:
  a `Diagnosis` (returned with the trace id filled in), an exception instance (raised: `BackendError`,
  `ParseError`, anything) or a callable `(trace, taxonomy) -> Diagnosis`. The last outcome repeats once the list is
  used up. Traces not in the script get `default(trace, taxonomy)`, by default a clean ok Diagnosis that labels
  every taxonomy mode as not detected.
- `AsyncScriptedJudge` is the same as an async judge, waiting `delay_s` per call (on the event loop, which is not
  the judge sleeping between retries: it stands for the time a backend takes), and recording the largest number
  of calls in flight at once.
- `calls[trace_id]` counts the calls each trace received.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Callable
from typing import Any

from trajfm.judges.base import Diagnosis, Judge, ModeFinding
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

Outcome = Diagnosis | BaseException | Callable[[Trace, Taxonomy], Diagnosis]


def clean_diagnosis(trace: Trace, taxonomy: Taxonomy, *, judge: str = "scripted") -> Diagnosis:
    """An ok Diagnosis with every mode labelled not detected and the task completed."""
    return Diagnosis(
        trace_id=trace.trace_id,
        judge=judge,
        judge_model="scripted",
        prompt_version="scripted-1",
        task_completed=True,
        summary=f"Scripted verdict on {trace.trace_id}.",
        modes=[ModeFinding(mode_id=m.id, detected=False) for m in taxonomy.modes],
        calls=1,
    )


class ScriptedJudge(Judge):
    """A sync judge that plays back scripted outcomes (see the module docstring)."""

    name = "scripted"
    model: str | None = "scripted"
    prompt_version = "scripted-1"

    def __init__(
        self,
        script: dict[str, list[Outcome]] | None = None,
        *,
        default: Callable[[Trace, Taxonomy], Diagnosis] | None = None,
        version: str = "1",
    ) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default or clean_diagnosis
        self.version = version
        self.calls: Counter[str] = Counter()

    def cache_material(self) -> dict[str, Any]:
        return {"judge": self.name, "version": self.version}

    def _outcome(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        self.calls[trace.trace_id] += 1
        queue = self.script.get(trace.trace_id)
        if not queue:
            return self.default(trace, taxonomy)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, BaseException):
            raise copy.copy(item)
        if isinstance(item, Diagnosis):
            d = copy.deepcopy(item)
            d.trace_id = trace.trace_id
            return d
        return item(trace, taxonomy)

    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        return self._outcome(trace, taxonomy)


class AsyncScriptedJudge(ScriptedJudge):
    """The async twin of ScriptedJudge, with a per-call delay and an in-flight high-water mark. Its verdicts
    are cached in a run folder, like those of any judge that makes calls."""

    cacheable = True

    def __init__(
        self, script: dict[str, list[Outcome]] | None = None, *, delay_s: float = 0.0, **kw: Any
    ) -> None:
        super().__init__(script, **kw)
        self.delay_s = delay_s
        self.in_flight = 0
        self.max_in_flight = 0

    async def adiagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return self._outcome(trace, taxonomy)
        finally:
            self.in_flight -= 1
