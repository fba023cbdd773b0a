"""Stage 1 end to end: `trajfm extract` on small fixtures, through the CLI and the stage function."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from trajfm import plugins
from trajfm.cli import app
from trajfm.errors import BackendError, TraceLoadError, UsageError
from trajfm.extract import run_extract
from trajfm.judges.base import Diagnosis, Judge, ModeFinding
from trajfm.judges.rules_version import RULES_VERSION
from trajfm.runfolder import RunFolder
from trajfm.taxonomy import Taxonomy, load_taxonomy
from trajfm.traces.model import Trace

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules" / "assetops"
MAST = load_taxonomy("mast")
runner = CliRunner()


def test_cli_extract_writes_every_table_and_lists_the_bad_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["extract", str(FIXTURES), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "judged 4 traces (ok 4)" in res.stdout
    assert "0005" in res.output and "truncated" in res.output  # the bad file is named, the rest processed
    run = RunFolder.open(out)
    tables = {name: run.read_table(name) for name in ("traces", "steps", "diagnoses", "modes", "novel_modes")}
    assert tables["traces"].height == 4 and tables["diagnoses"].height == 4
    assert tables["modes"].height == 4 * len(MAST.modes)  # one row per trace x mode, detected or not
    assert set(tables["diagnoses"]["status"]) == {"ok"}
    detected = tables["modes"].filter(pl.col("detected"))
    assert detected.height > 0
    assert all(len(s) > 0 for s in detected["steps"])  # every detected mode carries steps
    assert detected["evidence_verified"].all()
    novel = tables["novel_modes"]
    assert novel["novel_id"].n_unique() == novel.height
    assert "Ineffective Error Recovery (IoTAgent)" in novel["title"].to_list()

    manifest = json.loads((out / "manifest.json").read_text())
    ex = manifest["stages"]["extract"]
    assert ex["judge"]["judge"] == "rules" and ex["taxonomy"] == "mast" and ex["prompt_version"] == RULES_VERSION
    assert ex["counts"]["statuses"] == {"ok": 4} and ex["counts"]["load_failures"] == 1
    assert any("0005" in f for f in ex["load_failures"])
    hashed = {Path(i["path"]).name: i["sha256"] for i in ex["inputs"]}
    assert len(hashed) == 5 and all(len(h) == 64 for h in hashed.values())
    assert set(ex["timings_s"]) >= {"load", "judge", "verify_evidence"}


def test_limit_takes_the_first_traces_in_path_order(tmp_path: Path) -> None:
    result = run_extract([FIXTURES], tmp_path / "run", limit=2)
    ids = RunFolder.open(tmp_path / "run").read_table("traces")["trace_id"].to_list()
    assert result.traces == 2 and [Path(i).name for i in ids] == ["0001", "0002"]


def test_rerun_replaces_tables_instead_of_appending(tmp_path: Path) -> None:
    run_extract([FIXTURES], tmp_path / "run")
    run_extract([FIXTURES], tmp_path / "run")
    run = RunFolder.open(tmp_path / "run")
    assert run.read_table("diagnoses").height == 4
    assert run.read_table("modes").height == 4 * len(MAST.modes)


def test_dry_run_writes_nothing_and_reports_zero_calls_for_rules(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["extract", str(FIXTURES), "--out", str(out), "--dry-run", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "calls: 0" in res.stdout and "nothing written" in res.stdout
    assert not out.exists()


def test_llm_options_with_the_rules_judge_are_refused(tmp_path: Path) -> None:
    res = runner.invoke(app, ["extract", str(FIXTURES), "--out", str(tmp_path / "r"), "--model", "gpt-4.1"])
    assert res.exit_code != 0
    assert "rules judge takes no --model" in res.output
    assert not (tmp_path / "r").exists()


def test_no_traces_is_an_error_naming_the_path(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TraceLoadError, match="no traces found"):
        run_extract([empty], tmp_path / "run")
    res = runner.invoke(app, ["extract", str(empty), "--out", str(tmp_path / "run")])
    assert res.exit_code != 0 and "no traces found" in res.output


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--concurrency"):
        run_extract([FIXTURES], tmp_path / "run", concurrency=0)
    with pytest.raises(UsageError, match="--limit"):
        run_extract([FIXTURES], tmp_path / "run", limit=0)


class QuotingJudge(Judge):
    """A fake model-backed judge: quotes the task verbatim for 1.1, invents a quote for 3.3, and fails on the
    trace whose id ends in 0003 (the runner records it as backend_error)."""

    name = "quoting"
    model = "fake-model"
    prompt_version = "q1"
    cacheable = False

    def cache_material(self) -> dict[str, Any]:
        return {"model": self.model}

    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        if trace.trace_id.endswith("0003"):
            raise BackendError("endpoint said no", retryable=False)
        modes = [ModeFinding(m.id, False) for m in taxonomy.modes]
        modes[0] = ModeFinding("1.1", True, [1], evidence=trace.task[:30], evidence_verified=False)
        modes[-1] = ModeFinding(
            "3.3", True, [1], evidence="a sentence that is nowhere in the trace", evidence_verified=True
        )
        return Diagnosis(trace_id=trace.trace_id, judge=self.name, judge_model=self.model, prompt_version="q1",
                         task_completed=True, summary="fake", modes=modes)  # fmt: skip


def test_evidence_is_verified_by_extract_for_any_judge_and_failed_traces_have_no_mode_rows(
    tmp_path: Path,
) -> None:
    with plugins.override("judges", "quoting", QuotingJudge):
        result = run_extract([FIXTURES], tmp_path / "run", judge="quoting", max_retries=0)
    assert result.statuses == {"ok": 3, "backend_error": 1}
    run = RunFolder.open(tmp_path / "run")
    diags = run.read_table("diagnoses")
    failed = diags.filter(pl.col("status") == "backend_error")
    assert failed.height == 1 and "endpoint said no" in failed["error"][0]
    assert failed["task_completed"][0] is None
    modes = run.read_table("modes")
    assert modes.height == 3 * len(MAST.modes)
    assert failed["trace_id"][0] not in set(modes["trace_id"])
    verdict = {
        r["mode_id"]: r["evidence_verified"] for r in modes.filter(pl.col("detected")).iter_rows(named=True)
    }
    assert verdict == {"1.1": True, "3.3": False}  # the judge's own claim of verification is not trusted
    assert result.unverified == 3
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["extract"]
    assert manifest["model"] == "fake-model" and manifest["counts"]["statuses"]["backend_error"] == 1


def test_other_taxonomy_gives_its_own_mode_rows(tmp_path: Path) -> None:
    run_extract([FIXTURES], tmp_path / "run", taxonomy="trail")
    modes = RunFolder.open(tmp_path / "run").read_table("modes")
    assert modes.height == 4 * len(load_taxonomy("trail").modes)
    # the fixture's identical retry after a tool error is TRAIL's Resource Abuse (repeating the same call)
    assert "resource_abuse" in set(modes.filter(pl.col("detected"))["mode_id"])


def test_copied_folder_keeps_trace_ids_relative(tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(FIXTURES, copy)
    run_extract([copy], tmp_path / "run")
    ids = RunFolder.open(tmp_path / "run").read_table("traces")["trace_id"].to_list()
    assert all(i.startswith("corpus/") for i in ids)


@pytest.mark.slow
def test_bundled_corpus_extract_passes_schema_checks(repo_root: Path, tmp_path: Path) -> None:
    corpus = repo_root / "traces"
    if not any(corpus.rglob("labels.jsonl")):
        pytest.skip("the bundled corpus (traces/assetops) is not generated in this checkout")
    result = run_extract([corpus], tmp_path / "run")
    run = RunFolder.open(tmp_path / "run")
    for table in ("traces", "steps", "diagnoses", "modes", "novel_modes"):
        run.read_table(table)  # raises SchemaError on any mismatch
    assert result.statuses == {"ok": result.traces}
    assert result.unverified == 0


def _manifest_extract(run: Path) -> dict[str, Any]:
    section = json.loads((run / "manifest.json").read_text())["stages"]["extract"]
    for key in ("timings_s", "finished_at", "engine"):
        section.pop(key)
    section["judge"]["run"].pop("wall_s")
    return section


def test_streamed_batches_write_shards_equal_to_one_batch(tmp_path: Path) -> None:
    """Batches of 1 trace (the fixtures named twice: repeated ids get ~2 across batches) give the same tables,
    row order included, and the same manifest as one batch; the tables are sharded one shard per batch."""
    whole, batched = tmp_path / "whole", tmp_path / "batched"
    one = run_extract([FIXTURES, FIXTURES], whole)
    many = run_extract([FIXTURES, FIXTURES], batched, batch_traces=1)
    a, b = RunFolder.open(whole), RunFolder.open(batched)
    assert not a.is_sharded("diagnoses") and b.is_sharded("diagnoses")
    assert len(b.shard_paths("traces")) == 8 and one.traces == many.traces == 8
    for table in ("traces", "steps", "diagnoses", "modes", "novel_modes"):
        x, y = a.read_table(table), b.read_table(table)
        assert x.drop("latency_s" if "latency_s" in x.columns else []).equals(
            y.drop("latency_s" if "latency_s" in y.columns else [])
        ), table
    ids = a.read_table("traces")["trace_id"].to_list()
    assert sum(i.endswith("~2") for i in ids) == 4
    assert _manifest_extract(whole) == _manifest_extract(batched)
    assert json.loads((batched / "manifest.json").read_text())["stages"]["extract"]["engine"] == {
        "name": "local", "batch_traces": 1, "shards": 8}  # fmt: skip
    assert _manifest_extract(batched)["counts"]["duplicate_ids_renamed"] == 4
    # A later run of one batch into the sharded folder replaces the shards with single files.
    run_extract([FIXTURES], batched)
    assert not b.is_sharded("traces") and b.read_table("traces").height == 4


def test_limit_stops_judging_but_counts_every_trace_loaded(tmp_path: Path) -> None:
    result = run_extract([FIXTURES], tmp_path / "run", limit=3, batch_traces=2)
    run = RunFolder.open(tmp_path / "run")
    counts = run.read_manifest()["stages"]["extract"]["counts"]
    assert result.traces == 3 and counts["traces_judged"] == 3 and counts["traces_loaded"] == 4
    assert len(run.shard_paths("diagnoses")) == 2 and run.read_table("modes").height == 3 * len(MAST.modes)


def test_inputs_past_the_listing_cap_are_summarised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trajfm.extract as extract

    monkeypatch.setattr(extract, "MAX_LISTED_INPUTS", 2)
    run_extract([FIXTURES, FIXTURES], tmp_path / "run")
    section = RunFolder.open(tmp_path / "run").read_manifest()["stages"]["extract"]
    assert len(section["inputs"]) == 2
    summary = section["inputs_summary"]
    assert summary["files"] == 10 and summary["listed"] == 2 and len(summary["sha256_of_paths_and_sha256s"]) == 64
    assert summary["bytes"] == 2 * sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
