"""Loading quality: does a loaded trace look like it was read right?

Contract:
- `annotate(trace, fmt, fit, note)` is called by the loader on every trace it returns: it sets
  `Trace.format_fit` and fills `Trace.load_warnings` with what makes the trace look misread: most steps empty, no
  agent step, no final answer where the format records one, no task where the format states one, and the
  detection's own note (a weak fit or an ambiguous runner-up). Warnings are short phrases, never raised: a trace
  with warnings is still loaded, and `trajfm traces` / `extract` list it.
- `summarize(traces)` gives the per-format loading-quality figures (traces, steps, empty steps, with a final
  answer, with a task, tool calls, traces with warnings and examples) that `trajfm traces` prints, `--json`
  returns and `extract` writes to the manifest; `summarize_table(traces_df)` gives the same from a written
  `traces` table (the Ray engine's manifest). Every figure is counted, none estimated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from trajfm.traces.model import Trace, default_role, is_empty_step, is_tool_call

if TYPE_CHECKING:
    from trajfm.traces.format import Format

_EXAMPLES = 5


def warnings_for(trace: Trace, fmt: Format) -> list[str]:
    out: list[str] = []
    n = len(trace.steps)
    empty = 0
    agent_step = False
    for s in trace.steps:  # one pass: this runs for every trace loaded
        if is_empty_step(s):
            empty += 1
        if not agent_step and (s.role or default_role(s.kind, s.agent)) == "agent":
            agent_step = True
    if n and empty * 2 > n:
        out.append(f"most steps empty ({empty} of {n})")
    if n and not agent_step:
        out.append("no agent step")
    if fmt.expects_final_answer(trace) and not (trace.final_answer and trace.final_answer.strip()):
        out.append("no final answer")
    if fmt.has_task and not trace.task.strip():
        out.append("no task")
    return out


def annotate(trace: Trace, fmt: Format, fit: float, note: str | None = None) -> None:
    trace.format_fit = round(fit, 4)
    warnings = warnings_for(trace, fmt)
    if note:
        warnings.append(note)
    trace.load_warnings = warnings


def summarize(
    traces: Iterable[Trace], into: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-format loading quality (see the module docstring). `into`, a summary of the traces loaded before
    these, is added to and returned, so a run that loads batch after batch counts exactly what one call over all
    its traces would."""
    return _summarize(
        ((t.trace_id, t.source_format, len(t.steps), sum(1 for s in t.steps if is_empty_step(s)),
          sum(1 for s in t.steps if is_tool_call(s)), bool(t.final_answer and t.final_answer.strip()), t.task,
          t.load_warnings)
         for t in traces),
        into,
    )  # fmt: skip


TABLE_COLUMNS = ("trace_id", "source_format", "n_steps", "empty_steps", "n_tool_calls", "has_final_answer", "task",
                 "load_warnings")  # fmt: skip


def summarize_table(
    traces: pl.DataFrame, into: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """The same figures as `summarize` from a `traces` table (its per-trace columns were counted when it was
    written), for engines that never hold all the traces in one process (`--engine ray`); `into` as for
    `summarize` (one shard after another)."""
    return _summarize(traces.select(TABLE_COLUMNS).iter_rows(), into)


def _summarize(
    rows: Iterable[tuple[str, str, int, int, int, bool, str, list[str] | None]],
    into: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = into if into is not None else {}
    for trace_id, fmt, n_steps, empty, tool_calls, has_final, task, warnings in rows:
        row = out.get(fmt)
        if row is None:
            row = out[fmt] = {
                "traces": 0,
                "steps": 0,
                "empty_steps": 0,
                "with_final_answer": 0,
                "with_task": 0,
                "tool_calls": 0,
                "with_warnings": 0,
                "warnings": {},
                "examples": [],
            }
        row["traces"] += 1
        row["steps"] += n_steps
        row["empty_steps"] += empty
        row["tool_calls"] += tool_calls
        row["with_final_answer"] += bool(has_final)
        row["with_task"] += bool(task.strip())
        if warnings:
            row["with_warnings"] += 1
            for w in warnings:
                key = _warning_key(w)
                row["warnings"][key] = row["warnings"].get(key, 0) + 1
            if len(row["examples"]) < _EXAMPLES:
                row["examples"].append({"trace_id": trace_id, "warnings": list(warnings)})
    return out


def _warning_key(warning: str) -> str:
    """The kind of a warning without its numbers ("most steps empty (3 of 4)" -> "most steps empty")."""
    for sep in (" (", ":"):
        cut = warning.find(sep)
        if cut > 0:
            return warning[:cut]
    return warning


def line(fmt: str, row: dict[str, Any]) -> str:
    """One loading-quality line for a format, as `trajfm traces` and `extract` print it."""
    n = row["traces"]
    steps = row["steps"]
    empty_pct = 100.0 * row["empty_steps"] / steps if steps else 0.0
    text = (
        f"{fmt}: {n} traces, {steps} steps ({empty_pct:.0f}% empty), {row['with_final_answer']}/{n} with a final "
        f"answer, {row['with_task']}/{n} with a task, {row['tool_calls']} tool calls"
    )
    if row["with_warnings"]:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(row["warnings"].items(), key=lambda kv: -kv[1]))
        text += f"; {row['with_warnings']} look misread ({kinds})"
    return text
