"""Stage 1 on a Ray cluster: `trajfm extract --engine ray [--address ADDR]`.

Contract of `run_extract_ray(...) -> ExtractResult` (same options and result as `trajfm.extract.run_extract`):
- The driver lists the trace files exactly as the local loader walks them (`plan_targets`) and hands them to
  Ray Data as a dataset of (index, path, rel) rows. `map_batches` sends batches of files (at most
  `batch_files`, at least four batches per worker) to a pool of actors (one per cluster CPU by default); each actor builds the judge once, loads its files with the same
  `load_file` the local engine uses, judges them through the same `run_judge` (cache, retries, rate limit),
  verifies evidence, and writes one shard per table, `part-<index of its first file>.parquet`, into a staging
  folder of the run. Shard names depend only on the input, so a batch Ray retries after a lost worker rewrites
  the same shards (each write is atomic). Scheduling, retries of lost workers and back-pressure are Ray Data's.
- Trace files must be readable at the same path on every node (a shared or replicated filesystem), and so must
  the run folder, which the workers write into.
- When every batch has finished, the driver gives duplicate trace ids the same `~2`, `~3` suffixes the local
  loader gives (in file order), moves the staged shard folders into place as `RUN/<table>/part-*.parquet`
  (replacing that table's earlier file or shards) and writes the manifest section, with the engine recorded:
  the same sections as the local engine's (loading quality counted from the written `traces` table, skipped
  files, load failures, corpus declarations).
  The driver holds the run folder's lock (`trajfm.runlock.run_lock`) throughout; the run gets a new run id that
  every shard carries in its parquet metadata (`write_shard`) and the manifest records, so readers refuse shards
  of two runs side by side. Cluster tables kept because the novel modes did not change are written again under
  the new id.
  A run killed before that point leaves the earlier tables untouched (and a `.staging-*` folder that the next
  run of this command removes).
- The LLM judge's reply cache is the run's sqlite file (WAL mode, one transaction per reply), which several
  worker processes may write at once; its rate limit is one `SharedRateLimit` for all workers.
- `--limit` needs the traces in order before judging, which a distributed run does not have: it is refused
  with `--engine ray`. `--dry-run` makes no calls, so it runs locally.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from trajfm import schemas
from trajfm.errors import TraceLoadError, UsageError
from trajfm.extract import (
    MAX_LISTED_FAILURES,
    ExtractResult,
    RunTally,
    _drop_stale_clusters,
    _judge_options,
    _old_novel,
    _spent,
    _stage2_tables,
    check_endpoint,
    judged_with,
    raise_if_nothing_judged,
    run_inputs,
)
from trajfm.runfolder import RunFolder, write_shard
from trajfm.runlock import new_run_id, run_lock
from trajfm.traces.quality import TABLE_COLUMNS as QUALITY_COLUMNS
from trajfm.traces.quality import summarize_table as quality_summary_table

STAGE1_TABLES = ("traces", "steps", "diagnoses", "modes", "novel_modes")
DEFAULT_BATCH_FILES = 256


class ExtractWorker:
    """One Ray Data actor: judges batches of trace files and writes their shards (see the module docstring)."""

    def __init__(
        self,
        *,
        judge: str,
        judge_options: dict[str, Any],
        taxonomy: str,
        fmt: str | None,
        staging: str,
        run_root: str,
        run_id: str,
        concurrency: int,
        max_retries: int,
        limiter: Any,
        max_trace_mb: float | None = None,
        max_wait: float | None = None,
    ) -> None:
        from trajfm.judges.registry import get_judge
        from trajfm.taxonomy import load_taxonomy

        self.judge = get_judge(judge, **judge_options)
        self.taxonomy = load_taxonomy(taxonomy)
        self.fmt = fmt
        self.staging = Path(staging)
        self.run_root = Path(run_root)
        self.run_id = run_id
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.limiter = limiter
        self.max_trace_mb = max_trace_mb
        self.max_wait = max_wait

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from trajfm.extract import RunTally, judge_batch
        from trajfm.judges.runner import RunStats, judge_manifest
        from trajfm.traces.load import load_file

        indices = [int(i) for i in batch["index"]]
        traces: list[Any] = []
        failures: list[Any] = []
        skipped: list[str] = []
        seen: Counter[str] = Counter()
        for path, given, rel, explicit in zip(
            batch["path"], batch["given"], batch["rel"], batch["explicit"], strict=True
        ):
            path, given = str(path), str(given)
            outcome = load_file(
                Path(path), str(rel), forced=self.fmt, explicit=bool(explicit), max_trace_mb=self.max_trace_mb
            )
            for trace in outcome.traces:
                if trace.source_path == path:  # read at the absolute path, recorded as the user gave it
                    trace.source_path = given
                seen[trace.trace_id] += 1  # repeated ids get ~n as `load_traces` gives them
                if seen[trace.trace_id] > 1:
                    trace.trace_id = f"{trace.trace_id}~{seen[trace.trace_id]}"
            traces.extend(outcome.traces)
            failures.extend(str(f).replace(path, given, 1) for f in outcome.failures)
            if outcome.skipped is not None:
                skipped.append(f"{outcome.skipped.path}: {outcome.skipped.note}".replace(path, given, 1))
        cache = None
        if self.judge.cacheable:
            from trajfm.judges.cache import JudgeCache

            cache = JudgeCache.in_run(self.run_root)
        stats = RunStats()
        try:
            # The same judging, evidence check, degenerate-reply check and tables as the local engine's batches.
            result = judge_batch(
                self.judge, traces, self.taxonomy, cache=cache, stats=stats, concurrency=self.concurrency,
                max_retries=self.max_retries, progress=False, limiter=self.limiter,
                **({} if self.max_wait is None else {"max_wait": self.max_wait}),  # type: ignore[arg-type]
            )  # fmt: skip
        finally:
            if cache is not None:
                cache.close()
        tally = RunTally()
        tally.add(self.judge, result)
        part = f"part-{min(indices):09d}.parquet"
        for table, df in result.frames.items():
            write_shard(self.staging / table / part, schemas.check(table, df), self.run_id)
        summary = {
            "files": len(indices),
            "skipped": skipped,
            "failures": failures,
            "traces": len(traces),
            "tally": tally.to_json(),
            "judge": judge_manifest(self.judge, result.diagnoses, stats),
        }
        return {"part": [part], "summary": [json.dumps(summary, default=str)]}


def _merge_judge_info(base: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's judge section for the whole run from the workers' per-batch sections."""
    info = dict(base)
    outcome: dict[str, Any] = {
        "truncated_traces": [],
        "elided_chars": 0,
        "chunked_traces": [],
        "redactions": {},
    }
    statuses: Counter[str] = Counter()
    run: dict[str, Any] = {}
    for p in parts:
        ro = p.get("rendering_outcome", {})
        outcome["truncated_traces"] += ro.get("truncated_traces", [])
        outcome["chunked_traces"] += ro.get("chunked_traces", [])
        outcome["elided_chars"] += ro.get("elided_chars", 0)
        for k, v in (ro.get("redactions") or {}).items():
            outcome["redactions"][k] = outcome["redactions"].get(k, 0) + v
        statuses.update(p.get("statuses", {}))
        for k, v in (p.get("run") or {}).items():
            if k == "errors":
                errs = run.setdefault("errors", {})
                for e, n in v.items():
                    errs[e] = errs.get(e, 0) + n
            elif k == "wall_s":
                run["worker_s"] = round(run.get("worker_s", 0.0) + v, 3)  # summed over workers: CPU-ish time
            elif (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and k not in ("concurrency", "max_retries")
            ):
                run[k] = run.get(k, 0) + v
            else:
                run[k] = v
    info["rendering_outcome"] = outcome
    info["statuses"] = dict(statuses)
    info["run"] = run
    return info


