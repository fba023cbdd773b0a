"""Would a text signal help the root-cause step scorer? A leave-one-dataset-out check (issue 13, point 5).

    python benchmarks/root_cause_text_features.py [--datasets DIR]

For each labelled failed trace of Who&When, AgentRx and TRAIL: the structural step features the rules judge
computes, plus each candidate step's text (first 600 characters) embedded with the shipped all-MiniLM-L6-v2. Four
variants of the scorer (conditional logit, L2 1, datasets weighed equally, as `judges.rootcause.fit`) are fitted
on two datasets and scored on the third: structural only; + 8 principal components of the embeddings (fitted on
the training folds only); + cosine to 5 prototype sentences written here; + cosine to the task text. Prints the
left-out top-step hits per dataset. Takes a few minutes on 2 cores (TRAIL has about 2,900 candidate steps).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from trajfm.bench.lodo import FOLDERS
from trajfm.bench.rootcause_data import ROOT_CAUSE_DATASETS, labelled_failures, step_table
from trajfm.clustering.embed import get_embedder
from trajfm.judges.calibration import load_calibration

REPO = Path(__file__).resolve().parents[1]
PROTOTYPES = (
    "I will assume the value without checking it.",
    "The code failed with an error and a traceback.",
    "Here is the final answer to the task.",
    "I could not find the information, so I will guess.",
    "Let me verify the result before answering.",
)
Example = tuple[
    np.ndarray, list[int], np.ndarray, np.ndarray
]  # rows, gold candidates, step vectors, task vector


def _unit(a: np.ndarray) -> np.ndarray:
    return a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-9)


def load(root: Path) -> dict[str, list[Example]]:
    off = load_calibration().off_by_shape()
    emb = get_embedder("minilm")
    data: dict[str, list[Example]] = {}
    for name in ROOT_CAUSE_DATASETS:
        raw = []
        for trace, gold in labelled_failures(name, root / FOLDERS[name]):
            table = step_table(trace, off)
            hits = [i for i, s in enumerate(table.steps) if s.index in gold]
            raw.append(
                (
                    np.asarray(table.rows, float),
                    hits,
                    [s.content[:600] for s in table.steps],
                    trace.task or "",
                )
            )
        texts = [t for r in raw for t in r[2]]
        vectors = _unit(np.asarray(emb.encode(texts + [r[3][:600] for r in raw]), float))
        k, out = 0, []
        for j, (rows, hits, steps, _) in enumerate(raw):
            out.append((rows, hits, vectors[k : k + len(steps)], vectors[len(texts) + j]))
            k += len(steps)
        data[name] = out
        print(f"{name}: {len(out)} labelled failures, {len(texts)} candidate steps embedded")
    return data


def features(mode: str, ex: Example, extra: Any) -> np.ndarray:
    rows, _, vecs, task = ex
    if mode == "prototypes":
        return np.hstack([rows, vecs @ extra.T])
    if mode == "task":
        return np.hstack([rows, (vecs @ task)[:, None]])
    if mode == "pca":
        mean, basis = extra
        return np.hstack([rows, (vecs - mean) @ basis])
    return rows


def fit(examples: list[tuple[np.ndarray, list[int], str]], l2: float = 1.0) -> np.ndarray:
    sizes: dict[str, int] = {}
    for _, _, name in examples:
        sizes[name] = sizes.get(name, 0) + 1
    weights = [1.0 / sizes[name] / len(sizes) for _, _, name in examples]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = l2 * float(w @ w), 2 * l2 * w
        for (x, gold, _), wt in zip(examples, weights, strict=True):
            s = x @ w
            e = np.exp(s - s.max())
            p = e / e.sum()
            q = p[gold] / p[gold].sum()
            total -= wt * float(np.log(p[gold].sum()))
            grad = grad - wt * (q @ x[gold] - p @ x)
        return total, grad

    return minimize(loss, np.zeros(examples[0][0].shape[1]), jac=True, method="L-BFGS-B").x


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("TRAJFM_DATASETS", REPO.parent / "shared" / "datasets")),
    )
    args = ap.parse_args()
    data = load(args.datasets)
    protos = _unit(np.asarray(get_embedder("minilm").encode(list(PROTOTYPES)), float))
    for mode in ("structural", "pca", "prototypes", "task"):
        cells = []
        for held in data:
            train = [(name, ex) for name in data if name != held for ex in data[name] if ex[1]]
            extra: Any = protos
            if mode == "pca":
                stacked = np.vstack([ex[2] for _, ex in train])
                mean = stacked.mean(0)
                extra = (mean, np.linalg.svd(stacked - mean, full_matrices=False)[2][:8].T)
            w = fit([(features(mode, ex, extra), ex[1], name) for name, ex in train])
            test = [ex for ex in data[held] if ex[1]]
            hits = sum(1 for ex in test if int(np.argmax(features(mode, ex, extra) @ w)) in ex[1])
            cells.append(f"{held} {hits}/{len(test)}")
        print(f"{mode:<11} " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
