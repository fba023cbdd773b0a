"""The polars schema of every table a stage writes to a run folder, SCHEMA_VERSION, and the closed value sets.

Tables are checked against these on write and on read (`check`): a missing or wrongly typed column is a
`SchemaError` that names the table and column. Extra columns are refused too, so a stage never silently
depends on something another stage does not promise. A closed set of values (a diagnosis status) is an enum
here and an `Enum` column in the table, so a value outside it is refused on write.

Bump SCHEMA_VERSION when a table or the manifest changes shape, and add a named migration from the previous
version in `trajfm.migrations` (run folders are checked and migrated when opened).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import polars as pl

from trajfm.errors import SchemaError

SCHEMA_VERSION = 2  # 2: steps.role; traces.outcome, framework and loading-quality columns; diagnoses.judge_quality; enums; manifest model


class DiagnosisStatus(StrEnum):
    """How judging one trace ended."""

    OK = "ok"
    PARSE_ERROR = "parse_error"  # the judge's reply could not be used (kept in raw_reply)
    BACKEND_ERROR = "backend_error"  # the call failed for good, or the judge raised
    SKIPPED = "skipped"  # not judged on purpose


class SourceOutcome(StrEnum):
    """What the trace's own record says about the run (is_correct, a reward, a review status), when it says."""

    FAILED = "failed"
    SUCCEEDED = "succeeded"


def enum_dtype(values: type[StrEnum]) -> pl.Enum:
    return pl.Enum([v.value for v in values])


# --- stage 1: extract ------------------------------------------------------------------------------------------
TRACES_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String(),
    "source_path": pl.String(),
    "source_format": pl.String(),
    "task": pl.String(),
    "final_answer": pl.String(),
    "agent_model": pl.String(),
    "vendor": pl.String(),
    "scenario": pl.String(),
    "utterance_id": pl.String(),
    "run_id": pl.String(),
    "multi_agent": pl.Boolean(),
    "reward": pl.Float64(),
    "is_correct": pl.Boolean(),
    "review_status": pl.String(),
    "n_steps": pl.Int64(),
    "n_chars": pl.Int64(),
    "agents": pl.List(pl.String()),
    "meta": pl.String(),  # JSON object or null
    "outcome": pl.String(),  # how the run ended as the source says (exit status, termination reason, error)
    "framework": pl.String(),  # the agent framework named by the source, else null
    # loading quality (trajfm.traces.quality): how well the file fitted its format and what looks misread
    "format_fit": pl.Float64(),
    "empty_steps": pl.Int64(),
    "n_tool_calls": pl.Int64(),
    "has_final_answer": pl.Boolean(),
    "load_warnings": pl.List(pl.String()),
}

STEPS_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String(),
    "position": pl.Int64(),
    "index": pl.Int64(),
    "step_id": pl.String(),
    "parent_id": pl.String(),
    "depth": pl.Int64(),
    "kind": pl.String(),
    "role": pl.String(),  # agent | tool | user | system | environment (trajfm.traces.model.ROLES); null if unset
    "agent": pl.String(),
    "tool_name": pl.String(),
    "tool_input": pl.String(),
    "content": pl.String(),
    "is_error": pl.Boolean(),
    "start_time": pl.Float64(),
    "end_time": pl.Float64(),
    "meta": pl.String(),
}

DIAGNOSES_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String(),
    "judge": pl.String(),
    "judge_model": pl.String(),
    "prompt_version": pl.String(),
    "status": enum_dtype(DiagnosisStatus),
    "error": pl.String(),
    "task_completed": pl.Boolean(),
    "summary": pl.String(),
    "root_cause_step": pl.Int64(),
    "root_cause_agent": pl.String(),
    "root_cause_confidence": pl.Float64(),
    "source_outcome": enum_dtype(SourceOutcome),  # null: the trace records no outcome
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "latency_s": pl.Float64(),
    "calls": pl.Int64(),
    "cached": pl.Boolean(),
    "raw_reply": pl.String(),  # kept only when the reply could not be parsed
    # What had to be normalised or repaired to use the judge's reply (short codes, trajfm.judges.reply and
    # trajfm.judges.attempts), e.g. ["id_prefixed", "repair_turn"]; empty for judges that send no replies. Entries
    # starting "dropped:" say what was thrown away: steps not in the trace, novel modes beyond those asked for,
    # characters over the text cap (e.g. "dropped:steps 99 (not in the trace)").
    "reply_repairs": pl.List(pl.String()),
    # "ok", or the reasons a reply was set aside as degenerate (trajfm.judges.quality); null unless status is ok
    "judge_quality": pl.String(),
    # the six scorecard dimensions (trajfm.judges.dimensions): true, false or null (not assessed)
    "dim_task_completion": pl.Boolean(),
    "dim_data_retrieval": pl.Boolean(),
    "dim_result_verification": pl.Boolean(),
    "dim_sequence": pl.Boolean(),
    "dim_clarity": pl.Boolean(),
    "dim_hallucination": pl.Boolean(),
}
DIAGNOSIS_STATUSES = tuple(s.value for s in DiagnosisStatus)

