"""`trajfm export RUN --format trajfm-csv`: the anchor's wide table and title/description CSV."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.errors import RunFolderError, UsageError
from trajfm.export import export_run
from trajfm.extract import run_extract
from trajfm.runfolder import RunFolder
from trajfm.taxonomy import load_taxonomy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules" / "assetops"
MAST = load_taxonomy("mast")
ANCHOR_COLUMNS = [
    "model_id",
    "counter",
    "timestamp",
    "vendor",
    "model",
    "ut_id",
    "addi_fm_cnt",
    "addi_fm_list",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    run_extract([FIXTURES], out)
    return out


def test_cli_export_writes_the_wide_table_and_the_title_description_csv(run_dir: Path) -> None:
    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "trajfm-csv"])
    assert res.exit_code == 0, res.output
    wide = pl.read_csv(run_dir / "export" / "failure_modes.csv", schema_overrides={"ut_id": pl.String})
    mode_columns = [f"{m.id} {m.name}" for m in MAST.modes]
    assert wide.columns[: len(ANCHOR_COLUMNS)] == ANCHOR_COLUMNS
    assert wide.columns[len(ANCHOR_COLUMNS) : len(ANCHOR_COLUMNS) + 14] == mode_columns
    assert mode_columns[0] == "1.1 Disobey Task Specification" and mode_columns[-1] == "3.3 Weak Verification"
    assert wide.height == 4 and wide["counter"].to_list() == [1, 2, 3, 4]
    # a mode the rules judge does not check is empty in every row (not checked), never false
    assert all(wide[c].dtype == pl.Boolean or wide[c].null_count() == wide.height for c in mode_columns)
    assert any(wide[c].null_count() == wide.height for c in mode_columns)

    run = RunFolder.open(run_dir)
    modes = run.read_table("modes")
    for row in wide.iter_rows(named=True):  # every flag equals the modes table
        for m in MAST.modes:
            want = modes.filter((pl.col("trace_id") == row["trace_id"]) & (pl.col("mode_id") == m.id))[
                "detected"
            ][0]
            assert row[f"{m.id} {m.name}"] == want
    row2 = wide.filter(pl.col("ut_id") == "0002").row(0, named=True)
    assert row2["model"] == "fixture-model" and row2["vendor"] == "acme" and row2["model_id"] == "rules"
    assert row2["timestamp"] == "2026-01-05T10_00_00"
    listed = json.loads(row2["addi_fm_list"])
    assert row2["addi_fm_cnt"] == len(listed) >= 1 and set(listed[0]) == {"title", "description"}

    novel = pl.read_csv(run_dir / "export" / "addtional_fm.csv")
    assert novel.columns == ["title", "description"]
    assert novel.height == run.read_table("novel_modes").height == wide["addi_fm_cnt"].sum()


def test_failed_diagnosis_has_empty_flags_not_false(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    run = RunFolder.open(copy)
    diags = run.read_table("diagnoses")
    victim = diags["trace_id"][0]
    run.write_table("diagnoses", diags.with_columns(
        pl.when(pl.col("trace_id") == victim).then(pl.lit("backend_error")).otherwise(pl.col("status")).alias("status")))  # fmt: skip
    run.write_table("modes", run.read_table("modes").filter(pl.col("trace_id") != victim))
    export_run(copy, out=tmp_path / "out")
    wide = pl.read_csv(tmp_path / "out" / "failure_modes.csv")
    row = wide.filter(pl.col("trace_id") == victim).row(0, named=True)
    assert row["status"] == "backend_error"
    assert row["1.1 Disobey Task Specification"] is None


def test_unknown_format_and_missing_run_are_user_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown export format"):
        export_run(run_dir, format="pickle")
    with pytest.raises(RunFolderError):
        export_run(tmp_path / "nope")
    res = CliRunner().invoke(app, ["export", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "does not exist" in res.output


def test_export_follows_the_run_taxonomy(tmp_path: Path) -> None:
    run_extract([FIXTURES], tmp_path / "run", taxonomy="agentrx")
    export_run(tmp_path / "run")
    wide = pl.read_csv(tmp_path / "run" / "export" / "failure_modes.csv")
    agentrx = load_taxonomy("agentrx")
    assert [c for c in wide.columns if c.split(" ")[0] in agentrx.ids] == [
        f"{m.id} {m.name}" for m in agentrx.modes
    ]
