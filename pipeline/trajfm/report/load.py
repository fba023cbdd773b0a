"""Read what stage 3 needs from a run folder.

`load_run(path)` returns a `RunTables`: lazy scans of the stage-1 tables (required), the clusters (optional:
absent when the cluster stage was skipped, e.g. a run with no novel modes), the manifest and the taxonomy the run
was judged against (as recorded by extract in the manifest, `mast` when not recorded).

Nothing per trace or per novel mode is held here: the figures are computed by one pass over the run's parts
(`RunTables.trace_parts`: the same-named shard of every table, a batch of whole traces; `passes.py`), and the
drill-down and quotes read the text of the few traces they show. Every table is checked against
`trajfm.schemas` on read, so a wrong column is a `SchemaError` naming the file. Clusters made from other novel
modes than the ones in novel_modes (extract re-run since) are a `RunFolderError` asking to re-cluster: checked a
shard pair at a time when the cluster stage wrote the assignments per shard, else on 64-bit hashes of the ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import polars as pl

from trajfm import schemas
from trajfm.errors import RunFolderError, UsageError
from trajfm.runfolder import RunFolder
from trajfm.taxonomy import Taxonomy, load_taxonomy

STAGE1_TABLES = ("traces", "steps", "diagnoses", "modes", "novel_modes")

PART_ROWS = 100_000  # rows of a table read at a time where Python looks at each (`RunTables.parts`)
UNKNOWN_MODEL = "unknown"  # the model name shown for traces whose source names none


@dataclass(frozen=True)
class Part:
    """The rows of one batch of traces in every stage-1 table, lazily: one shard of each table when the run is
    sharded (both engines write a batch's rows of every table into shards of one name), else the whole tables;
    and the same batch's novel_assignments shard when the cluster stage wrote it so (None: `RunTables.lookup`)."""

    index: int
    traces: pl.LazyFrame  # every column (the traces' `meta` as null)
    steps: pl.LazyFrame
    diagnoses: pl.LazyFrame
    modes: pl.LazyFrame
    novel_modes: pl.LazyFrame
    assignments: pl.LazyFrame | None = None


ASSIGNMENT_COLUMNS = ("novel_id", "cluster_id", "probability", "x", "y")


@dataclass(frozen=True)
class RunTables:
    """Everything the report reads from one run folder: lazy scans of the tables and the run's small tables
    (clusters, manifest, taxonomy). Nothing per trace or per novel mode is held."""

    run: RunFolder
    steps: pl.LazyFrame  # read lazily (the largest table): figures aggregate it, the drill-down reads its traces
    clusters: pl.DataFrame | None
    manifest: dict[str, Any]
    taxonomy: Taxonomy
    # The cluster stage wrote novel_assignments shard by shard, shard i holding the novel modes of shard i of
    # novel_modes (checked on read): each part reads its own. Else `lookup` holds them all (a single file).
    assignments_aligned: bool = False
    remap: dict[int, int] = field(default_factory=dict)  # families shown as one (`families.merge_near_identical`)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def clustered(self) -> bool:
        return self.clusters is not None

    def scan(self, table: str) -> pl.LazyFrame:
        """The whole of a stage-1 table, lazily (the traces' `meta`, shown nowhere in the report, as null)."""
        lf = self.run.scan_table(table)
        return lf.with_columns(meta=pl.lit(None, pl.String)) if table == "traces" else lf

    def scan_assignments(self) -> pl.LazyFrame:
        """novel_assignments (ASSIGNMENT_COLUMNS), the merged families' ids replaced."""
        return _remapped(self.run.scan_table("novel_assignments").select(ASSIGNMENT_COLUMNS), self.remap)

    def n_assignments(self, outliers: bool = False) -> int:
        lf = self.scan_assignments()
        if outliers:
            lf = lf.filter(pl.col("cluster_id") == -1)
        return int(lf.select(pl.len()).collect(engine="streaming").item())

    def lookup(self) -> tuple[pl.DataFrame, bool]:
        """Every novel mode's assignment, keyed by a 64-bit hash of its novel_id (by novel_id itself when two
        hashes collide): key, cluster_id, probability, x, y, and whether the key is the hash. Only for runs whose
        assignments are not written per shard (about 40 bytes a novel mode)."""
        if "lookup" not in self._cache:
            pieces = [
                p.select(ASSIGNMENT_COLUMNS).collect().with_columns(key=pl.col("novel_id").hash()).drop("novel_id")
                for p in _slices(self.run, "novel_assignments", PART_ROWS)
            ]
            lookup = pl.concat(pieces) if pieces else pl.DataFrame(
                schema={"cluster_id": pl.Int64, "probability": pl.Float64, "x": pl.Float64, "y": pl.Float64,
                        "key": pl.UInt64}
            )  # fmt: skip
            is_hash = not lookup["key"].is_duplicated().any()
            if not is_hash:  # a collision (about 1 in 10^7 at a million modes): the ids themselves
                lookup = self.scan_assignments().with_columns(key=pl.col("novel_id")).drop("novel_id").collect()
            self._cache["lookup"] = (_remapped(lookup.lazy(), self.remap).collect(), is_hash)
        return self._cache["lookup"]

    def trace_parts(self, *, whole: bool = False) -> Sequence[Part]:
        """The run as parts holding whole traces: one per shard name when every stage-1 table is sharded with the
        same shard names (the layout both engines write: one batch of traces per shard name), else (or with
        `whole`) one part of the whole tables. `passes.accumulate` checks that each part's rows name only its
        own traces and the caller falls back to `whole` when they do not."""
        names = None
        if not whole and all(self.run.is_sharded(t) for t in STAGE1_TABLES):
            per_table = [[p.name for p in self.run.shard_paths(t)] for t in STAGE1_TABLES]
            if per_table[0] and all(n == per_table[0] for n in per_table[1:]):
                names = per_table[0]
        if names is None:
            return [Part(0, self.scan("traces"), self.scan("steps"), self.scan("diagnoses"), self.scan("modes"),
                         self.scan("novel_modes"))]  # fmt: skip
        for t in STAGE1_TABLES:
            self.run.scan_table(t)  # the checks (schema, run id) of the whole table
        assign = self.run.shard_paths("novel_assignments") if self.clustered and self.assignments_aligned else None
        if self.clustered:
            self.run.scan_table("novel_assignments")

        return _Parts(self, names, assign)

    def parts(self, table: str, rows: int = PART_ROWS) -> Iterator[pl.LazyFrame]:
        """The table as consecutive lazy parts, in table order: each shard (or the single file), cut into
        `rows`-row slices (parquet slices read only their row groups). For Python work on a table's rows that
        must stay bounded by a part: `collect_batches` runs ahead of a slow consumer, so it is not used."""
        self.run.scan_table(table)  # the checks (schema, run id) of the whole table
        yield from _slices(self.run, table, rows)

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


class _Parts(Sequence[Part]):
    """The parts of a sharded run, each made when it is asked for: a LazyFrame that has been collected keeps its
    file's metadata (about 100 KB a shard), so parts made all at once and kept grew with the run."""

    def __init__(self, t: RunTables, names: list[str], assign: list[Path] | None) -> None:
        self.t, self.names, self.assign = t, names, assign

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> Part: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Part]: ...
    def __getitem__(self, i: int | slice) -> Part | Sequence[Part]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n, run = self.names[i], self.t.run
        return Part(
            i, _shard(run, "traces", run.table_dir("traces") / n), _shard(run, "steps", run.table_dir("steps") / n),
            _shard(run, "diagnoses", run.table_dir("diagnoses") / n), _shard(run, "modes", run.table_dir("modes") / n),
            _shard(run, "novel_modes", run.table_dir("novel_modes") / n),
            assignments=None if self.assign is None else
            _remapped(_shard(run, "novel_assignments", self.assign[i]).select(ASSIGNMENT_COLUMNS), self.t.remap),
        )  # fmt: skip