def _renumber_duplicate_ids(staging: Path, run_id: str) -> int:
    """Give a trace id that more than one batch holds the `~n` suffix `load_traces` gives (its n-th occurrence in
    file order -> `id~n`), rewriting only the shards that hold one. Within a batch the worker already applied
    the same rule. Returns how many traces were renamed."""
    shards = sorted((staging / "traces").glob("part-*.parquet"))
    ids = pl.concat(
        [pl.scan_parquet(s, glob=False).select("trace_id").with_columns(pl.lit(s.name).alias("part")) for s in shards]
    ).collect()
    ids = ids.with_columns(n=pl.int_range(1, pl.len() + 1).over("trace_id"))
    dup = ids.filter(pl.col("n") > 1)
    for part, rows in dup.group_by("part"):
        mapping = {tid: f"{tid}~{n}" for tid, n in zip(rows["trace_id"], rows["n"], strict=True)}
        for table in STAGE1_TABLES:
            path = staging / table / str(part[0])
            df = pl.read_parquet(path, glob=False)
            renamed = df.with_columns(pl.col("trace_id").replace(mapping))
            if table == "novel_modes":
                renamed = renamed.with_columns(
                    (pl.col("trace_id") + "::" + pl.col("novel_id").str.split("::").list.last()).alias(
                        "novel_id"
                    )
                )
            write_shard(path, renamed, run_id)
    return dup.height


