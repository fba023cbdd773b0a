"""Per-format vocabulary the rules judge may use, as data: one small JSON file per trace format.

Detectors read the normalized trace and never a framework's wording; what only one framework says (the status
words of its reviewer, the name of its finish tool, its review strings) lives here, chosen by the trace's
detected `source_format`. A format without a file gets `FormatVocabulary()` (everything empty), so the judge
works the same, only without the framework-specific hints.

Contract: `vocabulary(source_format)` returns a `FormatVocabulary` (cached per format). Keys a file may hold:
`review_failed` / `review_succeeded` (lower-case review statuses that record the run's outcome), `finish_tools`
(tool names that end a run), `subagent_review_failed` (phrases a sub-agent's review uses for a failed sub-task),
`about` (what the file is for). Unknown keys are an error, so a typo does not silently disable a hint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_DIR = Path(__file__).parent
_KEYS = {"about", "review_failed", "review_succeeded", "finish_tools", "subagent_review_failed"}


@dataclass(frozen=True)
class FormatVocabulary:
    review_failed: frozenset[str] = frozenset()
    review_succeeded: frozenset[str] = frozenset()
    finish_tools: frozenset[str] = frozenset()
    subagent_review_failed: tuple[str, ...] = ()


@lru_cache(maxsize=32)
def vocabulary(source_format: str | None) -> FormatVocabulary:
    """The vocabulary file of a format (see the module docstring); empty for a format without one."""
    if not source_format or not source_format.replace("_", "").isalnum():
        return FormatVocabulary()
    path = _DIR / f"{source_format}.json"
    if not path.is_file():
        return FormatVocabulary()
    doc = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(doc) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    return FormatVocabulary(
        review_failed=frozenset(s.lower() for s in doc.get("review_failed", [])),
        review_succeeded=frozenset(s.lower() for s in doc.get("review_succeeded", [])),
        finish_tools=frozenset(s.lower() for s in doc.get("finish_tools", [])),
        subagent_review_failed=tuple(s.lower() for s in doc.get("subagent_review_failed", [])),
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
