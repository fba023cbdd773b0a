"""Checking evidence quotes the way a person would: is this passage really in what the judge read, and where?

Contract:
- `quote_in_text(quote, text)` is True when the quote, compared after normalisation, occurs verbatim in the text.
  Normalisation drops the rendering's own labels (`STEP 3`, `THOUGHT (agent X): `, `OBSERVATION (..., error): `,
  `TASK:`, `FINAL ANSWER:`: text the judge was shown around the trace's words, not the trace's words), folds
  case, unifies curly quotes and dashes, and collapses every run of whitespace to one space, because judges
  copy labels and re-flow whitespace and typography when they quote; nothing else is forgiven, so a paraphrase
  stays unverified. A quote that elides the middle with an ellipsis ("first part ... last part") is verified
  when every part occurs, in order. A quote shorter than MIN_QUOTE_CHARS is never verified.
- `QuoteIndex(trace, chunks)` checks quotes against the text the judge was shown (the rendered chunks, after
  redaction, when given) and then the trace's own text, and maps each quote back to the step it was found in:
  `check(quote) -> QuoteCheck(verified, step, source)`. A quote in the final answer maps to the last step (the
  prompt asks judges to cite it there); one in the task maps to no step.
- `verify_diagnosis(diagnosis, trace, chunks)` is the one place a diagnosis's quotes are checked: it sets
  `evidence_verified` on every mode (False for a detected mode the judge gave no step for), records the steps the
  quotes were found at in `extra["evidence_steps"]` (mode id -> step) and the novel modes' results in
  `extra["novel_evidence_verified"]`, marks the diagnosis `extra["evidence_checked"]`, and returns how many
  detected modes are unverified. Extract calls it only for diagnoses a judge has not checked.
- `verify_evidence(quote, trace, *extra_texts)` checks one quote against the trace's text and extra texts.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from trajfm.traces.model import Trace

_WS = re.compile(r"\s+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026|\[\.\.\.\])\s*")
# The labels trajfm's rendering puts before step text (upper-case kind, optional details in brackets, a colon),
# the step headers and the section headers. Matched case-sensitively so ordinary words are left alone.
_LABELS = re.compile(
    r"(?<![A-Za-z])(?:STEP -?\d+\b|(?:PART \d+ OF \d+)|[A-Z]{2,}(?: [A-Z]{2,})*(?: \([^()\n]{0,200}\))?:(?=\s|$))"
)
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)
# A quote shorter than this (after normalisation) proves nothing: "ok" or "the" occur in almost any trace.
MIN_QUOTE_CHARS = 3


def normalize(text: str) -> str:
    """Drop rendering labels, fold case, typography and whitespace so a faithful quote matches its source."""
    return _WS.sub(" ", _LABELS.sub(" ", text).translate(_TYPOGRAPHY).casefold()).strip()


def _strip_wrapping_quotes(quote: str) -> str:
    q = quote.strip()
    while len(q) >= 2 and q[0] == q[-1] and q[0] in "\"'`":
        q = q[1:-1].strip()
    return q


def quote_parts(quote: str) -> list[str]:
    """The normalised parts of a quote (split at ellipses); empty when it is too short to prove anything."""
    q = _strip_wrapping_quotes(quote or "")
    parts = [normalize(p) for p in _ELLIPSIS.split(q)]
    parts = [p for p in parts if p]
    if not parts or sum(len(p) for p in parts) < MIN_QUOTE_CHARS:
        return []
    return parts


def _find(parts: list[str], hay: str) -> int:
    """Where the first part starts when all parts occur in order in `hay`, else -1."""
    pos, start = 0, -1
    for part in parts:
        found = hay.find(part, pos)
        if found < 0:
            return -1
        if start < 0:
            start = found
        pos = found + len(part)
    return start


def quote_in_text(quote: str, text: str) -> bool:
    """True when `quote` occurs in `text` after normalisation (ellipsis-separated parts in order)."""
    parts = quote_parts(quote)
    return bool(parts) and _find(parts, normalize(text)) >= 0


def verify_evidence(quote: str, trace: Trace, *extra_texts: str) -> bool:
    """True when `quote` occurs in the trace's text or in one of `extra_texts`."""
    if quote_in_text(quote, trace.text()):
        return True
    return any(quote_in_text(quote, t) for t in extra_texts)


