"""Calibrated confidence per detector finding kind and trace shape, measured on labelled data and shipped as JSON.

Contract:
- A trace has one of two shapes (`trace_shape`): "spans" (a span tree: OpenTelemetry, LangSmith, Langfuse; its
  steps are spans) or "messages" (a message or step log: chat, ReAct, multi-agent conversations, raw logs). A
  detector can behave differently on the two (in a span tree one call shows as the model span that wrote it and
  the tool span that ran it), and the labelled sets that measure precision come in one shape each (TRAIL labels
  spans, the MAST subset labels whole conversations), so precision is measured and applied per shape: what a
  kind does on span trees says little about what it does on message logs.
- A calibration file is `{"version": 2, "min_findings": int, "shapes": {shape: {"measured_on": [datasets],
  "kinds": {kind: {"findings": n, "agreed": k, "precision": p}}}}, "notes"}`. A version-1 file (one top-level
  `"measured_on"` and `"kinds"`) applies its table to every shape.
- `Calibration.for_shape(shape)` is a `KindCalibration`: `confidence(kind)` is the measured precision
  (Laplace-smoothed, (k + 1) / (n + 2)) for a kind measured on at least `min_findings` findings of that shape, else
  None (the kind's own default stands, and the kind is reported as unmeasured); `enabled(kind)`: a kind whose
  measured precision is under `OFF_BELOW` (0.5) is off by default on that shape: the rules judge drops its
  findings there, and a mode that only such kinds check is written as not checked (null). An unmeasured kind
  stays on.
- The shipped file (`detector_calibration.json` beside this module) is written by `benchmarks/calibrate_detectors.py`;
  `trajfm bench --protocol lodo` writes one measured without the dataset it scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from trajfm.errors import UsageError
from trajfm.traces.model import Trace

DEFAULT_CALIBRATION = Path(__file__).with_name("detector_calibration.json")
OFF_BELOW = 0.5
SHAPES = ("spans", "messages")


def trace_shape(trace: Trace) -> str:
    """ "spans" when the trace's steps are spans of a span tree, else "messages"."""
    for step in trace.steps:
        if step.kind == "span":
            return "spans"
    return "messages"


@dataclass(frozen=True)
class KindCalibration:
    """The measured precision of each finding kind on traces of one shape."""

    precision: dict[str, float] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    measured_on: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, kinds: dict[str, Any], measured_on: list[str], min_n: int) -> KindCalibration:
        precision: dict[str, float] = {}
        counts: dict[str, tuple[int, int]] = {}
        for kind, row in (kinds or {}).items():
            n, k = int(row.get("findings", 0)), int(row.get("agreed", 0))
            counts[kind] = (n, k)
            if n >= min_n:
                precision[kind] = round((k + 1) / (n + 2), 3)
        return cls(precision, counts, tuple(measured_on or ()))

    def confidence(self, kind: str) -> float | None:
        return self.precision.get(kind)

    def enabled(self, kind: str) -> bool:
        p = self.precision.get(kind)
        return p is None or p >= OFF_BELOW

    def disabled_kinds(self) -> list[str]:
        return sorted(k for k in self.precision if not self.enabled(k))


@dataclass(frozen=True)
class Calibration:
    shapes: dict[str, KindCalibration] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "") -> Calibration:
        min_n = int(doc.get("min_findings", 5))
        where = f"detector calibration file {source}" if source else "detector calibration"
        if "shapes" in doc:
            tables = doc.get("shapes")
            if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
                raise UsageError(f'{where}: "shapes" must map each trace shape to {{"measured_on", "kinds"}}')
            unknown = sorted(set(tables) - set(SHAPES))
            if unknown:
                raise UsageError(f"{where}: unknown trace shape(s) {unknown}; the shapes are {list(SHAPES)}")
            shapes = {
                shape: KindCalibration.from_table(t.get("kinds") or {}, t.get("measured_on") or [], min_n)
                for shape, t in tables.items()
            }
        else:  # version 1: one table for every shape
            one = KindCalibration.from_table(doc.get("kinds") or {}, doc.get("measured_on") or [], min_n)
            shapes = dict.fromkeys(SHAPES, one)
        return cls(shapes, source)

    def for_shape(self, shape: str) -> KindCalibration:
        return self.shapes.get(shape) or KindCalibration()

    def off_by_shape(self) -> dict[str, frozenset[str]]:
        """{shape: the kinds off by default on it}, for every shape."""
        return {shape: frozenset(self.for_shape(shape).disabled_kinds()) for shape in SHAPES}

    @property
    def measured_on(self) -> tuple[str, ...]:
        return tuple(sorted({d for c in self.shapes.values() for d in c.measured_on}))


def measured(
    per_shape: dict[str, dict[str, tuple[int, int]]],
    measured_on: dict[str, list[str]],
    min_findings: int = 5,
) -> dict[str, Any]:
    """The calibration document for counts {shape: {kind: (findings, agreed)}} measured on {shape: [datasets]}."""
    return {
        "version": 2,
        "min_findings": min_findings,
        "shapes": {
            shape: {
                "measured_on": sorted(measured_on.get(shape, [])),
                "kinds": {
                    kind: {"findings": n, "agreed": k, "precision": round(k / n, 3) if n else None}
                    for kind, (n, k) in sorted(per_shape.get(shape, {}).items())
                },
            }
            for shape in SHAPES
        },
    }


def read_fitted_file(path: Path, what: str, remedy: str) -> dict[str, Any]:
    """The JSON document of one of the rules judge's fitted parts (this calibration, the root-cause weights); a
    missing or unreadable file is a `UsageError` naming `what` it is and the `remedy`."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{what} file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} file {path} is not valid JSON ({exc.msg}); {remedy}") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{what} file {path} holds no JSON object; {remedy}")
    return doc


@lru_cache(maxsize=8)
def load_calibration(path: str | None = None) -> Calibration:
    p = Path(path) if path else DEFAULT_CALIBRATION
    return Calibration.from_dict(read_fitted_file(p, "detector calibration", "re-measure it"), source=str(p))
