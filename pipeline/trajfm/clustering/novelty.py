"""Which clusters are new: against the taxonomy's modes, and against a previous audit (baseline run).

Contract:
- `mode_texts(taxonomy)`: "name: definition" per mode, embedded with the same embedder as the items, so a cluster
  centroid and a mode live in the same space.
- `compare_with_modes(centroids, mode_vectors, mode_ids, threshold)`: per cluster the nearest mode, its cosine
  similarity, and `is_novel = similarity < threshold`.
- `compare_with_baseline(centroids, baseline_centroids, threshold)`: `new_since_baseline = True` when no baseline
  cluster centroid reaches `threshold` cosine similarity.

Thresholds (documented, overridable): a cluster centroid is the mean of many unit vectors, so its similarity to a
definition is an average-level figure. With all-MiniLM-L6-v2, a cluster of texts restating a MAST mode in other
words ("the agent repeated the same tool call ...") scores about 0.5-0.7 against that mode's definition, while
families MAST does not name (invalid action formatting, extraneous artefacts) reach about 0.3-0.45 against their
nearest mode; `NOVELTY_THRESHOLD = 0.5` sits between. Two clusters of the same family from different runs usually
have centroids above 0.8 with each other; `BASELINE_THRESHOLD = 0.7` leaves room for drift in wording.
"""

from __future__ import annotations

import numpy as np

from trajfm.taxonomy import Taxonomy

NOVELTY_THRESHOLD = 0.5
BASELINE_THRESHOLD = 0.7


def mode_texts(taxonomy: Taxonomy) -> list[str]:
    return [f"{m.name}: {m.definition}" for m in taxonomy.modes]


def compare_with_modes(
    centroids: np.ndarray, mode_vectors: np.ndarray, mode_ids: list[str], threshold: float = NOVELTY_THRESHOLD
) -> list[tuple[str, float, bool]]:
    if centroids.shape[0] == 0:
        return []
    sims = centroids @ mode_vectors.T
    out = []
    for row in sims:
        j = int(np.argmax(row))  # ties go to the first mode in taxonomy order
        s = float(row[j])
        out.append((mode_ids[j], s, s < threshold))
    return out


def compare_with_baseline(
    centroids: np.ndarray, baseline_centroids: np.ndarray, threshold: float = BASELINE_THRESHOLD
) -> list[tuple[bool, float]]:
    """(new_since_baseline, best similarity to any baseline cluster) per cluster."""
    if baseline_centroids.shape[0] == 0:
        return [(True, 0.0) for _ in range(centroids.shape[0])]
    sims = centroids @ baseline_centroids.T
    return [(float(r.max()) < threshold, float(r.max())) for r in sims]
