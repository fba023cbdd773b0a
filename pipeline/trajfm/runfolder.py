"""A run folder: where the stages keep their tables, `manifest.json`, and atomic writes.

Layout of RUN/:
  traces.parquet steps.parquet diagnoses.parquet modes.parquet novel_modes.parquet   (stage 1)
  clusters.parquet novel_assignments.parquet                                         (stage 2)
  report.html summary.json summary.md                                                (stage 3)
  manifest.json   inputs (with hashes), options, seeds, models, prompt version, versions, counts, timings
  cache/          judge reply cache and embedding cache

Every write goes to a temporary file in the same folder and is renamed into place, so a killed run never leaves
a half-written table. `manifest.json` (`trajfm.manifest.Manifest`) has one section per stage; a stage updates
only its own section.

Opening or creating a folder checks its schema version: an older folder is migrated by the named migrations of
`trajfm.migrations`, a newer one is refused with a message naming the trajfm that wrote it.

A table is either one file, `RUN/<table>.parquet` (small runs, the local engine), or a dataset directory of
shards, `RUN/<table>/part-*.parquet` (written by `--engine ray`, one shard per batch; a run folder never holds
both forms of one table). Readers accept both transparently: `read_table` (the whole table, checked),
`scan_table` (a polars LazyFrame over the file or every shard, for aggregations whose memory is bounded by a
batch, not by the run), `has`, `table_path` (the form present), `remove_table`, `table_sha256`.

Every table file and every shard carries its run's id in its parquet key-value metadata (RUN_ID_KEY); readers
refuse a table, or any shard of one, whose id differs from the one manifest.json names (`check_run_id`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from trajfm import schemas
from trajfm.errors import RunFolderError, SchemaError
from trajfm.manifest import Manifest, StageRecord

MANIFEST = "manifest.json"


def _default_file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask): mkstemp's 0o600 would hide reports from
    other users of the machine."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _default_file_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a regular file; anything else (a FIFO, /dev/zero) is an OSError, never read forever."""
    import stat

    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file; not hashed")
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions(
    names: tuple[str, ...] = (
        "trajfm",
        "polars",
        "pyarrow",
        "sentence-transformers",
        "torch",
        "hdbscan",
        "umap-learn",
        "scikit-learn",
        "altair",
        "vl-convert-python",
        "typer",
        "httpx",
        "pydantic",
        "numpy",
    ),
) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


RUN_ID_KEY = "trajfm.run_id"  # parquet key-value metadata entry naming the run a table belongs to


def write_shard(path: Path, df: pl.DataFrame, run_id: str) -> None:
    """One shard of a table, atomically, carrying the run id in its parquet metadata like a whole table
    (`RunFolder.write_table`), so readers refuse shards of two runs side by side."""
    try:
        with atomic_path(path) as tmp:
            df.write_parquet(tmp, metadata={RUN_ID_KEY: run_id})
    except (OSError, pl.exceptions.PolarsError) as exc:  # a full disk, a read-only folder: one line
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0].rpartition("IO error: ")[2]
        raise RunFolderError(
            f"cannot write {path} ({reason}); free some space or fix the folder's permissions"
        ) from exc


def _run_id_of(path: Path, shown: Path) -> str | None:
    """The run id in the parquet metadata of the file at `path` (None when it records none)."""
    try:
        meta = pl.read_parquet_metadata(path)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: say which
        raise SchemaError(
            f"{shown} is not a readable parquet table ({exc}); re-run the stage that writes it"
        ) from exc
    return meta.get(RUN_ID_KEY) or None


