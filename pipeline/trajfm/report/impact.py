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


def impact_from_frames(with_ids: pl.DataFrame, universe: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """Impact figures of one mode or family: `with_ids` (trace_id, unique) the traces it is on, `universe`
    (trace_id, failed) the traces it is judged on. Joins, not Python sets: a mode may be on a million traces;
    a lazy `universe` is streamed through the counts, never held."""
    marked = universe.lazy().join(
        with_ids.lazy().select("trace_id", _with=pl.lit(True)), on="trace_id", how="left"
    )
    w, f = pl.col("_with").fill_null(False), pl.col("failed")
    a, b, c, d = (
        marked.select(
            a=(w & f).sum(), b=(w & f.not_()).sum(), c=(w.not_() & f).sum(), d=(w.not_() & f.not_()).sum()
        )
        .collect(engine="streaming")
        .row(0)
    )
    return impact_from_counts(int(a), int(b), int(c), int(d))


def impact_from_counts(a: int, b: int, c: int, d: int) -> dict[str, Any]:
    """Impact figures from the 2x2 table: failed / completed with the mode (a, b) and without it (c, d)."""
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


QUOTE_KEYS_PER_MODEL = 8  # quote candidates kept per model: rows of its first 8 distinct texts (3 can be chosen)
QUOTE_KEYS_OVERALL = 16  # and rows of the first 16 distinct texts overall (at most 3 seen texts block the rest)


def quote_candidates(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of `rows` (trace_id, model, steps, evidence, verified, failed) that `pick_quotes` can choose,
    ranked as it ranks them: per model the rows of its first distinct texts, and the rows of the first distinct
    texts overall, the first row of each, so at most 8 per model and 16 more. Applied to the candidates of
    several parts of a run, concatenated in run order, it gives the candidates of the whole run (a row among
    the run's first texts is among its part's first texts)."""
    text = pl.col("evidence").fill_null("")
    ranked = (
        rows.filter(text.str.strip_chars().str.len_chars() > 0)
        .with_columns(
            _r1=pl.col("failed").fill_null(False).not_(),
            _r2=pl.col("verified").fill_null(False).not_(),
            _r3=text.str.strip_chars().str.len_chars() < MIN_QUOTE_CHARS,
            _k=text.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase().str.replace_all(r"\d+", "#"),
        )
        .sort(["_r1", "_r2", "_r3", "trace_id"], maintain_order=True)
        .with_row_index("_i")
    )
    first = pl.col("_i").min()
    # pick_quotes can only choose the first row of a (model, text): a later one is skipped for the same reason
    # (its model or its text already taken). The text key here is at least as fine as pick_quotes' (lower-casing
    # folds less than casefold, `\s` matches no more than str.split), so no row it could choose is dropped.
    keep = (pl.col("_i") == first.over(["model", "_k"])) & (
        (first.over("_k").rank("dense") <= QUOTE_KEYS_OVERALL)
        | (first.over(["model", "_k"]).rank("dense").over("model") <= QUOTE_KEYS_PER_MODEL)
    )
    return ranked.filter(keep).drop("_i", "_r1", "_r2", "_r3", "_k")


def pick_from_candidates(
    few: pl.DataFrame, context: Callable[[str, list[int]], list[str]] | None = None
) -> list[dict[str, Any]]:
    """`pick_quotes` over `quote_candidates`."""
    failed = {tid: f for tid, f in few.select("trace_id", "failed").iter_rows() if f is not None}
    return pick_quotes(few.select("trace_id", "model", "steps", "evidence", "verified").to_dicts(), failed, context)


def pick_quotes_frame(
    rows: pl.DataFrame,
    known: pl.DataFrame,
    context: Callable[[str, list[int]], list[str]] | None = None,
) -> list[dict[str, Any]]:
    """`pick_quotes` for a frame of rows (trace_id, model, steps, evidence, verified) and `known` (trace_id,
    failed), without a Python dict per row (see `quote_candidates`)."""
    return pick_from_candidates(
        quote_candidates(rows.join(known, on="trace_id", how="left", maintain_order="left")), context
    )


def per_model_counts(counts: dict[str, int], of: dict[str, int]) -> list[dict[str, Any]]:
    """Per model: traces with it (`counts`) out of the model's traces it was judged on (`of`), most affected
    first."""
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