def _shard(run: RunFolder, table: str, path: Path) -> pl.LazyFrame:
    lf = pl.scan_parquet(path, glob=False)
    lf = lf.select(list(schemas.TABLES[table])).cast(schemas.TABLES[table])  # type: ignore[arg-type]
    return lf.with_columns(meta=pl.lit(None, pl.String)) if table == "traces" else lf


def _remapped(lf: pl.LazyFrame, remap: dict[int, int]) -> pl.LazyFrame:
    return lf.with_columns(pl.col("cluster_id").replace(remap).cast(pl.Int64)) if remap else lf


def _slices(run: RunFolder, table: str, rows: int) -> Iterator[pl.LazyFrame]:
    files = run.shard_paths(table) if run.is_sharded(table) else [run.table_file(table)]
    for path in files:
        n = pl.scan_parquet(path, glob=False).select(pl.len()).collect().item()  # from the footer
        part = pl.scan_parquet(path, glob=False).select(list(schemas.TABLES[table])).cast(schemas.TABLES[table])  # type: ignore[arg-type]
        if table == "traces":
            part = part.with_columns(meta=pl.lit(None, pl.String))
        for start in range(0, n, rows):
            yield part.slice(start, rows)


def _collect(run: RunFolder, table: str) -> pl.DataFrame:
    """A whole table, read shard by shard through a lazy scan (no second copy while concatenating)."""
    return run.scan_table(table).collect(engine="streaming")


