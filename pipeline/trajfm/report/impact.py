"""Impact of each failure mode and family on task completion, and the single ranked "fix first" list.

Definitions (tests recompute them from the tables):
- Outcome: a diagnosed trace *failed* when the judge's `task_completed` is false, *completed* when true; traces
  with no completion verdict are left out of impact figures.
- For a mode (traces where it is detected) or a family (traces with a novel mode in it): `failed_with`,
  `completed_with`; `fail_rate_with` / `fail_rate_without` (the other traces with an outcome; for a mode, only
  traces where the mode was checked); `lift` = fail_rate_with / fail_rate_without with its 95% interval (risk
  ratio, Katz; 0.5 added to every cell when a failure count is 0); `excess_failed` = failed_with minus the
  failures expected at the rate without it = (traces with it) x (fail_rate_with - fail_rate_without).
- Fix first: every checked mode and every family (outliers excluded) with `excess_failed` > 0, ranked by
  `excess_failed`, then `failed_with`; at most FIX_FIRST_CARDS. Each card compares the models inside it, gives
  the advice (the taxonomy's for a mode; for a family, the advice of its nearest known mode), and two or three
  evidence quotes chosen to show the failure: from failed traces first, verified quotes first, one per model
  where possible, cut at a sentence end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import polars as pl

from trajfm.report.stats import risk_ratio, wilson

FIX_FIRST_CARDS = 8
QUOTES_PER_CARD = 3
QUOTE_CHARS = 240
TRACE_LINKS = 8
MIN_QUOTE_CHARS = 20

_SENTENCE_END = re.compile(r"[.!?](?=[\s\"')\]]|$)")


def sentence_cut(text: str | None, limit: int = QUOTE_CHARS) -> str:
    """`text` on one line, cut at the last sentence end within `limit` (at a word end with "…" when no sentence
    ends late enough), so a quote never stops mid-word."""
    s = " ".join((text or "").split())
    if len(s) <= limit:
        return s
    window = s[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] >= 0.4 * limit:
        return window[: ends[-1]]
    cut = window.rsplit(" ", 1)[0] if " " in window[int(0.4 * limit) :] else window
    return cut.rstrip(",;:-– ") + " …"


_END_AHEAD = re.compile(r"[.!?](?=[\s\"')\]]|$)|\n")
_START_BEHIND = re.compile(r"(?:[.!?][\"')\]]?\s+|\n)")


def widen_to_sentences(quote: str, texts: list[str], ahead: int = 200, behind: int = 120) -> str:
    """The quote widened to whole sentences of the trace text it was taken from: a judge's quote often starts or
    stops mid-sentence. Unchanged when it is not found verbatim in `texts` or no sentence boundary is near."""
    q = quote.strip()
    if not q:
        return quote
    for text in texts:
        i = text.find(q)
        if i < 0:
            continue
        start, end = i, i + len(q)
        if not re.search(r"[.!?][\"')\]]?$", q):
            m = _END_AHEAD.search(text, end, min(len(text), end + ahead))
            if m:
                end = m.end() if m.group() != "\n" else m.start()
            elif len(text) - end <= ahead:
                end = len(text)
            else:  # no sentence ends near: finish the word and say the text goes on
                space = re.compile(r"\s").search(text, end)
                return text[start_of(text, start, behind) : space.start() if space else end].strip() + " …"
        return text[start_of(text, start, behind) : end].strip()
    return quote


def start_of(text: str, start: int, behind: int) -> int:
    """Where the sentence holding `start` begins, when that is at most `behind` characters back."""
    if start == 0 or text[start - 1] == "\n":
        return start
    lo = max(0, start - behind)
    cuts = [m.end() for m in _START_BEHIND.finditer(text, lo, start)]
    return cuts[-1] if cuts else (0 if lo == 0 else start)


def outcomes(ok: pl.DataFrame) -> dict[str, bool]:
    """trace id -> failed, for diagnosed traces with a completion verdict."""
    known = ok.filter(pl.col("task_completed").is_not_null())
    return {tid: not done for tid, done in known.select("trace_id", "task_completed").iter_rows()}


def impact_of(with_ids: set[str], universe: dict[str, bool]) -> dict[str, Any]:
    """Impact figures of one mode or family; `universe` is trace id -> failed for the traces it is judged on."""
    a = sum(1 for t in with_ids if universe.get(t) is True)
    b = sum(1 for t in with_ids if universe.get(t) is False)
    c = sum(1 for t, f in universe.items() if f and t not in with_ids)
    d = sum(1 for t, f in universe.items() if not f and t not in with_ids)
    rr, lo, hi = risk_ratio(a, b, c, d)
    with_rate = a / (a + b) if a + b else None
    without = c / (c + d) if c + d else None
    lo_w, hi_w = wilson(a, a + b)
    return {
        "failed_with": a,
        "completed_with": b,
        "fail_rate_with": with_rate,
        "fail_rate_with_ci": [lo_w, hi_w],
        "fail_rate_without": without,
        "lift": rr,
        "lift_ci_low": lo,
        "lift_ci_high": hi,
        "excess_failed": None if with_rate is None or without is None else (a + b) * (with_rate - without),
    }


def pick_quotes(
    rows: list[dict[str, Any]],
    failed: dict[str, bool],
    context: Callable[[str, list[int]], list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Up to QUOTES_PER_CARD quotes that show the failure (see the module docstring). `rows` hold trace_id,
    model, steps, evidence and verified; `context(trace_id, steps)` gives the trace texts a quote is widened
    to whole sentences from."""

    def rank(r: dict[str, Any]) -> tuple:
        text = r.get("evidence") or ""
        return (
            failed.get(r["trace_id"]) is not True,
            not r.get("verified"),
            len(text.strip()) < MIN_QUOTE_CHARS,
            r["trace_id"],
        )

    usable = sorted((r for r in rows if (r.get("evidence") or "").strip()), key=rank)
    chosen: list[dict[str, Any]] = []
    seen_text: set[str] = set()
    seen_model: set[str] = set()
    for pass_ in (0, 1):  # first one per model, then fill up
        for r in usable:
            if len(chosen) >= QUOTES_PER_CARD:
                break
            key = re.sub(r"\d+", "#", " ".join((r["evidence"] or "").split()).casefold())
            if key in seen_text or (pass_ == 0 and r["model"] in seen_model):
                continue
            seen_text.add(key)
            seen_model.add(r["model"])
            chosen.append(
                {
                    "trace_id": r["trace_id"],
                    "model": r["model"],
                    "steps": list(r.get("steps") or []),
                    "quote": sentence_cut(
                        widen_to_sentences(r["evidence"], context(r["trace_id"], list(r.get("steps") or [])))
                        if context
                        else r["evidence"]
                    ),
                    "verified": bool(r.get("verified")),
                    "failed": failed.get(r["trace_id"]),
                }
            )
    return chosen


def per_model(with_ids: set[str], model_of: dict[str, str], of: dict[str, int]) -> list[dict[str, Any]]:
    """Per model: traces with it out of the model's traces it was judged on, most affected first."""
    counts: dict[str, int] = {}
    for t in with_ids:
        counts[model_of[t]] = counts.get(model_of[t], 0) + 1
    out = []
    for model, n_of in of.items():
        k = counts.get(model, 0)
        lo, hi = wilson(k, n_of)
        out.append({"model": model, "n": k, "of": n_of, "rate": k / n_of if n_of else None,
                    "ci_low": lo, "ci_high": hi})  # fmt: skip
    return sorted(out, key=lambda r: (-(r["rate"] or 0), r["model"]))


def fix_first(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank the candidate cards (modes and families with their impact) and keep the first FIX_FIRST_CARDS."""
    kept = [c for c in candidates if c["checked"] and (c["excess_failed"] or 0) > 0]
    kept.sort(key=lambda c: (-c["excess_failed"], -c["failed_with"], c["kind"], str(c["id"])))
    return [dict(c, rank=i + 1) for i, c in enumerate(kept[:FIX_FIRST_CARDS])]
