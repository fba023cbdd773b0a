"""The smaller hostile inputs of issue 16: judge options checked up front, a manifest of the wrong JSON shape,
a reward too large for a float."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.errors import JudgeError, RunFolderError
from trajfm.judges.registry import get_judge
from trajfm.runfolder import RunFolder
from trajfm.traces import load_traces

LLM = {"model": "m", "base_url": "http://127.0.0.1:9/v1"}


def test_judge_option_of_the_wrong_type_is_a_clear_error_before_any_work() -> None:
    with pytest.raises(
        JudgeError, match=r"--judge-option timeout_s='abc' should be a number, e\.g\. timeout_s=60"
    ):
        get_judge("llm", **LLM, timeout_s="abc")
    with pytest.raises(JudgeError, match="max_tokens=True should be"):
        get_judge("llm", **LLM, max_tokens=True)
    with pytest.raises(JudgeError, match=r"no option timeout \(did you mean timeout_s\?\)"):
        get_judge("llm", **LLM, timeout=60)
    judge = get_judge("llm", **LLM, timeout_s=60, max_tokens=2000)  # the help's own example
    assert judge.timeout_s == 60.0 and isinstance(judge.timeout_s, float) and judge.max_tokens == 2000


def test_help_example_works_from_the_cli(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["extract", "--help"])
    assert "timeout_s=60" in res.output
    traces = tmp_path / "t.json"
    traces.write_text(json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]))
    bad = CliRunner().invoke(
        app, ["extract", str(traces), "--out", str(tmp_path / "r"), "--judge", "llm", "--model", "m",
              "--base-url", "http://127.0.0.1:9/v1", "--judge-option", "timeout_s=abc", "--dry-run"],
    )  # fmt: skip
    assert bad.exit_code != 0 and "timeout_s='abc' should be a number" in " ".join(bad.output.split())
    ok = CliRunner().invoke(
        app, ["extract", str(traces), "--out", str(tmp_path / "r"), "--judge", "llm", "--model", "m",
              "--base-url", "http://127.0.0.1:9/v1", "--judge-option", "timeout_s=60", "--dry-run"],
    )  # fmt: skip
    # Accepted: the dry run gets as far as the endpoint check (nothing listens on port 9), not an option error.
    assert "timeout_s" not in ok.output and "nothing answers" in " ".join(ok.output.split()), ok.output


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', '{"stages": [1]}', "42"])
def test_manifest_of_the_wrong_shape_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(RunFolderError, match="is not a trajfm manifest"):
        RunFolder(tmp_path).read_manifest()
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code != 0 and "Traceback" not in res.output and res.output.startswith("error:")


def test_reward_too_large_for_a_float_loads_as_unknown(tmp_path: Path) -> None:
    record = {"task_id": 1, "trial": 0, "reward": 10**400, "info": {},
              "traj": [{"role": "user", "content": "refund order 7"}, {"role": "assistant", "content": "done"}]}  # fmt: skip
    path = tmp_path / "tau.json"
    path.write_text(json.dumps(record))
    result = load_traces([path])
    assert not result.failures, result.failures
    assert result.traces[0].reward is None and result.traces[0].is_correct is None