MODES_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String(),
    "mode_id": pl.String(),
    "mode_name": pl.String(),
    "category": pl.String(),
    # null: the judge did not check this mode (rules judge: "not checked"; LLM judge: the reply left it out)
    "detected": pl.Boolean(),
    "steps": pl.List(pl.Int64()),
    "evidence": pl.String(),
    "evidence_verified": pl.Boolean(),
    "evidence_step": pl.Int64(),  # the step the evidence quote was found in (null: not found or not a step)
    "rationale": pl.String(),
    "confidence": pl.Float64(),
}

NOVEL_MODES_SCHEMA: dict[str, pl.DataType] = {
    "novel_id": pl.String(),
    "trace_id": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "steps": pl.List(pl.Int64()),
    "evidence": pl.String(),
}

# --- stage 2: cluster -----------------------------------------------------------------------------------------
CLUSTERS_SCHEMA: dict[str, pl.DataType] = {
    "cluster_id": pl.Int64(),  # -1 is the outlier group
    "name": pl.String(),
    "keywords": pl.List(pl.String()),
    "size": pl.Int64(),
    "share": pl.Float64(),
    "representatives": pl.List(pl.String()),
    "nearest_mode": pl.String(),
    "similarity": pl.Float64(),
    "is_novel": pl.Boolean(),
    "new_since_baseline": pl.Boolean(),
    "stability": pl.Float64(),
    "definition": pl.String(),
}

NOVEL_ASSIGNMENTS_SCHEMA: dict[str, pl.DataType] = {
    "novel_id": pl.String(),
    "cluster_id": pl.Int64(),
    "probability": pl.Float64(),
    "assigned": pl.Boolean(),  # True when an outlier was attached by --assign-outliers
    "x": pl.Float64(),
    "y": pl.Float64(),
}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "traces": TRACES_SCHEMA,
    "steps": STEPS_SCHEMA,
    "diagnoses": DIAGNOSES_SCHEMA,
    "modes": MODES_SCHEMA,
    "novel_modes": NOVEL_MODES_SCHEMA,
    "clusters": CLUSTERS_SCHEMA,
    "novel_assignments": NOVEL_ASSIGNMENTS_SCHEMA,
}


def empty(table: str) -> pl.DataFrame:
    """An empty frame with the table's schema."""
    return pl.DataFrame(schema=TABLES[table])


def frame(columns: dict[str, list[Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`pl.DataFrame(columns, schema=schema)`, with the list columns built through arrow offsets: polars builds a
    list column from Python lists one row at a time (about 10 us a row), which made building the modes table
    (one row per trace x mode) a large part of extract. Same frame, same dtypes."""
    import pyarrow as pa

    built: dict[str, Any] = dict(columns)
    for name, dtype in schema.items():
        if not isinstance(dtype, pl.List):
            continue
        offsets, flat, nulls = [0], [], []
        for value in columns[name]:
            nulls.append(value is None)
            if value is not None:
                flat.extend(value)
            offsets.append(len(flat))
        inner = pa.int64() if dtype.inner == pl.Int64 else pa.large_string()
        array = pa.LargeListArray.from_arrays(
            pa.array(offsets, type=pa.int64()),
            pa.array(flat, type=inner),
            mask=pa.array(nulls, type=pa.bool_()) if any(nulls) else None,
        )
        built[name] = pl.Series(name, array)
    return pl.DataFrame(built, schema=schema)


def check(table: str, df: pl.DataFrame, *, source: str | None = None) -> pl.DataFrame:
    """Check `df` against the schema of `table`; return it with columns in schema order.

    Raises SchemaError naming the table, the column and what was expected.
    """
    if table not in TABLES:
        raise SchemaError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}")
    schema = TABLES[table]
    where = f"table {table!r}" + (f" ({source})" if source else "")
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{where} is missing column(s) {', '.join(missing)}; re-run the stage that writes it "
            f"(schema version {SCHEMA_VERSION})"
        )
    extra = [c for c in df.columns if c not in schema]
    if extra:
        raise SchemaError(
            f"{where} has unexpected column(s) {', '.join(extra)} not in schema version {SCHEMA_VERSION}"
        )
    for name, dtype in schema.items():
        got = df.schema[name]
        if isinstance(dtype, pl.Enum) and got == pl.String():
            # Strings are accepted for a closed set when every value belongs to it (then stored as the enum).
            allowed = set(dtype.categories.to_list())
            bad = sorted(set(df[name].drop_nulls().to_list()) - allowed)
            if bad:
                raise SchemaError(
                    f"{where}: column {name!r} has value(s) {', '.join(map(repr, bad[:5]))} outside "
                    f"{', '.join(sorted(allowed))}"
                )
            continue
        # An all-null column (polars infers Null) casts to any type, so it is accepted.
        if got != dtype and got != pl.Null():
            raise SchemaError(f"{where}: column {name!r} has type {got}, expected {dtype}")
    return df.select(list(schema)).cast(schema)  # type: ignore[arg-type]
