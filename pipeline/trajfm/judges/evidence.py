"""Checking that an evidence quote really occurs in a trace (shared by every judge).

Contract: `quote_in_text(quote, text)` is True when the quote, compared after normalisation, occurs verbatim in the
text. Normalisation folds case, unifies curly quotes and dashes, and collapses every run of whitespace to one
space, because judges re-flow whitespace and typography when they quote; nothing else is forgiven. A quote that
elides the middle with an ellipsis ("first part ... last part") is verified when every part occurs, in order.
An empty quote is never verified. `verify_evidence(quote, trace)` checks against all text of the trace
(`Trace.text()`), plus any extra texts given (e.g. the redacted rendering an LLM actually saw).
"""

from __future__ import annotations

import re

from trajfm.traces.model import Trace

_WS = re.compile(r"\s+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026|\[\.\.\.\])\s*")
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
    """Fold case, typography and whitespace so a faithful quote matches its source."""
    return _WS.sub(" ", text.translate(_TYPOGRAPHY).casefold()).strip()


def _strip_wrapping_quotes(quote: str) -> str:
    q = quote.strip()
    while len(q) >= 2 and q[0] == q[-1] and q[0] in "\"'`":
        q = q[1:-1].strip()
    return q


def quote_in_text(quote: str, text: str) -> bool:
    """True when `quote` occurs in `text` after normalisation (ellipsis-separated parts in order)."""
    q = _strip_wrapping_quotes(quote or "")
    parts = [normalize(p) for p in _ELLIPSIS.split(q)]
    parts = [p for p in parts if p]
    if not parts or sum(len(p) for p in parts) < MIN_QUOTE_CHARS:
        return False
    hay = normalize(text)
    pos = 0
    for part in parts:
        found = hay.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def verify_evidence(quote: str, trace: Trace, *extra_texts: str) -> bool:
    """True when `quote` occurs in the trace's text or in one of `extra_texts`."""
    if quote_in_text(quote, trace.text()):
        return True
    return any(quote_in_text(quote, t) for t in extra_texts)
