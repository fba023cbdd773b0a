"""Stage 1, `trajfm extract`: traces -> diagnoses, written as tables into a run folder.

Contract of `run_extract(inputs, out, *, judge="rules", ...) -> ExtractResult`:
- Loads the traces under `inputs` as `trajfm.traces.load_traces` would (same order, same ids), but streamed in
  batches (`load_batches`: `batch_traces` traces, default 5,000, or fewer when their text passes 50 M characters;
  a file is never split): each batch is judged, written as one shard per table and dropped before the next is
  loaded, so memory is bounded by a batch, not by the run (only the trace ids seen, for `~n` numbering, and the
  manifest's counts grow with it). A run of one batch writes single-file tables (`RUN/<table>.parquet`); a
  larger one writes `RUN/<table>/part-<batch>.parquet` shards, the layout the Ray engine writes, which every
  reader takes (`RunFolder.read_table` / `scan_table`). Files that fail to load are listed (in the result and
  in the manifest) and the rest are processed. No trace at all is a `TraceLoadError`.
- The manifest lists the input files with sha256 (a file named twice is hashed once); past
  `MAX_LISTED_INPUTS` files it lists that many and summarises all of them in `inputs_summary`.
- `--limit N` keeps the first N traces in load order (sorted paths), so the same N every time. `--sample N
  [--seed S]` judges a sample stratified by agent model and scenario (`trajfm.sampling`); the manifest's
  "sample" says it is a sample and of what. A sample (and a dry run) needs every trace at once: it loads them
  all, then judges the sample in batches.
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
- Writes, per batch, the traces and steps tables and diagnoses (one row per trace), modes.parquet (one row per trace x taxonomy mode, detected or not, for
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

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from trajfm.errors import JudgeError, RunFolderError, SchemaError, TraceLoadError, UsageError
from trajfm.judges.base import Diagnosis, Judge
from trajfm.judges.dimensions import DIMENSION_KEYS
from trajfm.judges.evidence import verify_diagnosis as _verify_quotes
from trajfm.judges.quality import REASONS, assess, is_set_aside, quality_label, set_aside_counts
from trajfm.judges.reply import DROPPED
from trajfm.runfolder import RunFolder, atomic_write_text, file_sha256
from trajfm.runlock import recover, run_lock, staged_run
from trajfm.schemas import DIAGNOSES_SCHEMA, MODES_SCHEMA, NOVEL_MODES_SCHEMA, frame
from trajfm.taxonomy import Taxonomy, load_taxonomy
from trajfm.traces.declared import corpus_declarations
from trajfm.traces.load import collect_targets
from trajfm.traces.model import Trace, traces_to_frames
from trajfm.traces.quality import summarize as quality_summary

MAX_LISTED_FAILURES = 200  # the manifest lists this many load failures in full, then counts the rest
STAGE1_TABLES = ("traces", "steps", "diagnoses", "modes", "novel_modes")


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


MAX_LISTED_INPUTS = 10_000  # input files listed one by one in the manifest; the rest are summarised


def _inputs_manifest(inputs: list[Path]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every input file with its size and sha256 (folders are expanded the way the loader walks them), listed
    one by one up to `MAX_LISTED_INPUTS`; past that, the list stops there and the summary (second value, None
    when everything is listed) gives the count, total size and one sha256 over every file's path and sha256 in
    load order, so a million-file run's manifest stays small and still pins its inputs. A file named more than
    once (a folder given twice) is hashed once."""
    listed: list[dict[str, Any]] = []
    hashed: dict[tuple[int, int, int, int], str] = {}  # (device, inode, size, mtime) -> sha256
    digest = hashlib.sha256()
    files = total = 0
    for path in collect_targets(inputs):
        files += 1
        try:
            st = path.stat()
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            sha = hashed.get(key)
            if sha is None:
                sha = hashed[key] = file_sha256(path)
            entry: dict[str, Any] = {"path": str(path), "bytes": st.st_size, "sha256": sha}
            total += st.st_size
        except OSError as exc:
            entry = {"path": str(path), "error": str(exc)}
        digest.update(f"{entry['path']}\0{entry.get('sha256', '')}\n".encode())
        if len(listed) < MAX_LISTED_INPUTS:
            listed.append(entry)
    if files <= MAX_LISTED_INPUTS:
        return listed, None
    return listed, {"files": files, "bytes": total, "listed": len(listed), "sha256_of_paths_and_sha256s": digest.hexdigest()}


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
        frame(drows, DIAGNOSES_SCHEMA),
        frame(mrows, MODES_SCHEMA),
        frame(nrows, NOVEL_MODES_SCHEMA),
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


