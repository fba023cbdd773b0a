"""Which clusters are new: against the taxonomy's modes, and against a previous audit (baseline run).

Contract:
- `mode_texts(taxonomy)`: "name: definition" per mode, embedded with the same embedder as the items, so a cluster
  centroid and a mode live in the same space.
- `compare_with_modes(centroids, mode_vectors, mode_ids, threshold)`: per cluster the nearest mode, its cosine
  similarity, and `is_novel = similarity < threshold`.
- `compare_with_baseline(centroids, baseline_centroids, threshold)`: `new_since_baseline = True` when no baseline
  cluster centroid reaches `threshold` cosine similarity.

Thresholds (documented, measured, overridable in ClusterConfig):
- NOVELTY_THRESHOLD = 0.6, from benchmarks/calibrate_novelty.py (all-MiniLM-L6-v2, items embedded as the stage
  embeds them): small clusters restating five MAST modes in other words score 0.65-0.81 against their own mode;
  five families MAST does not name score 0.31-0.62 against their nearest mode. 0.6 keeps every restatement known
  and flags four of the five as novel; the fifth, overstatement of task completion (0.62 against 3.2, "No or
  Incorrect Verification"), is a special case of 3.2, and the bundled corpus's labels map it to 3.2 as well.
- BASELINE_THRESHOLD = 0.7 for "the same family in a previous run". Measured on the bundled corpus split into
  two halves of traces, one half without the extraneous-artefacts family: clusters of the same family in the two
  halves have centroid similarity 0.94-1.00, different families at most 0.54, and the withheld family's nearest
  previous cluster 0.47 (flagged new).
"""

from __future__ import annotations

import numpy as np

from trajfm.taxonomy import Taxonomy

NOVELTY_THRESHOLD = 0.6
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
