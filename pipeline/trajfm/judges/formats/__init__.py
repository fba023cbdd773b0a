"""Per-format vocabulary the rules judge may use, as data: one small JSON file per trace format.

Detectors read the normalized trace and never a framework's wording; what only one framework says (the status
words of its reviewer, the name of its finish tool, its review strings) lives here, chosen by the trace's
detected `source_format`. A format without a file gets `FormatVocabulary()` (everything empty), so the judge
works the same, only without the framework-specific hints.

Contract: `vocabulary(source_format)` returns a `FormatVocabulary` (cached per format): the format's own file
merged over `_common.json` (what many frameworks share). Keys a file may hold: `review_failed` /
`review_succeeded` (lower-case review statuses that record the run's outcome), `finish_tools` (tool names that end
a run), `state_changing_verbs` (leading words of tool names that write), `handoff_words` (words of tool names that hand
the conversation to a person), `polling_words` (words of tool names that read a state that changes by itself: a
job's status, a health check), `reproduction_words` (words with which an agent says a
run is meant to reproduce a failure: the failure it shows is expected), `reasoning_tools` (words of tool names
whose input is the agent's own thought: a think tool), `subagent_review_failed` (status words a
sub-agent's review uses for a failed sub-task), `entity_nouns` (nouns its "no X named Y" results use),
`novel_family_titles` (the title a family has in this framework's own catalogue), `about` (what the file is
for). Unknown keys are an error, so a typo does not silently disable a hint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_DIR = Path(__file__).parent
_KEYS = {
    "about",
    "review_failed",
    "review_succeeded",
    "finish_tools",
    "state_changing_verbs",
    "handoff_words",
    "polling_words",
    "reproduction_words",
    "reasoning_tools",
    "subagent_review_failed",
    "entity_nouns",
    "novel_family_titles",
}


@dataclass(frozen=True)
class FormatVocabulary:
    review_failed: frozenset[str] = frozenset()
    review_succeeded: frozenset[str] = frozenset()
    finish_tools: frozenset[str] = frozenset()
    state_changing_verbs: frozenset[str] = frozenset()
    handoff_words: frozenset[str] = frozenset()
    polling_words: frozenset[str] = frozenset()
    reproduction_words: frozenset[str] = frozenset()
    reasoning_tools: frozenset[str] = frozenset()
    subagent_review_failed: tuple[str, ...] = ()
    entity_nouns: tuple[str, ...] = ()
    novel_family_titles: tuple[tuple[str, str], ...] = ()

    def family_title(self, family: str) -> str:
        return dict(self.novel_family_titles).get(family, family)


def _read(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(doc) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    return doc


@lru_cache(maxsize=32)
def vocabulary(source_format: str | None) -> FormatVocabulary:
    """The vocabulary of a format: its file merged over `_common.json` (see the module docstring)."""
    common = _read(_DIR / "_common.json")
    own: dict[str, Any] = {}
    if (
        source_format
        and source_format.replace("_", "").replace("-", "").isalnum()
        and source_format[0].isalnum()
    ):
        path = _DIR / f"{source_format}.json"
        if path.is_file():
            own = _read(path)

    def words(key: str) -> list[str]:
        return [str(w).lower() for w in (*common.get(key, []), *own.get(key, []))]

    return FormatVocabulary(
        review_failed=frozenset(words("review_failed")),
        review_succeeded=frozenset(words("review_succeeded")),
        finish_tools=frozenset(words("finish_tools")),
        state_changing_verbs=frozenset(words("state_changing_verbs")),
        handoff_words=frozenset(words("handoff_words")),
        polling_words=frozenset(words("polling_words")),
        reproduction_words=frozenset(words("reproduction_words")),
        reasoning_tools=frozenset(words("reasoning_tools")),
        subagent_review_failed=tuple(dict.fromkeys(words("subagent_review_failed"))),
        entity_nouns=tuple(dict.fromkeys(words("entity_nouns"))),
        novel_family_titles=tuple(
            sorted({**common.get("novel_family_titles", {}), **own.get("novel_family_titles", {})}.items())
        ),
    )


def source_outcome(trace: object) -> str | None:
    """ "failed" | "succeeded" | None: what the trace's own record says about the run (is_correct, a reward, the
    final review status of formats whose vocabulary names its statuses)."""
    is_correct = getattr(trace, "is_correct", None)
    if is_correct is not None:
        return "succeeded" if is_correct else "failed"
    reward = getattr(trace, "reward", None)
    if reward is not None:
        return "succeeded" if reward >= 1.0 else "failed"
    status = (getattr(trace, "review_status", None) or "").strip().lower()
    if status:
        vocab = vocabulary(getattr(trace, "source_format", None))
        if status in vocab.review_failed:
            return "failed"
        if status in vocab.review_succeeded:
            return "succeeded"
    return None
