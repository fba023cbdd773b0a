"""`trajfm traces` end to end through the typer app (fixtures, broken folders, and the public datasets)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajfm.cli import app

FIX = Path(__file__).resolve().parent / "fixtures" / "traces"
runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["traces", *args])


def test_summary_of_fixtures_counts_formats_models_agents() -> None:
    res = _run(str(FIX))
    assert res.exit_code == 0, res.output
    assert "37 traces from 36 files; 0 failed, 6 skipped" in res.output
    assert "Loading quality" in res.output and "sweagent: 2 traces" in res.output
    assert "Traces per format" in res.output and "Traces per model" in res.output
    assert "tiny-planner-7b" in res.output and "WebSurfer" in res.output


def test_json_summary_is_machine_readable() -> None:
    res = _run(str(FIX), "--json")
    assert res.exit_code == 0
    summary = json.loads(res.stdout)
    assert summary["traces"] == 37 and summary["failures"] == []
    assert summary["by_format"] == {
        "otel": 6,
        "chat": 4,
        "agentrx": 3,
        "assetops": 3,
        "autogen": 3,
        "mast": 4,
        "openhands": 3,
        "sweagent": 2,
        "tau2": 2,
        "whowhen": 2,
        "assetops-plan": 1,
        "assetops-run": 1,
        "assetops-tools": 1,
        "langfuse": 1,
        "langsmith": 1,
    }
    quality = summary["loading_quality"]["sweagent"]
    assert (quality["traces"], quality["with_final_answer"], quality["with_warnings"]) == (2, 1, 1)
    assert summary["by_model"]["tiny-llm"] == 3
    assert summary["steps_per_trace"]["max"] == 19  # the AssetOpsBench fixture with nested sub-agent steps
    assert summary["per_format"]["whowhen"]["steps"] == {"median": 4, "max": 4, "total": 8}
    assert len(summary["skipped"]) == 6


def _mixed(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    shutil.copytree(FIX / "whowhen", folder)
    (folder / "truncated.json").write_text('{"history": [{"content": "a", "role"')
    (folder / "junk.json.gz").write_bytes(b"\x00\x01\x02" * 50)
    return folder


def test_broken_files_are_listed_and_exit_is_zero(tmp_path: Path) -> None:
    res = _run(str(_mixed(tmp_path)))
    assert res.exit_code == 0, res.output
    assert "2 traces from 4 files; 2 failed" in res.output
    assert "truncated.json" in res.output and "truncated JSON" in res.output
    assert "junk.json.gz" in res.output
    assert "Traceback" not in res.output


def test_strict_exits_non_zero_on_any_failure(tmp_path: Path) -> None:
    res = _run(str(_mixed(tmp_path)), "--strict")
    assert res.exit_code == 1
    assert "--strict" in res.output and "Traceback" not in res.output


def test_nothing_loaded_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.dat").write_bytes(bytes(range(256)))
    res = _run(str(tmp_path))
    assert res.exit_code == 1
    assert "no traces loaded" in res.output and "Traceback" not in res.output
    res = _run(str(tmp_path / "does-not-exist"))
    assert res.exit_code == 1 and "no such file or folder" in res.output


def test_forced_and_unknown_format(tmp_path: Path) -> None:
    log = tmp_path / "chat.out"
    log.write_text("User: hello\nAssistant: hi there\n")
    res = _run(str(log), "--format", "mast", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["by_format"] == {"mast": 1}
    res = _run(str(log), "--format", "bogus")
    assert res.exit_code == 2 and "unknown trace format 'bogus'" in res.output


@pytest.mark.datasets
def test_all_public_datasets_load(datasets_dir: Path) -> None:
    names = ("who_and_when", "agentrx", "trail", "assetopsbench", "mast_mad_human")
    res = _run(*(str(datasets_dir / n) for n in names), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["by_format"] == {"agentrx": 129, "whowhen": 126, "otel": 113, "mast": 19, "assetops": 9}
    assert summary["failures"] == []
    assert summary["traces"] == 396
