"""Readability fixes the report applies to the cluster stage's families, without changing the run folder.

- `merge_near_identical(tables)`: families whose names are the same once a trailing parenthetical is dropped
  ("Overstatement of Task Completion" and "Overstatement of Task Completion (period available)": one family
  split on a tool error's wording) are shown as one family, named by that common name; the largest keeps its id.
  Every merge is returned so the report and summary.json record it (`novel.merged`).
- `readable_keywords(keywords, texts)`: a keyword is kept only when it reads as a phrase of the family's own
  texts (it occurs, as whole words, in at least one member's title or description) and neither starts nor ends
  with a function word ("answered does", "the sensor" are dropped).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import polars as pl

from trajfm.report.load import RunTables

_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "done",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "no",
        "not",
        "of",
        "on",
        "or",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
    ]
)


def base_name(name: str | None) -> str:
    return _TRAILING_PAREN.sub("", name or "").strip()


def merge_near_identical(t: RunTables) -> tuple[RunTables, list[dict[str, Any]]]:
    if not t.clustered:
        return t, []
    assert t.clusters is not None
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in t.clusters.filter(pl.col("cluster_id") != -1).sort("cluster_id").iter_rows(named=True):
        groups.setdefault(base_name(c["name"]).casefold(), []).append(c)
    remap: dict[int, int] = {}
    merges: list[dict[str, Any]] = []
    replaced: dict[int, dict[str, Any]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        target = max(members, key=lambda c: (c["size"], -c["cluster_id"]))
        others = [c for c in members if c is not target]
        size = sum(c["size"] for c in members)
        stabilities = [(c["stability"], c["size"]) for c in members if c["stability"] is not None]
        merged = dict(target)
        merged.update(
            name=base_name(target["name"]),
            size=size,
            keywords=list(dict.fromkeys(k for c in [target, *others] for k in (c["keywords"] or []))),
            stability=(
                sum(s * n for s, n in stabilities) / sum(n for _, n in stabilities) if stabilities else None
            ),
            new_since_baseline=(
                None
                if all(c["new_since_baseline"] is None for c in members)
                else any(bool(c["new_since_baseline"]) for c in members)
            ),
        )
        replaced[target["cluster_id"]] = merged
        for c in others:
            remap[c["cluster_id"]] = target["cluster_id"]
        merges.append(
            {
                "into": target["cluster_id"],
                "name": merged["name"],
                "families": [
                    {"cluster_id": c["cluster_id"], "name": c["name"], "size": c["size"]} for c in members
                ],
                "reason": "same name apart from a trailing parenthetical",
            }
        )
    if not merges:
        return t, []
    total = t.n_assignments()
    rows = []
    for c in t.clusters.iter_rows(named=True):
        if c["cluster_id"] in remap:
            continue
        c = replaced.get(c["cluster_id"], c)
        rows.append(dict(c, share=(c["size"] / total) if total else None))
    clusters = pl.DataFrame(rows, schema=t.clusters.schema)
    return dataclasses.replace(t, clusters=clusters, remap=remap, _cache={}), merges


def keyword_in(keyword: str, text: str | None) -> bool:
    """Whether `keyword` occurs, as whole words, in `text` (spacing and case ignored)."""
    words = keyword.casefold().split()
    corpus = " ".join((text or "").split()).casefold()
    return bool(words) and re.search(r"(?<!\w)" + re.escape(" ".join(words)) + r"(?!\w)", corpus) is not None


def readable(keyword: str) -> bool:
    """Neither starts nor ends with a function word."""
    words = keyword.casefold().split()
    return bool(words) and words[0] not in FUNCTION_WORDS and words[-1] not in FUNCTION_WORDS


def readable_keywords(keywords: list[str], texts: list[str], limit: int = 6) -> list[str]:
    corpus = " ".join(" ".join((s or "").split()) for s in texts).casefold()
    out = []
    for k in keywords:
        words = k.casefold().split()
        if not words or words[0] in FUNCTION_WORDS or words[-1] in FUNCTION_WORDS:
            continue
        if not re.search(r"(?<!\w)" + re.escape(" ".join(words)) + r"(?!\w)", corpus):
            continue
        out.append(k)
        if len(out) >= limit:
            break
    return out
