"""Naive baselines: what trivial guesses score on the same traces with the same metric.

Printed beside every score, because the official metrics of some benchmarks reward trivial guesses (TRAIL's
location accuracy is a recall; "always step 1" beats published LLM judges on Who&When). Every baseline here reads
only the raw trace text and positions, never a judge; the ones that use a label prior say so in their name.

Contract: a positional guess is `(agent, step)` per trace, with step numbered as the source numbers it; random
baselines are exact expectations (no sampling), so they are reproducible without a seed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

# What the "first step that shows an error" baselines look for: the plain signals any log shows when something
# broke (a traceback, a non-zero exit code, the word error/exception). Deliberately simple and framework-neutral:
# this is the baseline a judge has to beat, not a detector.
ERROR_SIGNAL = re.compile(
    r"traceback \(most recent call last\)|exit ?code:? *[1-9]|\berror\b|\bexception\b", re.I
)


def first_error_position(contents: Sequence[str], pattern: re.Pattern[str] = ERROR_SIGNAL) -> int | None:
    """Position (0-based, reading order) of the first content matching the error signal, or None."""
    for pos, text in enumerate(contents):
        if text and pattern.search(text):
            return pos
    return None


def blame_before_first_error(
    speakers: Sequence[str | None], contents: Sequence[str], *, fallback_position: int = 1
) -> tuple[str | None, int]:
    """Blame the speaker of the step before the first step whose content shows an error, at that step.

    The error usually shows in the output of the step that caused it (a tool result after a bad call, a reply
    after a bad request). With no error signal, fall back to `fallback_position` (the "always step 1" guess).
    Returns (agent, position).
    """
    if not contents:
        return None, 0
    first = first_error_position(contents)
    pos = min(fallback_position, len(contents) - 1) if first is None else max(first - 1, 0)
    return speakers[pos], pos


def fixed_position(speakers: Sequence[str | None], position: int) -> tuple[str | None, int]:
    """Always the step at `position` (clamped to the trace), blaming its speaker."""
    if not speakers:
        return None, 0
    pos = min(max(position, 0), len(speakers) - 1)
    return speakers[pos], pos


def last_position(speakers: Sequence[str | None]) -> tuple[str | None, int]:
    return fixed_position(speakers, len(speakers) - 1)


def agent_key(name: str | None) -> str:
    """An agent's name for comparing a prediction with a label: case and surrounding space ignored, and a trailing
    annotation in parentheses dropped ("Orchestrator (-> WebSurfer)" and "Orchestrator (thought)" are the
    Orchestrator speaking; a label may name the agent either way)."""
    text = (name or "").strip()
    if text.endswith(")") and " (" in text:
        text = text[: text.index(" (")].strip() or text
    return text.lower()


def first_step_of(
    speakers: Sequence[str | None], agent: str, *, fallback_position: int = 0
) -> tuple[str | None, int]:
    """The first step spoken by `agent` (case-insensitive), else the fallback position."""
    want = agent_key(agent)
    for pos, sp in enumerate(speakers):
        if sp and agent_key(sp) == want:
            return sp, pos
    return fixed_position(speakers, fallback_position)


def most_common(values: Sequence[str]) -> str | None:
    """The most frequent value (ties broken by first appearance), or None for an empty sequence."""
    if not values:
        return None
    counts = Counter(values)
    best = max(counts.values())
    for v in values:
        if counts[v] == best:
            return v
    return None  # pragma: no cover - unreachable


def expected_random_agent(speakers: Sequence[str | None], gold_agent: str) -> float:
    """Expected agent accuracy of a uniform guess among the distinct speakers of the trace."""
    names = {agent_key(s) for s in speakers if s}
    if not names:
        return 0.0
    return (1.0 / len(names)) if agent_key(gold_agent) in names else 0.0


def expected_random_step(n_steps: int, gold_step: int, tol: int = 0, first: int = 0) -> float:
    """Expected step accuracy (within `tol`) of a uniform guess among steps first..first+n_steps-1."""
    if n_steps <= 0:
        return 0.0
    lo, hi = max(first, gold_step - tol), min(first + n_steps - 1, gold_step + tol)
    return max(0, hi - lo + 1) / n_steps
