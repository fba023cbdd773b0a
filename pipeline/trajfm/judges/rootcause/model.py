"""The root-cause step scorer: a linear score per candidate step, softmax over the trace's candidates.

Contract:
- A model file is JSON `{"version", "features": [names], "weights": {name: float}, "fitted_on": [datasets],
  "l2": float, "notes": str}`; features the file does not weigh count 0, and a feature the code does not
  compute is an error (the file was written for another version of `features.FEATURES`).
- `RootCauseModel.pick(table)` returns the candidate with the highest score (the earliest on ties) and its
  softmax probability, which the rules judge reports as the root cause's confidence.
- `user_request` (optional) `{"fired": n, "agreed": k}`: how often the rules judge's user-request root cause
  (`rules.carried_out_request`) placed a labelled failed run's root cause, and how often at a labelled step, on
  the fitting sets. `user_request_confidence()` is its Laplace-smoothed precision (k + 1) / (n + 2) when it fired
  at least `MIN_MEASURED` times, else None (not measured).
- The shipped weights (`root_cause_weights.json` beside this module) are fitted by
  `benchmarks/fit_root_cause.py` on the visible labelled sets; `trajfm bench --protocol lodo` refits them without
  the dataset it scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from operator import mul
from pathlib import Path
from typing import Any, Final

from trajfm.errors import UsageError
from trajfm.judges.calibration import read_fitted_file
from trajfm.judges.rootcause.features import FEATURES, StepTable

DEFAULT_WEIGHTS: Final = Path(__file__).with_name("root_cause_weights.json")
MIN_MEASURED: Final = 5  # as for a detector's precision (`judges.calibration`)


@dataclass(frozen=True)
class RootCauseModel:
    weights: tuple[float, ...]
    fitted_on: tuple[str, ...] = ()
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "") -> RootCauseModel:
        w = doc.get("weights")
        if not isinstance(w, dict):
            raise UsageError(f"root-cause model {source or '(dict)'}: no 'weights' object")
        unknown = sorted(set(w) - set(FEATURES))
        if unknown:
            raise UsageError(
                f"root-cause model {source or '(dict)'}: weights for unknown features {unknown}; refit it with "
                "benchmarks/fit_root_cause.py"
            )
        return cls(
            weights=tuple(float(w.get(name, 0.0)) for name in FEATURES),
            fitted_on=tuple(doc.get("fitted_on") or ()),
            source=source,
            info={k: v for k, v in doc.items() if k != "weights"},
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.info, "weights": dict(zip(FEATURES, self.weights, strict=True))}

    def user_request_confidence(self) -> float | None:
        row = self.info.get("user_request")
        if not isinstance(row, dict):
            return None
        n, k = int(row.get("fired", 0)), int(row.get("agreed", 0))
        return round((k + 1) / (n + 2), 3) if n >= MIN_MEASURED else None

    def scores(self, table: StepTable) -> list[float]:
        w = self.weights
        if table.rows and len(table.rows[0]) != len(w):
            raise ValueError(f"feature rows of {len(table.rows[0])} values for {len(w)} weights")
        return [sum(map(mul, w, row)) for row in table.rows]

    def pick_rows(self, rows: list[list[float]]) -> int | None:
        best = self.pick(StepTable(steps=[], rows=rows, roles=[]))
        return best[0] if best is not None else None

    def pick(self, table: StepTable) -> tuple[int, float] | None:
        """(candidate number, probability) of the best-scoring candidate, or None without candidates."""
        if not table.rows:
            return None
        s = self.scores(table)
        top = max(s)
        best = s.index(top)  # the earliest of the highest scores
        z = sum(math.exp(v - top) for v in s)
        return best, 1.0 / z


@lru_cache(maxsize=8)
def load_model(path: str | None = None) -> RootCauseModel:
    """The model in PATH (default: the shipped weights). Cached per path."""
    p = Path(path) if path else DEFAULT_WEIGHTS
    doc = read_fitted_file(p, "root-cause model", "refit or restore it")
    return RootCauseModel.from_dict(doc, source=str(p))
