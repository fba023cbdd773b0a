"""The run folder and the table schemas: checked writes and reads, atomic writes, the manifest, and the
trace model's round trip through the `traces` / `steps` tables."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import polars as pl
import pytest

from trajfm import schemas
from trajfm.errors import RunFolderError, SchemaError
from trajfm.runfolder import FILE_MODE, RunFolder, atomic_write_text
from trajfm.traces.model import Step, Trace, traces_from_frames, traces_to_frames


def _trace() -> Trace:
    return Trace(
        trace_id="run/a/0001", source_path="x/0001", source_format="assetops", task="Check chiller 6",
        final_answer="done", agent_model="m", multi_agent=True, reward=0.0, is_correct=False,
        meta={"record": 3},
        steps=[
            Step(position=0, index=1, kind="thought", content="I will ask IoTAgent", agent="MetaAgent"),
            Step(position=1, index=1, kind="action", content="Tool Name: IoTAgent", tool_name="IoTAgent",
                 tool_input="request=x", agent="MetaAgent"),
            Step(position=2, index=1, kind="observation", content="Error encountered: boom", is_error=True,
                 agent="IoTAgent", meta={"review": "Not Accomplished"}),
            Step(position=3, index=1, kind="message", content="nested", parent_id="2", depth=1, agent="IoTAgent"),
        ],
    )  # fmt: skip


def test_traces_round_trip_through_the_tables(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    traces_df, steps_df = traces_to_frames([_trace()])
    run.write_table("traces", traces_df)
    run.write_table("steps", steps_df)
    (back,) = traces_from_frames(run.read_table("traces"), run.read_table("steps"))
    assert back == _trace()
    assert run.read_table("traces")["agents"].to_list() == [["MetaAgent", "IoTAgent"]]


def test_a_wrong_column_is_a_schema_error_naming_table_and_column(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    good = schemas.empty("novel_modes")
    with pytest.raises(SchemaError, match=r"'novel_modes'.*missing column\(s\) title"):
        run.write_table("novel_modes", good.drop("title"))
    with pytest.raises(SchemaError, match="unexpected column"):
        run.write_table("novel_modes", good.with_columns(pl.lit("x").alias("colour")))
    bad_type = good.with_columns(pl.col("steps").cast(pl.List(pl.String())))
    with pytest.raises(SchemaError, match="column 'steps' has type"):
        run.write_table("novel_modes", bad_type)
    assert not run.has("novel_modes")


def test_a_foreign_parquet_is_refused_on_read(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    pl.DataFrame({"a": [1]}).write_parquet(run.table_path("modes"))
    with pytest.raises(SchemaError, match="missing column"):
        run.read_table("modes")
    run.table_path("clusters").write_bytes(b"not parquet at all")
    with pytest.raises(SchemaError, match="not a readable parquet table"):
        run.read_table("clusters")


def test_open_names_the_missing_table_and_the_stage_to_run(tmp_path: Path) -> None:
    RunFolder.create(tmp_path / "run")
    with pytest.raises(RunFolderError, match="no diagnoses.parquet.*trajfm extract"):
        RunFolder.open(tmp_path / "run", need=("diagnoses",))
    with pytest.raises(RunFolderError, match="does not exist"):
        RunFolder.open(tmp_path / "nope")


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")

    class Boom(Exception):
        pass

    run = RunFolder.create(tmp_path)
    df = schemas.empty("novel_modes")
    run.write_table("novel_modes", df)
    before = run.table_path("novel_modes").read_bytes()
    original = pl.DataFrame.write_parquet

    def exploding(self: pl.DataFrame, file: object, *a: object, **k: object) -> None:
        Path(str(file)).write_bytes(b"half a tab")
        raise Boom

    pl.DataFrame.write_parquet = exploding  # type: ignore[method-assign]
    try:
        with pytest.raises(Boom):
            run.write_table("novel_modes", df)
    finally:
        pl.DataFrame.write_parquet = original  # type: ignore[method-assign]
    assert run.table_path("novel_modes").read_bytes() == before
    assert target.read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_written_files_get_the_usual_mode_not_mkstemps_private_one(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    path = run.write_table("novel_modes", schemas.empty("novel_modes"))
    atomic_write_text(tmp_path / "run" / "report.html", "<p>hi</p>")
    for p in (path, tmp_path / "run" / "report.html"):
        assert stat.S_IMODE(os.stat(p).st_mode) == FILE_MODE
    mask = os.umask(0)
    os.umask(mask)
    assert 0o666 & ~mask == FILE_MODE


def test_manifest_sections_are_per_stage(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.update_manifest("extract", {"traces": 3})
    manifest = run.update_manifest("cluster", {"seed": 7})
    assert manifest["stages"]["extract"]["traces"] == 3
    assert manifest["stages"]["cluster"]["seed"] == 7
    assert manifest["schema_version"] == schemas.SCHEMA_VERSION
    (tmp_path / "run" / "manifest.json").write_text("{broken")
    with pytest.raises(RunFolderError, match="not valid JSON"):
        run.read_manifest()
