"""Calibrated confidence per detector finding kind, measured on labelled data and shipped as a JSON file.

Contract:
- A calibration file is `{"version", "measured_on": [datasets], "min_findings": int, "kinds": {kind: {"findings":
  n, "agreed": k, "precision": p}}, "notes"}`. `Calibration.confidence(kind)` is the measured precision
  (Laplace-smoothed, (k + 1) / (n + 2)) for a kind measured on at least `min_findings` findings, else None (the
  kind's own default stands, and the kind is reported as unmeasured).
- `Calibration.enabled(kind)`: a kind whose measured precision is under `OFF_BELOW` (0.5) is off by default: the
  rules judge drops its findings, and a mode that only such kinds check is written as not checked (null). An
  unmeasured kind stays on.
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

DEFAULT_CALIBRATION = Path(__file__).with_name("detector_calibration.json")
OFF_BELOW = 0.5


@dataclass(frozen=True)
class Calibration:
    precision: dict[str, float] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    measured_on: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "") -> Calibration:
        min_n = int(doc.get("min_findings", 5))
        precision: dict[str, float] = {}
        counts: dict[str, tuple[int, int]] = {}
        for kind, row in (doc.get("kinds") or {}).items():
            n, k = int(row.get("findings", 0)), int(row.get("agreed", 0))
            counts[kind] = (n, k)
            if n >= min_n:
                precision[kind] = round((k + 1) / (n + 2), 3)
        return cls(precision, counts, tuple(doc.get("measured_on") or ()), source)

    def confidence(self, kind: str) -> float | None:
        return self.precision.get(kind)

    def enabled(self, kind: str) -> bool:
        p = self.precision.get(kind)
        return p is None or p >= OFF_BELOW

    def disabled_kinds(self) -> list[str]:
        return sorted(k for k in self.precision if not self.enabled(k))


def measured(
    per_kind: dict[str, tuple[int, int]], measured_on: list[str], min_findings: int = 5
) -> dict[str, Any]:
    """The calibration document for counts {kind: (findings, agreed)}."""
    return {
        "version": 1,
        "measured_on": sorted(measured_on),
        "min_findings": min_findings,
        "kinds": {
            kind: {"findings": n, "agreed": k, "precision": round(k / n, 3) if n else None}
            for kind, (n, k) in sorted(per_kind.items())
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
