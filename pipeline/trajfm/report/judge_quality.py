"""Judge replies set aside as degenerate (`trajfm.judges.quality`), for the report (issue 17).

Contract:
- `usable(diag)`: the diagnoses rows the report's figures count as diagnosed: status `ok` and not set aside
  (`judge_quality` null, as in runs made before the check, or "ok").
- `set_aside_summary(diag)`: `{"n": replies set aside, "of": ok replies, "reasons": [{"code", "why", "n"}]}`,
  reasons in `REASONS` order (a reply with two reasons counts under both). The report's judge card says how many
  replies were set aside and why; summary.json carries it as `judge_quality`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from trajfm.judges.quality import QUALITY_OK, REASONS, is_set_aside, set_aside_counts


def usable(diag: pl.DataFrame) -> pl.DataFrame:
    quality = pl.col("judge_quality")
    keep = ((pl.col("status") == "ok") & (quality.is_null() | (quality == QUALITY_OK))).fill_null(False)
    return diag if diag.select(keep.all()).item() else diag.filter(keep)  # no copy when every reply counts


def set_aside_from(n_ok: int, n_usable: int, labels: pl.DataFrame) -> dict[str, Any]:
    """`set_aside_summary` from counts: ok replies, usable ones, and (judge_quality, n) of the ok replies."""
    counts: Counter[str] = Counter()
    for label, n in labels.iter_rows():
        if is_set_aside(label):
            for reason in str(label).split(","):
                counts[reason] += int(n)
    return {
        "n": n_ok - n_usable,
        "of": n_ok,
        "reasons": [
            {"code": code, "why": REASONS[code], "n": counts[code]} for code in REASONS if counts[code]
        ],
    }


def set_aside_summary(diag: pl.DataFrame) -> dict[str, Any]:
    ok = diag.filter(pl.col("status") == "ok")
    counts = set_aside_counts(ok["judge_quality"].to_list())
    return {
        "n": ok.height - usable(diag).height,
        "of": ok.height,
        "reasons": [{"code": code, "why": REASONS[code], "n": n} for code, n in counts.items()],
    }