@dataclass(frozen=True, slots=True)
class QuoteCheck:
    verified: bool
    step: int | None = None  # the step the quote was found in (None: not found, or in the task)
    source: str | None = None  # "rendering" (what the judge was shown) or "trace" (the source text)


class _Haystack:
    """Normalised sections joined into one searchable string, remembering which step each part came from."""

    def __init__(self, sections: Sequence[tuple[int | None, str]]) -> None:
        pieces: list[str] = []
        self.starts: list[int] = []
        self.steps: list[int | None] = []
        pos = 0
        for step, text in sections:
            norm = normalize(text)
            if not norm:
                continue
            self.starts.append(pos)
            self.steps.append(step)
            pieces.append(norm)
            pos += len(norm) + 1
        self.text = " ".join(pieces)

    def find(self, parts: list[str]) -> tuple[bool, int | None]:
        at = _find(parts, self.text)
        if at < 0:
            return False, None
        return True, self.steps[bisect.bisect_right(self.starts, at) - 1]


def trace_sections(trace: Trace) -> list[tuple[int | None, str]]:
    """The trace's own text by step: the task (no step), each step's content and tool input, the final answer
    (at the last step)."""
    last = trace.steps[-1].index if trace.steps else None
    sections: list[tuple[int | None, str]] = [(None, trace.task)]
    for s in trace.steps:
        sections.append((s.index, s.content))
        if s.tool_input:
            sections.append((s.index, s.tool_input))
    if trace.final_answer:
        sections.append((last, trace.final_answer))
    return sections


class QuoteIndex:
    """Quotes checked against what the judge was shown, then the trace itself (see the module docstring).
    Each haystack is normalised on first use only: most diagnoses have few quotes, many have none."""

    def __init__(self, trace: Trace, chunks: Sequence[Any] = ()) -> None:
        self._pending: list[tuple[str, Any]] = [
            ("rendering", c.sections) for c in chunks if getattr(c, "sections", None)
        ]
        self._pending.append(("trace", trace))
        self._built: list[tuple[str, _Haystack]] = []

    def _haystacks(self) -> Iterator[tuple[str, _Haystack]]:
        yield from self._built
        while self._pending:
            name, source = self._pending.pop(0)
            hay = _Haystack(trace_sections(source) if name == "trace" else source)
            self._built.append((name, hay))
            yield name, hay

    def check(self, quote: str) -> QuoteCheck:
        parts = quote_parts(quote)
        if not parts:
            return QuoteCheck(False)
        for name, hay in self._haystacks():
            found, step = hay.find(parts)
            if found:
                return QuoteCheck(True, step, name)
        return QuoteCheck(False)


def verify_diagnosis(d: Any, trace: Trace, chunks: Sequence[Any] = ()) -> int:
    """Check every quote of diagnosis `d` (see the module docstring); return the unverified detected modes."""
    index = QuoteIndex(trace, chunks)
    where: dict[str, int] = {}
    unverified = 0
    for m in d.modes:
        if not m.detected:
            m.evidence_verified = False
            continue
        found = index.check(m.evidence) if m.evidence else QuoteCheck(False)
        if found.step is not None:
            where[m.mode_id] = found.step
        # A detected mode without a step is an incomplete citation: never counted as verified.
        m.evidence_verified = found.verified and bool(m.steps)
        unverified += not m.evidence_verified
    d.extra["evidence_steps"] = where
    d.extra["novel_evidence_verified"] = [
        bool(n.evidence) and index.check(n.evidence).verified for n in d.novel
    ]
    d.extra["evidence_checked"] = "rendering" if chunks else "trace"
    return unverified
