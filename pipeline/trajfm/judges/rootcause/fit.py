"""Fitting the root-cause scorer: a conditional logit (softmax over each trace's candidate steps) with L2.

Contract: `fit(examples, l2)` takes `Example`s (the feature table of one labelled failed trace, the candidate
numbers the labels point at, and the dataset it came from) and returns a `RootCauseModel`. Each dataset weighs
the same in the loss however many traces it has, so a large set does not decide the weights alone; a trace with
several labelled steps (TRAIL's span locations) counts as a hit on any of them. Deterministic: L-BFGS from the
prior (zero by default). The strong L2 fixes which step ranks first; a single scale factor is then fitted by
likelihood (a temperature), so the top step's softmax probability, reported as the root cause's confidence, is
calibrated on the fitting data instead of being shrunk towards 1/n by the penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajfm.judges.rootcause.features import FEATURES
from trajfm.judges.rootcause.model import RootCauseModel

DEFAULT_L2 = 1.0  # chosen by leave-one-dataset-out hit rate among 0.05, 0.2, 1.0 (benchmarks/README.md)
SCALES = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


@dataclass(slots=True)
class Example:
    dataset: str
    rows: list[list[float]]
    gold: list[int]  # candidate numbers the labels point at


def fit(
    examples: list[Example], l2: float = DEFAULT_L2, prior: dict[str, float] | None = None
) -> RootCauseModel:
    from scipy.optimize import minimize

    usable = [e for e in examples if e.rows and e.gold]
    if not usable:
        raise ValueError("no labelled example with a candidate step to fit on")
    per_dataset: dict[str, int] = {}
    for e in usable:
        per_dataset[e.dataset] = per_dataset.get(e.dataset, 0) + 1
    mats = [np.asarray(e.rows, dtype=float) for e in usable]
    golds = [np.asarray(sorted(set(e.gold)), dtype=int) for e in usable]
    w0 = np.asarray([float((prior or {}).get(name, 0.0)) for name in FEATURES])
    wts = np.asarray([1.0 / per_dataset[e.dataset] for e in usable]) / len(per_dataset)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total = l2 * float((w - w0) @ (w - w0))
        grad = 2 * l2 * (w - w0)
        for x, g, wt in zip(mats, golds, wts, strict=True):
            s = x @ w
            s = s - s.max()
            e = np.exp(s)
            p = e / e.sum()
            pg = p[g]
            q = pg / pg.sum()
            total -= wt * float(np.log(pg.sum()))
            grad -= wt * (q @ x[g] - p @ x)
        return total, grad

    res = minimize(loss, w0.copy(), jac=True, method="L-BFGS-B")

    def loglik(w: np.ndarray) -> float:
        total = 0.0
        for x, g, wt in zip(mats, golds, wts, strict=True):
            s = x @ w
            s = s - s.max()
            e = np.exp(s)
            total += wt * float(np.log(e[g].sum() / e.sum()))
        return total

    scale = max(SCALES, key=lambda k: loglik(k * res.x))
    weights = scale * res.x
    return RootCauseModel.from_dict(
        {
            "version": 1,
            "fitted_on": sorted(per_dataset),
            "examples": per_dataset,
            "l2": l2,
            "scale": scale,
            "prior": {k: v for k, v in (prior or {}).items() if v},
            "weights": {name: round(float(v), 4) for name, v in zip(FEATURES, weights, strict=True)},
        }
    )