def _aligned(run: RunFolder) -> bool:
    """Whether shard i of novel_assignments holds exactly the novel modes of shard i of novel_modes (the cluster
    stage writes a sharded run's assignments so), checked a shard pair at a time."""
    if not (run.is_sharded("novel_assignments") and run.is_sharded("novel_modes")):
        return False
    assign, novel = run.shard_paths("novel_assignments"), run.shard_paths("novel_modes")
    if len(assign) != len(novel):
        return False
    for a, n in zip(assign, novel, strict=True):
        ids_a = pl.scan_parquet(a, glob=False).select("novel_id").unique()
        ids_n = pl.scan_parquet(n, glob=False).select("novel_id").unique()
        differ = pl.concat([ids_a.join(ids_n, on="novel_id", how="anti"), ids_n.join(ids_a, on="novel_id", how="anti")])
        if differ.select(pl.len()).collect().item():
            return False
    return True


def _stale(run: RunFolder) -> int:
    """How many novel ids are in one of novel_modes and novel_assignments but not the other, compared on 64-bit
    hashes by the streaming engine (it holds the distinct hashes of one table, 8 bytes a novel mode)."""
    assign = run.scan_table("novel_assignments").select(key=pl.col("novel_id").hash()).unique()
    novel = run.scan_table("novel_modes").select(key=pl.col("novel_id").hash())
    missing = novel.join(assign, on="key", how="anti").unique().select(pl.len()).collect(engine="streaming").item()
    matched = novel.join(assign, on="key", how="semi").unique().select(pl.len()).collect(engine="streaming").item()
    n_assign = assign.select(pl.len()).collect(engine="streaming").item()
    return int(missing) + int(n_assign) - int(matched)


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
    # One without the other means a half-finished cluster stage; report it as not clustered.
    has_both = run.has("clusters") and run.has("novel_assignments")
    clusters = _collect(run, "clusters") if has_both else None
    aligned = False
    if has_both:
        aligned = _aligned(run)
        stale = 0 if aligned else _stale(run)
        if stale:
            # The families would point at novel modes that are gone (or miss new ones): never draw them.
            raise RunFolderError(
                f"{run.table_path('clusters')} was made from other novel modes than {run.table_path('novel_modes')} "
                f"({stale} differ; extract was re-run since): run `trajfm cluster {run.root}` again, then "
                "`trajfm report`"
            )
    tax = load_taxonomy(taxonomy if taxonomy is not None else taxonomy_of_run(manifest))
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
        steps=run.scan_table("steps"),
        clusters=clusters,
        manifest=manifest,
        taxonomy=tax,
        assignments_aligned=aligned,
    )
