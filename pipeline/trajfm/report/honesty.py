"""What a reader needs to weigh the figures: does the corpus declare itself synthetic, how reliable is the
judge that produced them (its `trajfm bench` figures, where measured), was only part of the input judged."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from trajfm.report.load import RunTables
from trajfm.report.passes import Run


@functools.cache
def judge_reliability() -> dict[str, Any]:
    """The built-in judges' measured accuracy: report/judge_reliability.json, written from `trajfm bench` results
    by benchmarks/judge_reliability.py (never by hand)."""
    text = (resources.files("trajfm.report") / "judge_reliability.json").read_text(encoding="utf-8")
    return json.loads(text)


def honesty(t: RunTables, run: Run) -> dict[str, Any]:
    """What a reader needs to weigh the figures: synthetic corpus, judge reliability, sampling and limits."""
    extract = t.manifest.get("stages", {}).get("extract", {})
    options = extract.get("options") if isinstance(extract.get("options"), dict) else {}
    declared = [d for d in (extract.get("corpus_declarations") or []) if isinstance(d, dict)]
    data = judge_reliability()
    judges = []
    for name in sorted(
        run.judge_names, key=lambda j: (j is not None, j or "")
    ):  # as polars sorts: null first
        known = data.get(name) if name is not None else None
        judges.append(
            {
                "judge": name,
                "measured": known.get("measured") if known else None,
                "figures": known.get("figures", []) if known else [],
                "caveat": known.get("caveat") if known else "No accuracy figures are known for this judge.",
            }
        )
    limit = options.get("limit")
    sample = options.get("sample")
    return {
        "synthetic": any(d.get("synthetic") for d in declared),
        "corpus_declarations": declared,
        "judges": judges,
        # diagnosed traces whose task-completion verdict is the outcome the trace itself records
        "outcome_from_source": {"n": run.diag_ok["source_outcome"], "of": run.diag_ok["status_ok"]},
        "sampling": {
            "limit": limit,
            "sample": sample,
            "samples_per_trace": options.get("samples"),
            "note": (
                f"Only part of the input was judged ({'--limit ' + str(limit) if limit else ''}"
                f"{' ' if limit and sample else ''}{'--sample ' + str(sample) if sample else ''}); "
                "rates describe that part."
                if limit or sample
                else None
            ),
        },
    }
