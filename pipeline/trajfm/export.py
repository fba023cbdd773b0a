"""`trajfm export RUN --format trajfm-csv`: a run's diagnoses in the shape IBM's TrajFM notebooks read.

Contract of `export_run(run, format="trajfm-csv", out=None) -> ExportResult`:
- Writes into `out` (default RUN/export/) two CSV files:
  - `failure_modes.csv`, the anchor's wide table: one row per trace, with the anchor's column names
    `model_id, counter, timestamp, vendor, model, ut_id, addi_fm_cnt, addi_fm_list`, then one boolean column per
    taxonomy mode named "<id> <name>" (for MAST the 14 columns "1.1 Disobey Task Specification" ...
    "3.3 Weak Verification", in taxonomy order), then trajfm's own columns (`trace_id, source_path, status,
    task_completed, summary, root_cause_step, root_cause_agent`). `model_id` is the judge model (the judge's name
    for the rules judge), `model` the agent model, `timestamp` the run id, `ut_id` the utterance id,
    `addi_fm_list` a JSON list of `{title, description}`. A trace whose diagnosis failed has empty mode cells
    (unknown, not False) and its status says why.
  - `addtional_fm.csv` (the anchor's file name, misspelling kept so existing notebooks find it): one row per novel
    mode with columns `title,description`, the input of the anchor's clustering step.
- The taxonomy is the one extract recorded in the manifest. Writes are atomic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trajfm.errors import UsageError
from trajfm.runfolder import RunFolder, atomic_path
from trajfm.taxonomy import load_taxonomy

FORMATS = ("trajfm-csv",)
WIDE_FILE = "failure_modes.csv"
NOVEL_FILE = "addtional_fm.csv"


@dataclass
class ExportResult:
    files: list[Path]
    rows: int
    novel_rows: int


def _taxonomy_name(run: RunFolder) -> str:
    extract = run.read_manifest().get("stages", {}).get("extract", {})
    name = extract.get("taxonomy") or (extract.get("options") or {}).get("taxonomy") or "mast"
    return str(name)


def wide_table(run: RunFolder) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The anchor's wide table and the title/description table of a run folder."""
    taxonomy = load_taxonomy(_taxonomy_name(run))
    traces = run.read_table("traces")
    diags = run.read_table("diagnoses")
    modes = run.read_table("modes")
    novel = run.read_table("novel_modes")

    mode_cols = {m.id: f"{m.id} {m.name}" for m in taxonomy.modes}
    flags = (
        modes.filter(pl.col("mode_id").is_in(list(mode_cols)))
        .with_columns(pl.col("mode_id").replace_strict(mode_cols, return_dtype=pl.String).alias("column"))
        .pivot(on="column", index="trace_id", values="detected", aggregate_function="first")
    )
    for col in mode_cols.values():
        if col not in flags.columns:
            flags = flags.with_columns(pl.lit(None, dtype=pl.Boolean).alias(col))
    # A mode the judge did not check is null ("not checked") in every row; keep the column Boolean regardless.
    flags = flags.with_columns([pl.col(c).cast(pl.Boolean) for c in mode_cols.values()])
    lists = novel.group_by("trace_id", maintain_order=True).agg(
        pl.len().alias("addi_fm_cnt"),
        pl.struct("title", "description").alias("items"),
    )
    lists = lists.with_columns(
        pl.col("items")
        .map_elements(
            lambda items: json.dumps([{"title": i["title"], "description": i["description"]} for i in items]),
            return_dtype=pl.String,
        )
        .alias("addi_fm_list")
    ).drop("items")

    wide = (
        traces.select("trace_id", "source_path", "run_id", "vendor", "agent_model", "utterance_id")
        .join(diags, on="trace_id", how="left")
        .join(lists, on="trace_id", how="left")
        .join(flags, on="trace_id", how="left")
        .with_row_index("counter", offset=1)
        .with_columns(
            pl.col("addi_fm_cnt").fill_null(0).cast(pl.Int64),
            pl.col("addi_fm_list").fill_null("[]"),
            pl.coalesce(pl.col("judge_model"), pl.col("judge")).alias("model_id"),
        )
        .select(
            "model_id",
            pl.col("counter").cast(pl.Int64),
            pl.col("run_id").alias("timestamp"),
            "vendor",
            pl.col("agent_model").alias("model"),
            pl.col("utterance_id").alias("ut_id"),
            "addi_fm_cnt",
            "addi_fm_list",
            *mode_cols.values(),
            "trace_id",
            "source_path",
            "status",
            "task_completed",
            "summary",
            "root_cause_step",
            "root_cause_agent",
        )
    )
    return wide, novel.select("title", "description")


def export_run(
    run_path: Path | str, format: str = "trajfm-csv", out: Path | str | None = None
) -> ExportResult:  # noqa: A002
    """Write the export files of a run folder (see the module docstring)."""
    if format not in FORMATS:
        raise UsageError(f"unknown export format {format!r}; known formats: {', '.join(FORMATS)}")
    run = RunFolder.open(run_path, need=("traces", "diagnoses", "modes", "novel_modes"))
    wide, novel = wide_table(run)
    out_dir = Path(out) if out is not None else run.root / "export"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # --out names a file, or a folder we may not create: say so, no traceback
        raise UsageError(
            f"cannot write the export into {out_dir} ({exc.strerror or exc}); choose another --out"
        ) from exc
    files = []
    for name, df in ((WIDE_FILE, wide), (NOVEL_FILE, novel)):
        path = out_dir / name
        with atomic_path(path) as tmp:
            df.write_csv(tmp)
        files.append(path)
    return ExportResult(files=files, rows=wide.height, novel_rows=novel.height)
