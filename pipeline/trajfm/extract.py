"""Stage 1, `trajfm extract`: traces -> diagnoses, written as tables into a run folder.

Contract of `run_extract(inputs, out, *, judge="rules", ...) -> ExtractResult`:
- Loads every trace under `inputs` with `trajfm.traces.load_traces`; files that fail to load are listed (in the
  result and in the manifest) and the rest are processed. No trace at all is a `TraceLoadError`.
- `--limit N` keeps the first N traces in load order (sorted paths), so the same N every time. `--sample N
  [--seed S]` judges a sample stratified by agent model and scenario (`trajfm.sampling`); the manifest's
  "sample" says it is a sample and of what.
- Judges through the registry (`get_judge(judge, model=..., base_url=..., samples=...)`: options left at None are
  "not given", so the same code drives any judge) and `trajfm.judges.runner.run_judge`, which owns retries,
  concurrency, rate limits and the reply cache (RUN/cache/, used for judges that make calls).
- Every ok reply is assessed for degeneracy (`trajfm.judges.quality`: all modes detected, one quote repeated
  everywhere, the prompt's own placeholder wording); diagnoses.judge_quality holds "ok" or the reasons, and a
  set-aside reply gets no mode or novel rows (its detections are not findings). The manifest counts them.
- Evidence is checked in one place, `trajfm.judges.evidence.verify_diagnosis`: a judge that shows the trace to a
  model (the LLM judge) checks its quotes against what it showed (after redaction) and marks the diagnosis
  `extra["evidence_checked"]`; extract checks every other diagnosis against the trace's own text and never
  overwrites a judge's check. `modes.evidence_step` is the step a quote was found in.
- Writes traces.parquet and steps.parquet before judging (they do not depend on the judge), then
  diagnoses.parquet (one row per trace), modes.parquet (one row per trace x taxonomy mode, detected or not, for
  every trace judged `ok`; a failed trace has no mode rows because nothing is known about it),
  novel_modes.parquet, and the manifest's "extract" section (inputs with sha256, options, judge, model, prompt
  version, taxonomy, counts per status, timings, load failures). Every write is atomic.
- `dry_run=True` writes nothing: it returns what judging would cost (`judge.plan(...)` for judges that make
  calls; zero calls otherwise), not counting traces already in the run's cache, and, with `price_in` /
  `price_out` (per million tokens), the cost. A judge with an endpoint is checked with one cheap request
  (`check_endpoint()`): an endpoint that refuses the key or does not serve the model is a `JudgeError` saying
  what to fix. A real run records the prices and the cost of the tokens it spent in the manifest.
- `out` may not be (inside) a traces folder given as input (its files would be read as traces next time).
- Before judging, a judge that `needs_endpoint` (the LLM judge) must be reachable at its `base_url`: if nothing answers there, a
  `JudgeError` names the URL at once instead of every trace spending its retries on a dead endpoint.
- When no trace could be judged (every one a `backend_error`/`parse_error`), the tables are still written (the
  cache keeps nothing bad) and then a `JudgeError` gives the most common error, so the CLI exits non-zero and
  `trajfm run` does not go on to cluster and report nothing. Partial failures are returned in `errors`.
- Re-extracting into a run folder whose clusters were made from other novel modes removes clusters.parquet and
  novel_assignments.parquet (they would describe modes that are no longer there) and says so in
  `removed_stale`; unchanged novel modes keep their clusters.
- `on_locked(root)`, when given, is called once the run folder exists and its lock is held (after every check
  above), so a caller can keep the lock past extract (`trajfm run` holds it across its three stages).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from trajfm.errors import JudgeError, RunFolderError, SchemaError, TraceLoadError, UsageError
from trajfm.judges.base import Diagnosis, Judge
from trajfm.judges.dimensions import DIMENSION_KEYS
from trajfm.judges.evidence import verify_diagnosis as _verify_quotes
from trajfm.judges.quality import assess, is_set_aside, quality_label, set_aside_counts
from trajfm.judges.reply import DROPPED
from trajfm.runfolder import RunFolder, atomic_write_text, file_sha256
from trajfm.runlock import recover, run_lock, staged_run
from trajfm.schemas import DIAGNOSES_SCHEMA, MODES_SCHEMA, NOVEL_MODES_SCHEMA
from trajfm.taxonomy import Taxonomy, load_taxonomy
from trajfm.traces import load_traces
from trajfm.traces.declared import corpus_declarations
from trajfm.traces.load import collect_targets
from trajfm.traces.model import Trace, traces_to_frames
from trajfm.traces.quality import summarize as quality_summary

MAX_LISTED_FAILURES = 200  # the manifest lists this many load failures in full, then counts the rest


@dataclass
class ExtractResult:
    """What one extract run did (the CLI prints it; `trajfm run` chains on it)."""

    run: RunFolder | None
    traces: int
    statuses: dict[str, int] = field(default_factory=dict)
    load_failures: list[str] = field(default_factory=list)
    skipped_files: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: why" for every file that is not read as a trace
    loading_quality: dict[str, Any] = field(default_factory=dict)  # per format (trajfm.traces.quality)
    detected: int = 0
    novel: int = 0
    unverified: int = 0
    cache_hits: int = 0
    calls: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    plan: dict[str, Any] | None = None  # set by a dry run
    # status -> (how many traces, the most common error message) for traces not judged ok
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    removed_stale: list[str] = field(
        default_factory=list
    )  # stage-2 tables dropped because novel modes changed
    n_set_aside: int = 0  # ok replies set aside as degenerate (trajfm.judges.quality)
    set_aside: dict[str, int] = field(default_factory=dict)  # reason -> replies


def _judge_options(
    model: str | None, base_url: str | None, samples: int | None, extra: dict[str, Any] | None
) -> dict[str, Any]:
    options: dict[str, Any] = {"model": model, "base_url": base_url, "samples": samples}
    options.update(extra or {})
    return {k: v for k, v in options.items() if v is not None}


def _inputs_manifest(inputs: list[Path]) -> list[dict[str, Any]]:
    """Every input file with its size and sha256 (folders are expanded the way the loader walks them)."""
    out: list[dict[str, Any]] = []
    for path in collect_targets(inputs):
        try:
            out.append({"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path)})
        except OSError as exc:
            out.append({"path": str(path), "error": str(exc)})
    return out


def verify_diagnosis(d: Diagnosis, trace: Trace) -> int:
    """Check `d`'s quotes unless its judge already did (against what it showed a model); return how many
    detected modes have evidence that is not verified."""
    if d.extra.get("evidence_checked"):
        return sum(1 for m in d.modes if m.detected and not m.evidence_verified)
    return _verify_quotes(d, trace)


MAX_TEXT_CHARS = 4000  # summary, rationale, evidence, novel-mode title/description: a judge writes sentences
MAX_RAW_REPLY_CHARS = 64_000  # the unparseable reply kept for a parse_error row


def cap_text_fields(d: Diagnosis) -> list[str]:
    """Cap every text a judge returned, with a note in the text saying how much was cut: a 50 MB rationale from
    a runaway model must not become a 263 MB report. Returns `reply_repairs` entries saying what was cut
    ("dropped:" entries, `trajfm.judges.reply.dropped_entries`), so the table shows it too."""
    cut: Counter[str] = Counter()

    def capped(text: str | None, limit: int, field: str) -> str | None:
        if text is None or len(text) <= limit:
            return text
        cut[field] += len(text) - limit
        return f"{text[:limit]} [... {len(text) - limit:,} more characters cut by trajfm]"

    d.summary = capped(d.summary, MAX_TEXT_CHARS, "summary") or ""
    d.error = capped(d.error, MAX_TEXT_CHARS, "error")
    d.raw_reply = capped(d.raw_reply, MAX_RAW_REPLY_CHARS, "raw_reply")
    d.root_cause_agent = capped(d.root_cause_agent, 200, "root_cause_agent")
    for m in d.modes:
        m.evidence = capped(m.evidence, MAX_TEXT_CHARS, f"evidence of {m.mode_id}") or ""
        m.rationale = capped(m.rationale, MAX_TEXT_CHARS, f"rationale of {m.mode_id}") or ""
    for n in d.novel:
        n.title = capped(n.title, 300, "novel title") or ""
        n.description = capped(n.description, MAX_TEXT_CHARS, "novel description") or ""
        n.evidence = capped(n.evidence, MAX_TEXT_CHARS, "novel evidence") or ""
    return [f"{DROPPED}{chars:,} characters of the {field} (text cap)" for field, chars in cut.items()]


# Columns of the diagnoses table that hold a Diagnosis field as it is (the others depend on the status).
_COPIED_DIAGNOSIS_FIELDS = (
    "trace_id", "judge", "judge_model", "prompt_version", "status", "error", "summary", "root_cause_step",
    "root_cause_agent", "root_cause_confidence", "source_outcome", "tokens_in", "tokens_out", "latency_s", "calls",
    "cached",
)  # fmt: skip


def diagnosis_frames(
    diagnoses: list[Diagnosis], taxonomy: Taxonomy
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The diagnoses, modes and novel_modes tables for a list of diagnoses (see the module docstring)."""
    drows: dict[str, list[Any]] = {c: [] for c in DIAGNOSES_SCHEMA}
    mrows: dict[str, list[Any]] = {c: [] for c in MODES_SCHEMA}
    nrows: dict[str, list[Any]] = {c: [] for c in NOVEL_MODES_SCHEMA}
    for d in diagnoses:
        cut = cap_text_fields(d)
        for name in _COPIED_DIAGNOSIS_FIELDS:
            drows[name].append(getattr(d, name))
        drows["task_completed"].append(d.task_completed if d.status == "ok" else None)
        drows["raw_reply"].append(d.raw_reply if d.status == "parse_error" else None)
        drows["reply_repairs"].append([*(d.extra.get("reply_repairs") or [] if d.extra else []), *cut])
        drows["judge_quality"].append(d.judge_quality if d.status == "ok" else None)
        for key in DIMENSION_KEYS:
            drows[key].append(d.dimensions.get(key) if d.status == "ok" else None)
        if d.status != "ok" or is_set_aside(d.judge_quality):
            continue  # nothing trustworthy is known: no mode or novel rows (a set-aside reply is no finding)
        by_id = {m.mode_id: m for m in d.modes}
        for mode in taxonomy.modes:
            m = by_id.get(mode.id)
            mrows["trace_id"].append(d.trace_id)
            mrows["mode_id"].append(mode.id)
            mrows["mode_name"].append(mode.name)
            mrows["category"].append(mode.category)
            if m is None:  # the judge said nothing about this mode: unknown (null), never "false"
                mrows["detected"].append(None)
                mrows["steps"].append([])
                mrows["evidence"].append(None)
                mrows["evidence_verified"].append(False)
                mrows["evidence_step"].append(None)
                mrows["rationale"].append("the judge did not report on this mode")
                mrows["confidence"].append(0.0)
                continue
            mrows["detected"].append(m.detected)
            mrows["steps"].append(sorted(set(m.steps)))
            mrows["evidence"].append(m.evidence or None)
            mrows["evidence_verified"].append(m.evidence_verified)
            mrows["evidence_step"].append(
                (d.extra.get("evidence_steps") or {}).get(m.mode_id) if m.detected else None
            )
            mrows["rationale"].append(m.rationale or None)
            mrows["confidence"].append(float(m.confidence))
        for k, n in enumerate(d.novel, start=1):
            nrows["novel_id"].append(f"{d.trace_id}::novel{k}")
            nrows["trace_id"].append(d.trace_id)
            nrows["title"].append(n.title)
            nrows["description"].append(n.description)
            nrows["steps"].append(sorted(set(n.steps)))
            nrows["evidence"].append(n.evidence or None)
    return (
        pl.DataFrame(drows, schema=DIAGNOSES_SCHEMA),
        pl.DataFrame(mrows, schema=MODES_SCHEMA),
        pl.DataFrame(nrows, schema=NOVEL_MODES_SCHEMA),
    )


