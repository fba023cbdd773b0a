"""The packaged all-MiniLM-L6-v2 as an int8 ONNX model: `--embedder minilm-int8`, the fast embedding path.

Contract: `OnnxMiniLMEmbedder(model_path=None)` is an `Embedder` (see `trajfm.clustering.embed`): rows are
float32, L2-normalised, one per text, the same text always giving the same row. It computes what the
sentence-transformers model does (the transformer, mean pooling over the attention mask, L2 normalisation,
texts cut at the model's `max_seq_length` tokens) with onnxruntime on a dynamically quantised (int8 weights)
export of the same weights.
- The export is made offline from the installed model folder (never from a hub), on first use, with
  `torch.onnx.export` and onnxruntime's `quantize_dynamic`, and kept in `$TRAJFM_CACHE_DIR/onnx/` (default
  `~/.cache/trajfm/onnx/`) under the model's fingerprint; a changed model gets a new export. Writes are atomic.
- `model_id` differs from the fp32 embedder's (`...+onnx-int8`): the vectors differ slightly, so the two never
  share embedding-cache rows.
- It needs `onnxruntime` and `onnx` (`pip install 'trajfm[onnx]'`); without them it is an `EmbedderError`
  saying so. Whether its families match the fp32 ones is measured by `benchmarks/bench_scale.py` (adjusted Rand
  index), not assumed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trajfm.clustering.embed import DEFAULT_MODEL_NAME, EmbedderError, _model_fingerprint, default_model_path
from trajfm.runfolder import atomic_path

BATCH = 64


def onnx_cache_dir() -> Path:
    base = os.environ.get("TRAJFM_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "trajfm") / "onnx"


def _export_fp32(model_dir: Path, out: Path) -> None:
    """The transformer of `model_dir` as ONNX (inputs: input_ids, attention_mask, token_type_ids; output: the
    last hidden state), batch and sequence axes dynamic."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    dynamic = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
               "token_type_ids": {0: "batch", 1: "seq"}, "hidden": {0: "batch", 1: "seq"}}  # fmt: skip
    with torch.no_grad():
        torch.onnx.export(
            _Hidden(model), (dummy, dummy, torch.zeros_like(dummy)), str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
            dynamic_axes=dynamic, opset_version=17, dynamo=False,
        )  # fmt: skip


def export_int8(model_dir: Path, cache: Path | None = None) -> Path:
    """The int8 ONNX file for `model_dir`, exporting and quantising it on first use (see the module docstring)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbedderError(
            "--embedder minilm-int8 needs onnxruntime and onnx: pip install 'trajfm[onnx]'"
        ) from exc
    folder = (cache or onnx_cache_dir()) / f"{model_dir.name}-{_model_fingerprint(model_dir)}"
    target = folder / "model-int8.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model-fp32.onnx") as fp32, atomic_path(target) as int8:
        _export_fp32(model_dir, fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    (folder / "model-fp32.onnx").unlink(missing_ok=True)  # only the int8 file is used
    return target


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (or a local model folder of the same kind) through onnxruntime, int8 weights."""

    def __init__(self, model_path: str | Path | None = None, *, threads: int | None = None) -> None:
        if model_path is None:
            self.path = default_model_path()
            self.name = DEFAULT_MODEL_NAME
        else:
            self.path = Path(model_path).expanduser().resolve()
            self.name = self.path.name
        if not (self.path / "tokenizer.json").exists():
            raise EmbedderError(f"{self.path} has no tokenizer.json; the ONNX embedder needs a fast tokenizer")
        self.model_id = f"{self.name}@{_model_fingerprint(self.path)}+onnx-int8"
        self.threads = threads if threads is not None else max(1, min(2, os.cpu_count() or 1))
        config = self.path / "sentence_bert_config.json"
        self.max_len = int(json.loads(config.read_text()).get("max_seq_length", 256)) if config.exists() else 256
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(export_int8(self.path)), options, providers=["CPUExecutionProvider"]
        )
        tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_len)
        tok.no_padding()
        self._tokenizer = tok

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._session is None:
            self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        # Similar lengths together, as sentence-transformers does: less padding per batch.
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            hidden = self._session.run(
                ["hidden"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        assert out is not None
        return out
