"""Named migrations that bring a run folder written by an older trajfm to the current schema.

Contract:
- A run folder's `manifest.json` says its `schema_version` (a folder without a manifest has nothing versioned
  yet and is taken as current). `check_and_migrate(root)` runs when a folder is opened or created:
  - the current version: nothing happens;
  - an older version: every migration from that version up is applied in order, in place, each write atomic,
    and recorded in the manifest's `migrations` list (name, versions, when, by which trajfm, what changed);
  - a newer version, or an older one no migration starts from: a `RunFolderError` saying which trajfm wrote the
    folder and what to do (upgrade trajfm, or re-run the stages into a new folder).
- A migration is a function of the folder that returns what it changed (one line each); it reads tables without
  the current schema check (they are in the old shape) and writes them in the new one.

To change the run-folder shape: bump `schemas.SCHEMA_VERSION`, add a `Migration` from the previous version here,
and keep a folder written by the previous release under tests/fixtures/runs/ so the test opens it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from trajfm import schemas
from trajfm.errors import RunFolderError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Migration:
    name: str
    from_version: int
    apply: Callable[[Path, dict[str, Any]], list[str]]  # (folder, manifest dict to update) -> what changed

    @property
    def to_version(self) -> int:
        return self.from_version + 1


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from trajfm.runfolder import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


# The tables of schema 1 as trajfm 0.1.0 (commit e5ea913) wrote them: what a v1 folder can hold.
V1_COLUMNS: dict[str, tuple[str, ...]] = {
    "traces": ("trace_id", "source_path", "source_format", "task", "final_answer", "agent_model", "vendor",
               "scenario", "utterance_id", "run_id", "multi_agent", "reward", "is_correct", "review_status",
               "n_steps", "n_chars", "agents", "meta"),
    "steps": ("trace_id", "position", "index", "step_id", "parent_id", "depth", "kind", "agent", "tool_name",
              "tool_input", "content", "is_error", "start_time", "end_time", "meta"),
    "diagnoses": ("trace_id", "judge", "judge_model", "prompt_version", "status", "error", "task_completed",
                  "summary", "root_cause_step", "root_cause_agent", "tokens_in", "tokens_out", "latency_s", "calls",
                  "cached", "raw_reply"),
    "modes": ("trace_id", "mode_id", "mode_name", "category", "detected", "steps", "evidence",
              "evidence_verified", "rationale", "confidence"),
    "novel_modes": ("novel_id", "trace_id", "title", "description", "steps", "evidence"),
    "clusters": ("cluster_id", "name", "keywords", "size", "share", "representatives", "nearest_mode",
                 "similarity", "is_novel", "new_since_baseline", "stability", "definition"),
    "novel_assignments": ("novel_id", "cluster_id", "probability", "assigned", "x", "y"),
}  # fmt: skip
# The rationale the schema-1 rules judge gave a mode that no rule checks (then detected=False; now null).
V1_UNCHECKED_RATIONALE = "no rule checks this mode"


def added_since_v1(table: str) -> list[str]:
    """Columns of the current schema that a schema-1 table did not have (null in a migrated folder)."""
    return [c for c in schemas.TABLES[table] if c not in V1_COLUMNS[table]]


def _v1_to_v2(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Schema 2: every column added since schema 1 (`added_since_v1`: root-cause confidence, source outcome,
    scorecard dimensions, evidence steps, ...) is added as null (the old trajfm did not say); diagnoses.status is
    an enum column (`schemas.DiagnosisStatus`); a mode no rule checked is detected=null, not False; each stage
    section records the trajfm that ran it (v1 kept only the first writer's version at the top: the best known
    for every stage). Each step is skipped where the folder already has it (a folder written between the
    column additions and the version bump)."""
    from trajfm.runfolder import atomic_path

    changes: list[str] = []
    for table, schema in schemas.TABLES.items():
        path = root / f"{table}.parquet"
        if not path.is_file():
            continue
        df = pl.read_parquet(path, glob=False)
        before = df
        if table == "diagnoses" and "status" in df.columns and df.schema["status"] != schema["status"]:
            allowed = {s.value for s in schemas.DiagnosisStatus}
            unknown = sorted(set(df["status"].drop_nulls().to_list()) - allowed)
            if unknown:
                raise RunFolderError(
                    f"{path}: status value(s) {', '.join(map(repr, unknown))} are not statuses of any trajfm "
                    "release; the folder was not written by trajfm, re-run `trajfm extract` into a new folder"
                )
            df = df.with_columns(pl.col("status").cast(schema["status"]))
            changes.append("diagnoses.status: string -> enum")
        if table == "modes" and {"rationale", "detected"} <= set(df.columns):
            unchecked = (pl.col("rationale") == V1_UNCHECKED_RATIONALE) & (pl.col("detected") == False)  # noqa: E712
            n = df.filter(unchecked).height
            if n:
                df = df.with_columns(
                    pl.when(unchecked).then(None).otherwise(pl.col("detected")).alias("detected")
                )
                changes.append(f"modes.detected: {n} rows no rule checked -> null (not checked)")
        for column in added_since_v1(table):
            if column not in df.columns:
                df = df.with_columns(pl.lit(None, dtype=schema[column]).alias(column))
                changes.append(f"{table}.{column}: added (null)")
        if df is not before:
            with atomic_path(path) as tmp:
                df.select([c for c in schema if c in df.columns]).write_parquet(tmp)
    first_writer = manifest.get("trajfm_version")
    for stage, section in (manifest.get("stages") or {}).items():
        if isinstance(section, dict) and "trajfm_version" not in section:
            section["trajfm_version"] = first_writer
            changes.append(f"stages.{stage}.trajfm_version = {first_writer} (from the manifest's top level)")
    return changes


