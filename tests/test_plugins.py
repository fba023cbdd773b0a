"""The plugin machinery (`trajfm.plugins`): built-ins and installed parts through one path, broken plugins named
and skipped, run-time overrides that do not leak. The end-to-end test with a pip-installed plugin package is in
test_plugin_package.py."""

from __future__ import annotations

import importlib.metadata as md

import pytest
from typer.testing import CliRunner

from trajfm import plugins
from trajfm.cli import app
from trajfm.clustering.embed import FakeEmbedder, get_embedder
from trajfm.errors import JudgeError, UsageError
from trajfm.judges.registry import get_judge, judge_names
from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch) -> list[md.EntryPoint]:
    """Entry points that look installed (no real package needed): a broken judge and one reusing 'rules'."""
    eps = [
        md.EntryPoint("broken", "trajfm_no_such_module:Judge", "trajfm.judges"),
        md.EntryPoint("rules", "trajfm.testing.fakes:ScriptedJudge", "trajfm.judges"),
        md.EntryPoint("scripted", "trajfm.testing.fakes:ScriptedJudge", "trajfm.judges"),
    ]
    real = plugins._installed

    def fake(kind: plugins.Kind) -> list[md.EntryPoint]:
        return [e for e in eps if e.group == plugins.group(kind)] + real(kind)

    monkeypatch.setattr(plugins, "_installed", fake)
    plugins._loaded.clear()
    yield eps
    plugins._loaded.clear()


def test_builtins_load_through_the_plugin_table() -> None:
    assert isinstance(get_judge("rules"), RulesJudge)
    assert isinstance(get_embedder("fake"), FakeEmbedder)
    assert load_taxonomy("mast").name == "mast"
    rows = {(r.kind, r.name): r for r in plugins.status()}
    for key in [("judges", "rules"), ("judges", "llm"), ("embedders", "minilm"), ("taxonomies", "trail")]:
        assert rows[key].ok and rows[key].source == plugins.BUILTIN_SOURCE


def test_broken_plugin_is_named_and_the_builtins_keep_working(installed: list[md.EntryPoint]) -> None:
    assert "broken" in judge_names() and "scripted" in judge_names()
    with pytest.raises(JudgeError, match="plugin 'broken' .* failed to load: ModuleNotFoundError"):
        get_judge("broken")
    assert isinstance(get_judge("rules"), RulesJudge)  # the plugin claiming 'rules' does not replace it
    assert get_judge("scripted").name == "scripted"
    rows = {(r.name, r.value): r for r in plugins.status(("judges",))}
    assert not rows[("broken", "trajfm_no_such_module:Judge")].ok
    clash = rows[("rules", "trajfm.testing.fakes:ScriptedJudge")]
    assert not clash.ok and "already taken by trajfm (built-in)" in (clash.error or "")


def test_plugins_command_lists_every_kind_and_the_broken_plugin(installed: list[md.EntryPoint]) -> None:
    res = CliRunner().invoke(app, ["plugins"])
    assert res.exit_code == 0, res.output
    for heading in ("judges", "embedders", "taxonomies", "formats"):
        assert f"{heading} (entry points: trajfm.{heading})" in res.output
    broken = next(line for line in res.output.splitlines() if line.strip().startswith("broken"))
    assert "BROKEN" in broken and "ModuleNotFoundError" in broken
    rules = next(line for line in res.output.splitlines() if "trajfm.judges.rules" in line)
    assert rules.rstrip().endswith("ok")


def test_override_is_scoped_to_its_block() -> None:
    with plugins.override("judges", "mine", RulesJudge):
        assert isinstance(get_judge("mine"), RulesJudge)
    assert "mine" not in judge_names()
    with pytest.raises(JudgeError, match="unknown judge 'mine'"):
        get_judge("mine")


def test_a_taxonomy_plugin_must_give_a_taxonomy() -> None:
    with (
        plugins.override("taxonomies", "odd", lambda: {"name": "odd"}),
        pytest.raises(UsageError, match="not a trajfm.taxonomy.Taxonomy"),
    ):
        load_taxonomy("odd")


def test_a_format_plugin_that_is_no_format_is_broken_and_detection_keeps_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trajfm.traces import FORMATS, detect_format
    from trajfm.traces.detect import get

    eps = [
        md.EntryPoint("not-a-format", "trajfm.testing.fakes:ScriptedJudge", "trajfm.formats"),
        md.EntryPoint("misnamed", "trajfm.traces.chat:ChatFormat", "trajfm.formats"),
    ]
    real = plugins._installed
    monkeypatch.setattr(plugins, "_installed", lambda kind: [e for e in eps if e.group == plugins.group(kind)] + real(kind))
    plugins.forget()
    try:
        rows = {r.name: r for r in plugins.status(("formats",))}
        assert "not a trajfm.traces.Format" in (rows["not-a-format"].error or "")
        assert "must agree" in (rows["misnamed"].error or "")
        assert "not-a-format" not in FORMATS and "chat" in FORMATS
        assert detect_format({"messages": [{"role": "user", "content": "hi"}]}) == "chat"
        with pytest.raises(UsageError, match="not-a-format.*not a trajfm.traces.Format"):
            get("not-a-format")
    finally:
        monkeypatch.undo()
        plugins.forget()
    assert "misnamed" not in FORMATS