@dataclass(frozen=True)
class RunFolder:
    """Paths and helpers for one run folder.

    `run_id` is set on a folder being staged by `trajfm.runlock.staged_run`; otherwise the run id is the one in
    manifest.json (created on the first table written to a folder that has none)."""

    root: Path
    run_id: str | None = None

    @classmethod
    def create(cls, root: Path | str) -> RunFolder:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise RunFolderError(f"{root} exists and is not a folder; choose another --out")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a parent is a file, or no permission: name the path, not a traceback
            raise RunFolderError(
                f"cannot create run folder {root} ({exc.strerror or exc}); choose another --out"
            ) from exc
        from trajfm.migrations import check_and_migrate

        check_and_migrate(root)  # an earlier run's folder: refused if newer, migrated if older
        return cls(root)

    @classmethod
    def open(cls, root: Path | str, *, need: tuple[str, ...] = ()) -> RunFolder:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise RunFolderError(
                f"{root} is a file, not a run folder; pass the folder `trajfm extract TRACES --out RUN` wrote"
            )
        if not root.is_dir():
            raise RunFolderError(
                f"run folder {root} does not exist; create it with `trajfm extract TRACES --out {root}`"
            )
        from trajfm.migrations import check_and_migrate

        check_and_migrate(root)
        run = cls(root)
        for table in need:
            if not run.table_path(table).exists():
                raise RunFolderError(
                    f"run folder {root} has no {table}.parquet; run the stage that writes it first "
                    f"({'trajfm extract' if table in ('traces', 'steps', 'diagnoses', 'modes', 'novel_modes') else 'trajfm cluster'})"
                )
        return run

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def table_file(self, table: str) -> Path:
        """Where the single-file form of `table` lives (whether or not it exists)."""
        return self.root / f"{table}.parquet"

    def table_dir(self, table: str) -> Path:
        """Where the sharded form of `table` lives: a directory of part-*.parquet files."""
        return self.root / table

    def table_path(self, table: str) -> Path:
        """The form of `table` that is present: its shard directory if there is one, else the single file."""
        folder = self.table_dir(table)
        return folder if folder.is_dir() else self.table_file(table)

    def has(self, table: str) -> bool:
        return self.table_file(table).exists() or self.table_dir(table).is_dir()

    def is_sharded(self, table: str) -> bool:
        return self.table_dir(table).is_dir()

    def shard_paths(self, table: str) -> list[Path]:
        """The shards of a sharded table in name order (their rows in this order are the table's order)."""
        return sorted(self.table_dir(table).glob("part-*.parquet"))

    def remove_table(self, table: str) -> None:
        """Delete `table` in whichever form it is present (no error when absent)."""
        self.table_file(table).unlink(missing_ok=True)
        folder = self.table_dir(table)
        if folder.is_dir():
            shutil.rmtree(folder)

    def current_run_id(self, *, create: bool = False) -> str | None:
        """This folder's run id: the staged one, else manifest.json's (made and recorded when `create`)."""
        if self.run_id is not None:
            return self.run_id
        manifest = self.read_manifest()
        run_id = manifest.get("run_id")
        if run_id is None and create:
            from trajfm.runlock import new_run_id

            run_id = manifest["run_id"] = new_run_id()
            manifest.setdefault("schema_version", schemas.SCHEMA_VERSION)  # a new folder is in this schema
            atomic_write_text(
                self.root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str)
            )
        return run_id if isinstance(run_id, str) else None

    def write_table(self, table: str, df: pl.DataFrame) -> Path:
        df = schemas.check(table, df)
        path = self.table_file(table)
        run_id = self.current_run_id(create=True)
        try:
            with atomic_path(path) as tmp:
                df.write_parquet(tmp, metadata={RUN_ID_KEY: run_id or ""})
        except (
            OSError,
            pl.exceptions.PolarsError,
        ) as exc:  # a full disk, a read-only folder: one line, no traceback
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0].rpartition("IO error: ")[2]
            raise RunFolderError(
                f"cannot write {path} ({reason}); free some space or fix the folder's permissions"
            ) from exc
        if self.table_dir(table).is_dir():  # the new single file replaces an older sharded form
            shutil.rmtree(self.table_dir(table))
        return path

    def write_shard(self, table: str, index: int, df: pl.DataFrame) -> Path:
        """One shard of a sharded table, `RUN/<table>/part-<index>.parquet` (9 digits, so name order is row
        order), atomically, carrying this folder's run id in its parquet metadata like a whole table."""
        path = self.table_dir(table) / f"part-{index:09d}.parquet"
        write_shard(path, schemas.check(table, df), self.current_run_id(create=True) or "")
        return path

    def table_run_id(self, table: str) -> str | None:
        """The run id recorded in a table's parquet metadata (None for tables written before run ids)."""
        return _run_id_of(self.table_file(table), self.table_path(table))

    def check_run_id(self, table: str) -> None:
        """Refuse a table from another run than manifest.json names (an interrupted or concurrent writer); for
        a sharded table (the Ray engine's), every shard is checked."""
        expected = self.current_run_id()
        if expected is None:  # written before run ids
            return
        files = self.shard_paths(table) if self.is_sharded(table) else [self.table_file(table)]
        for path in files:
            got = _run_id_of(path, path)
            # A table that records no run (written before run ids, or rewritten by hand with plain polars) is read
            # as it is; one that names another run than the manifest is refused.
            if got is not None and got != expected:
                name = path.relative_to(self.root) if path.is_relative_to(self.root) else path
                raise RunFolderError(
                    f"{self.root} mixes two runs: {name} is from run {got} but manifest.json names run "
                    f"{expected}; re-run `trajfm extract ... --out {self.root}` (or the stage that writes it) to "
                    "make one complete run"
                )

    def scan_table(self, table: str) -> pl.LazyFrame:
        """A LazyFrame over `table` (its file or all its shards), with the schema checked from the metadata
        only: nothing is read until it is collected, so aggregations stream shard by shard."""
        path = self.table_path(table)
        if not self.has(table):
            raise RunFolderError(f"{path} does not exist; run the stage that writes {table!r} first")
        self.check_run_id(table)
        sources: Path | list[Path] = path
        if path.is_dir():
            sources = self.shard_paths(table)
            if not sources:
                raise SchemaError(f"{path} holds no part-*.parquet shards; re-run the stage that writes it")
        try:
            lf = pl.scan_parquet(sources, glob=False)
            got = lf.collect_schema()
        except Exception as exc:  # a corrupt or foreign file: say which
            raise SchemaError(
                f"{path} is not a readable parquet table ({exc}); re-run the stage that writes it"
            ) from exc
        schemas.check(table, pl.DataFrame(schema=got), source=str(path))
        return lf.select(list(schemas.TABLES[table])).cast(schemas.TABLES[table])  # type: ignore[arg-type]

    def read_table(self, table: str) -> pl.DataFrame:
        path = self.table_path(table)
        if not self.has(table):
            raise RunFolderError(f"{path} does not exist; run the stage that writes {table!r} first")
        self.check_run_id(table)
        try:
            if path.is_dir():
                shards = self.shard_paths(table)
                if not shards:
                    raise SchemaError(f"no part-*.parquet shards in {path}")
                df = pl.concat([pl.read_parquet(s, glob=False) for s in shards], how="vertical_relaxed")
            else:
                df = pl.read_parquet(path, glob=False)  # a folder named x[1] is a name
        except Exception as exc:  # a corrupt or foreign file: say which
            raise SchemaError(
                f"{path} is not a readable parquet table ({exc}); re-run the stage that writes it"
            ) from exc
        return schemas.check(table, df, source=str(path))

    def table_sha256(self, table: str) -> str:
        """sha256 of the table's file, or of its shards' names and hashes in order (for the manifest)."""
        path = self.table_path(table)
        if not path.is_dir():
            return file_sha256(path)
        h = hashlib.sha256()
        for shard in self.shard_paths(table):
            h.update(f"{shard.name}\0{file_sha256(shard)}\n".encode())
        return h.hexdigest()

    # --- manifest ---------------------------------------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        """manifest.json checked against `trajfm.manifest.Manifest`; None when there is none yet."""
        path = self.root / MANIFEST
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunFolderError(
                f"{path} is not valid JSON ({exc}); delete it and re-run the stages"
            ) from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("stages", {}), dict):
            raise RunFolderError(
                f'{path} is not a trajfm manifest (a JSON object with a "stages" object was expected, found '
                f"{type(raw).__name__}); delete it and re-run the stages"
            )
        try:
            return Manifest.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise RunFolderError(
                f"{path} does not match the manifest of schema version {schemas.SCHEMA_VERSION}: {where}: "
                f"{first['msg']} ({exc.error_count()} problem(s)); re-run the stages into a new folder"
            ) from exc

    def read_manifest(self) -> dict[str, Any]:
        """manifest.json as a dict (checked, see `manifest()`); {} when there is none yet."""
        manifest = self.manifest()
        return manifest.as_dict() if manifest is not None else {}

    def update_manifest(self, stage: str, section: dict[str, Any]) -> dict[str, Any]:
        """Replace this stage's section of manifest.json (atomically) and return the whole manifest."""
        version = package_versions(("trajfm",))["trajfm"]
        manifest = self.manifest() or Manifest(schema_version=schemas.SCHEMA_VERSION)
        manifest.schema_version = schemas.SCHEMA_VERSION
        manifest.trajfm_version = version
        manifest.machine = {"python": platform.python_version(), "platform": platform.platform()}
        section = json.loads(json.dumps(section, default=str))  # plain JSON values, as they will be read back
        section.setdefault("finished_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        section["trajfm_version"] = version
        manifest.stages[stage] = StageRecord.model_validate(section)
        manifest.package_versions = package_versions()
        run_id = self.current_run_id(create=False)
        if run_id is not None:
            manifest.run_id = run_id
        data = manifest.as_dict()
        try:
            atomic_write_text(self.root / MANIFEST, json.dumps(data, indent=2, sort_keys=True, default=str))
        except OSError as exc:
            raise RunFolderError(
                f"cannot write {self.root / MANIFEST} ({exc.strerror or exc}); free some space or fix the "
                "folder's permissions"
            ) from exc
        return data
