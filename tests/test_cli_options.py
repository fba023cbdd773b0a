"""Stage options are declared once (`trajfm.cli_options`) and `trajfm run` has every option of the stages it runs."""

from __future__ import annotations

import typer
from typer.core import TyperOption
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.cli_options import STAGE_OPTIONS


def _option_flags(name: str) -> dict[str, set[str]]:
    """Each option of a command: its parameter name -> the flags it accepts (as click sees them)."""
    group = typer.main.get_command(app)
    command = group.commands[name]  # type: ignore[attr-defined]
    return {
        p.name or "": set(p.opts) | set(p.secondary_opts)
        for p in command.params
        if isinstance(p, TyperOption)
    }


def test_run_has_every_option_of_extract_cluster_and_report() -> None:
    run = _option_flags("run")
    for stage in ("extract", "cluster", "report"):
        stage_options = _option_flags(stage)
        missing = {
            name: flags
            for name, flags in stage_options.items()
            if name != "from_csv" and run.get(name) != flags
        }
        assert not missing, f"`trajfm run` lacks (or spells differently) {stage} option(s) {missing}"


def test_each_stage_command_has_exactly_its_declared_options() -> None:
    for stage, names in STAGE_OPTIONS.items():
        assert set(_option_flags(stage)) == set(names), stage


def test_run_dry_run_prints_the_cost_and_writes_nothing(tmp_path, repo_root) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    traces = repo_root / "tests" / "fixtures" / "rules" / "assetops"
    res = CliRunner().invoke(app, ["run", str(traces), "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "dry run: 4 traces, nothing written" in res.output and "calls: 0" in res.output
    assert not out.exists()


def test_run_passes_format_and_embedder_to_their_stages(tmp_path, repo_root) -> None:  # type: ignore[no-untyped-def]
    """Options `run` once lacked (--format, --embedder): a wrong value must fail in the stage that reads it."""
    traces = repo_root / "tests" / "fixtures" / "rules" / "assetops"
    res = CliRunner().invoke(app, ["run", str(traces), "--out", str(tmp_path / "a"), "--format", "nope"])
    assert res.exit_code != 0 and "nope" in res.output
    res = CliRunner().invoke(app, ["run", str(traces), "--out", str(tmp_path / "b"), "--embedder", "nope"])
    assert res.exit_code != 0 and "unknown embedder 'nope'" in res.output
    assert not (tmp_path / "b").exists()  # the cluster option is checked before extract runs
