"""`manifest.json` of a run folder as a pydantic model: what is promised at the top level, checked on read and write.

Top level (closed: an unknown key is an error, so a reader never depends on something no writer promises):
- `schema_version`: the run-folder schema (`trajfm.schemas.SCHEMA_VERSION`) the folder is in.
- `run_id`: the run that last wrote the folder (see `trajfm.runfolder`);
- `trajfm_version`: the trajfm that last wrote the manifest; each stage section also records its own
  `trajfm_version` (so a folder whose stages ran under different releases says so).
- `machine`, `package_versions`: where and with what the last stage ran.
- `stages`: one open section per stage (extract, cluster, report, run), each with at least `finished_at` and
  `trajfm_version`; the rest is the stage's own record (inputs, options, counts, timings).
- `migrations`: the named migrations applied to bring an older folder to this schema (`trajfm.migrations`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StageRecord(BaseModel):
    """One stage's section. Open: each stage adds its own fields."""

    model_config = ConfigDict(extra="allow")

    finished_at: str
    trajfm_version: str | None = None


class MigrationRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    from_version: int
    to_version: int
    applied_at: str
    by: str | None = None  # the trajfm version that applied it
    changes: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int
    run_id: str | None = None  # the run that last wrote the folder (trajfm.runfolder: staging and lock)
    trajfm_version: str | None = None
    machine: dict[str, str] = Field(default_factory=dict)
    package_versions: dict[str, str | None] = Field(default_factory=dict)
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    migrations: list[MigrationRecord] = Field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