DEFAULT_BATCH_TRACES = 5000  # traces judged and written per batch (see `run_extract`)
DEFAULT_BATCH_CHARS = 50_000_000  # ... or fewer, when their text adds up to this many characters


@dataclass
class BatchTables:
    """One batch judged (`judge_batch`): its five stage-1 tables and the diagnoses' statuses and errors."""

    frames: dict[str, pl.DataFrame]
    diagnoses: list[Diagnosis]
    set_aside: dict[str, int]
    unverified: int


def judge_batch(
    the_judge: Judge,
    traces: list[Trace],
    tax: Taxonomy,
    *,
    cache: Any,
    stats: Any,
    seconds: dict[str, float] | None = None,
    **run_options: Any,
) -> BatchTables:
    """Judge one batch of traces (`run_judge` with `run_options`: concurrency, retries, rate limit, progress,
    limiter), check evidence, set aside degenerate replies and build the batch's tables. Both engines judge with
    this, batch after batch, so their tables are the same. The time spent judging, checking (verify_evidence)
    and building the tables is added to `seconds`."""
    from trajfm.judges.runner import run_judge

    clock = seconds if seconds is not None else {}
    t0 = time.perf_counter()
    diagnoses = run_judge(the_judge, traces, tax, cache=cache, stats=stats, **run_options)
    t1 = time.perf_counter()
    by_id = {t.trace_id: t for t in traces}
    for d in diagnoses:
        if d.status == "ok":
            verify_diagnosis(d, by_id[d.trace_id])
    set_aside = assess_replies(the_judge, diagnoses, by_id, tax)
    unverified = unverified_quotes(diagnoses)
    t2 = time.perf_counter()
    traces_df, steps_df = traces_to_frames(traces)
    diag_df, modes_df, novel_df = diagnosis_frames(diagnoses, tax)
    for phase, took in (("judge", t1 - t0), ("verify_evidence", t2 - t1), ("tables", time.perf_counter() - t2)):
        clock[phase] = clock.get(phase, 0.0) + took
    frames = {"traces": traces_df, "steps": steps_df, "diagnoses": diag_df, "modes": modes_df,
              "novel_modes": novel_df}  # fmt: skip
    return BatchTables(frames, diagnoses, set_aside, unverified)


