"""Make a large run folder from a sharded one by copying its shards K times, every trace id (and every id that
refers to one: novel_id, the assignments' novel_id) given a per-copy suffix, so the tables stay consistent and the
folder is read like a run extract wrote (same run id in every shard, same shard layout, one batch per shard name).
Stage-2 tables are copied too: clusters as they are, novel_assignments with the copies' rows, in novel_id order
as the cluster stage writes them. For measuring `trajfm report` at sizes extract would take an hour to make.

    python benchmarks/copy_run.py SRC DST --copies 10
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import polars as pl

from trajfm.runfolder import RUN_ID_KEY

TABLES = ("traces", "steps", "diagnoses", "modes", "novel_modes")


def suffixed(col: str, k: int) -> pl.Expr:
    return pl.col(col) if k == 0 else pl.col(col) + f"@{k}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--copies", type=int, required=True)
    a = ap.parse_args()
    src, dst = a.src, a.dst
    run_id = json.loads((src / "manifest.json").read_text())["run_id"]
    dst.mkdir(parents=True)
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    names = sorted(p.name for p in (src / "traces").glob("part-*.parquet"))
    for table in TABLES:
        (dst / table).mkdir()
        for k in range(a.copies):
            for i, name in enumerate(names):
                df = pl.read_parquet(src / table / name)
                if k:
                    if table == "novel_modes":
                        rest = pl.col("novel_id").str.slice(pl.col("trace_id").str.len_chars())
                        assert df.select(pl.col("novel_id").str.starts_with(pl.col("trace_id")).all()).item()
                        df = df.with_columns(novel_id=pl.concat_str(suffixed("trace_id", k), rest))
                    df = df.with_columns(trace_id=suffixed("trace_id", k))
                out = dst / table / f"part-{k * len(names) + i:09d}.parquet"
                df.write_parquet(out, metadata={RUN_ID_KEY: run_id})
    if (src / "novel_assignments").is_dir():  # written per shard of novel_modes (shard i: its modes)
        shutil.copy(src / "clusters.parquet", dst / "clusters.parquet")
        (dst / "novel_assignments").mkdir()
        shards = sorted((src / "novel_assignments").glob("part-*.parquet"))
        assert len(shards) == len(names)
        for k in range(a.copies):
            for i, (shard, name) in enumerate(zip(shards, names, strict=True)):
                assign = pl.read_parquet(shard)
                if k:
                    ids = pl.read_parquet(src / "novel_modes" / name, columns=["novel_id", "trace_id"])
                    assign = assign.join(ids, on="novel_id", how="left", maintain_order="left")
                    assert assign["trace_id"].null_count() == 0
                    rest = pl.col("novel_id").str.slice(pl.col("trace_id").str.len_chars())
                    assign = assign.with_columns(novel_id=pl.concat_str(suffixed("trace_id", k), rest)).drop(
                        "trace_id"
                    )
                out = dst / "novel_assignments" / f"part-{k * len(names) + i:09d}.parquet"
                assign.sort("novel_id").write_parquet(out, metadata={RUN_ID_KEY: run_id})
    elif (src / "novel_assignments.parquet").exists():
        shutil.copy(src / "clusters.parquet", dst / "clusters.parquet")
        assign = pl.read_parquet(src / "novel_assignments.parquet")
        ids = pl.scan_parquet(src / "novel_modes" / "*.parquet").select("novel_id", "trace_id").collect()
        assign = assign.join(ids, on="novel_id", how="left")
        assert assign["trace_id"].null_count() == 0
        rest = pl.col("novel_id").str.slice(pl.col("trace_id").str.len_chars())
        copies = [
            assign.with_columns(novel_id=pl.concat_str(suffixed("trace_id", k), rest)).drop("trace_id")
            for k in range(a.copies)
        ]
        pl.concat(copies).sort("novel_id").write_parquet(
            dst / "novel_assignments.parquet", metadata={RUN_ID_KEY: run_id}
        )
    print(f"wrote {dst}: {a.copies} copies of {len(names)} shards")


if __name__ == "__main__":
    main()