MIGRATIONS: tuple[Migration, ...] = (
    Migration("v1-to-v2-status-enum-root-cause-columns-unchecked-modes", 1, _v1_to_v2),
)


def _this_trajfm() -> str | None:
    try:
        return metadata.version("trajfm")
    except metadata.PackageNotFoundError:
        return None


def check_and_migrate(root: Path) -> list[str]:
    """Bring the run folder at `root` to the current schema (see the module docstring); the names of the
    migrations applied (empty when it already was current)."""
    path = root / MANIFEST
    if not path.exists():
        return []
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path} is not valid JSON ({exc}); delete it and re-run the stages") from exc
    if not isinstance(manifest, dict):
        raise RunFolderError(
            f"{path} is not a trajfm manifest (not a JSON object); delete it and re-run the stages"
        )
    version = manifest.get("schema_version")
    writer = manifest.get("trajfm_version") or "an unknown trajfm version"
    current = schemas.SCHEMA_VERSION
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFolderError(
            f"{path} has no valid schema_version ({version!r}); it was not written by trajfm, or was edited. "
            "Re-run the stages into a new folder"
        )
    if version == current:
        return []
    if version > current:
        raise RunFolderError(
            f"run folder {root} has schema version {version}, written by trajfm {writer}; this trajfm "
            f"({_this_trajfm() or 'unknown version'}) reads schema versions up to {current}. Upgrade trajfm "
            "(pip install -U trajfm) to read it, or re-run the stages into a new folder with this version"
        )
    applied: list[str] = []
    while version < current:
        step = next((m for m in MIGRATIONS if m.from_version == version), None)
        if step is None:
            raise RunFolderError(
                f"run folder {root} has schema version {version} (written by trajfm {writer}) and no migration "
                f"leads from it to version {current}; re-run the stages into a new folder"
            )
        changes = step.apply(root, manifest)
        manifest["schema_version"] = step.to_version
        manifest.setdefault("migrations", []).append(
            {
                "name": step.name,
                "from_version": step.from_version,
                "to_version": step.to_version,
                "applied_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "by": _this_trajfm(),
                "changes": changes,
            }
        )
        _write_json(path, manifest)  # after each step: a killed migration resumes from the last finished one
        applied.append(step.name)
        version = step.to_version
    return applied