@dataclass
class RunTally:
    """What the manifest counts over a run's diagnoses, added batch by batch (`add`): the same figures one pass
    over all of them gives, so a run never holds more than a batch of diagnoses."""

    statuses: Counter[str] = field(default_factory=Counter)
    detected: int = 0
    novel: int = 0
    unverified: int = 0
    n_set_aside: int = 0
    set_aside: Counter[str] = field(default_factory=Counter)
    errors: dict[str, Counter[str]] = field(default_factory=dict)  # status -> error message -> traces
    rendering: dict[str, Any] = field(
        default_factory=lambda: {"truncated_traces": [], "elided_chars": 0, "chunked_traces": [], "redactions": {}}
    )

    def add(self, the_judge: Judge, batch: BatchTables) -> None:
        from trajfm.judges.runner import judge_manifest

        self.statuses.update(d.status for d in batch.diagnoses)
        modes = batch.frames["modes"]
        self.detected += int(modes["detected"].sum()) if modes.height else 0
        self.novel += batch.frames["novel_modes"].height
        self.unverified += batch.unverified
        self.n_set_aside += sum(is_set_aside(d.judge_quality) for d in batch.diagnoses)
        self.set_aside.update(batch.set_aside)
        for d in batch.diagnoses:
            if d.status != "ok":
                self.errors.setdefault(d.status, Counter())[(d.error or "no error message").strip()] += 1
        outcome = judge_manifest(the_judge, batch.diagnoses)["rendering_outcome"]
        self.rendering["truncated_traces"] += outcome["truncated_traces"]
        self.rendering["chunked_traces"] += outcome["chunked_traces"]
        self.rendering["elided_chars"] += outcome["elided_chars"]
        for k, v in outcome["redactions"].items():
            self.rendering["redactions"][k] = self.rendering["redactions"].get(k, 0) + v

    def merge(self, other: RunTally) -> None:
        """Add another part of the run (a Ray worker's batch) to this tally."""
        self.statuses.update(other.statuses)
        self.detected += other.detected
        self.novel += other.novel
        self.unverified += other.unverified
        self.n_set_aside += other.n_set_aside
        self.set_aside.update(other.set_aside)
        for status, messages in other.errors.items():
            self.errors.setdefault(status, Counter()).update(messages)
        for key in ("truncated_traces", "chunked_traces", "elided_chars"):
            self.rendering[key] += other.rendering[key]
        for k, v in other.rendering["redactions"].items():
            self.rendering["redactions"][k] = self.rendering["redactions"].get(k, 0) + v

    def to_json(self) -> dict[str, Any]:
        return {
            "statuses": dict(self.statuses), "detected": self.detected, "novel": self.novel,
            "unverified": self.unverified, "n_set_aside": self.n_set_aside, "set_aside": dict(self.set_aside),
            "errors": {s: dict(c) for s, c in self.errors.items()}, "rendering": self.rendering,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunTally:
        return cls(
            statuses=Counter(data["statuses"]), detected=data["detected"], novel=data["novel"],
            unverified=data["unverified"], n_set_aside=data["n_set_aside"], set_aside=Counter(data["set_aside"]),
            errors={s: Counter(c) for s, c in data["errors"].items()}, rendering=data["rendering"],
        )  # fmt: skip

    def error_summary(self) -> dict[str, tuple[int, str]]:
        """As `_error_summary` over all the run's diagnoses."""
        return {s: (sum(c.values()), c.most_common(1)[0][0]) for s, c in self.errors.items()}

    def set_aside_reasons(self) -> dict[str, int]:
        """As `set_aside_counts` over all the run's diagnoses (in `REASONS` order)."""
        return {r: self.set_aside[r] for r in REASONS if self.set_aside[r]}

    def judge_info(self, the_judge: Judge, stats: Any) -> dict[str, Any]:
        """As `judge_manifest(the_judge, all diagnoses, stats)`."""
        from trajfm.judges.runner import judge_manifest

        info = judge_manifest(the_judge, [], stats)
        info["rendering_outcome"] = self.rendering
        info["statuses"] = dict(self.statuses)
        return info


@dataclass
class Loading:
    """What loading met so far, for the manifest: files read, traces loaded, load failures, skipped files and the
    loading quality of every trace loaded (`--limit` judges fewer)."""

    files: int = 0
    traces: int = 0
    renamed: int = 0  # traces whose id was already taken, given `~n`
    failures: list[str] = field(default_factory=list)
    skipped: list[Any] = field(default_factory=list)  # trajfm.traces.load.SkippedFile
    quality: dict[str, Any] = field(default_factory=dict)


def load_batches(
    paths: list[Path],
    loading: Loading,
    *,
    format: str | None,  # noqa: A002 - the CLI's option name
    max_trace_mb: float | None,
    limit: int | None = None,
    batch_traces: int = DEFAULT_BATCH_TRACES,
    batch_chars: int = DEFAULT_BATCH_CHARS,
) -> Iterator[list[Trace]]:
    """The traces `load_traces(paths)` loads (same order, same `~n` ids for repeated ids; the first `limit`),
    in batches of at most `batch_traces` traces or `batch_chars` characters of text (a file is never split: a
    JSON lines file of many traces arrives whole), counting what loading met into `loading` as it goes. Only
    the trace ids seen so far are kept between batches (to number repeated ones)."""
    from trajfm.traces.load import iter_load

    seen: dict[str, int] = {}
    batch: list[Trace] = []
    chars = 0
    kept = 0
    for outcome in iter_load(paths, format, max_trace_mb=max_trace_mb):
        loading.files += 1
        loading.failures.extend(str(f) for f in outcome.failures)
        if outcome.skipped is not None:
            loading.skipped.append(outcome.skipped)
        if not outcome.traces:
            continue
        for trace in outcome.traces:
            n = seen.get(trace.trace_id, 0) + 1
            seen[trace.trace_id] = n
            if n > 1:
                trace.trace_id = f"{trace.trace_id}~{n}"
                loading.renamed += 1
        loading.traces += len(outcome.traces)
        quality_summary(outcome.traces, into=loading.quality)
        for trace in outcome.traces:
            if limit is None or kept < limit:
                batch.append(trace)
                chars += trace.n_chars
                kept += 1
        if len(batch) >= batch_traces or chars >= batch_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def run_inputs(
    paths: list[Path], *, judge: str, model: str | None, judge_info: dict[str, Any], concurrency: int,
    taxonomy: Any, limit: int | None, samples: int | None, format: str | None, max_retries: Any, rate_limit: Any,
    **more_options: Any,
) -> dict[str, Any]:
    """The manifest keys saying what an extract read and with which options; the same for every engine (an engine
    adds the options only it has as `more_options`)."""
    listed, summary = _inputs_manifest(paths)
    return {
        "inputs": listed,
        **({"inputs_summary": summary} if summary is not None else {}),
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
    batch_traces: int = DEFAULT_BATCH_TRACES,
) -> ExtractResult:
    """Run stage 1 (see the module docstring). `engine="ray"` runs it on a Ray cluster at `address` (or
    RAY_ADDRESS): `trajfm.engines.ray_extract`. `batch_traces`: traces per batch of the local engine."""
    from trajfm.judges.registry import get_judge
    from trajfm.judges.runner import RunStats

    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if samples is not None and samples < 1:
        raise UsageError(f"--samples must be at least 1, got {samples}")
    if sample is not None and sample < 1:
        raise UsageError(f"--sample must be at least 1, got {sample}")
    if batch_traces < 1:
        raise UsageError(f"the batch size must be at least 1 trace, got {batch_traces}")
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
            judge_options=judge_options, address=address, on_locked=on_locked, price_in=price_in,
            price_out=price_out, max_trace_mb=max_trace_mb, max_wait=max_wait,
        )  # fmt: skip
    seconds: dict[str, float] = {"load": 0.0}
    tax = load_taxonomy(taxonomy)

    t0 = time.perf_counter()
    loading = Loading()
    sample_info: dict[str, Any] | None = None
    traces: list[Trace] = []
    if dry_run or sample is not None:  # a plan or a stratified sample needs every trace at once
        every = load_batches(paths, loading, format=format, max_trace_mb=max_trace_mb, limit=limit)
        traces = [t for b in every for t in b]
        if sample is not None and traces:
            from trajfm.sampling import stratified_sample

            traces, sample_info = stratified_sample(traces, sample, seed)
        batches: Iterator[list[Trace]] = iter(
            [traces[i : i + batch_traces] for i in range(0, len(traces), batch_traces)]
        )
    else:  # streamed: batch after batch is loaded, judged, written and dropped (see `load_batches`)
        batches = load_batches(
            paths, loading, format=format, max_trace_mb=max_trace_mb, limit=limit, batch_traces=batch_traces
        )
    batch = next(batches, None)  # the first batch is loaded before anything is created
    seconds["load"] += time.perf_counter() - t0
    failures = loading.failures
    if batch is None:
        detail = f"; {len(failures)} file(s) failed, first: {failures[0]}" if failures else ""
        raise TraceLoadError(
            f"no traces found in {', '.join(map(str, paths))}{detail}. Check the paths, or force a loader with "
            "--format"
        )

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
        seconds["load"] = round(seconds["load"], 3)
        return ExtractResult(run=None, traces=len(traces), load_failures=failures,
                             skipped_files=len(loading.skipped), skipped=_skipped_lines(loading.skipped), plan=plan,
                             seconds=seconds, loading_quality=loading.quality)  # fmt: skip

    from trajfm.judges.runner import JudgeProgress

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
            cache = None
            if the_judge.cacheable:
                from trajfm.judges.cache import JudgeCache

                cache = JudgeCache.in_run(live.root)  # the cache lives in RUN/: kept across runs and kills
            stats = RunStats()
            tally = RunTally()
            n_judged = n_shards = 0
            for phase in ("judge", "tables", "write"):
                seconds[phase] = 0.0
            try:
                with JudgeProgress(the_judge, 0, stats, progress) as display:
                    # Each batch is judged, written as one shard per table (RUN/<table>/part-<n>.parquet) and
                    # dropped before the next is loaded: memory is bounded by a batch, not by the run.
                    while batch is not None:
                        display.add(len(batch))
                        result = judge_batch(
                            the_judge, batch, tax, cache=cache, stats=stats, concurrency=concurrency,
                            max_retries=max_retries, rate_limit=rate_limit, progress=display, seconds=seconds,
                            **({} if max_wait is None else {"max_wait": max_wait}),
                        )  # fmt: skip
                        t0 = time.perf_counter()
                        for table, df in result.frames.items():
                            run.write_shard(table, n_shards, df)
                        seconds["write"] += time.perf_counter() - t0
                        tally.add(the_judge, result)
                        n_judged += len(batch)
                        n_shards += 1
                        batch = result = None  # type: ignore[assignment]
                        t0 = time.perf_counter()
                        batch = next(batches, None)
                        seconds["load"] += time.perf_counter() - t0
            finally:
                if cache is not None:
                    cache.close()

            t0 = time.perf_counter()
            if n_shards == 1:  # a run of one batch keeps the single-file tables (RUN/<table>.parquet)
                for table in STAGE1_TABLES:
                    run.write_table(table, pl.read_parquet(run.shard_paths(table)[0], glob=False))
            novel_df = run.scan_table("novel_modes").select("novel_id", "title", "description").collect()
            old_novel = _old_novel(live)
            removed_stale = _carry_clusters(live, run, old_novel, novel_df)
            seconds["finish"] = time.perf_counter() - t0

            statuses = dict(tally.statuses)
            # The judge's configuration, what rendering had to shorten or split, and this run's calls (no credentials).
            judge_info = tally.judge_info(the_judge, stats)
            set_aside = tally.set_aside_reasons()
            t0 = time.perf_counter()
            read = run_inputs(
                paths, judge=judge, model=model, judge_info=judge_info, concurrency=concurrency,
                taxonomy=taxonomy, limit=limit, samples=samples, format=format, max_retries=max_retries,
                rate_limit=rate_limit, sample=sample, seed=seed if sample is not None else None,
                price_in=price_in, price_out=price_out, max_trace_mb=max_trace_mb, max_wait=max_wait,
            )  # fmt: skip
            seconds["hash_inputs"] = time.perf_counter() - t0
            run.update_manifest(
                "extract",
                {
                    **read,
                    "sample": sample_info,
                    "cost": _spent(stats, price_in, price_out),
                    **judged_with(the_judge, judge_info, tax),
                    "engine": {"name": "local", "batch_traces": batch_traces, "shards": n_shards},
                    "counts": {
                        "files": loading.files,
                        "traces_loaded": loading.traces,
                        "traces_judged": n_judged,
                        "duplicate_ids_renamed": loading.renamed,
                        "load_failures": len(failures),
                        "skipped_files": len(loading.skipped),
                        "statuses": statuses,
                        "modes_detected": tally.detected,
                        "evidence_unverified": tally.unverified,
                        "novel_modes": tally.novel,
                        # Degenerate replies (trajfm.judges.quality): kept in diagnoses, not counted as findings.
                        "replies_set_aside": tally.n_set_aside,
                        "set_aside_reasons": set_aside,
                    },
                    "load_failures": failures[:MAX_LISTED_FAILURES],
                    "skipped_files": _skipped_lines(loading.skipped[:MAX_LISTED_FAILURES]),
                    "loading_quality": loading.quality,
                    "removed_stale": removed_stale,
                    "timings_s": {k: round(v, 3) for k, v in seconds.items()},
                },
            )
    errors = tally.error_summary()
    raise_if_nothing_judged(statuses, errors, live)
    return ExtractResult(
        run=live, traces=n_judged, statuses=statuses, load_failures=failures, skipped_files=len(loading.skipped),
        skipped=_skipped_lines(loading.skipped), loading_quality=loading.quality,
        detected=tally.detected, novel=tally.novel, unverified=tally.unverified, cache_hits=stats.cached,
        calls=stats.calls, seconds={k: round(v, 3) for k, v in seconds.items()}, errors=errors,
        removed_stale=removed_stale, n_set_aside=tally.n_set_aside, set_aside=set_aside,
    )  # fmt: skip


def _skipped_lines(skipped: list[Any]) -> list[str]:
    return [f"{s.path}: {s.note}" for s in skipped]
