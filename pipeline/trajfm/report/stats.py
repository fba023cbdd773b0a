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
    return max(0.0, centre - half), min(1.0, centre + half)
