"""The trace drill-down payload: every trace (up to `TextBudget.max_traces`) with its steps, findings, summary and
root cause, as compact JSON.

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
    """How much text the drill-down keeps. `total_chars` (all step, tool-input, task and answer text) lowers
    every cap together until the payload fits; 7 M characters keeps an 881-trace report near 10 MB."""

    step_chars: int = 1200
    evidence_step_chars: int = 4000
    task_chars: int = 3000
    total_chars: int = 7_000_000
    min_step_chars: int = 200
    # At most this many traces are in the drill-down: past it, the traces with a finding (a detected or novel
    # mode, or a failed diagnosis) come first, in table order, then the others; the report says how many are
    # shown. Keeps the page, and the memory building it, bounded for runs of any size.
    max_traces: int = 10_000


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit]


@dataclass(frozen=True)
class Caps:
    step: int
    evidence_step: int
    task: int


def fit_caps(
    step_lens: list[int], cited: list[bool], input_lens: list[int], text_lens: list[int], budget: TextBudget
) -> Caps:
    """The largest caps (all halved together from the budget's) whose total text fits `total_chars`.

    Every cap stops at `min_step_chars`; if the text still does not fit there, that is the best the budget can do
    (the report stays readable rather than dropping steps).
    """

    def total(c: Caps) -> int:
        steps = sum(min(n, c.evidence_step if ev else c.step) for n, ev in zip(step_lens, cited, strict=True))
        return steps + sum(min(n, c.step) for n in input_lens) + sum(min(n, c.task) for n in text_lens)

    floor = budget.min_step_chars
    scale = 1.0
    while True:
        caps = Caps(
            max(floor, int(budget.step_chars * scale)),
            max(floor, int(budget.evidence_step_chars * scale)),
            max(floor, int(budget.task_chars * scale)),
        )
        at_floor = caps.step == caps.evidence_step == caps.task == floor
        if at_floor or total(caps) <= budget.total_chars:
            return caps
        scale /= 2


def build_drilldown(
    t: RunTables, budget: TextBudget | None = None, shown_rows: list[int] | None = None, n_total: int | None = None
) -> dict[str, Any]:
    """`shown_rows`: the rows of the traces table shown (`figures.compute` picks them in its pass: the first
    `max_traces` with a finding, in table order, then the others); None shows every trace."""
    budget = budget or TextBudget()
    # Only the shown traces' rows are read whole (texts included).
    traces_q, diag_q, modes_q, novel_q = t.scan("traces"), t.scan("diagnoses"), t.flag_rows(), t.scan("novel_modes")
    if shown_rows is not None:
        traces_q = traces_q.with_row_index("_row").filter(pl.col("_row").is_in(shown_rows)).drop("_row")
    traces = traces_q.collect(engine="streaming").with_columns(pl.col("agent_model").fill_null(UNKNOWN_MODEL))
    if n_total is None:
        n_total = t.scan("traces").select(pl.len()).collect().item()
    if shown_rows is not None:
        shown_ids = traces["trace_id"].implode()
        diag_q = diag_q.filter(pl.col("trace_id").is_in(shown_ids))
        modes_q = modes_q.filter(pl.col("trace_id").is_in(shown_ids))
        novel_q = novel_q.filter(pl.col("trace_id").is_in(shown_ids))
    diagnoses, modes = diag_q.collect(engine="streaming"), modes_q.collect(engine="streaming")
    novel_modes = novel_q.collect(engine="streaming")
    diag = {r["trace_id"]: r for r in diagnoses.unique("trace_id", keep="first").iter_rows(named=True)}
    detected = modes.filter(pl.col("detected")).sort(["trace_id", "mode_id"])
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
    if t.clustered and novel_modes.height:  # the shown novel modes' families
        cluster_of = dict(
            t.scan_assignments()
            .filter(pl.col("novel_id").is_in(novel_modes["novel_id"].implode()))
            .select("novel_id", "cluster_id")
            .collect(engine="streaming")
            .iter_rows()
        )
    novel: dict[str, list[dict[str, Any]]] = {}
    for r in novel_modes.sort(["trace_id", "novel_id"]).iter_rows(named=True):
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

    wanted = t.steps.lazy()
    if shown_rows is not None:
        wanted = wanted.filter(pl.col("trace_id").is_in(traces["trace_id"].implode()))
    steps = wanted.collect().sort(["trace_id", "position"])
    step_rows = list(steps.iter_rows(named=True))
    is_cited = [r["index"] in cited.get(r["trace_id"], ()) for r in step_rows]
    caps = fit_caps(
        [len(r["content"] or "") for r in step_rows],
        is_cited,
        [len(r["tool_input"] or "") for r in step_rows],
        [len(r["task"] or "") for r in traces.iter_rows(named=True)]
        + [len(r["final_answer"] or "") for r in traces.iter_rows(named=True)],
        budget,
    )
    by_trace: dict[str, list[list[Any]]] = {}
    n_cut = 0
    for r, ev in zip(step_rows, is_cited, strict=True):
        limit = caps.evidence_step if ev else caps.step
        content = r["content"] or ""
        tool_input = r["tool_input"]
        n_cut += len(content) > limit
        by_trace.setdefault(r["trace_id"], []).append(
            [r["index"], r["kind"], r["agent"], r["tool_name"], r["depth"], bool(r["is_error"]),
             _cut(content, limit), len(content), _cut(tool_input, caps.step), len(tool_input) if tool_input else 0]
        )  # fmt: skip
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
                "task": _cut(r["task"], caps.task),
                "task_len": len(r["task"] or ""),
                "answer": _cut(r["final_answer"], caps.task),
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
        "step_cap": caps.step,
        "evidence_step_cap": caps.evidence_step,
        "task_cap": caps.task,
        "n_steps_truncated": n_cut,
        "traces": rows,
        "n_traces_total": n_total,  # not in the page's JSON (build.py takes it out): the note says it
    }