def assess_replies(
    judge: Judge, diagnoses: list[Diagnosis], by_id: dict[str, Trace], taxonomy: Taxonomy
) -> dict[str, int]:
    """Set `judge_quality` on every ok diagnosis (`trajfm.judges.quality`); return how many replies were set
    aside for each reason. The prompt-wording check needs the judge's prompt (`prompt_text(taxonomy)`, judges
    that send one); judges without a prompt get the other checks."""
    prompt = judge.prompt_text(taxonomy)
    for d in diagnoses:
        if d.status != "ok":
            d.judge_quality = None
            continue
        trace = by_id.get(d.trace_id)
        reasons = assess(d, taxonomy, trace_text=trace.text() if trace else "", prompt_text=prompt)
        d.judge_quality = quality_label(reasons)
    return set_aside_counts(d.judge_quality for d in diagnoses)


def unverified_quotes(diagnoses: list[Diagnosis]) -> int:
    """Detected modes whose quote is not verified, in the replies the run counts: status ok and not set aside
    as degenerate (those count for nothing; `judge_quality` says why)."""
    return sum(
        1
        for d in diagnoses
        if d.status == "ok" and not is_set_aside(d.judge_quality)
        for m in d.modes
        if m.detected and not m.evidence_verified
    )


def _plan(judge: Judge, traces: list[Trace], taxonomy: Taxonomy, out: Path) -> dict[str, Any]:
    from trajfm.judges.cache import DEFAULT_FILENAME, JudgeCache, cache_key

    skip: set[str] = set()
    cache_file = out / "cache" / DEFAULT_FILENAME
    if judge.cacheable and cache_file.exists():
        with JudgeCache(cache_file) as cache:
            skip = {t.trace_id for t in traces if cache.get(cache_key(judge, t, taxonomy)) is not None}
    result = dict(judge.plan(traces, taxonomy, skip=skip))
    result.setdefault("cached_traces", len(skip))
    return result


