"""Run folders know their schema version: an older folder (a real one, written by the previous release) opens
through the named migrations; a newer one is refused with a message saying who wrote it and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from trajfm import schemas
from trajfm.cli import app
from trajfm.errors import RunFolderError
from trajfm.migrations import V1_UNCHECKED_RATIONALE, added_since_v1
from trajfm.runfolder import RunFolder

V1 = Path(__file__).parent / "fixtures" / "runs" / "v1_schema1"


@pytest.fixture()
def v1_run(tmp_path: Path) -> Path:
    run = tmp_path / "v1"
    shutil.copytree(V1, run)
    return run


def test_fixture_is_really_schema_1() -> None:
    manifest = json.loads((V1 / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 < schemas.SCHEMA_VERSION
    assert pl.read_parquet(V1 / "diagnoses.parquet").schema["status"] == pl.String()


def test_v1_folder_opens_through_the_migration_and_keeps_its_data(v1_run: Path) -> None:
    before = {t: pl.read_parquet(v1_run / f"{t}.parquet") for t in schemas.TABLES}
    run = RunFolder.open(v1_run)
    manifest = run.read_manifest()
    assert manifest["schema_version"] == schemas.SCHEMA_VERSION
    [migration] = manifest["migrations"]
    assert migration["name"] == "v1-to-v2-status-enum-root-cause-columns-unchecked-modes"
    assert (migration["from_version"], migration["to_version"]) == (1, 2)
    assert "diagnoses.status: string -> enum" in migration["changes"]
    assert manifest["stages"]["extract"]["trajfm_version"] == "0.1.0"
    for table, old in before.items():
        new = run.read_table(table)  # checked against the current schema
        assert new.height == old.height, table
        added = [c for c in new.columns if c not in old.columns]
        assert added == added_since_v1(table), table
        assert new.select(added).null_count().row(0) == (new.height,) * len(added)
        kept = new.drop(added).with_columns(pl.col(pl.Enum).cast(pl.String))
        if table == "modes":  # a mode no rule checked: False in schema 1, null (not checked) now
            unchecked = old["rationale"] == V1_UNCHECKED_RATIONALE
            assert unchecked.sum() > 0 and kept.filter(unchecked)["detected"].null_count() == unchecked.sum()
            kept = kept.with_columns(pl.col("detected").fill_null(False))
        assert kept.equals(old.select(kept.columns)), table
    assert run.read_table("diagnoses").schema["status"] == schemas.DIAGNOSES_SCHEMA["status"]
    assert RunFolder.open(v1_run).read_manifest()["migrations"] == manifest["migrations"]  # applied once


def test_cli_reports_a_v1_folder_end_to_end(v1_run: Path) -> None:
    res = CliRunner().invoke(app, ["report", str(v1_run)])
    assert res.exit_code == 0, res.output
    summary = json.loads((v1_run / "summary.json").read_text())
    assert summary["overview"]["n_traces"] == 16


def test_future_schema_version_is_refused_with_what_to_do(v1_run: Path) -> None:
    manifest = json.loads((v1_run / "manifest.json").read_text())
    manifest["schema_version"] = schemas.SCHEMA_VERSION + 1
    manifest["trajfm_version"] = "9.0.0"
    (v1_run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError, match=r"schema version 3, written by trajfm 9\.0\.0.*Upgrade trajfm"):
        RunFolder.open(v1_run)
    res = CliRunner().invoke(app, ["report", str(v1_run)])
    assert res.exit_code == 1 and "Upgrade trajfm" in res.output and "Traceback" not in res.output
    assert not (v1_run / "summary.json").exists()


def test_manifest_is_checked_both_ways(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.update_manifest("extract", {"traces": 3})
    data = json.loads((tmp_path / "run" / "manifest.json").read_text())
    data["surprise"] = 1
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RunFolderError, match="surprise"):
        run.read_manifest()


def test_a_status_outside_the_enum_is_refused_on_write(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    row = {c: [None] for c in schemas.DIAGNOSES_SCHEMA} | {"trace_id": ["t"], "status": ["fine"]}
    df = pl.DataFrame(row, schema={**schemas.DIAGNOSES_SCHEMA, "status": pl.String()})
    with pytest.raises(schemas.SchemaError, match="'fine' outside"):
        run.write_table("diagnoses", df)
