"""The embedding step of stage 2 on a Ray actor pool: `trajfm cluster --engine ray`.

Contract: `RayEmbedder(name, model_path=..., workers=..., batch_size=...)` is an `Embedder` (see
`trajfm.clustering.embed`) with the same `model_id` as the local embedder of that name, so both share the
embedding cache and a cached text is never embedded again by either. `encode(texts)` sends the texts to Ray Data
as (i, text) rows; `map_batches` runs them through a pool of `workers` actors (default: the cluster's CPUs),
each loading the model once, `batch_size` texts per call; the vectors come back in input order. Everything after
embedding (reduction, HDBSCAN, naming, stability) stays on the driver: it needs all points at once.
The model folder must exist at the same path on every node (the packaged all-MiniLM-L6-v2 does wherever
trajfm is installed the same way).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trajfm.clustering.embed import get_embedder

DEFAULT_BATCH_TEXTS = 512


class EmbedWorker:
    """One Ray Data actor: the embedder loaded once, a batch of texts per call."""

    def __init__(self, name: str, model_path: str | None, threads: int) -> None:
        self.embedder = get_embedder(name, model_path=model_path)
        if hasattr(self.embedder, "threads"):
            self.embedder.threads = threads

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]])
        return {"i": np.asarray(batch["i"], dtype=np.int64), "vector": vectors}


class RayEmbedder:
    """An `Embedder` whose `encode` runs on a Ray actor pool (see the module docstring)."""

    def __init__(
        self,
        name: str = "minilm",
        *,
        model_path: str | Path | None = None,
        workers: int | None = None,
        batch_size: int = DEFAULT_BATCH_TEXTS,
        threads_per_worker: int = 1,
        address: str | None = None,
    ) -> None:
        self.local = get_embedder(name, model_path=model_path)  # checks the name and path; loads nothing
        self.model_id = self.local.model_id
        self.name = name
        self.model_path = str(model_path) if model_path is not None else None
        self.workers = workers
        self.batch_size = batch_size
        self.threads = threads_per_worker
        self.address = address
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.local.encode(texts)
        from trajfm.engines.ray_cluster import cluster_cpus, connect

        connect(self.address)
        import ray.data

        n_blocks = max(1, -(-len(texts) // self.batch_size))
        workers = max(1, min(self.workers or cluster_cpus(), n_blocks))
        ds = ray.data.from_items(
            [{"i": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=n_blocks
        ).map_batches(
            EmbedWorker,
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={"name": self.name, "model_path": self.model_path, "threads": self.threads},
        )
        out: np.ndarray | None = None
        filled = 0
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            vecs = np.asarray(batch["vector"], dtype=np.float32)
            if out is None:
                out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
            out[batch["i"]] = vecs
            filled += len(batch["i"])
        self.calls += 1
        if out is None or filled != len(texts):  # never hand back a silently short matrix
            raise RuntimeError(f"the Ray embedding returned {filled} of {len(texts)} vectors")
        return out