def run_extract_ray(
    paths: list[Path],
    out: Path,
    *,
    judge: str,
    model: str | None,
    base_url: str | None,
    concurrency: int,
    taxonomy: str | Path,
    samples: int | None,
    format: str | None,  # noqa: A002 - the CLI's option name
    max_retries: int,
    rate_limit: float | None,
    judge_options: dict[str, Any] | None,
    address: str | None = None,
    batch_files: int = DEFAULT_BATCH_FILES,
    workers: int | None = None,
    on_locked: Callable[[Path], None] | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
    max_trace_mb: float | None = None,
    max_wait: float | None = None,
) -> ExtractResult:
    """Run stage 1 on Ray (see the module docstring). Options are checked by `run_extract` first."""
    from trajfm.engines.ray_cluster import SharedRateLimit, cluster_cpus, connect
    from trajfm.judges.registry import get_judge
    from trajfm.judges.runner import RunStats, judge_manifest
    from trajfm.taxonomy import load_taxonomy
    from trajfm.traces import detect
    from trajfm.traces.load import plan_targets

    if batch_files < 1:
        raise UsageError(f"the batch size must be at least 1 file, got {batch_files}")
    tax = load_taxonomy(taxonomy)
    if format is not None:
        detect.loader(format)  # an unknown format is a usage error before anything starts
    files, missing = plan_targets(paths)
    options = _judge_options(model, base_url, samples, judge_options)
    the_judge = get_judge(judge, **options)
    check_endpoint(the_judge)
    seconds: dict[str, float] = {}
    where = connect(address)
    run = RunFolder.create(out)
    run.read_manifest()
    with run_lock(run.root, "trajfm extract --engine ray"):
        if on_locked is not None:
            on_locked(run.root)
        run_id = new_run_id()
        for old in run.root.glob(".staging-*"):  # left by a killed run of this command
            shutil.rmtree(old, ignore_errors=True)
        staging = run.root / f".staging-{uuid.uuid4().hex[:12]}"
        n_workers = workers or cluster_cpus()
        limiter = SharedRateLimit(rate_limit) if rate_limit and the_judge.is_async else None

        import ray.data

        t0 = time.perf_counter()
        rows = [{"index": i, "path": str(p.resolve()), "given": str(p), "rel": rel, "explicit": explicit}
                for i, (p, rel, explicit) in enumerate(files)]  # fmt: skip
        summaries: list[dict[str, Any]] = []
        try:
            if rows:
                # At least 4 batches per worker, so small runs spread over the cluster too; at most batch_files each.
                batch = max(1, min(batch_files, -(-len(rows) // (4 * n_workers))))
                n_blocks = -(-len(rows) // batch)
                ds = ray.data.from_items(rows, override_num_blocks=n_blocks).map_batches(
                    ExtractWorker,
                    batch_size=batch,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=max(1, min(n_workers, n_blocks))),
                    fn_constructor_kwargs={
                        "judge": judge,
                        "judge_options": options,
                        "taxonomy": str(taxonomy),
                        "fmt": format,
                        "staging": str(staging),
                        "run_root": str(run.root.resolve()),
                        "run_id": run_id,
                        "concurrency": concurrency,
                        "max_retries": max_retries,
                        "limiter": limiter,
                        "max_trace_mb": max_trace_mb,
                        "max_wait": max_wait,
                    },  # fmt: skip
                )
                summaries = [json.loads(r["summary"]) for r in ds.iter_rows()]
        finally:
            if limiter is not None:
                limiter.close()
        seconds["load_and_judge"] = round(time.perf_counter() - t0, 3)

        failures = [str(f) for f in missing] + [f for s in summaries for f in s["failures"]]
        n_traces = sum(s["traces"] for s in summaries)
        if n_traces == 0:
            shutil.rmtree(staging, ignore_errors=True)
            detail = f"; {len(failures)} file(s) failed, first: {failures[0]}" if failures else ""
            raise TraceLoadError(
                f"no traces found in {', '.join(map(str, paths))}{detail}. Check the paths, or force a loader with "
                "--format"
            )

        t0 = time.perf_counter()
        renamed = _renumber_duplicate_ids(staging, run_id)
        old_novel = _old_novel(run)
        old_stage2 = _stage2_tables(run)  # read under the old run's id, before the new shards arrive
        for table in STAGE1_TABLES:
            run.remove_table(table)
            (staging / table).rename(run.table_dir(table))
        shutil.rmtree(staging, ignore_errors=True)
        run = RunFolder(run.root, run_id=run_id)  # from here on the folder is the new run (the manifest says so below)
        novel_df = run.scan_table("novel_modes").select("novel_id", "title", "description").collect()
        removed_stale = _drop_stale_clusters(run, old_novel, novel_df, old_stage2)
        # From the written table (file order, ids renumbered), shard by shard: the figures the local engine counts.
        loading_quality: dict[str, Any] = {}
        for shard in run.shard_paths("traces"):
            quality_summary_table(pl.read_parquet(shard, columns=list(QUALITY_COLUMNS), glob=False), into=loading_quality)
        skipped = [f for s in summaries for f in s["skipped"]]
        seconds["finish"] = round(time.perf_counter() - t0, 3)

        tally = RunTally()
        for s in summaries:
            tally.merge(RunTally.from_json(s["tally"]))
        statuses, errors = dict(tally.statuses), tally.error_summary()
        judge_info = _merge_judge_info(judge_manifest(the_judge, []), [s["judge"] for s in summaries])
        run_stats = judge_info.get("run", {})
        spent = RunStats(tokens_in=int(run_stats.get("tokens_in", 0)), tokens_out=int(run_stats.get("tokens_out", 0)),
                         calls=int(run_stats.get("calls", 0)))  # fmt: skip
        run.update_manifest(
            "extract",
            {
                **run_inputs(
                    paths, judge=judge, model=model, judge_info=judge_info, concurrency=concurrency,
                    taxonomy=taxonomy, limit=None, samples=samples, format=format, max_retries=max_retries,
                    rate_limit=rate_limit, sample=None, seed=None, price_in=price_in, price_out=price_out,
                    max_trace_mb=max_trace_mb, max_wait=max_wait,
                ),  # fmt: skip
                "sample": None,
                "cost": _spent(spent, price_in, price_out),
                "engine": {
                    "name": "ray",
                    "address": where,
                    "workers": n_workers,
                    "batch_files": batch_files,
                    "shards": len(summaries),
                    "ray_version": ray.__version__,
                },  # fmt: skip
                **judged_with(the_judge, judge_info, tax),
                "counts": {
                    "files": sum(s["files"] for s in summaries) + len(missing),
                    "traces_loaded": n_traces,
                    "traces_judged": n_traces,
                    "duplicate_ids_renamed": renamed,
                    "load_failures": len(failures),
                    "skipped_files": len(skipped),
                    "statuses": statuses,
                    "modes_detected": tally.detected,
                    "evidence_unverified": tally.unverified,
                    "novel_modes": novel_df.height,
                    "replies_set_aside": tally.n_set_aside,
                    "set_aside_reasons": tally.set_aside_reasons(),
                },
                "load_failures": failures[:MAX_LISTED_FAILURES],
                "skipped_files": skipped[:MAX_LISTED_FAILURES],
                "loading_quality": loading_quality,
                "removed_stale": removed_stale,
                "timings_s": seconds,
            },
        )
        raise_if_nothing_judged(statuses, errors, run)
        return ExtractResult(
            run=run, traces=n_traces, statuses=statuses, load_failures=failures, skipped_files=len(skipped),
            skipped=skipped, loading_quality=loading_quality, detected=tally.detected, novel=novel_df.height,
            unverified=tally.unverified, cache_hits=int(run_stats.get("cached", 0)),
            calls=int(run_stats.get("calls", 0)), seconds=seconds, errors=errors, removed_stale=removed_stale,
            n_set_aside=tally.n_set_aside, set_aside=tally.set_aside_reasons(),
        )  # fmt: skip