def check_endpoint(judge: Judge, timeout_s: float = 10.0) -> None:
    """Raise `JudgeError` when the endpoint of a judge that `needs_endpoint` cannot be reached at all (through the
    judge's own client: `Judge.check_endpoint()`, one GET /models).

    Any HTTP answer counts as reachable (even 401/404: those are per-request errors the judge records; the dry
    run reports them); only a refused connection, a connect timeout, or a URL that is not http(s) fails here.
    Judges that make no calls pass."""
    found = judge.check_endpoint() if judge.needs_endpoint else None
    if found is None:
        return
    if not found.reachable:
        raise JudgeError(f"{found.problem}. Nothing was judged")


def _endpoint_line(found: Any) -> str:
    said = []
    if found.key_accepted:
        said.append("key accepted")
    if found.model_served:
        said.append("model served")
    if found.model_served is None:
        said.append("the endpoint lists no models (the model is checked by the first call)")
    return f"{found.url}: {', '.join(said) or 'reachable'}"


def _cost(tokens_in: int, tokens_out_max: int, price_in: float | None, price_out: float | None) -> str | None:
    """The dry run's cost line: input estimated, output bounded by max_tokens (prices per million tokens)."""
    if price_in is None and price_out is None:
        return None
    parts = []
    if price_in is not None:
        parts.append(f"{tokens_in * price_in / 1e6:.4f} for input (estimated)")
    if price_out is not None:
        parts.append(f"at most {tokens_out_max * price_out / 1e6:.4f} for output (max_tokens bound)")
    return " + ".join(parts) + " (in the currency of --price-in/--price-out)"


