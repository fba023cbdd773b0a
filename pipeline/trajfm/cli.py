"""The `trajfm` command line: parses options, calls one stage function, maps TrajfmError to exit codes.

No pipeline logic lives here. Each command below imports its stage module lazily so `trajfm --help` stays fast.
A `TrajfmError` is printed without a traceback (set TRAJFM_DEBUG=1 to see it) and exits with its exit code.
"""

from __future__ import annotations

import os
import sys
import typer
from rich.console import Console

from trajfm.errors import TrajfmError

app = typer.Typer(
    name="trajfm",
    help=(
        "Find out why AI agents fail.\n\n"
        "trajfm reads agent traces, diagnoses each one against a failure-mode taxonomy (MAST by default) with "
        "evidence, clusters the failure modes the taxonomy does not name into families, and writes a report.\n\n"
        "Typical use:  trajfm traces traces/  (look before you spend)  ->  trajfm run traces/ --out runs/demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _fail(exc: TrajfmError) -> None:
    if os.environ.get("TRAJFM_DEBUG"):
        raise exc
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


@app.callback()
def _root() -> None:
    """Find out why AI agents fail."""


@app.command()
def version() -> None:
    """Print the trajfm version and the versions of the libraries it runs on."""
    from trajfm.runs import package_versions

    for name, v in package_versions().items():
        typer.echo(f"{name} {v or 'not installed'}")


# ---- traces (foundation) ----------------------------------------------------------------------------------------
# (implemented by the loaders work: see trajfm.traces)

# ---- synth (bundled corpus) -------------------------------------------------------------------------------------

# ---- extract / export (stage 1) ---------------------------------------------------------------------------------

# ---- cluster (stage 2) ------------------------------------------------------------------------------------------

# ---- report / run (stage 3) -------------------------------------------------------------------------------------

# ---- bench ------------------------------------------------------------------------------------------------------


def _parse_judge_options(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs for the judge factory; values that look like JSON numbers/booleans are parsed."""
    import json

    from trajfm.errors import UsageError

    options: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--judge-option {pair!r} should look like KEY=VALUE (e.g. model=gpt-4.1)")
        key, value = pair.split("=", 1)
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            options[key.strip().replace("-", "_")] = value
    return options


@app.command()
def bench(
    dataset: str = typer.Argument(..., help="whowhen | agentrx | trail | mast | assetops"),
    path: str = typer.Argument(..., help="The dataset folder (e.g. ../shared/datasets/who_and_when)."),
    out: str = typer.Option(..., "--out", "-o", help="Run folder to write bench.json into."),
    judge: str = typer.Option("rules", "--judge", "-j", help="Registered judge name: rules, llm, ..."),
    judge_option: list[str] | None = typer.Option(  # noqa: B008 - typer's declaration style
        None, "--judge-option", help="KEY=VALUE passed to the judge (repeatable), e.g. model=gpt-4.1."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first N labelled traces per part."),
    details: bool = typer.Option(True, "--details/--no-details", help="Also print per-mode/behaviour tables."),
    progress: bool = typer.Option(False, "--progress/--no-progress", help="Show the judge's progress bar."),
) -> None:
    """Score a judge on a human-labelled dataset with its own metric, beside published and naive baselines."""
    from pathlib import Path

    try:
        from trajfm.bench import run_bench
        from trajfm.bench.table import print_results

        results = run_bench(
            dataset, Path(path), out=Path(out), judge=judge, judge_options=_parse_judge_options(judge_option or []),
            limit=limit, progress=progress,
        )
    except TrajfmError as exc:
        _fail(exc)
        return
    print_results(results, Console(), details=details)
    typer.echo(f"wrote {Path(out) / 'bench.json'}")


# ---- serve-test-endpoint (a local OpenAI-compatible endpoint for tests and setup checks) -----------------------

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
