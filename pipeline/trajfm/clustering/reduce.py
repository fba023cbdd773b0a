"""Dimension reduction before density clustering, and the 2-D layout used for plots.

Contract: a `Reducer` has `name`, `params()` (recorded in the manifest) and `fit_transform(vectors, seed)`
returning float64 points, one row per input row, the same for the same input and seed.

- `UmapReducer`: umap-learn with cosine distance, `min_dist=0` (tight clumps suit density clustering) and an
  explicit `random_state` (which also makes umap single-threaded: determinism over speed). If umap-learn is not
  installed this is an error, never a silent switch to another method.
- `IdentityReducer`: returns the vectors unchanged (tests, and inputs too small for a neighbour graph).
- `layout_2d`: a deterministic 2-D projection (principal axes with a fixed sign) of the reduced points, used
  only to draw the scatter plot; clustering never sees it.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np

from trajfm.errors import TrajfmError


class ReducerError(TrajfmError):
    """The reducer cannot run on this input or is not installed."""


class Reducer(Protocol):
    name: str

    def params(self) -> dict[str, Any]: ...

    def fit_transform(self, vectors: np.ndarray, seed: int) -> np.ndarray: ...


class IdentityReducer:
    name = "identity"

    def params(self) -> dict[str, Any]:
        return {}

    def fit_transform(self, vectors: np.ndarray, seed: int) -> np.ndarray:
        return np.asarray(vectors, dtype=np.float64).copy()


class UmapReducer:
    """UMAP to `n_components` dimensions. `n_epochs=None` lets umap pick (200 for large inputs, 500 for small)."""

    name = "umap"
    MIN_POINTS = 10  # below this the neighbour graph is too thin for UMAP to mean anything

    def __init__(
        self,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        n_epochs: int | None = None,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self._last: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {
            "n_components": self.n_components,
            "n_neighbors": self.n_neighbors,
            "min_dist": self.min_dist,
            "metric": self.metric,
            "n_epochs": self.n_epochs,
            **self._last,
        }

    def fit_transform(self, vectors: np.ndarray, seed: int) -> np.ndarray:
        n = vectors.shape[0]
        if n < self.MIN_POINTS:
            raise ReducerError(
                f"UMAP needs at least {self.MIN_POINTS} distinct texts, got {n}; use --reducer none for tiny inputs"
            )
        try:
            import umap
        except ImportError as exc:
            raise ReducerError(
                "umap-learn is not installed: pip install umap-learn (or use --reducer none)"
            ) from exc
        n_neighbors = min(self.n_neighbors, n - 1)
        n_components = min(self.n_components, n - 2)
        self._last = {"n_neighbors_used": n_neighbors, "n_components_used": n_components}
        model = umap.UMAP(
            n_components=n_components,
            n_neighbors=n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            n_epochs=self.n_epochs,
            random_state=seed,
            low_memory=True,
            verbose=False,
        )
        with warnings.catch_warnings():
            # umap warns that random_state disables parallelism: that is the point (determinism).
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            warnings.filterwarnings("ignore", message=".*random_state.*")
            out = model.fit_transform(np.asarray(vectors, dtype=np.float32))
        return np.asarray(out, dtype=np.float64)


def get_reducer(name: str, *, n_epochs: int | None = None) -> Reducer:
    if name == "umap":
        return UmapReducer(n_epochs=n_epochs)
    if name in ("none", "identity"):
        return IdentityReducer()
    raise ReducerError(f"unknown reducer {name!r}; use umap, none or auto")


def layout_2d(points: np.ndarray) -> np.ndarray:
    """Project points onto their two principal axes, signs fixed so the result does not depend on the solver."""
    n = points.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    centred = points - points.mean(axis=0, keepdims=True)
    if points.shape[1] == 1 or n == 1:
        out = np.zeros((n, 2))
        out[:, 0] = centred[:, 0] if points.shape[1] else 0.0
        return out
    # Eigen-decomposition of the small covariance matrix: cheap even for 100k points.
    cov = centred.T @ centred
    vals, vecs = np.linalg.eigh(cov)
    axes = vecs[:, np.argsort(vals)[::-1][:2]]
    proj = centred @ axes
    for j in range(proj.shape[1]):
        # Fix each axis's sign by the point farthest along it (ties broken by position, which is canonical).
        k = int(np.argmax(np.abs(proj[:, j])))
        if proj[k, j] < 0:
            proj[:, j] = -proj[:, j]
    if proj.shape[1] < 2:
        proj = np.hstack([proj, np.zeros((n, 2 - proj.shape[1]))])
    return proj