def _spent(stats: Any, price_in: float | None, price_out: float | None) -> dict[str, Any]:
    """Tokens this run spent and, when prices are given, what they cost (prices per million tokens)."""
    out: dict[str, Any] = {"tokens_in": stats.tokens_in, "tokens_out": stats.tokens_out, "calls": stats.calls}
    if price_in is not None or price_out is not None:
        out["price_in_per_million"], out["price_out_per_million"] = price_in, price_out
        out["cost"] = round(
            stats.tokens_in * (price_in or 0) / 1e6 + stats.tokens_out * (price_out or 0) / 1e6, 6
        )
    return out


def _error_summary(diagnoses: list[Diagnosis]) -> dict[str, tuple[int, str]]:
    """status -> (traces with that status, the most common error) for every status other than ok."""
    by_status: dict[str, Counter[str]] = {}
    for d in diagnoses:
        if d.status != "ok":
            by_status.setdefault(d.status, Counter())[(d.error or "no error message").strip()] += 1
    return {s: (sum(c.values()), c.most_common(1)[0][0]) for s, c in by_status.items()}


def run_inputs(
    paths: list[Path], *, judge: str, model: str | None, judge_info: dict[str, Any], concurrency: int,
    taxonomy: Any, limit: int | None, samples: int | None, format: str | None, max_retries: Any, rate_limit: Any,
    **more_options: Any,
) -> dict[str, Any]:
    """The manifest keys saying what an extract read and with which options; the same for every engine (an engine
    adds the options only it has as `more_options`)."""
    return {
        "inputs": _inputs_manifest(paths),
        "corpus_declarations": corpus_declarations(paths),
        "options": {
            "judge": judge,
            "model": model,
            "base_url": judge_info.get("base_url"),  # the judge's public form: never credentials
            "concurrency": concurrency,
            "taxonomy": str(taxonomy),
            "limit": limit,
            "samples": samples,
            "format": format,
            "max_retries": max_retries,
            "rate_limit": rate_limit,
            **more_options,
        },
    }


