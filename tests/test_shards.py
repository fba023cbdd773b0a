"""Sharded run-folder tables (`RUN/<table>/part-*.parquet`, written by `--engine ray`): readers take both forms,
and trace ids repeated across batches get the suffixes the local loader gives. No Ray needed here."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trajfm.engines import check_engine
from trajfm.engines.ray_extract import _renumber_duplicate_ids, write_shard
from trajfm.errors import RunFolderError, SchemaError, UsageError
from trajfm.extract import diagnosis_frames
from trajfm.judges.base import Diagnosis, NovelMode
from trajfm.runfolder import RUN_ID_KEY, RunFolder
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Step, Trace, traces_to_frames


def _trace(tid: str, text: str = "hello") -> Trace:
    return Trace(trace_id=tid, source_path=f"x/{tid}", source_format="chat", task="t",
                 steps=[Step(position=0, index=0, kind="message", content=text, agent="a")])  # fmt: skip


def _diagnosis(tid: str, novel: int = 0) -> Diagnosis:
    return Diagnosis(trace_id=tid, judge="rules", status="ok",
                     novel=[NovelMode(title=f"t{k}", description="d", steps=[0]) for k in range(novel)])  # fmt: skip


def _write_shards(root: Path, batches: list[list[tuple[str, int]]]) -> None:
    """One shard per batch for all five stage-1 tables; each item is (trace id, novel modes)."""
    tax = load_taxonomy("mast")
    for i, batch in enumerate(batches):
        traces_df, steps_df = traces_to_frames([_trace(t) for t, _ in batch])
        diag, modes, novel = diagnosis_frames([_diagnosis(t, n) for t, n in batch], tax)
        for table, df in {"traces": traces_df, "steps": steps_df, "diagnoses": diag, "modes": modes,
                          "novel_modes": novel}.items():  # fmt: skip
            (root / table).mkdir(parents=True, exist_ok=True)
            df.write_parquet(root / table / f"part-{i:09d}.parquet")


def test_sharded_and_single_file_tables_read_the_same(tmp_path: Path) -> None:
    whole, sharded = RunFolder.create(tmp_path / "whole"), RunFolder.create(tmp_path / "sharded")
    _write_shards(sharded.root, [[("a", 1), ("b", 0)], [("c", 2)]])
    traces_df, _ = traces_to_frames([_trace(t) for t in "abc"])
    whole.write_table("traces", traces_df)
    assert sharded.has("traces") and sharded.is_sharded("traces") and not whole.is_sharded("traces")
    assert sharded.read_table("traces").equals(whole.read_table("traces"))
    assert sharded.scan_table("traces").select("trace_id").collect()["trace_id"].to_list() == ["a", "b", "c"]
    assert sharded.scan_table("novel_modes").select(pl.len()).collect().item() == 3
    assert sharded.table_path("traces") == sharded.root / "traces"
    # The hash changes with the content of any shard.
    before = sharded.table_sha256("traces")
    traces_df2, _ = traces_to_frames([_trace("c", "changed")])
    traces_df2.write_parquet(sharded.root / "traces" / "part-000000001.parquet")
    assert sharded.table_sha256("traces") != before
    # A single-file write replaces the sharded form; remove_table removes either.
    sharded.write_table("traces", traces_df)
    assert not sharded.is_sharded("traces") and sharded.read_table("traces").height == 3
    sharded.remove_table("modes")
    assert not sharded.has("modes")


def test_a_bad_shard_is_named(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    _write_shards(run.root, [[("a", 0)]])
    (run.root / "traces" / "part-000000009.parquet").write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="traces"):
        run.read_table("traces")
    (run.root / "steps" / "part-000000000.parquet").unlink()
    with pytest.raises(SchemaError, match="no part"):
        run.scan_table("steps")


def test_ids_repeated_across_batches_get_the_local_suffixes(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    # "a" is in all three batches, "b" twice: the local loader would call them a, a~2, a~3 and b, b~2.
    _write_shards(staging, [[("a", 1), ("b", 0)], [("a", 2)], [("b", 1), ("a", 0), ("c", 0)]])
    assert _renumber_duplicate_ids(staging, "run-1") == 3
    run = RunFolder(staging)
    # The rewritten shards carry the run id like every shard the workers write.
    renamed = [p for p in (staging / "traces").glob("*.parquet") if p.name != "part-000000000.parquet"]
    assert {pl.read_parquet_metadata(p).get(RUN_ID_KEY) for p in renamed} == {"run-1"}
    assert run.read_table("traces")["trace_id"].to_list() == ["a", "b", "a~2", "b~2", "a~3", "c"]
    assert run.read_table("diagnoses")["trace_id"].to_list() == ["a", "b", "a~2", "b~2", "a~3", "c"]
    assert set(run.read_table("modes")["trace_id"].unique()) == {"a", "b", "a~2", "b~2", "a~3", "c"}
    assert run.read_table("novel_modes")["novel_id"].to_list() == [
        "a::novel1", "a~2::novel1", "a~2::novel2", "b~2::novel1"
    ]  # fmt: skip


def test_shards_of_another_run_are_refused_naming_the_shard(tmp_path: Path) -> None:
    """Shards carry the run id in their parquet metadata (`write_shard`, as the Ray workers write them); a shard
    from another run than manifest.json names is refused, like a whole table from another run."""
    run = RunFolder(RunFolder.create(tmp_path / "run").root, run_id="run-A")
    run.update_manifest("extract", {})
    traces = [traces_to_frames([_trace(t)])[0] for t in "ab"]
    for i, df in enumerate(traces):
        write_shard(run.root / "traces" / f"part-{i:09d}.parquet", df, "run-A")
    opened = RunFolder.open(run.root)
    assert opened.current_run_id() == "run-A"
    assert opened.read_table("traces")["trace_id"].to_list() == ["a", "b"]
    write_shard(run.root / "traces" / "part-000000001.parquet", traces[1], "run-B")  # a later run's shard
    for read in (opened.read_table, opened.scan_table):
        with pytest.raises(RunFolderError, match=r"mixes two runs: traces/part-000000001.parquet is from run run-B"):
            read("traces")


def test_engine_options_are_checked() -> None:
    check_engine("local")
    with pytest.raises(UsageError, match="--engine"):
        check_engine("spark")
    with pytest.raises(UsageError, match="--address"):
        check_engine("local", "127.0.0.1:6379")
