"""Small statistics the report uses: Wilson score intervals for rates."""

from __future__ import annotations

import math

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
