"""Scoring functions shared by the benchmarks, written to match each dataset's published metric.

Contract: every function takes plain Python values (lists, sets, dicts) and returns floats in [0, 1] (kappa in
[-1, 1]); an empty input gives `float("nan")` rather than a made-up 0 or 1, so a missing figure is visible.

- Root-cause attribution (Who&When, AgentRx): `accuracy`, `step_accuracy_within` (hit when |pred - gold| <= tol).
- Multi-label per trace (TRAIL categories, MAST modes): `multilabel_f1` with sklearn's averaging conventions
  (`weighted` = support-weighted mean of per-label F1, what TRAIL reports; `micro`; `macro` over labels that
  occur in gold or predictions).
- Set overlap (TRAIL locations): `set_recall_mean` is TRAIL's location/joint accuracy (mean over traces of
  |gold ∩ pred| / |gold|), `set_precision_mean` its precision-side twin; `set_prf_micro` pools all traces.
- Agreement: `cohen_kappa` for two binary raters.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

NAN = float("nan")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else NAN


def accuracy(pred: Sequence[Any], gold: Sequence[Any]) -> float:
    """Share of positions where pred equals gold. A None prediction counts as wrong."""
    if len(pred) != len(gold):
        raise ValueError(f"accuracy: {len(pred)} predictions for {len(gold)} gold labels")
    return _mean([1.0 if p is not None and p == g else 0.0 for p, g in zip(pred, gold, strict=True)])


def step_accuracy_within(pred: Sequence[int | None], gold: Sequence[int], tol: int) -> float:
    """Share of traces whose predicted step lies within `tol` steps of the gold step."""
    if len(pred) != len(gold):
        raise ValueError(f"step_accuracy_within: {len(pred)} predictions for {len(gold)} gold labels")
    return _mean(
        [1.0 if p is not None and abs(p - g) <= tol else 0.0 for p, g in zip(pred, gold, strict=True)]
    )


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts; 0 where the denominator is 0 (sklearn's zero_division=0)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def per_label_counts(
    pred: Sequence[Iterable[Hashable]], gold: Sequence[Iterable[Hashable]]
) -> dict[Hashable, dict[str, int]]:
    """tp / fp / fn / support per label over per-trace label sets."""
    if len(pred) != len(gold):
        raise ValueError(f"per_label_counts: {len(pred)} predictions for {len(gold)} gold label sets")
    counts: dict[Hashable, dict[str, int]] = {}
    for p_items, g_items in zip(pred, gold, strict=True):
        p, g = set(p_items), set(g_items)
        for lab in p | g:
            c = counts.setdefault(lab, {"tp": 0, "fp": 0, "fn": 0, "support": 0})
            if lab in p and lab in g:
                c["tp"] += 1
            elif lab in p:
                c["fp"] += 1
            else:
                c["fn"] += 1
            if lab in g:
                c["support"] += 1
    return counts


def per_label_prf(
    pred: Sequence[Iterable[Hashable]], gold: Sequence[Iterable[Hashable]], labels: Iterable[Hashable]
) -> dict[Hashable, dict[str, float]]:
    """Per label of `labels`: gold support, times predicted, precision, recall, F1 (the per-label tables)."""
    counts = per_label_counts(pred, gold)
    out: dict[Hashable, dict[str, float]] = {}
    for lab in labels:
        c = counts.get(lab, {"tp": 0, "fp": 0, "fn": 0, "support": 0})
        p, r, f = prf(c["tp"], c["fp"], c["fn"])
        out[lab] = {
            "support": c["support"],
            "predicted": c["tp"] + c["fp"],
            "precision": p,
            "recall": r,
            "f1": f,
        }
    return out


def multilabel_f1(
    pred: Sequence[Iterable[Hashable]],
    gold: Sequence[Iterable[Hashable]],
    average: str = "weighted",
    labels: Iterable[Hashable] | None = None,
) -> float:
    """F1 over per-trace multi-hot label vectors, averaged like sklearn's `f1_score(average=...)`.

    `labels` fixes the label columns (sklearn's `labels=`); by default the labels seen in gold or predictions.
    `weighted` weighs each label's F1 by its gold support (labels with no support weigh 0); `macro` is the plain
    mean over the label columns; `micro` pools the counts.
    """
    counts = per_label_counts(pred, gold)
    # Sorted so float sums run in one order whatever the set iteration order (PYTHONHASHSEED) was.
    cols = sorted(labels if labels is not None else counts, key=str)
    if not cols:
        return NAN
    zero = {"tp": 0, "fp": 0, "fn": 0, "support": 0}
    if average == "micro":
        tp = sum(counts.get(c, zero)["tp"] for c in cols)
        fp = sum(counts.get(c, zero)["fp"] for c in cols)
        fn = sum(counts.get(c, zero)["fn"] for c in cols)
        return prf(tp, fp, fn)[2]
    f1s = {
        c: prf(counts.get(c, zero)["tp"], counts.get(c, zero)["fp"], counts.get(c, zero)["fn"])[2]
        for c in cols
    }
    if average == "macro":
        return _mean(list(f1s.values()))
    if average == "weighted":
        total = sum(counts.get(c, zero)["support"] for c in cols)
        if total == 0:
            return NAN
        return sum(f1s[c] * counts.get(c, zero)["support"] for c in cols) / total
    raise ValueError(f"unknown average {average!r}: use weighted, micro or macro")


def _mean_share_found(base: Sequence[Iterable[Hashable]], other: Sequence[Iterable[Hashable]]) -> float:
    """Mean over traces with a non-empty `base` set of |base ∩ other| / |base|."""
    vals = []
    for b_items, o_items in zip(base, other, strict=True):
        b = set(b_items)
        if b:
            vals.append(len(b & set(o_items)) / len(b))
    return _mean(vals)


def set_recall_mean(pred: Sequence[Iterable[Hashable]], gold: Sequence[Iterable[Hashable]]) -> float:
    """Mean over traces with a non-empty gold set of |gold ∩ pred| / |gold| (TRAIL's location/joint accuracy)."""
    return _mean_share_found(gold, pred)


def set_precision_mean(pred: Sequence[Iterable[Hashable]], gold: Sequence[Iterable[Hashable]]) -> float:
    """Mean over traces with a non-empty prediction of |gold ∩ pred| / |pred|; a trace with an empty
    prediction but a non-empty gold set counts as precision 0 would reward silence, so it is left out and the
    recall side carries the miss."""
    return _mean_share_found(pred, gold)


def set_prf_micro(
    pred: Sequence[Iterable[Hashable]], gold: Sequence[Iterable[Hashable]]
) -> tuple[float, float, float]:
    """Precision, recall, F1 of pooled (trace, item) pairs over all traces."""
    tp = fp = fn = 0
    for p_items, g_items in zip(pred, gold, strict=True):
        p, g = set(p_items), set(g_items)
        tp += len(p & g)
        fp += len(p - g)
        fn += len(g - p)
    return prf(tp, fp, fn)


def harmonic(a: float, b: float) -> float:
    """F1 of a precision and a recall; nan if either is nan."""
    if math.isnan(a) or math.isnan(b):
        return NAN
    return 2 * a * b / (a + b) if a + b else 0.0


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary raters. When both raters are constant and agree, kappa is undefined (nan)."""
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} ratings against {len(b)}")
    n = len(a)
    if n == 0:
        return NAN
    po = sum(1 for x, y in zip(a, b, strict=True) if bool(x) == bool(y)) / n
    pa, pb = sum(map(bool, a)) / n, sum(map(bool, b)) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe == 1.0:
        return NAN
    return (po - pe) / (1 - pe)
