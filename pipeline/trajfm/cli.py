"""The `trajfm` command line: parses options, calls one stage function, maps TrajfmError to exit codes.

No pipeline logic lives here. Each command below imports its stage module lazily so `trajfm --help` stays fast.
A `TrajfmError` is printed without a traceback (set TRAJFM_DEBUG=1 to see it) and exits with its exit code, in
one place (`_Command`). Stage options are declared once in `trajfm.cli_options` and shared by the commands that
run the stage (`run` takes those of extract, cluster and report).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperCommand

from trajfm.cli_options import STAGE_OPTIONS, CliOptions, format_names, with_options
from trajfm.errors import TrajfmError
from trajfm.safetext import for_rich, visible


class _Command(TyperCommand):
    """Every command runs inside the one error handler of the CLI:
    - a `TrajfmError` (something the user can fix) is printed as one line without a traceback and exits with its
      exit code;
    - Ctrl-C says what is kept (the judge cache commits every reply) and how to resume, exit 130;
    - a file-system error that no stage turned into a `TrajfmError` (a path below a file, no permission, a full
      disk) is printed as one line naming the path. Errors without a file name are bugs and still raise.
    TRAJFM_DEBUG=1 shows the traceback instead."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TrajfmError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            _interrupted(ctx.params.get("out"))
        except OSError as exc:
            if os.environ.get("TRAJFM_DEBUG") or not exc.filename:
                raise
            err_console.print(
                f"[bold red]error:[/] {for_rich(exc.filename)}: {for_rich(exc.strerror or exc)}; check that path (a folder where one "
                "is expected, permissions, free space) or choose another",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None


class _Trajfm(typer.Typer):
    """The app: every command gets the one error handler (`_Command`)."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _Trajfm(
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


def _fail(exc: TrajfmError) -> NoReturn:
    if os.environ.get("TRAJFM_DEBUG"):
        raise exc
    err_console.print(f"[bold red]error:[/] {for_rich(exc)}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code) from None


@app.callback()
def _root() -> None:
    """Find out why AI agents fail."""


@app.command()
def version() -> None:
    """Print the trajfm version and the versions of the libraries it runs on."""
    from trajfm.runfolder import package_versions

    for name, v in package_versions().items():
        typer.echo(f"{name} {v or 'not installed'}")


@app.command("plugins")
def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON (for machines)."),
) -> None:
    """List the judges, embedders, taxonomies and trace formats trajfm can use, where each comes from (built in
    or the installed package that declares it) and whether it loads. A plugin that fails to load is listed with
    its error; the others keep working.

    A package adds parts through the entry-point groups trajfm.judges, trajfm.embedders, trajfm.taxonomies and
    trajfm.formats (see trajfm.plugins).
    """
    import json as _json

    from trajfm import plugins

    rows = plugins.status()
    if as_json:
        typer.echo(_json.dumps([r.__dict__ for r in rows], indent=2))
        return
    for kind in plugins.KINDS:
        typer.echo(f"{kind} (entry points: {plugins.group(kind)})")
        mine = [r for r in rows if r.kind == kind]
        if not mine:
            typer.echo("  (none)")
        for r in mine:
            state = "ok" if r.ok else f"BROKEN: {r.error}"
            typer.echo(f"  {r.name:<16} {r.source:<28} {r.value}  {state}")


# ---- traces (foundation) ----------------------------------------------------------------------------------------
# (implemented by the loaders work: see trajfm.traces)


@app.command("traces")
def traces_command(
    paths: list[str] = typer.Argument(  # noqa: B008 - typer's declaration style
        ..., help="Trace files or folders (walked recursively; .gz read as is)."
    ),
    format: str | None = typer.Option(  # noqa: A002
        None,
        "--format",
        "-f",
        help=(
            "Read every file with this format instead of detecting it (a file that does not fit is reported as "
            f"misread): {format_names()}."
        ),
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (for machines)."),
    strict: bool = typer.Option(
        False, "--strict", help="Exit non-zero when any file or record fails to load."
    ),
    max_trace_mb: float = typer.Option(
        100.0,
        "--max-trace-mb",
        help="Read at most this many MB per trace file or JSON line (also after .gz).",
    ),
) -> None:
    """Summarize traces before spending money on a judge: traces per format, model and agent, steps and
    characters per trace, the loading quality per format (empty steps, final answers, tasks, tool calls, traces
    that look misread), the files that failed to load and why, and the files skipped as not traces.

    Exits non-zero only when nothing loaded, or with --strict when something failed.

    Example:  trajfm traces traces/            (or --json for machines)
    """
    import json as _json

    from trajfm.traces.summary import check_outcome, load_with_progress, render, summarize

    result = load_with_progress(paths, format, console=err_console, max_trace_mb=max_trace_mb)
    summary = summarize(result)
    if as_json:
        typer.echo(_json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        render(summary, Console(soft_wrap=False))
    check_outcome(result, paths, strict=strict)


# ---- synth (bundled corpus) -------------------------------------------------------------------------------------


@app.command("synth")
def synth_command(
    out: str = typer.Option(
        "traces/assetops", "--out", help="Folder to write the corpus and labels.jsonl into."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Random seed (default: the committed corpus's seed)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", help="Write only this many runs, spread over models/tasks."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an earlier synthetic corpus in --out (run folders and labels.jsonl).",
    ),
    stats: str | None = typer.Option(
        None, "--stats", help="Print behaviour rates of an existing corpus (folder or labels.jsonl) and exit."
    ),
    compress: bool = typer.Option(
        True,
        "--compress/--no-compress",
        help="Write each run as <id>.gz (deterministic gzip, the committed form) or as the plain extensionless "
        "JSON file of the real AssetOpsBench layout.",
    ),
) -> None:
    """Write the bundled synthetic corpus: 881 AssetOpsBench-style runs with planted, labelled failures.

    Same seed, byte-identical files (gzipped by default; --no-compress for plain files). The sidecar labels.jsonl
    says per trace which behaviours were planted and at which steps. See traces/README.md.
    """
    from pathlib import Path

    from trajfm.synth import DEFAULT_SEED, corpus_stats, generate_corpus

    if stats is not None:
        typer.echo(corpus_stats(Path(stats)))
        return
    used = DEFAULT_SEED if seed is None else seed
    summary = generate_corpus(Path(out), used, limit=limit, overwrite=overwrite, compress=compress)
    per_model = ", ".join(f"{m} {n}" for m, n in summary.per_model.items())
    size = f"{summary.total_bytes:,} bytes of JSON"
    if compress:
        size += f", {summary.disk_bytes:,} bytes on disk gzipped"
    typer.echo(f"wrote {summary.n_traces} traces to {summary.out} (seed {used}, {size})")
    typer.echo(f"per model: {per_model}")


# ---- extract / export (stage 1) ---------------------------------------------------------------------------------
if TYPE_CHECKING:  # imported lazily, when a command runs
    from pathlib import Path

    from trajfm.clustering.stage import ClusterOptions
    from trajfm.extract import ExtractResult


@app.command("extract")
@with_options(*STAGE_OPTIONS["extract"])
def extract_command(
    traces: list[str] = typer.Argument(..., help="Trace files or folders (e.g. traces/)."),  # noqa: B008
    *,
    opts: CliOptions,
) -> None:
    """Stage 1: diagnose every trace against the taxonomy, with evidence, into a run folder.

    Examples:

      trajfm extract traces/ --out runs/demo                      (rules judge: offline, free)

      trajfm extract traces/ --out runs/llm --judge llm --model M --base-url URL --dry-run   (the cost first)

    The LLM judge reads its key from TRAJFM_API_KEY; URL is any OpenAI-compatible endpoint, e.g.
    https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (try `trajfm serve-test-endpoint`).

    LLM replies are cached in RUN/cache/: re-running the same command costs no calls, and a killed run resumes
    where it stopped. Failed traces are listed and retried on the next run. Next: trajfm cluster RUN.
    """
    from pathlib import Path

    from trajfm.extract import run_extract

    result = run_extract([Path(p) for p in traces], Path(opts.out), **_extract_kwargs(opts))
    if result.plan is not None:
        _print_plan(result)
        return
    _print_extract(result, Path(opts.out))
    typer.echo(f"wrote {visible(Path(opts.out))} (traces, steps, diagnoses, modes, novel_modes, manifest.json)")


def _extract_kwargs(opts: CliOptions) -> dict[str, Any]:
    """`run_extract`'s keyword arguments from the extract options (shared by extract and run)."""
    return {
        "judge": opts.judge, "model": opts.model, "base_url": opts.base_url, "concurrency": opts.concurrency,
        "taxonomy": opts.taxonomy or "mast", "limit": opts.limit, "dry_run": opts.dry_run, "samples": opts.samples,
        "format": opts.format, "progress": opts.progress,
        "judge_options": _llm_judge_options(opts.judge, opts.redact, opts.judge_option),
        "engine": opts.engine, "address": opts.address, "sample": opts.sample, "seed": opts.seed,
        "price_in": opts.price_in, "price_out": opts.price_out, "max_trace_mb": opts.max_trace_mb,
        "max_wait": opts.max_wait, "max_retries": opts.max_retries,
    }  # fmt: skip


def _print_plan(result: ExtractResult) -> None:
    _print_load_failures(result.load_failures)
    _print_skipped(result.skipped)
    _print_loading_quality(result.loading_quality)
    typer.echo(f"dry run: {result.traces} traces, nothing written")
    for key, value in (result.plan or {}).items():
        typer.echo(f"  {key}: {value}")


def _interrupted(out: str | None) -> NoReturn:
    """Ctrl-C: say what is kept (the judge cache commits every reply) and how to resume."""
    if os.environ.get("TRAJFM_DEBUG"):
        raise KeyboardInterrupt
    kept = f"LLM judge replies received so far are kept in {for_rich(out)}/cache/; " if out else ""
    err_console.print(
        f"interrupted: {kept}run the same command again to resume (judged traces cost no calls)",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(130)


def _print_load_failures(failures: list[str]) -> None:
    for failure in failures[:20]:
        err_console.print(f"[yellow]could not load[/] {for_rich(failure)}", highlight=False, soft_wrap=True)
    if len(failures) > 20:
        err_console.print(f"... and {len(failures) - 20} more load failures (see manifest.json)")


def _print_skipped(skipped: list[str]) -> None:
    """Skipped files a user would not expect (a FIFO, a device, a symlink loop); skipped .md/.csv/... are not
    worth a line each (they are counted and listed in manifest.json)."""
    unusual = [s for s in skipped if ": not a trace file (" not in s]
    for line in unusual[:20]:
        err_console.print(f"[yellow]skipped[/] {for_rich(line)}", highlight=False, soft_wrap=True)
    if len(unusual) > 20:
        err_console.print(f"... and {len(unusual) - 20} more skipped files (see manifest.json)")


def _print_loading_quality(rows: dict[str, Any]) -> None:
    from trajfm.traces.quality import line

    for fmt, row in rows.items():
        err_console.print(f"loading quality: {line(fmt, row)}", highlight=False, soft_wrap=True, markup=False)


def _print_extract(result: ExtractResult, out: Path) -> None:
    """What extract did, the traces it could not judge (with the most common reason) and stale tables it removed."""
    _print_load_failures(result.load_failures)
    _print_skipped(result.skipped)
    _print_loading_quality(result.loading_quality)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(result.statuses.items()))
    typer.echo(
        f"judged {result.traces} traces ({statuses}); {result.detected} modes detected, {result.novel} novel modes, "
        f"{result.unverified} unverified evidence quotes; {result.calls} calls, {result.cache_hits} cache hits; "
        f"{len(result.load_failures)} files failed to load"
    )
    for status, (n, message) in sorted(result.errors.items()):
        if status == "skipped":
            continue
        # Failed traces are not cached: the same command judges only them again.
        err_console.print(
            f"[yellow]{n} traces {status}[/], most common: {for_rich(message)} (re-run the same command to retry "
            f"them; see {for_rich(out / 'diagnoses.parquet')})",
            highlight=False,
            soft_wrap=True,
        )
    if result.set_aside:
        from trajfm.judges.quality import REASONS

        why = "; ".join(f"{n} {REASONS.get(r, r)}" for r, n in result.set_aside.items())
        err_console.print(
            f"[yellow]{result.n_set_aside} replies set aside[/] as degenerate ({why}): kept in diagnoses.parquet "
            "(judge_quality), not counted as findings",
            highlight=False,
            soft_wrap=True,
        )
    if result.removed_stale:
        err_console.print(
            f"removed {', '.join(result.removed_stale)}: made from the earlier novel modes; run `trajfm cluster "
            f"{for_rich(out)}` to group the new ones",
            highlight=False,
            soft_wrap=True,
        )


@app.command("export")
def export_command(
    run: str = typer.Argument(..., help="The run folder (made by `trajfm extract`)."),
    format: str = typer.Option(
        "trajfm-csv", "--format", help="Export format: trajfm-csv (IBM TrajFM's tables)."
    ),  # noqa: A002
    out: str | None = typer.Option(None, "--out", "-o", help="Folder for the files (default RUN/export)."),
) -> None:
    """Write a run's diagnoses as IBM TrajFM's wide table and title/description CSV.

    Example:  trajfm export runs/demo   (writes runs/demo/export/*.csv)
    """
    from trajfm.export import export_run

    result = export_run(run, format=format, out=out)
    typer.echo(
        f"wrote {result.rows} rows and {result.novel_rows} novel modes: "
        + ", ".join(map(visible, result.files))
    )


# ---- cluster (stage 2) ------------------------------------------------------------------------------------------


@app.command()
@with_options(*STAGE_OPTIONS["cluster"])
def cluster(
    run: str = typer.Argument(
        ..., help="The run folder (made by `trajfm extract`, or created with --from-csv)."
    ),
    *,
    opts: CliOptions,
) -> None:
    """Stage 2: group novel failure modes into named, stable families and flag the ones no taxonomy mode covers.

    Examples:

      trajfm cluster runs/demo

      trajfm cluster runs/demo --method kmeans-silhouette          (IBM TrajFM's method, for comparison)

      trajfm cluster runs/from-csv --from-csv novel_modes.csv      (a CSV with a title,description header)

    Next: trajfm report RUN.
    """
    from pathlib import Path

    from trajfm.clustering.report import print_summary
    from trajfm.clustering.stage import run_cluster

    outcome = run_cluster(Path(run), _cluster_options(opts))
    print_summary(outcome, Console())
    typer.echo(
        f"wrote {visible(Path(run) / 'clusters.parquet')} and {visible(Path(run) / 'novel_assignments.parquet')}"
    )


def _cluster_options(opts: CliOptions) -> ClusterOptions:
    """The cluster stage's options (shared by cluster and run). In `run`, --namer llm uses the judge's --model
    unless --llm-model says otherwise."""
    from pathlib import Path

    from trajfm.clustering.stage import ClusterOptions

    return ClusterOptions(
        from_csv=Path(opts.from_csv) if opts.from_csv else None,
        text=opts.text,
        method=opts.method,
        baseline=Path(opts.baseline) if opts.baseline else None,
        seed=opts.seed,
        assign_outliers=opts.assign_outliers,
        namer=opts.namer,
        model_path=Path(opts.model_path) if opts.model_path else None,
        embedder=opts.embedder,
        reducer=opts.reducer,
        umap_epochs=opts.umap_epochs,
        fit_sample=opts.fit_sample,
        base_url=opts.base_url,
        llm_model=opts.llm_model or opts.model,
        mask_specifics=False if opts.keep_specifics else None,
        redact=opts.redact,
        taxonomy=opts.taxonomy,
        engine=opts.engine,
        address=opts.address,
    )



# ---- report / run (stage 3) -------------------------------------------------------------------------------------
if TYPE_CHECKING:  # the report stage is imported lazily, when a command runs
    from trajfm.report import ReportResult, TextBudget


def _print_report(result: ReportResult) -> None:
    ov = result.summary["overview"]
    comp = ov["completion"]
    typer.echo(
        f"{ov['n_traces']} traces ({ov['n_diagnosed']} diagnosed), {ov['n_models']} models; "
        f"completed {comp['n']}/{comp['of']}; {ov['n_flags']} failure-mode flags; "
        f"{ov['traces_with_novel']['n']} traces with novel modes"
    )
    typer.echo(
        f"wrote {visible(result.html_path)} ({result.html_bytes / 1e6:.1f} MB, {result.seconds:.1f} s)"
    )
    typer.echo(f"wrote {visible(result.summary_json_path)}")
    typer.echo(f"wrote {visible(result.summary_md_path)}")


def _text_budget(step_chars: int, max_text_mb: float) -> TextBudget:
    from trajfm.errors import UsageError
    from trajfm.report import TextBudget

    if step_chars < 50 or max_text_mb <= 0:
        raise UsageError("--step-chars must be at least 50 and --max-text-mb positive")
    return TextBudget(step_chars=step_chars, total_chars=int(max_text_mb * 1_000_000))


@app.command()
@with_options(*STAGE_OPTIONS["report"])
def report(
    run: str = typer.Argument(
        ..., help="The run folder (made by `trajfm extract`, optionally `trajfm cluster`)."
    ),
    *,
    opts: CliOptions,
) -> None:
    """Stage 3: write RUN/report.html (self-contained, opens offline), RUN/summary.json and RUN/summary.md.

    Example:  trajfm report runs/demo --baseline runs/last-week   (then open runs/demo/report.html)
    """
    from trajfm.report import build_report

    result = build_report(
        run,
        taxonomy=opts.taxonomy,
        budget=_text_budget(opts.step_chars, opts.max_text_mb),
        **_report_kwargs(opts),
    )
    _print_report(result)


def _report_kwargs(opts: CliOptions) -> dict[str, Any]:
    """`build_report`'s keyword arguments from the report options (shared by report and run)."""
    from trajfm.errors import UsageError
    from trajfm.report.advice import ADVICE_CHOICES, AdviceOptions

    if not 0 <= opts.readiness_bar <= 100:
        raise UsageError(f"--readiness-bar must be between 0 and 100, got {opts.readiness_bar}")
    if opts.advice not in ADVICE_CHOICES:
        raise UsageError(f"--advice must be one of {', '.join(ADVICE_CHOICES)}, got {opts.advice!r}")
    advice = None
    if opts.advice == "llm":
        advice = AdviceOptions(opts.base_url, opts.llm_model or opts.model, opts.redact)
    return {"readiness_bar": opts.readiness_bar, "baseline": opts.baseline, "advice": advice}


@app.command()
def feedback(
    run: str = typer.Argument(
        ..., help="The run folder (made by `trajfm extract`, optionally `trajfm cluster`)."
    ),
    fmt: str = typer.Option("md", "--format", help="md (issue-ready markdown) or json."),
    out: str | None = typer.Option(None, "--out", "-o", help="Write to this file instead of the terminal."),
    readiness_bar: float = typer.Option(85.0, "--readiness-bar", help="As for `trajfm report`."),
) -> None:
    """The report's "fix first" cards as text an agent team can paste into an issue tracker.

    Example:  trajfm feedback runs/demo --format md > fix-first.md
    """
    from trajfm.errors import UsageError
    from trajfm.report.feedback import write_feedback

    if fmt not in ("md", "json"):
        raise UsageError(f"--format must be md or json, got {fmt!r}")
    text = write_feedback(run, fmt=fmt, readiness_bar=readiness_bar)
    if out:
        from pathlib import Path

        Path(out).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
    else:
        sys.stdout.write(text)


def _stage_line(message: str) -> None:
    err_console.print(f"[dim]{for_rich(message)}[/]", highlight=False)


@app.command("run")
@with_options(*STAGE_OPTIONS["run"])
def run_all(
    traces: list[str] = typer.Argument(..., help="Trace files or folders (e.g. traces/)."),  # noqa: B008
    *,
    opts: CliOptions,
) -> None:
    """All three stages: extract (diagnose every trace) -> cluster (novel-mode families) -> report.

    Takes every option of extract, cluster and report. Examples:

      trajfm run traces/ --out runs/demo                          (rules judge, offline; open runs/demo/report.html)

      trajfm run traces/ --out runs/llm --judge llm --model M --base-url URL   (key from TRAJFM_API_KEY)

    Re-running into the same --out reuses the LLM judge's cached replies (no calls for traces already judged).
    """
    from pathlib import Path

    from trajfm.extract import run_extract
    from trajfm.orchestrate import run_pipeline

    extract_kwargs = _extract_kwargs(opts)
    if opts.dry_run:  # the cost of the extract stage; nothing is written, so there is nothing to cluster
        result = run_extract([Path(p) for p in traces], Path(opts.out), **extract_kwargs)
        _print_plan(result)
        return
    del extract_kwargs["taxonomy"]  # run_pipeline passes --taxonomy to every stage
    cluster_options = dataclasses.asdict(_cluster_options(opts))
    del cluster_options["taxonomy"]
    piped = run_pipeline(
        [Path(p) for p in traces],
        Path(opts.out),
        extract_options=extract_kwargs,
        cluster_options=cluster_options,
        cluster=opts.cluster,
        taxonomy=opts.taxonomy,
        budget=_text_budget(opts.step_chars, opts.max_text_mb),
        report_options=_report_kwargs(opts),
        on_stage=_stage_line if opts.progress and sys.stderr.isatty() else None,
    )
    if piped.extract is not None:
        _print_extract(piped.extract, Path(opts.out))
    else:
        _print_load_failures(piped.load_failures)
    typer.echo(f"stages: {', '.join(f'{k} {v:.1f} s' for k, v in piped.seconds.items())}")
    if piped.cluster_skip_reason:
        typer.echo(f"cluster stage skipped: {visible(piped.cluster_skip_reason)}")
    _print_report(piped.report)



# ---- bench ------------------------------------------------------------------------------------------------------


def _required_key(env: str | None) -> str | None:
    """The key a test endpoint requires, read from the environment variable `env` (None: no key required)."""
    import os

    from trajfm.errors import UsageError

    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise UsageError(f"--require-key-env {env}: that environment variable is not set; export it first")
    return key


def _llm_judge_options(judge: str, redact: bool, pairs: list[str]) -> dict[str, object]:
    """Extra judge options from --redact and --judge-option (extract and run); --redact needs the LLM judge."""
    from trajfm.errors import UsageError

    options = _parse_judge_options(pairs)
    if redact:
        if judge != "llm":
            raise UsageError("--redact only applies to --judge llm (the rules judge sends nothing anywhere)")
        options["redact"] = True
    return options


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
    dataset: str = typer.Argument(..., help="whowhen | agentrx | trail | mast | assetops | tau (tau-bench runs with rewards: outcome accuracy)"),
    path: str = typer.Argument(
        ...,
        help="The dataset folder (e.g. ../shared/datasets/who_and_when), or a checkout of the dataset's repository "
        "(AgentRx's files under data/, TRAIL's under benchmarking/ are found there).",
    ),
    out: str = typer.Option(..., "--out", "-o", help="Run folder to write bench.json into."),
    judge: str = typer.Option("rules", "--judge", "-j", help="Registered judge name: rules, llm, ..."),
    judge_option: list[str] | None = typer.Option(  # noqa: B008 - typer's declaration style
        None, "--judge-option", help="KEY=VALUE passed to the judge (repeatable), e.g. model=gpt-4.1."
    ),
    limit: int | None = typer.Option(
        None, "--limit", help="Score only the first N labelled traces per part."
    ),
    details: bool = typer.Option(
        True, "--details/--no-details", help="Also print per-mode/behaviour tables."
    ),
    progress: bool = typer.Option(False, "--progress/--no-progress", help="Show the judge's progress bar."),
    protocol: str = typer.Option(
        "shipped",
        "--protocol",
        help="shipped: the judge as installed (in-sample on the sets its weights were fitted on); lodo: refit "
        "the rules judge's weights on the other visible datasets first and score this one left out.",
    ),
    fit_root: str | None = typer.Option(
        None,
        "--fit-root",
        help="With --protocol lodo: the folder holding the other datasets (default: PATH's parent).",
    ),
) -> None:
    """Score a judge on a human-labelled dataset with its own metric, beside published and naive baselines.

    Example:  trajfm bench whowhen ../shared/datasets/who_and_when --out runs/bench-whowhen --limit 20
    """
    from pathlib import Path

    from trajfm.bench import run_bench
    from trajfm.bench.table import print_results
    from trajfm.errors import JudgeError
    from trajfm.extract import check_endpoint
    from trajfm.judges.registry import get_judge

    judge_options = _parse_judge_options(judge_option or [])
    try:
        # Configure the judge once up front: a bad option or a dead endpoint is said before any scoring.
        check_endpoint(get_judge(judge, **judge_options))
    except JudgeError as exc:
        # The judge's own hints name extract's options; bench passes them as --judge-option KEY=VALUE.
        hint = " (bench takes judge settings as --judge-option model=NAME --judge-option base_url=URL)"
        raise JudgeError(f"{exc}{hint if judge == 'llm' else ''}") from exc
    results = run_bench(
        dataset,
        Path(path),
        out=Path(out),
        judge=judge,
        judge_options=judge_options,
        limit=limit,
        progress=progress,
        protocol=protocol,
        fit_root=Path(fit_root) if fit_root else None,
    )
    print_results(results, Console(), details=details)
    typer.echo(f"wrote {Path(out) / 'bench.json'}")
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r.judge_status.items():
            statuses[status] = statuses.get(status, 0) + n
    if statuses and not statuses.get("ok"):
        # Scores over zero judged traces are not a measurement: say so and exit non-zero (bench.json is kept).
        raise JudgeError(
            f"the {judge} judge could not judge any trace ({', '.join(f'{n} {s}' for s, n in statuses.items())}),"
            " so the scores above measure nothing; check the judge settings (--judge-option model=NAME, "
            "base_url=URL, TRAJFM_API_KEY) and run again"
        )


