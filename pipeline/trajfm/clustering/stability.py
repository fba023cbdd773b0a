"""How stable is the partition? Subsampling stability of the whole partition and of each cluster.

Contract: `subsample_stability(points, weights, labels, clusterer, params, seed)` re-runs the clusterer with its
chosen parameters fixed on `rounds` random subsamples (each `fraction` of the distinct texts, drawn without
replacement) of the reduced points, and compares every re-run with the original labels on the shared points:
- partition stability: the mean adjusted Rand index (items weighted by duplicate count; the outlier group -1 counts
  as a group, so outliers that churn lower the score);
- cluster stability: for each original cluster, the mean over rounds of the best weighted Jaccard overlap with any
  re-run cluster (Hennig's clusterwise stability; above ~0.75 is a stable cluster, below ~0.5 a dissolving one).

Why subsampling rather than the classic bootstrap with replacement: a bootstrap repeats points, and repeated
points are artificial density for HDBSCAN; m-out-of-n subsampling asks the same question without that bias.
Density parameters that count points are scaled to the subsample (`clusterer.scale_params`). The embedding and
UMAP are not re-run per round (too slow at scale): this measures the clustering step on fixed coordinates.
With more than `max_points` distinct texts, rounds draw from the first `max_points` in canonical order (a
uniform random sample independent of input order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trajfm.clustering.clusterers import Clusterer


def weighted_ari(a: np.ndarray, b: np.ndarray, w: np.ndarray | None = None) -> float:
    """Adjusted Rand index of two labelings where item i counts w[i] times."""
    if w is None:
        w = np.ones(len(a))
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1 if ai.size else 0, bi.max() + 1 if bi.size else 0))
    np.add.at(table, (ai, bi), w)
    n = table.sum()

    def comb2(x: Any) -> Any:  # elementwise on arrays, plain on a number
        return x * (x - 1) / 2.0

    sum_ij = comb2(table).sum()
    sum_a = comb2(table.sum(axis=1)).sum()
    sum_b = comb2(table.sum(axis=0)).sum()
    total = comb2(n)
    if total == 0:
        return 1.0
    expected = sum_a * sum_b / total
    maximum = (sum_a + sum_b) / 2.0
    if maximum == expected:  # both labelings are a single group (or all singletons): identical partitions
        return 1.0
    return float((sum_ij - expected) / (maximum - expected))


@dataclass
class Stability:
    partition: float | None
    clusters: dict[int, float]
    details: dict[str, Any] = field(default_factory=dict)


def subsample_stability(
    points: np.ndarray,
    weights: np.ndarray,
    labels: np.ndarray,
    clusterer: Clusterer,
    params: dict[str, Any],
    seed: int,
    *,
    rounds: int = 20,
    fraction: float = 0.8,
    max_points: int = 3000,
) -> Stability:
    n_all = points.shape[0]
    pool = min(n_all, max_points)
    m = int(round(fraction * pool))
    if m < 4 or len(set(labels[:pool].tolist()) - {-1}) < 1:
        return Stability(None, {}, {"skipped": f"too few points for subsampling ({pool} distinct texts)"})
    rng = np.random.default_rng(seed)
    sub_params = clusterer.scale_params(params, m / n_all)
    cluster_ids = sorted(set(labels.tolist()) - {-1})
    jacc: dict[int, list[float]] = {c: [] for c in cluster_ids}
    aris: list[float] = []
    for r in range(rounds):
        idx = np.sort(rng.choice(pool, size=m, replace=False))
        new = clusterer.refit(points[idx], weights[idx], sub_params, seed + r + 1)
        old, w = labels[idx], weights[idx]
        aris.append(weighted_ari(old, new, w))
        for c in cluster_ids:
            in_c = old == c
            if not in_c.any():
                continue  # this cluster was not drawn in this round
            best = 0.0
            for d in set(new[in_c].tolist()) - {-1}:
                in_d = new == d
                inter = w[in_c & in_d].sum()
                union = w[in_c | in_d].sum()
                best = max(best, float(inter / union))
            jacc[c].append(best)
    return Stability(
        float(np.mean(aris)),
        {c: float(np.mean(v)) for c, v in jacc.items() if v},
        {
            "rounds": rounds,
            "fraction": fraction,
            "pool": pool,
            "subsample": m,
            "ari_min": float(np.min(aris)),
            "ari_max": float(np.max(aris)),
            "params": {k: v for k, v in sub_params.items() if isinstance(v, int | float | str)},
        },
    )
