"""An example trajfm plugin: one judge, one embedder and one taxonomy, each the smallest thing that honours its
contract (see the docstrings of trajfm.judges.base.Judge, trajfm.clustering.embed.Embedder, trajfm.taxonomy)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trajfm.clustering.embed import Embedder
from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode
from trajfm.taxonomy import Taxonomy, load_taxonomy_file
from trajfm.traces.model import Trace


class KeywordJudge(Judge):
    """Flags every taxonomy mode whose name shares a word with a failed step's text; reports each failed step
    as a novel mode. Offline and deterministic, so it declares no capabilities (not cacheable, no endpoint)."""

    name = "keyword"
    prompt_version = "keyword-1"

    def __init__(self, min_word: int = 4) -> None:
        self.min_word = min_word

    def cache_material(self) -> dict[str, object]:
        return {"judge": self.name, "prompt_version": self.prompt_version, "min_word": self.min_word}

    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        failed = [s for s in trace.steps if s.is_error]
        words = {w.lower().strip(".,:;") for s in failed for w in (s.content or "").split()}
        words = {w for w in words if len(w) >= self.min_word}
        modes = []
        for mode in taxonomy.modes:
            hit = {w.lower() for w in mode.name.split()} & words
            modes.append(
                ModeFinding(
                    mode_id=mode.id,
                    detected=bool(hit),
                    steps=[failed[0].index] if hit else [],
                    evidence=(failed[0].content or "")[:60] if hit else "",
                    rationale=f"failed step shares {sorted(hit)}" if hit else "no shared word",
                )
            )
        novel = [
            NovelMode(
                title=f"Failed call to {s.tool_name or 'a tool'}",
                description=(s.content or "")[:200],
                steps=[s.index],
                evidence=(s.content or "")[:60],
            )  # fmt: skip
            for s in failed[:2]
        ]
        return Diagnosis(
            trace_id=trace.trace_id,
            judge=self.name,
            prompt_version=self.prompt_version,
            task_completed=not failed,
            summary=f"{len(failed)} failed step(s)",
            modes=modes,
            novel=novel,
        )


class TrigramEmbedder(Embedder):
    """Hashed character trigrams in 64 dimensions, L2-normalised."""

    model_id = "example-trigram-64"
    dim = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            t = f"  {text.lower()} "
            for i in range(len(t) - 2):
                h = hashlib.sha256(t[i : i + 3].encode()).digest()
                out[row, h[0] % self.dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else np.eye(1, self.dim, dtype=np.float32)[0]
        return out


def example_taxonomy() -> Taxonomy:
    return load_taxonomy_file(Path(__file__).with_name("example_taxonomy.json"))
