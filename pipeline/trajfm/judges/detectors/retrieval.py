"""Searching without reading: three or more search calls in a row at one agent level.

`search_churn`: the agent sent a search, got results back, and instead of reading any of them (opening a page,
inspecting a file, asking another agent) searched again, at least `MIN_RUN` times in a row. Each further query
says the earlier results did not answer the question and nothing was done to find out why: retrieval that stays
shallow. A search is a call whose tool name contains "search"; a search that failed (no results, an error) counts too:
searching again is still not reading. The finding points at the calls from the `MIN_RUN`-th on, the ones made after the pattern was already
clear.
"""

from __future__ import annotations

from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Act, Finding, TraceView
from trajfm.judges.detectors.model_turns import is_model_span

MIN_RUN: Final = 3


def _is_search(a: Act) -> bool:
    return "search" in a.tool.lower() and not a.is_finish


def detect_search_churn(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    run: list[Act] = []

    def flush() -> None:
        if len(run) >= MIN_RUN:
            later = run[MIN_RUN - 1 :]
            queries = "; ".join(tx.short(a.args, 50) for a in run[:MIN_RUN])
            out.append(
                Finding.at(
                    "search_churn",
                    later[0].step,
                    tx.quote(later[0].args or later[0].step.content, max_len=120),
                    f"steps {run[0].index}-{run[-1].index}: {len(run)} searches in a row with no result read "
                    f"in between ({queries})",
                    steps=[a.index for a in later],
                    tool=later[0].tool,
                )
            )

    for a in view.main_acts:
        if is_model_span(a.step) and a.result is a.step:
            continue  # a model span's call that no tool span ran (`base.build_view` pairs those that ran)
        if _is_search(a):
            run.append(a)
            continue
        flush()
        run = []
    flush()
    return out
