"""What `trajfm traces` prints: a summary of a `LoadResult` a user reads before spending money on a judge.

Contract: `summarize(result)` returns a plain JSON-able dict (the `--json` output) with counts per format, model
and agent (an agent counts once per trace it speaks in), steps and characters per trace (median, max, total;
characters = all of `Trace.text()`: task, step contents, tool inputs and final answer, what a judge reads),
per-format step/character figures, the loading quality per format (`trajfm.traces.quality.summarize`: empty steps,
final answers, tasks, tool calls, traces that look misread), the failures (path, record, reason) and skipped files
(path, note: files that are not traces are listed, never judged), and the installed format plugins that do not
load (`broken_formats`: name -> why; they were not tried on the files).
`render(summary, console)` prints the same as rich tables. No figure here is estimated: all are counted.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from trajfm.errors import TraceLoadError
from trajfm.safetext import for_rich as escape
from trajfm.traces import quality
from trajfm.traces.detect import registry
from trajfm.traces.load import LoadResult

_TOP = 15
_LISTED = 20  # skipped files listed by path


def _stats(values: list[int]) -> dict[str, float | int]:
    if not values:
        return {"median": 0, "max": 0, "total": 0}
    return {"median": statistics.median(values), "max": max(values), "total": sum(values)}


def summarize(result: LoadResult) -> dict[str, Any]:
    by_format: Counter[str] = Counter()
    by_model: Counter[str] = Counter()
    by_agent: Counter[str] = Counter()
    steps: list[int] = []
    chars: list[int] = []
    per_format: dict[str, tuple[list[int], list[int]]] = {}
    for t in result.traces:
        by_format[t.source_format] += 1
        by_model[t.agent_model or "(unknown)"] += 1
        for agent in t.agents:
            by_agent[agent] += 1
        # All text a judge would read (task, step contents, tool inputs, final answer), not only step contents.
        n_steps, n_chars = len(t.steps), len(t.text())
        steps.append(n_steps)
        chars.append(n_chars)
        fs, fc = per_format.setdefault(t.source_format, ([], []))
        fs.append(n_steps)
        fc.append(n_chars)
    return {
        "files": result.files,
        "traces": len(result.traces),
        "failed_files": len({f.path for f in result.failures}),
        "failures": [{"path": f.path, "record": f.record, "reason": f.reason} for f in result.failures],
        "skipped": [{"path": s.path, "note": s.note} for s in result.skipped],
        "by_format": dict(by_format.most_common()),
        "by_model": dict(by_model.most_common()),
        "by_agent": dict(by_agent.most_common()),
        "steps_per_trace": _stats(steps),
        "chars_per_trace": _stats(chars),
        "per_format": {
            fmt: {"traces": len(fs), "steps": _stats(fs), "chars": _stats(fc)}
            for fmt, (fs, fc) in per_format.items()
        },
        "loading_quality": quality.summarize(result.traces),
        # Installed format plugins that do not load were not tried on these files: say so, or a file in such a
        # format reads as "unknown format" with no hint why.
        "broken_formats": dict(registry().broken),
    }


def _num(x: float | int) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def render(summary: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]{summary['traces']}[/] traces from {summary['files']} files; "
        f"{len(summary['failures'])} failed, {len(summary['skipped'])} skipped (not traces)"
    )
    if summary["traces"]:
        table = Table(title="Traces per format", title_justify="left")
        for col in ("format", "traces", "steps median", "steps max", "chars median", "chars max"):
            table.add_column(col, justify="left" if col == "format" else "right")
        for fmt, row in summary["per_format"].items():
            table.add_row(fmt, str(row["traces"]), _num(row["steps"]["median"]), _num(row["steps"]["max"]),
                          _num(row["chars"]["median"]), _num(row["chars"]["max"]))  # fmt: skip
        s, c = summary["steps_per_trace"], summary["chars_per_trace"]
        table.add_row("[bold]all[/]", str(summary["traces"]), _num(s["median"]), _num(s["max"]), _num(c["median"]),
                      _num(c["max"]))  # fmt: skip
        console.print(table)
        for key, title in (("by_model", "Traces per model"), ("by_agent", "Traces per agent")):
            counts: dict[str, int] = summary[key]
            t = Table(title=title, title_justify="left")
            t.add_column(key.removeprefix("by_"))
            t.add_column("traces", justify="right")
            for name, n in list(counts.items())[:_TOP]:
                t.add_row(escape(name), str(n))
            if len(counts) > _TOP:
                t.add_row(f"... {len(counts) - _TOP} more (see --json)", "")
            console.print(t)
    render_quality(summary["loading_quality"], console)
    for name, error in summary.get("broken_formats", {}).items():
        console.print(f"[yellow]format {escape(name)} not used: {escape(error)}[/]", soft_wrap=True, highlight=False)
    if summary["failures"]:
        # One plain line per failure, never wrapped inside a cell, so paths can be copied.
        console.print(f"[bold red]Failed (not loaded): {len(summary['failures'])}[/]")
        for f in summary["failures"]:
            where = f["path"] if f["record"] is None else f"{f['path']} (record {f['record']})"
            console.print(f"  {escape(where)}: {escape(f['reason'])}", soft_wrap=True, highlight=False)
    if summary["skipped"]:
        notes = Counter(s["note"] for s in summary["skipped"])
        t = Table(title="Skipped (not traces)", title_justify="left")
        t.add_column("why")
        t.add_column("files", justify="right")
        for note, n in notes.most_common():
            t.add_row(escape(note), str(n))
        console.print(t)
        for s in summary["skipped"][:_LISTED]:
            console.print(f"  skipped {escape(s['path'])}", soft_wrap=True, highlight=False)
        if len(summary["skipped"]) > _LISTED:
            console.print(f"  ... and {len(summary['skipped']) - _LISTED} more skipped files (see --json)")


def render_quality(rows: dict[str, Any], console: Console) -> None:
    """One loading-quality line per format, then the traces that look misread (a few per format)."""
    if not rows:
        return
    console.print("[bold]Loading quality[/]")
    for fmt, row in rows.items():
        console.print(f"  {escape(quality.line(fmt, row))}", soft_wrap=True, highlight=False)
        for ex in row["examples"]:
            console.print(f"    {escape(ex['trace_id'])}: {escape('; '.join(ex['warnings']))}", soft_wrap=True,
                          highlight=False)  # fmt: skip


def load_with_progress(
    paths: list[str] | list[Path],
    fmt: str | None,
    *,
    console: Console,
    min_files: int = 20,
    max_trace_mb: float | None = None,
) -> LoadResult:
    """`load_traces` with a progress bar on `console` when there are many files and it is a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from trajfm.traces.load import collect_targets, load_traces

    show = console.is_terminal and len(collect_targets(paths)) >= min_files
    if not show:
        return load_traces(paths, format=fmt, max_trace_mb=max_trace_mb)
    total = len(collect_targets(paths))
    columns = (TextColumn("loading traces"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("load", total=total)
        return load_traces(
            paths, format=fmt, on_file=lambda _p: progress.advance(task), max_trace_mb=max_trace_mb
        )


def check_outcome(result: LoadResult, paths: list[str] | list[Path], *, strict: bool) -> None:
    """Raise TraceLoadError when nothing loaded, or with `strict` when any file failed (exit non-zero)."""
    if not result.traces:
        named = ", ".join(str(p) for p in paths)
        if not result.failures and not result.skipped:  # nothing to give reasons about: the folder is empty
            raise TraceLoadError(
                f"no files found in {named}; point at the folder or files holding the traces"
            )
        raise TraceLoadError(
            f"no traces loaded from {named} ({len(result.failures)} failed, {len(result.skipped)} skipped); "
            "see the reasons above, or name the format with --format"
        )
    if strict and result.failures:
        raise TraceLoadError(
            f"{len(result.failures)} file(s) or record(s) failed to load and --strict is set; "
            f"first: {result.failures[0]}"
        )
