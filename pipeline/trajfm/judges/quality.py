"""Is a judge's reply a diagnosis at all? Degenerate replies are set aside, not counted as findings.

A small or badly constrained model can return a reply that parses and validates but says nothing: every failure
mode marked detected, one quote pasted into every detection, or the prompt's own placeholder wording ("quote",
"one sentence") written back as evidence. Counting such a reply would fill the report with findings no one made.

Contract:
- `assess(diagnosis, taxonomy, trace_text=..., prompt_text=...)` returns the reasons (a list of codes from
  `REASONS`, in that order; empty when the reply looks like a diagnosis). Only diagnoses with status `ok` are
  assessed. The checks read the diagnosis, never a framework's or dataset's wording:
  - `all_modes_detected`: every mode of a taxonomy with at least `MIN_MODES_FOR_ALL` modes is detected;
  - `repeated_quote`: one evidence quote (compared after normalisation) is given for at least
    `MIN_REPEATS` detected modes and for more than half of the detected modes;
  - `prompt_wording`: a detected mode's evidence or rationale, or a novel mode's title, description or
    evidence, is one of the placeholder values of the prompt's reply template (`placeholders(prompt_text)`:
    the quoted values after `"key": ` in the prompt), or is evidence copied from the prompt (at least
    `MIN_PROMPT_QUOTE_WORDS` words that occur in the prompt) that does not occur in the trace.
- `quality_label(reasons)` is the `judge_quality` value stored in diagnoses.parquet: "ok" or the reasons joined
  by ","; failed traces store null. A set-aside trace keeps its diagnoses row (status `ok`: the call worked) but
  gets no rows in modes.parquet or novel_modes.parquet, and the report leaves it out of its rates and says how
  many replies were set aside and why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from trajfm.judges.base import Diagnosis
from trajfm.judges.evidence import normalize, quote_in_text
from trajfm.taxonomy import Taxonomy

REASONS: dict[str, str] = {
    "all_modes_detected": "every failure mode marked detected",
    "repeated_quote": "one evidence quote repeated across most detections",
    "prompt_wording": "evidence or rationale copied from the prompt's own template wording",
}
QUALITY_OK = "ok"
MIN_MODES_FOR_ALL = 4
MIN_REPEATS = 3
MIN_PROMPT_QUOTE_WORDS = 3

# A placeholder value in the prompt's reply template: `"evidence": "quote"`, `"rationale": "one sentence"`.
_TEMPLATE_VALUE = re.compile(r'"[A-Za-z_]+":\s*"([^"\n]{2,200})"')
_EDGE_PUNCT = re.compile(r"^[\s\"'`.,;:!?()\[\]-]+|[\s\"'`.,;:!?()\[\]-]+$")


def _norm(text: str) -> str:
    return _EDGE_PUNCT.sub("", normalize(text or ""))


def placeholders(prompt_text: str) -> set[str]:
    """The placeholder values of the prompt's reply template, normalised."""
    return {p for p in (_norm(m) for m in _TEMPLATE_VALUE.findall(prompt_text or "")) if p}


def _copied_from_prompt(text: str, prompt_norm: str, trace_text: str) -> bool:
    t = _norm(text)
    return (
        len(t.split()) >= MIN_PROMPT_QUOTE_WORDS
        and t in prompt_norm
        and not (trace_text and quote_in_text(text, trace_text))
    )


def assess(d: Diagnosis, taxonomy: Taxonomy, *, trace_text: str = "", prompt_text: str = "") -> list[str]:
    """The reasons to set this reply aside (see the module docstring); [] for a usable reply."""
    if d.status != "ok":
        return []
    reasons: set[str] = set()
    detected = [m for m in d.modes if m.detected]
    ids = set(taxonomy.ids)
    if len(ids) >= MIN_MODES_FOR_ALL and ids <= {m.mode_id for m in detected}:
        reasons.add("all_modes_detected")
    quotes = Counter(q for q in (_norm(m.evidence) for m in detected) if q)
    if quotes:
        _, n = quotes.most_common(1)[0]
        if n >= MIN_REPEATS and n * 2 > len(detected):
            reasons.add("repeated_quote")
    if prompt_text:
        template = placeholders(prompt_text)
        prompt_norm = normalize(prompt_text)
        fields: list[tuple[str, bool]] = []  # (text, is evidence)
        for m in detected:
            fields += [(m.evidence, True), (m.rationale, False)]
        for n_mode in d.novel:
            fields += [(n_mode.title, False), (n_mode.description, False), (n_mode.evidence, True)]
        for text, is_evidence in fields:
            if not text:
                continue
            if _norm(text) in template or (
                is_evidence and _copied_from_prompt(text, prompt_norm, trace_text)
            ):
                reasons.add("prompt_wording")
                break
    return [r for r in REASONS if r in reasons]


def quality_label(reasons: Iterable[str]) -> str:
    """The `judge_quality` value: "ok", or the reasons joined by ","."""
    reasons = list(reasons)
    return ",".join(reasons) if reasons else QUALITY_OK


def is_set_aside(label: str | None) -> bool:
    """True for a `judge_quality` value that names reasons (null and "ok" are not set aside)."""
    return bool(label) and label != QUALITY_OK


def set_aside_counts(labels: Iterable[str | None]) -> dict[str, int]:
    """How many replies were set aside for each reason (a reply with two reasons counts under both)."""
    counts: Counter[str] = Counter()
    for label in labels:
        if is_set_aside(label):
            counts.update(str(label).split(","))
    return {r: counts[r] for r in REASONS if counts[r]}