def judged_with(the_judge: Judge, judge_info: dict[str, Any], tax: Taxonomy) -> dict[str, Any]:
    """The manifest keys saying which judge (configuration and calls: `judge_info`), model, prompt and taxonomy
    produced a run's diagnoses; the same for every engine."""
    return {
        "judge": judge_info,
        "model": the_judge.model,
        "prompt_version": the_judge.prompt_version,
        "taxonomy": tax.name,
        "taxonomy_version": tax.version,
    }


def raise_if_nothing_judged(
    statuses: dict[str, int], errors: dict[str, tuple[int, str]], run: RunFolder
) -> None:
    """A `JudgeError` giving the most common error when traces failed and none was judged ok (the tables are
    written by then; see the module docstring)."""
    failed = sum(n for s, (n, _) in errors.items() if s in ("backend_error", "parse_error"))
    if failed and not statuses.get("ok"):
        status, (_, message) = max(errors.items(), key=lambda kv: kv[1][0])
        raise JudgeError(
            f"no trace could be judged ({', '.join(f'{n} {s}' for s, (n, _) in errors.items())}); most common "
            f"{status}: {message}. Fix the judge set-up (--base-url, --model, TRAJFM_API_KEY) and re-run the same "
            f"command: the failures are recorded in {run.table_path('diagnoses')}, nothing bad is cached"
        )


def _old_novel(run: RunFolder) -> pl.DataFrame | None:
    """The novel modes an earlier extract left in this folder (None when absent or unreadable)."""
    if not run.has("novel_modes"):
        return None
    try:
        return run.read_table("novel_modes").select("novel_id", "title", "description")
    except (RunFolderError, SchemaError):
        return None


