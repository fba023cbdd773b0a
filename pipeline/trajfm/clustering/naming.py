"""Names for clusters: distinctive keywords (class-based TF-IDF), the most central title, unique names; LLM namer.

Contract:
- `ctfidf_keywords(texts, weights, labels, top_n)`: per label, the words and word pairs most distinctive of that
  cluster against all others. Class-based TF-IDF: the texts of a cluster form one document (each distinct text
  counted `weight` times); tf = a term's share of the cluster's words, idf = log(1 + A / f) with A the average
  number of words per cluster and f the term's frequency over all clusters.
- `centrality_order(vectors, weights, members)`: members sorted by cosine similarity to the weighted centroid.
- `unique_names(candidates)`: the first candidate title not already taken; if all are taken, the title plus the
  cluster's first keyword not in it; at last a number. Never two clusters with the same name.
- `LlmNamer`: asks an OpenAI-compatible /chat/completions endpoint for `{"name", "definition"}` of each cluster
  from its keywords and representative items.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from trajfm.errors import TrajfmError

OUTLIER_NAME = "Unclustered (outliers)"
URL_ENVS = ("TRAJFM_BASE_URL", "OPENAI_BASE_URL")
KEY_ENVS = ("TRAJFM_API_KEY", "OPENAI_API_KEY")
MODEL_ENV = "TRAJFM_MODEL"


class NamerError(TrajfmError):
    """The cluster namer could not be configured or its endpoint failed."""


def ctfidf_keywords(
    texts: Sequence[str], weights: np.ndarray, labels: np.ndarray, top_n: int = 5
) -> dict[int, list[str]]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    classes = sorted(set(labels.tolist()))
    if not texts:
        return {}
    # The placeholders of clustering/text.py are not words of any cluster.
    stop = sorted(ENGLISH_STOP_WORDS | {"quote", "path", "name", "id"})
    vec = CountVectorizer(stop_words=stop, ngram_range=(1, 2), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    try:
        counts = vec.fit_transform(texts)
    except ValueError:  # only stop words: nothing distinctive to say
        return {c: [] for c in classes}
    vocab = np.asarray(vec.get_feature_names_out())
    rows = np.zeros((len(classes), counts.shape[1]))
    weighted = counts.multiply(weights.reshape(-1, 1)).tocsr()
    for i, c in enumerate(classes):
        rows[i] = np.asarray(weighted[labels == c].sum(axis=0)).ravel()
    words_per_class = rows.sum(axis=1, keepdims=True)
    tf = np.divide(rows, words_per_class, out=np.zeros_like(rows), where=words_per_class > 0)
    avg_words = float(words_per_class.mean())
    freq = rows.sum(axis=0)
    idf = np.log(1.0 + avg_words / np.maximum(freq, 1e-12))
    score = tf * idf
    out: dict[int, list[str]] = {}
    for i, c in enumerate(classes):
        # Stable order: score, then the term itself, so ties never depend on the vectorizer's internals.
        order = sorted(range(len(vocab)), key=lambda j: (-score[i, j], vocab[j]))
        picked: list[str] = []
        for j in order:
            if score[i, j] <= 0 or len(picked) >= top_n:
                break
            term = str(vocab[j])
            parts = term.split()
            if any(term in p.split() for p in picked):
                continue  # a word already inside a picked pair adds nothing
            absorbed = [p for p in picked if p in parts]
            if absorbed:
                # A pair that extends picked words replaces them: "adaptive" + "adaptive learning" -> the pair.
                at = picked.index(absorbed[0])
                picked = [p for p in picked if p not in absorbed]
                picked.insert(at, term)
                continue
            picked.append(term)
        out[c] = picked
    return out


def centrality_order(
    vectors: np.ndarray, weights: np.ndarray, members: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(members sorted from most to least central, the unit centroid). Ties keep canonical order."""
    sub = vectors[members]
    centroid = (sub * weights[members, None]).sum(axis=0)
    norm = np.linalg.norm(centroid)
    centroid = centroid / norm if norm > 0 else centroid
    sims = sub @ centroid
    order = np.argsort(-np.round(sims, 6), kind="stable")
    return members[order], centroid


def unique_names(candidates: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[str]:
    """For each cluster (titles by centrality, keywords), a name no other cluster has."""
    taken: set[str] = set()
    names: list[str] = []
    for i, (titles, keywords) in enumerate(candidates):
        name = next((t for t in titles if t and t.lower() not in taken), None)
        if name is None:
            base = titles[0] if titles else "Cluster"
            kw = next((k for k in keywords if k.lower() not in base.lower()), None)
            name = f"{base} ({kw})" if kw else base
            if name.lower() in taken:
                name = f"{base} #{i + 1}"
        taken.add(name.lower())
        names.append(name)
    return names


_SYSTEM = (
    "You name families of AI-agent failure modes. You get the distinctive keywords of one family and a few of its "
    'members. Reply with only a JSON object {"name": ..., "definition": ...}: the name is 2 to 6 words in title '
    "case and says what goes wrong; the definition is one sentence describing the failure so that a reader can "
    "tell whether a new case belongs to the family."
)


class LlmNamer:
    """Names clusters through an OpenAI-compatible chat endpoint (temperature 0, one call per cluster)."""

    def __init__(self, base_url: str | None = None, model: str | None = None, *, timeout: float = 60.0):
        # Same configuration as the LLM judge: option, else TRAJFM_BASE_URL / OPENAI_BASE_URL, TRAJFM_MODEL;
        # the key only from TRAJFM_API_KEY / OPENAI_API_KEY (never an option, never written anywhere).
        url = base_url or next((os.environ[e] for e in URL_ENVS if os.environ.get(e)), None)
        if not url:
            raise NamerError(
                "--namer llm needs an OpenAI-compatible endpoint: pass --base-url (e.g. http://127.0.0.1:8000/v1) "
                "or set TRAJFM_BASE_URL; use --namer keywords to name clusters without one"
            )
        self.base_url = url.rstrip("/")
        self.model = model or os.environ.get(MODEL_ENV) or ""
        if not self.model:
            raise NamerError("--namer llm needs a model name: pass --llm-model or set TRAJFM_MODEL")
        self.api_key = next((os.environ[e] for e in KEY_ENVS if os.environ.get(e)), None)
        self.timeout = timeout

    def describe(self) -> dict[str, Any]:
        parts = urlsplit(self.base_url)  # never record a user:password part of the URL
        host = f"{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"
        return {
            "namer": "llm",
            "base_url": urlunsplit((parts.scheme, host, parts.path, "", "")),
            "model": self.model,
        }

    def name(self, keywords: Sequence[str], examples: Sequence[str]) -> tuple[str, str]:
        import httpx
        from json_repair import repair_json

        user = "Keywords: " + ", ".join(keywords) + "\nMembers:\n" + "\n".join(f"- {e}" for e in examples)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}],
        }
        url = f"{self.base_url}/chat/completions"
        try:
            resp = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
            resp.raise_for_status()
            content = resp.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise NamerError(
                f"cluster naming call to {url} failed: {exc}; check --base-url/--llm-model"
            ) from exc
        fenced = re.search(r"\{.*\}", content or "", re.S)
        try:
            parsed = json.loads(repair_json(fenced.group(0) if fenced else content or ""))
            name, definition = str(parsed["name"]).strip(), str(parsed.get("definition", "")).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise NamerError(
                f"the naming reply from {url} is not a JSON object with a name: {content[:200]!r}"
            ) from exc
        if not name:
            raise NamerError(f"the naming reply from {url} has an empty name: {content[:200]!r}")
        return name, definition
