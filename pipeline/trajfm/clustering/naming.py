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
  from its keywords and representative items, through the LLM judge's client (`trajfm.judges.client`: the same
  configuration, key handling and error messages), with the same bounded backoff on 429/5xx/timeouts/unusable
  replies (`with_retries`), `redact=True` masking secrets and e-mail addresses in what it sends (as the judge's
  `--redact`), and a reply cache (`cache_path`, e.g. RUN/cache/namer_cache.sqlite) so a re-run makes no calls
  for clusters already named. `describe()` says what it did (calls, retries, cache hits; never the key).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from json_repair import repair_json

from trajfm.errors import BackendError, JudgeError, ParseError, TrajfmError
from trajfm.judges.client import BACKOFF_BASE_S, ChatClient, ChatRequest, resolve_endpoint, with_retries
from trajfm.judges.render import redact

OUTLIER_NAME = "Unclustered (outliers)"


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


T = TypeVar("T")


class LlmHelper:
    """An LLM-backed helper beside the judge (the cluster namer, the report's family advice): the project's chat
    client configured like the LLM judge (the options, else TRAJFM_BASE_URL / OPENAI_BASE_URL and TRAJFM_MODEL; the
    key only from TRAJFM_API_KEY / OPENAI_API_KEY, never an option, never written anywhere), and one counted,
    retried, parsed call (`complete`). A missing model or endpoint raises `refused(what to set)`; `who` is the
    helper's option, for messages."""

    def __init__(
        self,
        model: str | None,
        base_url: str | None,
        *,
        who: str,
        refused: Callable[[str], TrajfmError],
        timeout_s: float,
        max_retries: int,
        backoff_base: float,
    ) -> None:
        try:
            model, url = resolve_endpoint(model, base_url, who=who, model_option="--llm-model")
        except JudgeError as exc:
            raise refused(str(exc)) from exc
        self.client = ChatClient(url, model, timeout_s=timeout_s, pool=1)
        self.model = model
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.stats = {"calls": 0, "retries": 0, "cache_hits": 0}

    def complete(self, request: ChatRequest, parse: Callable[[str], T]) -> T:
        """One chat request, its reply read by `parse`; a failed call or a reply `parse` refuses (`ParseError`)
        is retried with backoff (`with_retries`), counted in `stats`. The last error is raised."""

        def call() -> T:
            self.stats["calls"] += 1
            return parse(self.client.complete(request).text)

        def retried(attempt: int, exc: BaseException, wait: float) -> None:
            self.stats["retries"] += 1

        return with_retries(call, max_retries=self.max_retries, base=self.backoff_base, on_retry=retried)


class LlmNamer(LlmHelper):
    """Names clusters through an OpenAI-compatible chat endpoint (temperature 0, one call per cluster)."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        timeout: float = 60.0,
        redact: bool = False,
        cache_path: Path | str | None = None,
        max_retries: int = 4,
        backoff_base: float = BACKOFF_BASE_S,
    ) -> None:
        super().__init__(
            model, base_url, who="--namer llm", timeout_s=timeout, max_retries=max_retries, backoff_base=backoff_base,
            refused=lambda why: NamerError(f"{why}; use --namer keywords to name clusters without one"),
        )  # fmt: skip
        self.base_url = self.client.base_url
        self.redact = redact
        self.cache_path = Path(cache_path) if cache_path is not None else None

    def describe(self) -> dict[str, Any]:
        return {
            "namer": "llm",
            "base_url": self.client.public_url,
            "model": self.model,
            "api_key_from": self.client.key_env,
            "redact": self.redact,
            **self.stats,
        }

    def _request(self, keywords: Sequence[str], examples: Sequence[str]) -> ChatRequest:
        user = "Keywords: " + ", ".join(keywords) + "\nMembers:\n" + "\n".join(f"- {e}" for e in examples)
        if self.redact:
            user = redact(user)
        messages = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]
        return ChatRequest(messages, params={"temperature": 0})

    def name(self, keywords: Sequence[str], examples: Sequence[str]) -> tuple[str, str]:
        request = self._request(keywords, examples)
        key = _cache_key(self.model, request)
        cached = self._cache_get(key)
        if cached is not None:
            self.stats["cache_hits"] += 1
            return cached

        try:
            result = self.complete(request, _read_name)
        except (BackendError, ParseError) as exc:
            raise NamerError(
                f"cluster naming failed after {self.stats['retries']} retries in this run: {exc}; check "
                "--base-url/--llm-model, or use --namer keywords"
            ) from exc
        self._cache_put(key, result)
        return result

    # --- the reply cache: one sqlite row per request, committed at once ---------------------------------------
    def _db(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.cache_path, timeout=30.0, isolation_level=None)
        db.execute("CREATE TABLE IF NOT EXISTS names (key TEXT PRIMARY KEY, name TEXT, definition TEXT)")
        return db

    def _cache_get(self, key: str) -> tuple[str, str] | None:
        db = self._db()
        if db is None:
            return None
        with closing(db):
            row = db.execute("SELECT name, definition FROM names WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def _cache_put(self, key: str, result: tuple[str, str]) -> None:
        db = self._db()
        if db is None:
            return
        with closing(db):
            db.execute("INSERT OR REPLACE INTO names VALUES (?, ?, ?)", (key, *result))


def _cache_key(model: str, request: ChatRequest) -> str:
    material = json.dumps(
        {"model": model, "messages": request.messages, "params": request.params}, sort_keys=True
    )
    return "trajfm-namer-v1:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _read_name(content: str) -> tuple[str, str]:
    """(name, definition) from a naming reply; a `ParseError` (retried) when it has no usable name."""
    fenced = re.search(r"\{.*\}", content or "", re.S)
    try:
        parsed = json.loads(repair_json(fenced.group(0) if fenced else content or ""))
        name, definition = str(parsed["name"]).strip(), str(parsed.get("definition", "")).strip()
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(
            f"the naming reply is not a JSON object with a name: {content[:200]!r}", raw=content
        ) from exc
    if not name:
        raise ParseError(f"the naming reply has an empty name: {content[:200]!r}", raw=content)
    return name, definition