def _carried_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a new extract run keeps of the previous run's manifest: the cluster section (its tables are carried
    over when the novel modes are unchanged, see `_carry_clusters`); the rest describes the old run."""
    stages = manifest.get("stages", {})
    carried = {k: v for k, v in stages.items() if k == "cluster"}
    return {"stages": carried} if carried else {}


def _carry_clusters(
    live: RunFolder, stage: RunFolder, old: pl.DataFrame | None, new: pl.DataFrame
) -> list[str]:
    """Copy stage-2 tables into the new run when they were made from exactly these novel modes; otherwise they
    are dropped (returned, so the user is told to re-cluster). See the module docstring."""
    present = [t for t in ("clusters", "novel_assignments") if live.has(t)]
    if not present:
        return []
    kept = _stage2_tables(live)
    if _made_from(old, new, kept):
        for table, df in kept.items():
            stage.write_table(table, df)
        return []
    manifest = stage.read_manifest()  # the carried cluster section described the dropped tables
    manifest.get("stages", {}).pop("cluster", None)
    atomic_write_text(
        stage.root / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True, default=str)
    )
    return [f"{t}.parquet" for t in present]


def _made_from(old: pl.DataFrame | None, new: pl.DataFrame, kept: dict[str, pl.DataFrame]) -> bool:
    """Whether stage-2 tables `kept` (`_stage2_tables`) were made from exactly the novel modes `new`: the novel
    modes are unchanged since (`old`), and the assignments cover exactly these ids (they may come from another
    folder's run)."""
    same_novel = old is not None and old.equals(new.select("novel_id", "title", "description"))
    return (
        same_novel
        and bool(kept)
        and set(kept["novel_assignments"]["novel_id"].to_list()) == set(new["novel_id"].to_list())
    )


def _stage2_tables(run: RunFolder) -> dict[str, pl.DataFrame]:
    """The cluster stage's tables in this folder, read whole ({} when either is absent or unreadable)."""
    try:
        tables = {t: run.read_table(t) for t in ("clusters", "novel_assignments") if run.has(t)}
    except (RunFolderError, SchemaError):
        return {}
    return tables if len(tables) == 2 else {}


def _drop_stale_clusters(
    run: RunFolder, old: pl.DataFrame | None, new: pl.DataFrame, kept: dict[str, pl.DataFrame]
) -> list[str]:
    """The Ray engine's path (the local path carries or drops them in its staged run, `_carry_clusters`): the
    stage-2 tables `kept` (read before the new run's shards arrived) are written again under the new run's id
    when they were made from exactly the novel modes `new`; otherwise the ones present are removed."""
    present = [t for t in ("clusters", "novel_assignments") if run.has(t)]
    if not present:
        return []
    if _made_from(old, new, kept):
        for table, df in kept.items():
            run.write_table(table, df)
        return []
    for table in present:
        run.remove_table(table)
    return [f"{t}.parquet" for t in present]


def run_extract(
    inputs: list[Path] | list[str],
    out: Path | str,
    *,
    judge: str = "rules",
    model: str | None = None,
    base_url: str | None = None,
    concurrency: int = 8,
    taxonomy: str | Path = "mast",
    limit: int | None = None,
    dry_run: bool = False,
    samples: int | None = None,
    format: str | None = None,  # noqa: A002 - the CLI's option name
    max_retries: int = 4,
    rate_limit: float | None = None,
    progress: bool | str = False,
    judge_options: dict[str, Any] | None = None,
    max_trace_mb: float | None = None,
    max_wait: float | None = None,
    sample: int | None = None,
    seed: int = 0,
    price_in: float | None = None,
    price_out: float | None = None,
    engine: str = "local",
    address: str | None = None,
    on_locked: Callable[[Path], None] | None = None,
) -> ExtractResult:
    """Run stage 1 (see the module docstring). `engine="ray"` runs it on a Ray cluster at `address` (or
    RAY_ADDRESS): `trajfm.engines.ray_extract`."""
    from trajfm.judges.registry import get_judge
    from trajfm.judges.runner import RunStats, judge_manifest, run_judge

    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if samples is not None and samples < 1:
        raise UsageError(f"--samples must be at least 1, got {samples}")
    if sample is not None and sample < 1:
        raise UsageError(f"--sample must be at least 1, got {sample}")
    if sample is not None and limit is not None:
        raise UsageError("give --sample N (a stratified pilot) or --limit N (the first N), not both")
    for name, price in (("--price-in", price_in), ("--price-out", price_out)):
        if price is not None and price < 0:
            raise UsageError(f"{name} is a price per million tokens and cannot be negative, got {price}")
    paths = [Path(p) for p in inputs]
    if not paths:
        raise UsageError(
            "name at least one trace file or folder, e.g. `trajfm extract traces/ --out runs/demo`"
        )
    out = Path(out)
    for p in paths:
        # A run folder inside the traces folder would have its manifest and cache read as traces next time.
        if p.is_dir() and (out.resolve() == p.resolve() or p.resolve() in out.resolve().parents):
            raise UsageError(
                f"--out {out} is inside the traces folder {p}: its manifest.json and tables would be read as "
                "traces on the next run; choose a folder outside it (e.g. runs/NAME)"
            )
    from trajfm.engines import check_engine

    check_engine(engine, address)
    if engine == "ray" and not dry_run:  # a dry run makes no calls: it is planned here, locally
        if limit is not None or sample is not None:
            raise UsageError(
                "--limit and --sample need all the traces in one place, which --engine ray does not have; drop one"
            )
        from trajfm.engines.ray_extract import run_extract_ray

        return run_extract_ray(
            paths, out, judge=judge, model=model, base_url=base_url, concurrency=concurrency, taxonomy=taxonomy,
            samples=samples, format=format, max_retries=max_retries, rate_limit=rate_limit,
            judge_options=judge_options, address=address, on_locked=on_locked,
        )  # fmt: skip
    seconds: dict[str, float] = {}
    tax = load_taxonomy(taxonomy)

    t0 = time.perf_counter()
    loaded = load_traces(paths, format=format, max_trace_mb=max_trace_mb)
    seconds["load"] = round(time.perf_counter() - t0, 3)
    failures = [str(f) for f in loaded.failures]
    skipped = [f"{s.path}: {s.note}" for s in loaded.skipped]
    traces = loaded.traces
    loading_quality = quality_summary(traces)
    if not traces:
        detail = f"; {len(failures)} file(s) failed, first: {failures[0]}" if failures else ""
        raise TraceLoadError(
            f"no traces found in {', '.join(map(str, paths))}{detail}. Check the paths, or force a loader with "
            "--format"
        )
    if limit is not None:
        traces = traces[:limit]
    sample_info: dict[str, Any] | None = None
    if sample is not None:
        from trajfm.sampling import stratified_sample

        traces, sample_info = stratified_sample(traces, sample, seed)

    the_judge = get_judge(judge, **_judge_options(model, base_url, samples, judge_options))
    if dry_run:
        plan = _plan(the_judge, traces, tax, out)
        found = the_judge.check_endpoint() if the_judge.needs_endpoint else None
        if found is not None:
            if found.problem:
                raise JudgeError(f"{found.problem} (dry run: nothing was judged)")
            plan["endpoint"] = _endpoint_line(found)
        cost = _cost(plan.get("est_tokens_in", 0), plan.get("max_tokens_out", 0), price_in, price_out)
        if cost is not None:
            plan["est_cost"] = cost
        if sample_info is not None:
            plan["sample"] = (
                f"{sample_info['size']} of {sample_info['of']} traces, stratified by agent model and scenario (seed {seed})"
            )
        return ExtractResult(run=None, traces=len(traces), load_failures=failures,
                             skipped_files=len(loaded.skipped), skipped=skipped, plan=plan, seconds=seconds,
                             loading_quality=loading_quality)  # fmt: skip

    check_endpoint(the_judge)  # before creating anything: a dead endpoint leaves no half-made run folder
    live = RunFolder.create(out)
    # One writer at a time; the new run is staged in RUN/.staging-<id>/ and swapped in whole at the end, so a kill
    # or a full disk leaves the previous complete run (see trajfm.runlock).
    with run_lock(live.root, "trajfm extract"):
        if on_locked is not None:
            on_locked(live.root)
        recover(live.root)
        carried = _carried_manifest(live.read_manifest())  # a corrupt manifest.json fails here, before judging
        with staged_run(live, seed_manifest=carried) as run:
            t0 = time.perf_counter()
            traces_df, steps_df = traces_to_frames(traces)
            run.write_table("traces", traces_df)
            run.write_table("steps", steps_df)
            seconds["write_traces"] = round(time.perf_counter() - t0, 3)

            cache = None
            if the_judge.cacheable:
                from trajfm.judges.cache import JudgeCache

                cache = JudgeCache.in_run(live.root)  # the cache lives in RUN/: kept across runs and kills
            stats = RunStats()
            t0 = time.perf_counter()
            try:
                diagnoses = run_judge(
                        the_judge, traces, tax, concurrency=concurrency, cache=cache, max_retries=max_retries,
                        rate_limit=rate_limit, progress=progress, stats=stats,
                        **({} if max_wait is None else {"max_wait": max_wait}),  # type: ignore[arg-type]
                    )  # fmt: skip
            finally:
                if cache is not None:
                    cache.close()
            seconds["judge"] = round(time.perf_counter() - t0, 3)

            t0 = time.perf_counter()
            by_id = {t.trace_id: t for t in traces}
            for d in diagnoses:
                if d.status == "ok":
                    verify_diagnosis(d, by_id[d.trace_id])
            seconds["verify_evidence"] = round(time.perf_counter() - t0, 3)
            set_aside = assess_replies(the_judge, diagnoses, by_id, tax)
            unverified = unverified_quotes(diagnoses)

            t0 = time.perf_counter()
            diag_df, modes_df, novel_df = diagnosis_frames(diagnoses, tax)
            old_novel = _old_novel(live)
            run.write_table("diagnoses", diag_df)
            run.write_table("modes", modes_df)
            run.write_table("novel_modes", novel_df)
            removed_stale = _carry_clusters(live, run, old_novel, novel_df)
            seconds["write_diagnoses"] = round(time.perf_counter() - t0, 3)

            statuses = dict(Counter(d.status for d in diagnoses))
            detected = int(modes_df["detected"].sum()) if modes_df.height else 0
            # The judge's configuration, what rendering had to shorten or split, and this run's calls (no credentials).
            judge_info = judge_manifest(the_judge, diagnoses, stats)
            run.update_manifest(
                "extract",
                {
                    **run_inputs(
                        paths, judge=judge, model=model, judge_info=judge_info, concurrency=concurrency,
                        taxonomy=taxonomy, limit=limit, samples=samples, format=format, max_retries=max_retries,
                        rate_limit=rate_limit, sample=sample, seed=seed if sample is not None else None,
                        price_in=price_in, price_out=price_out, max_trace_mb=max_trace_mb, max_wait=max_wait,
                    ),  # fmt: skip
                    "sample": sample_info,
                    "cost": _spent(stats, price_in, price_out),
                    **judged_with(the_judge, judge_info, tax),
                    "counts": {
                        "files": loaded.files,
                        "traces_loaded": len(loaded.traces),
                        "traces_judged": len(traces),
                        "load_failures": len(failures),
                        "skipped_files": len(loaded.skipped),
                        "statuses": statuses,
                        "modes_detected": detected,
                        "evidence_unverified": unverified,
                        "novel_modes": novel_df.height,
                        # Degenerate replies (trajfm.judges.quality): kept in diagnoses, not counted as findings.
                        "replies_set_aside": sum(is_set_aside(d.judge_quality) for d in diagnoses),
                        "set_aside_reasons": set_aside,
                    },
                    "load_failures": failures[:MAX_LISTED_FAILURES],
                    "skipped_files": [f"{s.path}: {s.note}" for s in loaded.skipped[:MAX_LISTED_FAILURES]],
                    "loading_quality": loading_quality,
                    "removed_stale": removed_stale,
                    "timings_s": seconds,
                },
            )
    run = live
    errors = _error_summary(diagnoses)
    raise_if_nothing_judged(statuses, errors, run)
    return ExtractResult(
        run=live, traces=len(traces), statuses=statuses, load_failures=failures, skipped_files=len(loaded.skipped),
        skipped=skipped, loading_quality=loading_quality,
        detected=detected, novel=novel_df.height, unverified=unverified, cache_hits=stats.cached, calls=stats.calls,
        seconds=seconds, errors=errors, removed_stale=removed_stale,
        n_set_aside=sum(is_set_aside(d.judge_quality) for d in diagnoses), set_aside=set_aside,
    )  # fmt: skip
