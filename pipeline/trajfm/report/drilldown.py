"""The trace drill-down payload: every trace with its steps, findings, summary and root cause, as compact JSON.

The HTML embeds this as JSON (see `render.safe_json`) and the drill-down script builds the DOM from it with
`textContent` only, so trace text can never become markup. To keep an 881-trace report small, long texts are
cut for display: each cut string carries its full length so the page shows a visible "truncated" marker.
Steps cited as evidence or as the root cause get a larger allowance than the others, because they are the ones
a reader opens a trace to see.

Step rows are lists, not objects, to avoid repeating keys thousands of times:
`[index, kind, agent, tool_name, depth, is_error, content, content_full_len, tool_input, tool_input_full_len]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from trajfm.report.figures import UNKNOWN_MODEL
from trajfm.report.load import RunTables

STEP_FIELDS = (
    "index",
    "kind",
    "agent",
    "tool",
    "depth",
    "is_error",
    "content",
    "content_len",
    "tool_input",
    "tool_input_len",
)


@dataclass(frozen=True)
class TextBudget:
    """How much text the drill-down keeps. `total_chars` lowers the per-step caps until the payload fits."""

    step_chars: int = 1200
    evidence_step_chars: int = 4000
    task_chars: int = 3000
    total_chars: int = 7_000_000
    min_step_chars: int = 200


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit]


def _step_cap(lengths: list[int], budget: TextBudget) -> int:
    """The largest per-step cap (halving from `step_chars`) whose total stays within `total_chars`."""
    cap = budget.step_chars
    while cap > budget.min_step_chars and sum(min(n, cap) for n in lengths) > budget.total_chars:
        cap //= 2
    return max(cap, budget.min_step_chars)


def build_drilldown(t: RunTables, budget: TextBudget | None = None) -> dict[str, Any]:
    budget = budget or TextBudget()
    traces = t.traces.with_columns(pl.col("agent_model").fill_null(UNKNOWN_MODEL))
    diag = {r["trace_id"]: r for r in t.diagnoses.unique("trace_id", keep="first").iter_rows(named=True)}
    detected = t.modes.filter(pl.col("detected")).sort(["trace_id", "mode_id"])
    findings: dict[str, list[dict[str, Any]]] = {}
    cited: dict[str, set[int]] = {}
    for r in detected.iter_rows(named=True):
        findings.setdefault(r["trace_id"], []).append(
            {
                "mode": r["mode_id"],
                "steps": list(r["steps"] or []),
                "evidence": r["evidence"] or "",
                "verified": bool(r["evidence_verified"]),
                "rationale": r["rationale"] or "",
            }
        )
        cited.setdefault(r["trace_id"], set()).update(r["steps"] or [])
    cluster_of: dict[str, int] = {}
    if t.novel_assignments is not None:
        cluster_of = dict(t.novel_assignments.select("novel_id", "cluster_id").iter_rows())
    novel: dict[str, list[dict[str, Any]]] = {}
    for r in t.novel_modes.sort(["trace_id", "novel_id"]).iter_rows(named=True):
        novel.setdefault(r["trace_id"], []).append(
            {
                "title": r["title"],
                "description": r["description"] or "",
                "steps": list(r["steps"] or []),
                "evidence": r["evidence"] or "",
                "cluster": cluster_of.get(r["novel_id"]),
            }
        )
        cited.setdefault(r["trace_id"], set()).update(r["steps"] or [])
    for tid, d in diag.items():
        if d["root_cause_step"] is not None:
            cited.setdefault(tid, set()).add(d["root_cause_step"])

    steps = t.steps.sort(["trace_id", "position"])
    cap = _step_cap(steps["content"].str.len_chars().fill_null(0).to_list(), budget)
    by_trace: dict[str, list[list[Any]]] = {}
    n_cut = 0
    for r in steps.iter_rows(named=True):
        limit = budget.evidence_step_chars if r["index"] in cited.get(r["trace_id"], ()) else cap
        content = r["content"] or ""
        tool_input = r["tool_input"]
        n_cut += len(content) > limit
        by_trace.setdefault(r["trace_id"], []).append(
            [
                r["index"],
                r["kind"],
                r["agent"],
                r["tool_name"],
                r["depth"],
                bool(r["is_error"]),
                _cut(content, limit),
                len(content),
                _cut(tool_input, cap),
                len(tool_input) if tool_input else 0,
            ]
        )
    rows = []
    for r in traces.iter_rows(named=True):
        tid = r["trace_id"]
        d = diag.get(tid, {})
        rows.append(
            {
                "id": tid,
                "model": r["agent_model"],
                "scenario": r["scenario"],
                "multi": r["multi_agent"],
                "correct": r["is_correct"],
                "source": r["source_path"],
                "task": _cut(r["task"], budget.task_chars),
                "task_len": len(r["task"] or ""),
                "answer": _cut(r["final_answer"], budget.task_chars),
                "answer_len": len(r["final_answer"] or ""),
                "status": d.get("status"),
                "error": d.get("error"),
                "completed": d.get("task_completed"),
                "summary": d.get("summary") or "",
                "rc_step": d.get("root_cause_step"),
                "rc_agent": d.get("root_cause_agent"),
                "modes": findings.get(tid, []),
                "novel": novel.get(tid, []),
                "steps": by_trace.get(tid, []),
            }
        )
    return {
        "step_fields": list(STEP_FIELDS),
        "step_cap": cap,
        "evidence_step_cap": budget.evidence_step_chars,
        "n_steps_truncated": n_cut,
        "traces": rows,
    }
