"""What text of a novel mode is embedded: specifics masked, so families are not split by instance details.

Contract: `mask_specifics(text)` replaces instance-specific spans with neutral placeholders and is idempotent:
- quoted spans ("..." and '...', including unbalanced trailing quotes) -> "<quote>": verbatim error messages and
  answers differ per trace while the failure they illustrate is the same; placeholders separated by a short
  fragment without a sentence end (what quotes nested in quotes leave) merge into one;
- file paths and URLs -> "<path>"; UUIDs and long hex ids -> "<id>";
- identifiers (words with an inner capital, an underscore or a digit: IoTAgent, mp_1, AHU-3, PMP-R0102) ->
  "<name>"; numbers -> "<n>".
A failure family is "the agent retried a failing call", whatever tool, asset, file or message was involved; if
those specifics stay in, clusters split by tool or asset instead of by kind of failure (measured on the bundled
corpus: see benchmarks/cluster_vs_sidecar.py). `trajfm cluster --keep-specifics` turns masking off.
Masking is applied to what is embedded and to the keyword counts; names and representatives keep the originals.
"""

from __future__ import annotations

import re

_QUOTED = re.compile(r"\"[^\"]*\"?|“[^”]*”?|(?<!\w)'[^']*'(?!\w)")
_URL = re.compile(r"\b\w+://\S+")
_PATH = re.compile(r"(?<![\w<>])(?:~|\.{1,2})?/(?:[\w.\-]+/)*[\w.\-]+")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b|\b[0-9a-fA-F]{16,}\b"
)
# A token with an inner capital (IoTAgent), an underscore (mp_1) or a digit mixed with letters (R0102, AHU-3).
_IDENT = re.compile(
    r"\b(?=[\w-]*(?:[a-z][A-Z]|[A-Z]{2,}[a-z]|_|[A-Za-z]-?\d|\d-?[A-Za-z]))[A-Za-z0-9][\w-]*\b"
)
_NUMBER = re.compile(r"(?<![<\w])\d+(?:[.,]\d+)*(?![\w>])")
_SPACES = re.compile(r"\s+")
# Quotes nested in quotes (a JSON observation quoted inside a sentence) leave fragments between placeholders.
_QUOTE_RUN = re.compile(r"<quote>(?:[^<.!?]{0,80}<quote>)+")


def _mask_once(t: str) -> str:
    t = _QUOTED.sub("<quote>", t)
    t = _QUOTE_RUN.sub("<quote>", t)
    t = _URL.sub("<path>", t)
    t = _PATH.sub("<path>", t)
    t = _UUID.sub("<id>", t)
    t = _IDENT.sub("<name>", t)
    t = _NUMBER.sub("<n>", t)
    return _SPACES.sub(" ", t).strip()


def mask_specifics(text: str) -> str:
    # A replacement can create a new context for an earlier rule ("0/A" -> "<n>/A"); repeat to a fixed point so
    # masking is idempotent (a property test checks it). Two or three passes suffice in practice; capped at 10.
    t = _mask_once(text)
    for _ in range(10):
        nxt = _mask_once(t)
        if nxt == t:
            break
        t = nxt
    return t


_PLACEHOLDER_GROUP = re.compile(r"\([^()]*<\w+>[^()]*\)")  # a parenthesis holding any instance detail
_PLACEHOLDER = re.compile(r"<\w+>")


def name_from_title(title: str) -> str:
    """A cluster name from a member's title: specifics masked, then placeholders dropped ("Retry (IoTAgent)" ->
    "Retry"). Falls back to the title as written when nothing would be left."""
    t = _PLACEHOLDER_GROUP.sub("", mask_specifics(title))
    t = _SPACES.sub(" ", _PLACEHOLDER.sub("", t)).strip(" ,;:-/")
    t = re.sub(r"\(\s*\)", "", t).strip()
    return t or title.strip()
