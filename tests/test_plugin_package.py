"""A real plugin package (tests/plugins/example: a judge, an embedder, a taxonomy, a trace format and two broken
parts), pip-installed, used end to end through the CLI.

pip installs it into a temporary folder (`--target`, no network, no build isolation); trajfm then runs in a
fresh process whose path holds that folder and this repository's package, as it would after `pip install`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "plugins" / "example"
TRACES = REPO / "tests" / "fixtures" / "rules" / "assetops"
SAMPLES = PLUGIN / "sample_traces"  # two traces in the plugin's own format and one chat transcript


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-build")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(PLUGIN)],
        capture_output=True, text=True, timeout=300, cwd=build,
    )  # fmt: skip
    if res.returncode != 0 and "setuptools" in res.stderr and "No module named" in res.stderr:
        pytest.skip(f"cannot build the example plugin without setuptools: {res.stderr[-300:]}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert list(target.glob("trajfm_example_plugin-0.1.0.dist-info/entry_points.txt"))
    return target


def trajfm(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRAJFM_DEBUG"}
    env["COLUMNS"] = "400"  # help text on one line per option
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO / "pipeline")])
    return subprocess.run(
        [sys.executable, "-m", "trajfm.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def test_plugins_lists_the_installed_parts_and_names_the_broken_one(site: Path) -> None:
    res = trajfm(site, "plugins", "--json")
    assert res.returncode == 0, res.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(res.stdout)}
    for key in [("judges", "keyword"), ("embedders", "trigram"), ("taxonomies", "example")]:
        assert rows[key]["ok"] and rows[key]["source"] == "trajfm-example-plugin 0.1.0", rows[key]
    broken = rows[("judges", "broken-example")]
    assert not broken["ok"] and "missing_module" in broken["error"]
    assert rows[("judges", "rules")]["ok"]  # the built-ins keep working


def test_extract_and_cluster_use_the_plugin_judge_taxonomy_and_embedder(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = trajfm(site, "extract", str(TRACES), "--out", str(out), "--judge", "keyword", "--taxonomy", "example",
                 "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    diagnoses = pl.read_parquet(out / "diagnoses.parquet")
    assert set(diagnoses["judge"]) == {"keyword"} and set(diagnoses["prompt_version"]) == {"keyword-1"}
    modes = pl.read_parquet(out / "modes.parquet")
    assert set(modes["mode_id"]) == {"T.1", "A.1"}  # the plugin taxonomy's modes, nothing of MAST
    novel = pl.read_parquet(out / "novel_modes.parquet")
    assert novel.height > 0 and all(t.startswith("Failed call to") for t in novel["title"])

    res = trajfm(site, "cluster", str(out), "--embedder", "trigram", "--reducer", "none")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["cluster"]["embedder"]["model_id"] == "example-trigram-64"
    assert manifest["stages"]["extract"]["taxonomy"] == "example"
    assert pl.read_parquet(out / "novel_assignments.parquet").height == novel.height


def test_rules_judge_uses_a_plugin_taxonomys_own_rule_mapping(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "rules"
    res = trajfm(site, "extract", str(TRACES), "--out", str(out), "--taxonomy", "example", "--no-progress")
    assert res.returncode == 0, res.stderr
    modes = pl.read_parquet(out / "modes.parquet")
    # Both modes are checked through the taxonomy's `rules` data: none is "not checked" (null).
    assert modes["detected"].null_count() == 0
    assert modes.filter(pl.col("detected"))["mode_id"].to_list()  # and the fixtures' tool errors map to T.1


def test_a_broken_plugin_is_an_error_only_when_asked_for(site: Path, tmp_path: Path) -> None:
    res = trajfm(site, "extract", str(TRACES), "--out", str(tmp_path / "b"), "--judge", "broken-example")
    assert res.returncode != 0
    assert "plugin 'broken-example' from trajfm-example-plugin 0.1.0" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_plugin_format_is_listed_detected_forced_and_judged(site: Path, tmp_path: Path) -> None:
    res = trajfm(site, "plugins", "--json")
    rows = {(r["kind"], r["name"]): r for r in json.loads(res.stdout)}
    mine = rows[("formats", "example-steps")]
    assert mine["ok"] and mine["source"] == "trajfm-example-plugin 0.1.0", mine
    broken = rows[("formats", "broken-format")]
    assert not broken["ok"] and "missing_format" in broken["error"]
    assert all(r["ok"] for (kind, _), r in rows.items() if kind == "formats" and r["source"] == "trajfm (built-in)")
    listing = trajfm(site, "plugins").stdout
    assert "BROKEN" in next(line for line in listing.splitlines() if line.strip().startswith("broken-format"))

    # `trajfm traces` reads the plugin's files and says the broken format was not used.
    res = trajfm(site, "traces", str(SAMPLES), "--json")
    summary = json.loads(res.stdout)
    assert summary["by_format"] == {"example-steps": 2, "chat": 1}
    assert "missing_format" in summary["broken_formats"]["broken-format"]
    assert "format broken-format not used" in " ".join(trajfm(site, "traces", str(SAMPLES)).stdout.split())

    # --format's help lists the formats from the registry, the plugin's among them.
    help_text = " ".join(trajfm(site, "extract", "--help").stdout.split())
    assert "example-steps" in help_text and "assetops-plan" in help_text

    # Auto-detection: each file goes to the format that fits it, the plugin's or a built-in.
    auto = tmp_path / "auto"
    res = trajfm(site, "extract", str(SAMPLES), "--out", str(auto), "--no-progress")
    assert res.returncode == 0, res.stderr
    traces = pl.read_parquet(auto / "traces.parquet")
    assert dict(zip(traces["trace_id"], traces["source_format"], strict=True)) == {
        "sample_traces/chat_beside.json": "chat",
        "sample_traces/pump_question.json": "example-steps",
        "sample_traces/work_orders.json": "example-steps",
    }
    steps = pl.read_parquet(auto / "steps.parquet").filter(pl.col("trace_id") == "sample_traces/pump_question.json")
    assert steps["role"].to_list() == ["user", "agent", "tool", "agent", "tool", "agent"]
    assert steps["is_error"].to_list() == [False, False, True, False, True, False]
    assert steps.filter(pl.col("kind") == "tool_call")["tool_name"].to_list() == ["service_history"] * 2
    modes = pl.read_parquet(auto / "modes.parquet").filter(pl.col("detected"))
    # The rules judge reads the plugin's traces like any other: the failed, repeated tool call is found there.
    assert set(modes["trace_id"]) == {"sample_traces/pump_question.json"}
    manifest = json.loads((auto / "manifest.json").read_text())
    assert manifest["stages"]["extract"]["loading_quality"]["example-steps"]["traces"] == 2

    # Forced: the plugin's files load; the chat transcript is refused as misread, naming the format it fits.
    forced = tmp_path / "forced"
    # With the plugin's judge and taxonomy too: every kind of plugin part in one run.
    res = trajfm(site, "extract", str(SAMPLES), "--out", str(forced), "--format", "example-steps", "--judge", "keyword",
                 "--taxonomy", "example", "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert sorted(pl.read_parquet(forced / "traces.parquet")["trace_id"]) == [
        "sample_traces/pump_question.json", "sample_traces/work_orders.json"]  # fmt: skip
    assert set(pl.read_parquet(forced / "diagnoses.parquet")["judge"]) == {"keyword"}
    novel = pl.read_parquet(forced / "novel_modes.parquet")
    # The keyword judge reports each failed step as a novel mode: the pump trace's two failed tool results.
    assert novel.height == 2 and set(novel["title"]) == {"Failed call to a tool"}
    [failure] = json.loads((forced / "manifest.json").read_text())["stages"]["extract"]["load_failures"]
    assert "chat_beside.json: misread" in failure and "--format chat" in failure

    # The broken format is an error only when asked for, with its name and no traceback.
    res = trajfm(site, "extract", str(SAMPLES), "--out", str(tmp_path / "b"), "--format", "broken-format")
    assert res.returncode != 0
    assert "format plugin 'broken-format' from trajfm-example-plugin 0.1.0" in res.stderr
    assert "Traceback" not in res.stderr
