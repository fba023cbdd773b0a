"""Clusterers: reduced points of the distinct texts -> labels (-1 = outlier), with the parameter choice on record.

Contract: `fit(points, weights, seed) -> Partition`. `points` are the distinct texts in canonical order,
`weights` how many items share each text (duplicates are fitted once and weighted back in counts and shares).
`refit(points, weights, params, seed)` re-runs with parameters fixed (used by the stability check).

`HdbscanScan` (the default) picks HDBSCAN's parameters by a rule, not a constant:
  1. Candidates: min_cluster_size m in {max(2, round(f * n)) for f in 1%, 2%, 3%, 5%, 8%} (plus 3 when 12 <= n < 300),
     kept if m <= n / 2; min_samples in {1, m // 2, m}; cluster selection "eom" and "leaf".
  2. Each candidate is fitted and scored  score = relative_validity - OUTLIER_PENALTY * outlier_share, where
     relative_validity is hdbscan's fast DBCV estimate (density-based cluster validity, higher = denser, better
     separated clusters) and outlier_share is the weighted share of items left as noise. DBCV alone rewards
     declaring hard points noise, which is the "noise cluster swallows 30-50%" failure; the penalty prices it.
  3. The best score wins among candidates with at least two clusters; ties go to fewer outliers, then to larger
     m. Every candidate's numbers go to the manifest.
  Duplicates: the scan and fit see each distinct text once (density = variety of wording, not repetition).
  One rule gives repetition its due: an outlier text repeated at least as often as the smallest cluster has
  items (or, when no cluster formed, at least min_cluster_size items) becomes a cluster of its own ("promoted";
  counted in the manifest). A text the judge wrote 50 times is a
  family even if no other wording sits near it; a text written as often as every other text (repeated runs) is not.
  With more than `scan_sample` distinct texts the scan runs on the first `scan_sample` of them in canonical
  (text-hash) order, which is a uniform random sample that does not depend on input order; the winner is refitted
  on all points with m and min_samples scaled by n_all / n_sample (both count points, so they scale with n).

`KMeansSilhouette` reproduces IBM TrajFM's clustering: KMeans for k = 2..7 on the embeddings, k chosen by the best
silhouette (computed over all items, duplicates included, as IBM embedded every title), no outliers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

OUTLIER_PENALTY = 1.0


@dataclass
class Partition:
    labels: np.ndarray  # one per distinct text; -1 = outlier
    probabilities: np.ndarray  # membership strength in [0, 1]
    params: dict[str, Any]
    scan: list[dict[str, Any]] = field(default_factory=list)


class Clusterer(Protocol):
    name: str

    def fit(self, points: np.ndarray, weights: np.ndarray, seed: int) -> Partition: ...

    def scale_params(self, params: dict[str, Any], ratio: float) -> dict[str, Any]: ...

    def refit(
        self, points: np.ndarray, weights: np.ndarray, params: dict[str, Any], seed: int
    ) -> np.ndarray: ...


def promote_heavy_outliers(
    labels: np.ndarray, weights: np.ndarray, min_cluster_size: int = 2
) -> tuple[np.ndarray, int]:
    """Outlier texts weighing at least as many items as the smallest cluster become clusters of their own
    (with no cluster at all, at least `min_cluster_size` items)."""
    ids = sorted(set(labels.tolist()) - {-1})
    smallest = min(float(weights[labels == c].sum()) for c in ids) if ids else float(min_cluster_size)
    out = labels.copy()
    next_id = max(ids) + 1 if ids else 0
    promoted = 0
    for j in np.flatnonzero(labels == -1):  # canonical order, so ids do not depend on input order
        if weights[j] >= smallest:
            out[j] = next_id
            next_id += 1
            promoted += 1
    return out, promoted


def outlier_share(labels: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float(weights[labels == -1].sum()) / total if total else 0.0


class HdbscanScan:
    name = "hdbscan"
    FRACTIONS = (0.01, 0.02, 0.03, 0.05, 0.08)
    SELECTIONS = ("eom", "leaf")
    PRECOMPUTE_MAX = 5000

    def __init__(
        self, *, scan_sample: int = 3000, core_dist_n_jobs: int = 1, outlier_penalty: float = OUTLIER_PENALTY
    ):
        self.scan_sample = scan_sample
        self.core_dist_n_jobs = core_dist_n_jobs
        self.outlier_penalty = outlier_penalty

    def candidates(self, n: int) -> list[tuple[int, int, str]]:
        sizes = {max(2, round(f * n)) for f in self.FRACTIONS}
        if 12 <= n < 300:  # small inputs: fractions alone would only offer m = 2
            sizes.add(3)
        sizes = {m for m in sizes if m <= n // 2}
        out: list[tuple[int, int, str]] = []
        for m in sorted(sizes):
            for ms in sorted({1, max(1, m // 2), m}):
                for sel in self.SELECTIONS:
                    out.append((m, ms, sel))
        return out

    def _data(self, points: np.ndarray) -> tuple[np.ndarray, str]:
        """What HDBSCAN is given: high-dimensional input (no reducer) of moderate size as one exact distance
        matrix, which is far faster than hdbscan's tree searches in 384 dimensions and gives the same clustering;
        anything else as points. Computed once per point set (the scan fits 30 candidates on the same one)."""
        if points.shape[1] > 20 and points.shape[0] <= self.PRECOMPUTE_MAX:
            from sklearn.metrics import pairwise_distances

            return pairwise_distances(points, metric="euclidean"), "precomputed"
        return points, "euclidean"

    def _hdbscan(self, data: tuple[np.ndarray, str], mcs: int, ms: int, sel: str, *, tree: bool):  # noqa: ANN202
        import hdbscan

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", category=RuntimeWarning
            )  # divide warnings from DBCV on tiny sets
            return hdbscan.HDBSCAN(
                min_cluster_size=mcs,
                min_samples=ms,
                cluster_selection_method=sel,
                metric=data[1],
                gen_min_span_tree=tree,
                core_dist_n_jobs=self.core_dist_n_jobs,
            ).fit(data[0])

    def fit(self, points: np.ndarray, weights: np.ndarray, seed: int) -> Partition:
        n = points.shape[0]
        n_scan = min(n, self.scan_sample)
        sub, wsub = points[:n_scan], weights[:n_scan]
        scan: list[dict[str, Any]] = []
        sub_data = self._data(sub)
        for mcs, ms, sel in self.candidates(n_scan):
            model = self._hdbscan(sub_data, mcs, ms, sel, tree=True)
            k = int(model.labels_.max()) + 1 if model.labels_.size else 0
            labels, promoted = promote_heavy_outliers(np.asarray(model.labels_, dtype=np.int64), wsub, mcs)
            share = outlier_share(labels, wsub)
            row: dict[str, Any] = {
                "min_cluster_size": mcs,
                "min_samples": ms,
                "selection": sel,
                "n_clusters": k,
                "outlier_share": round(share, 4),
                "promoted": promoted,
            }
            try:
                dbcv = float(model.relative_validity_) if k >= 2 else float("nan")
            except (ValueError, ZeroDivisionError, IndexError) as exc:  # the estimate fails on odd trees
                dbcv, row["error"] = float("nan"), f"relative_validity failed: {exc}"
            if not math.isfinite(dbcv):
                dbcv = float("nan")
            row["relative_validity"] = None if math.isnan(dbcv) else round(dbcv, 4)
            row["score"] = None if math.isnan(dbcv) else round(dbcv - self.outlier_penalty * share, 4)
            scan.append(row)
        if not scan:
            raise ValueError(f"HDBSCAN needs at least 4 distinct texts, got {n}")
        valid = [r for r in scan if r["score"] is not None]
        if valid:
            best = max(
                valid,
                key=lambda r: (r["score"], -r["outlier_share"], r["min_cluster_size"], r["min_samples"]),
            )
            rule = "best score among candidates with >= 2 clusters"
        else:
            # No candidate found two clusters: keep the one that leaves the fewest items as noise.
            best = min(scan, key=lambda r: (r["outlier_share"], -r["min_cluster_size"], -r["min_samples"]))
            rule = "no candidate found >= 2 clusters; fewest outliers"
        ratio = n / n_scan
        params = {
            "min_cluster_size": max(2, round(best["min_cluster_size"] * ratio)),
            "min_samples": 1 if best["min_samples"] == 1 else max(1, round(best["min_samples"] * ratio)),
            "selection": best["selection"],
            "scan_points": n_scan,
            "scan_rule": rule,
            "outlier_penalty": self.outlier_penalty,
            "core_dist_n_jobs": self.core_dist_n_jobs,
        }
        model = self._hdbscan(
            sub_data if n_scan == n else self._data(points),
            params["min_cluster_size"],
            params["min_samples"],
            params["selection"],
            tree=False,
        )
        labels, promoted = promote_heavy_outliers(
            np.asarray(model.labels_, dtype=np.int64), weights, params["min_cluster_size"]
        )
        probs = np.asarray(model.probabilities_, dtype=np.float64).copy()
        probs[(labels != -1) & (np.asarray(model.labels_) == -1)] = (
            1.0  # a promoted text is its own exact cluster
        )
        params["promoted_texts"] = promoted
        return Partition(labels, probs, params, scan)

    def scale_params(self, params: dict[str, Any], ratio: float) -> dict[str, Any]:
        """Parameters for a subsample holding `ratio` of the points (sizes count points, so they scale)."""
        out = dict(params)
        out["min_cluster_size"] = max(2, round(params["min_cluster_size"] * ratio))
        if params["min_samples"] != 1:
            out["min_samples"] = max(1, round(params["min_samples"] * ratio))
        return out

    def refit(self, points: np.ndarray, weights: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        model = self._hdbscan(
            self._data(points),
            params["min_cluster_size"],
            params["min_samples"],
            params["selection"],
            tree=False,
        )
        return promote_heavy_outliers(
            np.asarray(model.labels_, dtype=np.int64), weights, params["min_cluster_size"]
        )[0]


class KMeansSilhouette:
    name = "kmeans-silhouette"

    def __init__(self, ks: range = range(2, 8), *, n_init: int = 10, silhouette_sample: int = 10000):
        self.ks = ks
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample

    def _kmeans(self, points: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        # sample_weight = duplicate count gives the same objective as fitting every item.
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=seed).fit(points, sample_weight=weights)
        return np.asarray(km.labels_, dtype=np.int64)

    def fit(self, points: np.ndarray, weights: np.ndarray, seed: int) -> Partition:
        from sklearn.metrics import silhouette_score

        n = points.shape[0]
        expand = np.repeat(np.arange(n), weights.astype(np.int64))
        scan: list[dict[str, Any]] = []
        best: tuple[float, int, np.ndarray] | None = None
        for k in self.ks:
            if k >= n:
                break
            labels = self._kmeans(points, weights, k, seed)
            sample = self.silhouette_sample if expand.size > self.silhouette_sample else None
            sil = float(
                silhouette_score(points[expand], labels[expand], sample_size=sample, random_state=seed)
            )
            scan.append({"k": k, "silhouette": round(sil, 4)})
            if best is None or sil > best[0]:
                best = (sil, k, labels)
        if best is None:
            raise ValueError(f"kmeans-silhouette needs at least 3 distinct texts, got {n}")
        params = {
            "k": best[1],
            "silhouette": round(best[0], 4),
            "n_init": self.n_init,
            "ks": [self.ks.start, self.ks.stop - 1],
        }
        return Partition(best[2], np.ones(n), params, scan)

    def scale_params(self, params: dict[str, Any], ratio: float) -> dict[str, Any]:
        return dict(params)

    def refit(self, points: np.ndarray, weights: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        return self._kmeans(points, weights, min(params["k"], points.shape[0]), seed)


def get_clusterer(method: str) -> Clusterer:
    if method == "hdbscan":
        return HdbscanScan()
    if method in ("kmeans-silhouette", "kmeans"):
        return KMeansSilhouette()
    from trajfm.errors import UsageError

    raise UsageError(f"unknown --method {method!r}; use hdbscan or kmeans-silhouette")
