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

# ---- serve-test-endpoint (a local OpenAI-compatible endpoint for tests and setup checks) -----------------------

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
