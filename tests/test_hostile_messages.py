"""File names and trace text with Rich markup, newlines, ANSI escapes and bidi controls: no traceback, no
forged output lines, bidi controls made visible in report.html and summary.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.safetext import for_rich, show_bidi, visible

GOOD = [{"role": "user", "content": "book a table"}, {"role": "assistant", "content": "I could not, sorry"}]
HOSTILE_NAMES = [
    "x[/]y.json",
    "[bold red]z[/].json",
    "evil\nerror: forged line.json",
    "\x1b[31mred\x1b[0m.json",
    "bidi\u202egnp.json",
]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "traces[/]"
    for name in HOSTILE_NAMES:  # "x[/]y.json" is a folder "x[" holding "]y.json": the path reads x[/]y.json
        for path, text in ((root / name, json.dumps(GOOD)), (root / ("bad " + name), "{not json")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)  # a load failure whose message repeats the name
    return root


def _no_forgery(output: str) -> None:
    assert "\x1b" not in output and "\u202e" not in output
    assert not any(line.startswith("error: forged") for line in output.splitlines()), output


def test_helpers_escape_markup_controls_and_bidi() -> None:
    assert for_rich("x[/]y.json") == "x\\[/]y.json"
    assert visible("a\nb\x1b[31m\r\x00\x9b") == "a\\nb\\x1b[31m\\r\\x00\\x9b"
    assert visible("tab\tok") == "tab\tok"
    assert show_bidi("a\u202eb \\u202E") == "a<U+202E>b <U+202E>"


@pytest.mark.parametrize(
    "command", [["traces"], ["extract", "--no-progress"], ["run", "--no-progress", "--no-cluster"]]
)
def test_hostile_names_print_no_traceback_and_no_forged_lines(
    folder: Path, tmp_path: Path, command: list[str]
) -> None:
    args = [command[0], str(folder), *command[1:]]
    if command[0] != "traces":
        args += ["--out", str(tmp_path / "run[/]\nerror: forged")]
    res = CliRunner().invoke(app, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 0, res.output
    _no_forgery(res.output)
    out = res.output
    assert "x\\[/]y.json" not in out  # the markup escape is consumed by Rich: the name prints as is
    assert "x[/]y.json" in out and "evil\\nerror: forged line.json" in out and "\\x1b[31mred" in out
    if command[0] == "run":
        run = tmp_path / "run[/]\nerror: forged"
        html = (run / "report.html").read_text()
        md = (run / "summary.md").read_text()
        assert "\u202e" not in html and "\\u202e" not in html.lower() and "\u202e" not in md
        rep = CliRunner().invoke(app, ["report", str(run)])
        assert rep.exit_code == 0, rep.output
        _no_forgery(rep.output)


def test_error_message_naming_a_hostile_path_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no[/]such\nerror: forged.json"
    res = CliRunner().invoke(app, ["extract", str(missing), "--out", str(tmp_path / "run")])
    assert res.exit_code != 0 and res.exception is None or isinstance(res.exception, SystemExit)
    _no_forgery(res.output)
    assert len([ln for ln in res.output.splitlines() if ln.startswith("error:")]) == 1
