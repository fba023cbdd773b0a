"""Small statistics the report uses: Wilson intervals for rates, Newcombe intervals for differences of rates,
risk ratios with Katz intervals, normal intervals for means, Pearson correlation; and the rate and rate-gap
records summary.json holds."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """95% Wilson score interval for k successes out of n; (None, None) when n == 0.

    Wilson rather than the normal approximation because many per-model mode rates are near 0 with small n,
    where the normal interval collapses to zero width or leaves [0, 1].
    """
    if n <= 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k == 0 (k == n) the bound is exactly 0 (1); floating point would leave a 1e-17 residue.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def rate(k: int, n: int) -> dict[str, Any]:
    """The record of a rate in summary.json: k of n, the rate (None when n is 0) and its 95% Wilson interval."""
    lo, hi = wilson(k, n)
    return {"n": k, "of": n, "rate": (k / n) if n else None, "ci_low": lo, "ci_high": hi}


def gap_points(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any] | None:
    """How many points `first`'s rate is above `second`'s (two `rate` records), with the Newcombe 95% interval
    in points; None when either has no denominator."""
    if not first["of"] or not second["of"]:
        return None
    d, lo, hi = diff_interval(first["n"], first["of"], second["n"], second["of"])
    return {
        "drop_points": None if d is None else 100 * d,
        "ci_low": None if lo is None else 100 * lo,
        "ci_high": None if hi is None else 100 * hi,
    }


def mean_interval(
    values: Collection[float], z: float = Z95
) -> tuple[float | None, float | None, float | None]:
    """(mean, 95% low, 95% high) by the normal approximation (sample standard deviation); the interval is None
    below two values. Used for the readiness score, a mean of per-trace scores in [0, 1]."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def diff_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float | None, float | None, float | None]:
    """p1 - p2 with Newcombe's hybrid score 95% interval (built from the two Wilson intervals); None when a
    group is empty. Stays inside [-1, 1] and behaves at 0 and 100%, unlike the Wald interval."""
    if n1 <= 0 or n2 <= 0:
        return None, None, None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    assert l1 is not None and u1 is not None and l2 is not None and u2 is not None
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(-1.0, lo), min(1.0, hi)


def risk_ratio(
    a: int, b: int, c: int, d: int, z: float = Z95
) -> tuple[float | None, float | None, float | None]:
    """How many times more often the exposed fail: (a / (a + b)) / (c / (c + d)) with its 95% interval on the
    log scale (Katz). a, b = failed, completed with the exposure; c, d = failed, completed without. When a or c
    is 0 every cell gets 0.5 added (Haldane), so the ratio stays finite; None when a group is empty."""
    if a + b == 0 or c + d == 0:
        return None, None, None
    if a == 0 or c == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5  # type: ignore[assignment]
    rr = (a / (a + b)) / (c / (c + d))
    se = math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    return rr, math.exp(math.log(rr) - z * se), math.exp(math.log(rr) + z * se)


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson correlation; None below three pairs or when either side does not vary."""
    n = len(xs)
    if n < 3 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)
