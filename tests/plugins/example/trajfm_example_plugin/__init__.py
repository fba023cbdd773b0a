"""An example trajfm plugin: one judge, one embedder, one taxonomy and one trace format, each the smallest thing
that honours its contract (see the docstrings of trajfm.judges.base.Judge, trajfm.clustering.embed.Embedder,
trajfm.taxonomy and trajfm.traces.format.Format)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trajfm.clustering.embed import Embedder
from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode
from trajfm.taxonomy import Taxonomy, load_taxonomy_file
from trajfm.traces import Format, Source, StepBuilder, Trace, finish_trace
from trajfm.traces.format import combine, item_fit, key_fit


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


class ExampleStepsFormat(Format):
    """A made-up log shape: `{"example_log": {"goal": str, "answer": str, "events": [{"actor", "say", "tool",
    "args", "result", "failed"}]}}`. Each event is a message by its actor (role user for "user", else agent), or,
    when it names a tool, a tool call (role agent) followed by the tool's result (role tool; `failed` sets
    is_error)."""

    name = "example-steps"
    description = "the example plugin's made-up event log (`example_log` with goal, events and answer)"
    origin = "tests/plugins/example (a format for the plugin tests only)"

    def score(self, doc: object) -> float:
        log = doc.get("example_log") if isinstance(doc, dict) else None
        if not isinstance(log, dict):
            return 0.0
        events = log.get("events")
        steps = item_fit(events, ("actor", "say", "tool"), content=("say", "tool")) if isinstance(events, list) else 0
        return combine(key_fit(log, ("goal", "events", "answer")), steps)

    def load(self, doc: object, source: Source) -> list[Trace]:
        log = doc.get("example_log") if isinstance(doc, dict) else None
        if not isinstance(log, dict) or not isinstance(log.get("events"), list):
            raise source.error("an example log needs 'example_log' with a list of 'events'")
        builder = StepBuilder()
        for n, event in enumerate(log["events"], start=1):
            if not isinstance(event, dict):
                raise source.error(f"event {n} should be an object")
            actor = str(event.get("actor") or "agent")
            if event.get("tool"):
                builder.add(index=n, kind="tool_call", content=str(event.get("say") or ""), role="agent",
                            step_id=f"{n}.call", agent=actor, tool_name=str(event["tool"]),
                            tool_input=str(event.get("args") or "") or None)  # fmt: skip
                builder.add(index=n, kind="tool_result", content=str(event.get("result") or ""), role="tool",
                            step_id=f"{n}.result", agent="tool", is_error=bool(event.get("failed")))  # fmt: skip
            else:
                role = "user" if actor == "user" else "agent"
                builder.add(index=n, kind="message", content=str(event.get("say") or ""), role=role,
                            step_id=str(n), agent=actor)  # fmt: skip
        trace = Trace(
            trace_id=source.trace_id(),
            source_path=source.path,
            source_format=self.name,
            task=str(log.get("goal") or ""),
            final_answer=str(log["answer"]) if log.get("answer") else None,
            framework="example",
        )
        return [finish_trace(trace, builder.steps, source)]
