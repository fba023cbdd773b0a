"""Print benchmark results as rich tables: our figures beside the published and naive baselines."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from trajfm.bench.core import BenchResult


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value + 0.0:.3f}" if round(value, 3) != 0 else "0.000"
    return str(value)


def result_table(result: BenchResult) -> Table:
    """One row per scorer (ours, published, naive), one column per metric."""
    title = f"{result.dataset} · {result.part} · judge {result.judge} · {result.n_scored}/{result.n_traces} traces scored"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("scorer", style="bold")
    keys = list(result.metric_names)
    for k in keys:
        table.add_column(result.metric_names[k], justify="right")
    table.add_row(
        f"trajfm ({result.judge} judge)", *[_fmt(result.metrics.get(k)) for k in keys], style="green"
    )
    for name, figures in result.published.items():
        table.add_row(name, *[_fmt(figures.get(k)) for k in keys], style="cyan")
    for name, figures in result.baselines.items():
        table.add_row(f"naive: {name}", *[_fmt(figures.get(k)) for k in keys])
    return table


def extra_table(name: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=name, title_justify="left")
    if not rows:
        return table
    cols = list(rows[0])
    for c in cols:
        table.add_column(c, justify="left" if c in ("label", "mode") else "right")
    for r in rows:
        table.add_row(*[_fmt(r.get(c)) for c in cols])
    return table


def print_results(
    results: list[BenchResult], console: Console | None = None, *, details: bool = True
) -> None:
    console = console or Console()
    for r in results:
        for w in r.warnings:
            console.print(f"[bold yellow]warning:[/] {w}")
        console.print(result_table(r))
        if details:
            for name, rows in r.extra_tables.items():
                console.print(extra_table(f"{r.dataset} · {name}", rows))
        if r.published_source:
            console.print(f"published figures: {r.published_source}", style="dim")
        for n in r.notes:
            console.print(f"note: {n}", style="dim")
        if r.judge_status:
            console.print(f"judge status: {r.judge_status}; {r.seconds:.1f} s", style="dim")
