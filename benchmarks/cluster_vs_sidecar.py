"""How well do the clusters recover the planted novel families of the bundled corpus? Adjusted Rand per method.

Usage:  python benchmarks/cluster_vs_sidecar.py RUN [--labels traces/assetops/labels.jsonl] [--variants]

RUN is a run folder made by `trajfm extract` on the bundled corpus (traces/assetops, with its labels.jsonl
sidecar). Each novel mode of RUN is matched to the sidecar behaviour of its trace: among the trace's behaviours
that have a `novel_family` and whose planted steps overlap the novel mode's steps, the one whose family title
shares most words with the novel mode's title (then: the largest step overlap). Novel modes with no overlapping planted novel behaviour are
counted as unmatched (a judge false positive or a planted MAST-only behaviour) and left out of the ARI.

Then both methods (and with --variants, other text/reducer settings) cluster the same novel modes in memory with
the real embedder (using RUN's embedding cache), and the script prints the adjusted Rand index of clusters vs
families (outliers count as one group, so leaving items unclustered is not free), plus the family x cluster table.
Nothing is written to RUN except the embedding cache.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import polars as pl
from sklearn.metrics import adjusted_rand_score

from trajfm.clustering.embed import EmbeddingCache, get_embedder
from trajfm.clustering.fit import ClusterConfig, Item, cluster_items
from trajfm.clustering.reduce import ReducerError
from trajfm.runfolder import RunFolder
from trajfm.taxonomy import load_taxonomy


def _find_labels(source: Path, found: dict[Path, Path | None]) -> tuple[Path, Path] | None:
    for parent in source.parents:
        if parent not in found:
            cand = parent / "labels.jsonl"
            found[parent] = cand if cand.exists() else None
        if found[parent] is not None:
            return parent, found[parent]  # type: ignore[return-value]
    return None


def sidecar_families(run: RunFolder, labels_path: Path | None) -> tuple[dict[str, str], Counter]:
    """novel_id -> planted novel family, and a tally of why others were not matched."""
    traces = run.read_table("traces").select("trace_id", "source_path")
    novel = run.read_table("novel_modes")
    records: dict[Path, dict[str, dict]] = {}
    found: dict[Path, Path | None] = {}

    def load(path: Path) -> dict[str, dict]:
        if path not in records:
            records[path] = {}
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    records[path][rec["trace_path"]] = rec
        return records[path]

    source = dict(zip(traces["trace_id"], traces["source_path"], strict=True))
    out: dict[str, str] = {}
    why: Counter = Counter()
    for r in novel.iter_rows(named=True):
        src = Path(source.get(r["trace_id"]) or "")
        if labels_path is not None:
            base, lp = labels_path.parent, labels_path
        else:
            hit = _find_labels(src, found)
            if hit is None:
                why["no labels.jsonl above the trace"] += 1
                continue
            base, lp = hit
        try:
            # a gzipped trace (`0001.gz`) has the sidecar's extensionless trace_path
            rel = src.resolve().relative_to(base.resolve()).as_posix().removesuffix(".gz")
        except ValueError:
            why["trace outside the labels folder"] += 1
            continue
        rec = load(lp).get(rel)
        if rec is None:
            why["trace not in labels.jsonl"] += 1
            continue
        steps = set(r["steps"] or [])
        title_words = set(re.findall(r"[a-z]+", (r["title"] or "").lower()))
        best, best_key = None, (0, 0)
        for b in rec["behaviours"]:
            if not b.get("novel_family"):
                continue
            overlap = len(steps & set(b.get("steps") or []))
            words = len(title_words & set(re.findall(r"[a-z]+", b["novel_family"].lower())))
            # The judge's title naming a planted family is the strongest sign of which behaviour it saw (a trace
            # can carry two planted novel behaviours on the same steps); step overlap is required and breaks ties.
            if overlap and (words, overlap) > best_key:
                best, best_key = b["novel_family"], (words, overlap)
        if best is None:
            why["no planted novel behaviour at its steps"] += 1
            continue
        out[r["novel_id"]] = best
    return out, why


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument(
        "--labels", type=Path, default=None, help="labels.jsonl (default: found above each trace)"
    )
    ap.add_argument("--variants", action="store_true", help="also try other --text / reducer settings")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    run = RunFolder.open(args.run, need=("traces", "novel_modes"))
    truth, why = sidecar_families(run, args.labels)
    novel = run.read_table("novel_modes")
    items = [
        Item(r["novel_id"], r["title"] or "", r["description"] or "") for r in novel.iter_rows(named=True)
    ]
    print(
        f"{len(items)} novel modes; {len(truth)} matched to a planted novel family; unmatched: {dict(why) or 0}"
    )
    print("planted families among matched:", dict(Counter(truth.values()).most_common()))
    if not truth:
        print("nothing to score: no novel mode matched a planted family")
        return 1

    embedder = get_embedder("minilm")
    cache = EmbeddingCache(run.cache_dir / "embeddings", embedder.model_id)
    taxonomy = load_taxonomy("mast")
    settings = [("hdbscan", None, "auto", None), ("kmeans-silhouette", None, "auto", None)]
    if args.variants:
        settings += [
            ("hdbscan", t, r, m) for m in (True, False) for t in ("title", "both") for r in ("umap", "none")
        ]
        settings += [("hdbscan", "description", r, True) for r in ("umap", "none")]
        settings += [("kmeans-silhouette", t, "auto", m) for t in ("title", "both") for m in (True, False)]
    ids = sorted(truth)
    print(
        f"\n{'method':<18} {'text':<12} {'masked':<7} {'reducer':<9} {'clusters':>8} {'outliers':>9} {'ARI':>6}"
    )
    tables = []
    for method, text, reducer, mask in settings:
        cfg = ClusterConfig(method=method, text=text, reducer=reducer, seed=args.seed, mask_specifics=mask)
        try:
            out = cluster_items(items, embedder=embedder, config=cfg, taxonomy=taxonomy, cache=cache)
        except ReducerError as exc:
            print(f"{method:<18} {text or '-':<12} {str(mask):<7} {reducer:<9} skipped: {exc}")
            continue
        got = dict(zip(out.assignments["novel_id"], out.assignments["cluster_id"], strict=True))
        ari = adjusted_rand_score([truth[i] for i in ids], [got[i] for i in ids])
        m = out.manifest
        print(
            f"{method:<18} {m['text']:<12} {str(m['mask_specifics']):<7} {m['reducer']['name']:<9} {m['counts']['clusters']:>8} "
            f"{m['outliers']['share']:>9.1%} {ari:>6.3f}"
        )
        names = dict(zip(out.clusters["cluster_id"], out.clusters["name"], strict=True))
        tab = (
            pl.DataFrame(
                {"family": [truth[i] for i in ids], "cluster": [f"{got[i]}: {names[got[i]]}" for i in ids]}
            )
            .group_by("family", "cluster")
            .len()
            .sort("family", "len", descending=[False, True])
        )
        tables.append((f"{method} text={m['text']} reducer={m['reducer']['name']}", tab))
    for title, tab in tables[:2]:
        print(f"\nfamily x cluster ({title}):")
        for r in tab.iter_rows(named=True):
            print(f"  {r['family']:<36} -> {r['cluster']:<70} {r['len']:>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