# ---- serve-test-endpoint (a local OpenAI-compatible endpoint for tests and setup checks) -----------------------


@app.command("serve-test-endpoint")
def serve_test_endpoint(
    port: int = typer.Option(8000, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Delay before every reply, in milliseconds."),
    fault_rate: float = typer.Option(
        0.0, "--fault-rate", help="Share of requests that get an injected fault (0..1)."
    ),
    faults: str = typer.Option(
        "429,500,hang,malformed,truncated,wrong_keys,bad_envelope",
        "--faults",
        help="Comma-separated fault kinds.",
    ),
    retry_after: float = typer.Option(
        1.0, "--retry-after", help="Seconds a 429 fault asks the client to wait."
    ),
    hang_s: float = typer.Option(30.0, "--hang-s", help="How long a 'hang' fault keeps the request open."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault draws."),
    model: str = typer.Option(
        "trajfm-test", "--model", help="Model name(s) the server accepts, comma-separated."
    ),
    no_structured_output: bool = typer.Option(
        False,
        "--no-structured-output",
        help="Refuse response_format json_schema with HTTP 400, like some servers.",
    ),
    require_key_env: str | None = typer.Option(
        None,
        "--require-key-env",
        help="Answer HTTP 401 unless requests carry the key held in this environment variable (e.g. "
        "TRAJFM_API_KEY), to check a key set-up; the key never goes on the command line.",
    ),
    deviation_rate: float = typer.Option(
        0.0,
        "--deviation-rate",
        help="Share of traces answered the way models without structured output answer (ids with names or "
        "prefixes, bare booleans, omitted modes, 'Step 3', prose around JSON, labelled quotes, unusable "
        "replies); repair turns are answered cleanly.",
    ),
) -> None:
    """Run a local OpenAI-compatible endpoint with deterministic judge replies, latency and injected faults.

    Point the LLM judge at it to check a setup or a pipeline without spending anything:

      trajfm serve-test-endpoint --port 8000 --fault-rate 0.1 &

      trajfm run traces/ --out runs/llm-test --judge llm --model trajfm-test --base-url http://127.0.0.1:8000/v1

    It answers only the model names given with --model (others get HTTP 404, like a real server).
    """
    from trajfm.errors import UsageError
    from trajfm.testing.endpoint import EndpointConfig, serve

    models = [m.strip() for m in model.split(",") if m.strip()]
    try:
        config = EndpointConfig(
            latency_ms=latency_ms, fault_rate=fault_rate,
            faults=tuple(f.strip() for f in faults.split(",") if f.strip()), retry_after_s=retry_after,
            hang_s=hang_s, seed=seed, models=tuple(models), structured_output=not no_structured_output,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(f"serve-test-endpoint: {exc}") from exc

    def ready(ep: object) -> None:
        url = getattr(ep, "url", "")
        err_console.print(
            f"trajfm test endpoint listening on [bold]{url}[/] (models: {', '.join(models)}; latency "
            f"{latency_ms:g} ms; fault rate {fault_rate:g}). Ctrl-C stops it.\n"
            f"Try: trajfm run traces/ --out runs/llm-test --judge llm --model {models[0]} --base-url {url}\n"
            f"(only these model names are answered; others get HTTP 404)",
            highlight=False,
            soft_wrap=True,
        )

    try:
        serve(config, port=port, on_ready=ready)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port} ({exc}); choose another --port") from exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
