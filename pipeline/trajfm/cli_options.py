"""The command-line options of every stage, declared once and reused by each command that runs the stage.

`CliOptions` holds every option as a typed field; its metadata carries the typer declaration (flags, help).
`STAGE_OPTIONS` says which options belong to which stage. A command takes a stage's options with the
`@with_options(*names)` decorator (sqlite-utils style): they are added to the command's signature for typer and
handed to the command as one `CliOptions` value (`opts`), so `trajfm run` has exactly the options of extract,
cluster and report without repeating a single declaration, and a test checks that it keeps them all.

Options shared by two stages are one option: `--taxonomy` (extract labels with it, cluster and report read it),
`--base-url` (the LLM judge's endpoint and the LLM namer's) and `--baseline` (the earlier run that cluster and
report compare with).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

import typer

F = TypeVar("F", bound=Callable[..., Any])


def format_names() -> str:
    """The trace formats `--format` takes, from the plugin table (built-in and installed; nothing is imported)."""
    from trajfm import plugins

    return ", ".join(plugins.names("formats", ordered=True))


def _opt(default: Any, *flags: str, help: str, **kw: Any) -> Any:  # noqa: A002 - typer's keyword
    declaration = typer.Option(default, *flags, help=help, **kw)
    if isinstance(default, list):
        return field(default_factory=list, metadata={"typer": declaration})
    return field(default=None if default is ... else default, metadata={"typer": declaration})


@dataclass
class CliOptions:
    """Every stage option, typed, with its one declaration (see the module docstring)."""

    # --- extract: inputs and judge ---
    out: str = _opt(..., "--out", "-o", help="The run folder to write (created if missing).")
    format: str | None = _opt(
        None,
        "--format",
        help="Read every trace file with this format instead of detecting it (a file that does not fit is "
        f"reported as misread): {format_names()}.",
    )
    judge: str = _opt(
        "rules",
        "--judge",
        "-j",
        help="Judge: rules (offline, deterministic), llm (needs --model, --base-url; key from TRAJFM_API_KEY), "
        "or an installed plugin's (`trajfm plugins`).",
    )
    model: str | None = _opt(None, "--model", help="LLM judge: model name (or TRAJFM_MODEL).")
    base_url: str | None = _opt(
        None,
        "--base-url",
        help="OpenAI-compatible endpoint URL of the LLM judge, --namer llm and --advice llm (or TRAJFM_BASE_URL).",
    )
    concurrency: int = _opt(8, "--concurrency", help="Traces judged at once (LLM judge).")
    taxonomy: str | None = _opt(
        None,
        "--taxonomy",
        help="Taxonomy name (mast, trail, agentrx, or a plugin's) or .json path (default: the one extract "
        "recorded, else mast).",
    )
    limit: int | None = _opt(None, "--limit", help="Judge only the first N traces (sorted paths).")
    dry_run: bool = _opt(
        False, "--dry-run", help="Print the calls and tokens judging would spend; write nothing."
    )
    samples: int | None = _opt(None, "--samples", help="LLM judge: samples per trace (majority vote).")
    redact: bool = _opt(
        False,
        "--redact",
        help="Mask API keys, tokens, passwords and e-mail addresses before text is sent to a model (LLM judge, "
        "--namer llm, --advice llm).",
    )
    judge_option: list[str] = _opt(
        [],
        "--judge-option",
        help="KEY=VALUE passed to the judge (repeatable), e.g. max_tokens=2000, timeout_s=60.",
    )
    progress: bool = _opt(
        True,
        "--progress/--no-progress",
        help="Show progress: a bar on a terminal, else a plain line every ~10 s or 5 percent.",
    )
    sample: int | None = _opt(
        None, "--sample", help="Judge a pilot of N traces stratified by agent model and scenario."
    )
    price_in: float | None = _opt(
        None,
        "--price-in",
        help="Price per million input tokens (the dry run and the manifest give the cost).",
    )
    price_out: float | None = _opt(None, "--price-out", help="Price per million output tokens.")
    max_trace_mb: float = _opt(
        100.0,
        "--max-trace-mb",
        help="Read at most this many MB per trace file or JSON line (also after .gz).",
    )
    max_wait: float = _opt(
        60.0,
        "--max-wait",
        help="LLM judge: longest Retry-After wait obeyed (seconds); a longer ask fails the trace.",
    )
    max_retries: int = _opt(
        4,
        "--max-retries",
        help="LLM judge: how often a trace's failed call (429, 5xx, time-out, unusable reply) is tried again.",
        min=0,
    )
    engine: str = _opt(
        "local",
        "--engine",
        help="Where judging and embedding run: local (this process) | ray (a Ray cluster; extract writes its "
        "tables as shards).",
    )
    address: str | None = _opt(
        None,
        "--address",
        help="--engine ray: the cluster's address (default: RAY_ADDRESS, else a local Ray).",
    )
    # --- cluster ---
    from_csv: str | None = _opt(
        None,
        "--from-csv",
        help="Cluster a CSV of title,description instead (written into RUN/novel_modes.parquet).",
    )
    text: str | None = _opt(
        None,
        "--text",
        help="What to embed: title | description | both (default: both; title for kmeans-silhouette).",
    )
    method: str = _opt("hdbscan", "--method", help="hdbscan (default) | kmeans-silhouette (IBM TrajFM's).")
    baseline: str | None = _opt(
        None,
        "--baseline",
        help="An earlier run folder: cluster flags families with no counterpart there as new; the report shows "
        "how each mode and family changed since it.",
    )
    seed: int = _opt(
        0, "--seed", help="Seed of --sample and of clustering (UMAP, KMeans, stability subsamples); recorded."
    )
    assign_outliers: bool = _opt(
        False,
        "--assign-outliers",
        help="Attach outliers to the nearest cluster when close enough (marked assigned).",
    )
    namer: str = _opt(
        "keywords",
        "--namer",
        help="Family names: keywords (c-TF-IDF + central title) | llm (uses --base-url).",
    )
    model_path: str | None = _opt(
        None, "--model-path", help="A local sentence-transformers model folder (default: all-MiniLM-L6-v2)."
    )
    embedder: str = _opt(
        "auto",
        "--embedder",
        help="auto (default: minilm under 20,000 novel modes, minilm-int8 from there on) | minilm (all-MiniLM-L6-v2, "
        "fp32) | minilm-int8 (the same model exported to int8 ONNX: about 4x faster, same families where "
        "measured) | fake (hashing, for tests) | an installed plugin's (`trajfm plugins`).",
    )
    reducer: str = _opt(
        "auto", "--reducer", help="auto (none up to 5,000 fitted texts, else UMAP) | umap | none."
    )
    keep_specifics: bool = _opt(
        False,
        "--keep-specifics",
        help="Embed quotes, paths, tool and asset names as written (default: masked).",
    )
    umap_epochs: int | None = _opt(None, "--umap-epochs", help="UMAP optimisation epochs (default: umap's).")
    fit_sample: int = _opt(
        5000,
        "--fit-sample",
        help="Fit HDBSCAN on at most this many distinct texts (a hash-ordered sample); the rest take the label "
        "of their nearest fitted texts. 0: fit all.",
    )
    llm_model: str | None = _opt(
        None, "--llm-model", help="Model for --namer llm and --advice llm (default: --model, or env TRAJFM_MODEL)."
    )
    # --- report ---
    step_chars: int = _opt(
        1200,
        "--step-chars",
        help="Show at most this many characters per step in the drill-down (cut visibly).",
    )
    max_text_mb: float = _opt(
        7.0, "--max-text-mb", help="Step text budget of the drill-down; the per-step cap shrinks to fit it."
    )
    readiness_bar: float = _opt(
        85.0,
        "--readiness-bar",
        help="Mean trace score (0-100) a model needs to count as ready (the study's 85).",
    )
    advice: str = _opt(
        "nearest",
        "--advice",
        help="Advice of novel families on the fix-first list: nearest (the nearest known mode's) | llm (written "
        "per family by the model of --llm-model at --base-url; cached in RUN/cache/).",
    )
    # --- run ---
    cluster: bool = _opt(
        True,
        "--cluster/--no-cluster",
        help="Run the cluster stage (skipped anyway when there are no novel modes).",
    )


EXTRACT = (
    "out", "format", "judge", "model", "base_url", "concurrency", "taxonomy", "limit", "dry_run", "samples",
    "redact", "judge_option", "progress", "engine", "address", "sample", "seed", "price_in", "price_out",
    "max_trace_mb", "max_wait", "max_retries",
)  # fmt: skip
CLUSTER = (
    "from_csv", "text", "method", "baseline", "seed", "assign_outliers", "namer", "model_path", "embedder",
    "reducer", "keep_specifics", "umap_epochs", "fit_sample", "base_url", "llm_model", "taxonomy", "engine", "address", "redact",
)  # fmt: skip
REPORT = ("taxonomy", "step_chars", "max_text_mb", "baseline", "readiness_bar", "advice", "base_url", "llm_model",
          "redact")  # fmt: skip
# `run` clusters the novel modes extract wrote, so it has no --from-csv.
RUN_ONLY = ("cluster",)
RUN = tuple(dict.fromkeys((*EXTRACT, *(o for o in CLUSTER if o != "from_csv"), *REPORT, *RUN_ONLY)))
STAGE_OPTIONS: dict[str, tuple[str, ...]] = {
    "extract": EXTRACT,
    "cluster": CLUSTER,
    "report": REPORT,
    "run": RUN,
}

_FIELDS = {f.name: f for f in dataclasses.fields(CliOptions)}


def with_options(*names: str) -> Callable[[F], F]:
    """Add the named `CliOptions` fields to a command as typer options; the command receives them as `opts`."""
    unknown = [n for n in names if n not in _FIELDS]
    if unknown:
        raise ValueError(f"no CliOptions field(s) {unknown}")
    hints = get_type_hints(CliOptions)

    def decorate(func: F) -> F:
        sig = inspect.signature(func)
        own_hints = get_type_hints(func)
        own = [p.replace(annotation=own_hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
        own = [p for p in own if p.name != "opts"]
        added = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, default=_FIELDS[n].metadata["typer"], annotation=hints[n]
            )
            for n in names
        ]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in names if n in kwargs}
            return func(*args, opts=CliOptions(**values), **kwargs)

        command.__signature__ = sig.replace(parameters=[*own, *added], return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *added]} | {"return": None}
        command.option_names = names  # type: ignore[attr-defined]
        return command  # type: ignore[return-value]

    return decorate
