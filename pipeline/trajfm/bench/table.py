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


def markdown(results: list[BenchResult]) -> str:
    """The same tables as `print_results`, as GitHub markdown (written to RUN/bench.md for READMEs)."""
    lines: list[str] = []
    for r in results:
        keys = list(r.metric_names)
        lines.append(
            f"**{r.dataset} · {r.part}** · judge `{r.judge}` · {r.n_scored}/{r.n_traces} traces scored"
        )
        lines.append("")
        lines.append("| scorer | " + " | ".join(r.metric_names[k] for k in keys) + " |")
        lines.append("|---|" + "---:|" * len(keys))
        rows = [(f"**trajfm ({r.judge} judge)**", r.metrics)]
        rows += [(f"{name}", figs) for name, figs in r.published.items()]
        rows += [(f"naive: {name}", figs) for name, figs in r.baselines.items()]
        for name, figs in rows:
            lines.append(f"| {name} | " + " | ".join(_fmt(figs.get(k)) for k in keys) + " |")
        lines.append("")
        for w in r.warnings:
            lines.append(f"> warning: {w}")
        for n in r.notes:
            lines.append(f"- {n}")
        if r.published_source:
            lines.append(f"- published figures: {r.published_source}")
        lines.append("")
    return "\n".join(lines)
