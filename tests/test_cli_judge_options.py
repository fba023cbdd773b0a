"""`--redact` and `--judge-option` on `trajfm extract` / `trajfm run`: the options reach the LLM judge, and
redaction keeps secrets and e-mail addresses on this machine (checked on what a local endpoint received)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.testing.endpoint import EndpointConfig, LocalEndpoint, deterministic_reply

SECRET_KEY = "sk-proj-ZYXWVUTSRQPONMLKJIHG987"
EMAIL = "alice.operator@example.org"


def _trace_file(tmp_path: Path) -> Path:
    messages = [
        {"role": "user", "content": f"Send the chiller report to {EMAIL} please."},
        {"role": "assistant", "content": f"Using the service key api_key={SECRET_KEY} to fetch the report."},
        {"role": "tool", "content": "report fetched: 3 alarms on Chiller 6"},
        {"role": "assistant", "content": "Sent the report: 3 alarms on Chiller 6."},
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": messages}) + "\n")
    return path


def _run(tmp_path: Path, *extra: str) -> tuple[Any, list[str]]:
    bodies: list[str] = []

    def reply(req: dict[str, Any]) -> str:
        bodies.append(json.dumps(req))
        return deterministic_reply(req["messages"][0]["content"], req["messages"][1]["content"])

    trace = _trace_file(tmp_path)
    with LocalEndpoint(EndpointConfig(reply_fn=reply)) as ep:
        res = CliRunner().invoke(
            app,
            ["extract", str(trace), "--out", str(tmp_path / "run"), "--judge", "llm", "--model", "trajfm-test",
             "--base-url", ep.url, "--no-progress", *extra],
            env={"TRAJFM_API_KEY": "local-test-key", "TRAJFM_DEBUG": ""},
        )  # fmt: skip
    return res, bodies


def test_redact_keeps_the_secret_and_the_email_on_this_machine(tmp_path: Path) -> None:
    res, bodies = _run(tmp_path, "--redact")
    assert res.exit_code == 0, res.output
    assert bodies, "the endpoint received no request"
    sent = "\n".join(bodies)
    assert SECRET_KEY not in sent and EMAIL not in sent
    assert "[REDACTED-EMAIL]" in sent


def test_without_redact_the_text_goes_as_is(tmp_path: Path) -> None:
    res, bodies = _run(tmp_path)
    assert res.exit_code == 0, res.output
    sent = "\n".join(bodies)
    assert SECRET_KEY in sent and EMAIL in sent


def test_judge_option_reaches_the_judge_and_a_bad_one_is_named(tmp_path: Path) -> None:
    res, _ = _run(tmp_path, "--judge-option", "no_such_option=1")
    assert res.exit_code != 0
    assert "no_such_option" in res.output and "Traceback" not in res.output


def test_redact_with_the_rules_judge_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["extract", str(_trace_file(tmp_path)), "--out", str(tmp_path / "r"), "--redact"],
        env={"TRAJFM_DEBUG": ""},
    )
    assert res.exit_code == 2, res.output
    assert "--redact only applies to --judge llm" in res.output
