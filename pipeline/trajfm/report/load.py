"""Read what stage 3 needs from a run folder.

`load_run(path)` returns a `RunTables`: the stage-1 tables (required), the stage-2 tables (optional: absent when
the cluster stage was skipped, e.g. a run with no novel modes), the manifest and the taxonomy the run was judged
against (as recorded by extract in the manifest, `mast` when not recorded).

Memory stays bounded by a batch plus a few narrow columns per trace, not by the run's text: the traces and
diagnoses tables are held only as the columns the figures count (`TRACE_COLUMNS`, `DIAGNOSIS_COLUMNS`; no task,
answer, summary or reply text), the modes table only as the (trace, mode) pairs of its flags, the novel modes
without their descriptions and evidence (`NOVEL_COLUMNS`). Everything else is
a LazyFrame over the file or shards (`RunTables.scan`): the steps table, the verdicts (`checked`), and the text
columns, which the figures aggregate with the streaming engine and the drill-down and quotes read for the few
traces they show. Every table is checked against
`trajfm.schemas` on read, so a wrong column is a `SchemaError` naming the file. Clusters made from other novel
modes than the ones in novel_modes.parquet (extract re-run since) are a `RunFolderError` asking to re-cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from trajfm import schemas
from trajfm.errors import RunFolderError, UsageError
from trajfm.runfolder import RunFolder
from trajfm.taxonomy import Taxonomy, load_taxonomy

STAGE1_TABLES = ("traces", "steps", "diagnoses", "modes", "novel_modes")

PART_ROWS = 100_000  # rows of a table read at a time where Python looks at each (`RunTables.parts`)
UNKNOWN_MODEL = "unknown"  # the model name shown for traces whose source names none
# The columns held in memory, one row per trace: what the figures count. Text columns are read through `scan`.
TRACE_COLUMNS = ("trace_id", "agent_model", "multi_agent", "is_correct")
NOVEL_COLUMNS = ("novel_id", "trace_id", "title")
DIAGNOSIS_COLUMNS = (
    "trace_id", "judge", "judge_model", "status", "task_completed", "root_cause_step", "source_outcome",
    "tokens_in", "tokens_out", "latency_s", "calls", "cached", "judge_quality",
    "dim_task_completion", "dim_data_retrieval", "dim_result_verification", "dim_sequence", "dim_clarity",
    "dim_hallucination",
)  # fmt: skip


@dataclass(frozen=True)
class RunTables:
    """Everything the report reads from one run folder."""

    run: RunFolder
    traces: pl.DataFrame  # TRACE_COLUMNS only; the whole table is `scan("traces")`
    steps: pl.LazyFrame  # read lazily (the largest table): figures aggregate it, the drill-down reads its traces
    diagnoses: pl.DataFrame  # DIAGNOSIS_COLUMNS only; the whole table is `scan("diagnoses")`
    modes: pl.DataFrame  # (trace_id, mode_id) of the detected rows (see `_modes`); their text is `flag_rows()`
    novel_modes: pl.DataFrame  # NOVEL_COLUMNS only; the descriptions, steps and evidence are `novel_texts()`
    clusters: pl.DataFrame | None
    novel_assignments: pl.DataFrame | None
    manifest: dict[str, Any]
    taxonomy: Taxonomy
    # (trace_id, mode_id) of every verdict (`detected` not null), a lazy scan of the modes table: one row per
    # trace and checked mode, most of the table, so it is aggregated file by file and never held whole.
    checked: pl.LazyFrame

    @property
    def clustered(self) -> bool:
        return self.clusters is not None and self.novel_assignments is not None

    def scan(self, table: str) -> pl.LazyFrame:
        """The whole of a stage-1 table, lazily (the traces' `meta`, shown nowhere in the report, as null)."""
        lf = self.run.scan_table(table)
        return lf.with_columns(meta=pl.lit(None, pl.String)) if table == "traces" else lf

    def parts(self, table: str, rows: int = PART_ROWS) -> Iterator[pl.LazyFrame]:
        """The table as consecutive lazy parts, in table order: each shard (or the single file), cut into
        `rows`-row slices (parquet slices read only their row groups). For Python work on a table's rows that
        must stay bounded by a part: `collect_batches` runs ahead of a slow consumer, so it is not used."""
        self.run.scan_table(table)  # the checks (schema, run id) of the whole table
        files = self.run.shard_paths(table) if self.run.is_sharded(table) else [self.run.table_file(table)]
        for path in files:
            n = pl.scan_parquet(path, glob=False).select(pl.len()).collect().item()  # from the footer
            part = pl.scan_parquet(path, glob=False).select(list(schemas.TABLES[table])).cast(schemas.TABLES[table])  # type: ignore[arg-type]
            if table == "traces":
                part = part.with_columns(meta=pl.lit(None, pl.String))
            for start in range(0, n, rows):
                yield part.slice(start, rows)

    def novel_texts(self, novel_ids: pl.Series) -> pl.DataFrame:
        """Every column of the novel modes `novel_ids` (read lazily, for the few the report shows or reads)."""
        return (
            self.scan("novel_modes")
            .filter(pl.col("novel_id").is_in(novel_ids.implode()))
            .collect(engine="streaming")
        )

    def flag_rows(self) -> pl.LazyFrame:
        """Every column of the detected rows of the modes table, lazily (evidence, rationale, steps)."""
        return self.run.scan_table("modes").filter(pl.col("detected").fill_null(False))


def _collect(run: RunFolder, table: str) -> pl.DataFrame:
    """A whole table, read shard by shard through a lazy scan (no second copy while concatenating)."""
    return run.scan_table(table).collect(engine="streaming")


def _modes(run: RunFolder) -> pl.DataFrame:
    """(trace_id, mode_id) of the detected rows of the modes table (flags): the only rows the report holds.
    Verdicts that found nothing, and modes not checked, are counted from `RunTables.checked`; the text of a flag
    is read from `RunTables.flag_rows` for the few the report quotes."""
    return (
        run.scan_table("modes")
        .filter(pl.col("detected").fill_null(False))
        .select("trace_id", "mode_id")
        .collect(engine="streaming")
    )


def taxonomy_of_run(manifest: dict[str, Any]) -> str:
    """The taxonomy extract recorded for this run (name or path), `mast` when the manifest does not say."""
    extract = manifest.get("stages", {}).get("extract", {})
    options = extract.get("options", {}) if isinstance(extract.get("options"), dict) else {}
    name = extract.get("taxonomy") or options.get("taxonomy") or "mast"
    if isinstance(name, dict):  # a manifest may record {name, version}
        name = name.get("name") or "mast"
    return str(name)


def load_run(path: Path | str, *, taxonomy: str | Path | None = None) -> RunTables:
    run = RunFolder.open(path, need=STAGE1_TABLES)
    manifest = run.read_manifest()
    clusters = _collect(run, "clusters") if run.has("clusters") else None
    assignments = _collect(run, "novel_assignments") if run.has("novel_assignments") else None
    if (clusters is None) != (assignments is None):
        # One without the other means a half-finished cluster stage; report it as not clustered.
        clusters = assignments = None
    novel_modes = run.scan_table("novel_modes").select(NOVEL_COLUMNS).collect(engine="streaming")
    if assignments is not None:
        stale = set(assignments["novel_id"].to_list()) ^ set(novel_modes["novel_id"].to_list())
        if stale:
            # The families would point at novel modes that are gone (or miss new ones): never draw them.
            raise RunFolderError(
                f"{run.table_path('clusters')} was made from other novel modes than {run.table_path('novel_modes')} "
                f"({len(stale)} differ; extract was re-run since): run `trajfm cluster {run.root}` again, then "
                "`trajfm report`"
            )
    tax = load_taxonomy(taxonomy if taxonomy is not None else taxonomy_of_run(manifest))
    modes = _modes(run)
    mode_ids = run.scan_table("modes").select("mode_id").unique().collect(engine="streaming")["mode_id"]
    unknown = sorted(set(mode_ids.to_list()) - {m.id for m in tax.modes})
    if unknown:
        # Another taxonomy's ids would be dropped from every chart without a word: refuse instead.
        raise UsageError(
            f"{run.table_path('modes')} holds mode ids the {tax.name} taxonomy does not have "
            f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); the run was judged against "
            f"{taxonomy_of_run(manifest)}: drop --taxonomy, or re-run extract with --taxonomy {taxonomy}"
        )
    return RunTables(
        run=run,
        traces=run.scan_table("traces").select(TRACE_COLUMNS).collect(engine="streaming"),
        steps=run.scan_table("steps"),
        diagnoses=run.scan_table("diagnoses").select(DIAGNOSIS_COLUMNS).collect(engine="streaming"),
        modes=modes,
        novel_modes=novel_modes,
        clusters=clusters,
        novel_assignments=assignments,
        manifest=manifest,
        taxonomy=tax,
        checked=run.scan_table("modes").filter(pl.col("detected").is_not_null()).select("trace_id", "mode_id"),
    )
