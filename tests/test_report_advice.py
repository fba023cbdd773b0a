"""Advice of novel families: the nearest known mode's by default; written per family by an LLM with
`--advice llm` (through the project's client, cached, failures said on the card)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.report import build_report
from trajfm.report.advice import AdviceOptions, LlmAdviser
from trajfm.testing import EndpointConfig, LocalEndpoint

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "report"))
from make_run import make_run  # noqa: E402


def _advice_reply(body: dict) -> str:
    family = body["messages"][-1]["content"].split("Family: ")[1].split("\n")[0]
    return (
        "Sure.\n```json\n"
        + json.dumps({"advice": f"Check the tool result before relying on it ({family})."})
        + "\n```"
    )


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("TRAJFM_MODEL", "TRAJFM_BASE_URL", "OPENAI_BASE_URL", "TRAJFM_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-advice-key-5555555555555555")


def test_llm_writes_the_advice_of_family_cards_and_a_rebuild_is_served_from_its_cache(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=30, hostile=False)
    plain = build_report(run).summary["fix_first"]
    families = [c for c in plain if c["kind"] == "family"]
    assert families, "the fixture puts families on the fix-first list: the test would prove nothing"
    assert all("nearest known mode" in c["advice_from"] or "generic" in c["advice_from"] for c in families)
    with LocalEndpoint(EndpointConfig(reply_fn=_advice_reply)) as ep:
        first = build_report(run, advice=AdviceOptions(ep.url, "trajfm-test")).summary["fix_first"]
        n_calls = len(ep.requests)
        again = build_report(run, advice=AdviceOptions(ep.url, "trajfm-test")).summary["fix_first"]
        assert len(ep.requests) == n_calls  # the rebuild is served from RUN/cache/advice_cache.json
    assert n_calls == len(families)  # one request per family card, none for mode cards
    for before, after in zip(plain, first, strict=True):
        if before["kind"] == "mode":
            assert after["advice"] == before["advice"]  # taxonomy modes keep the taxonomy's advice
            continue
        assert after["advice"] == f"Check the tool result before relying on it ({before['name']})."
        assert after["advice_from"] == "written for this family by trajfm-test"
    assert [c["advice"] for c in again] == [c["advice"] for c in first]
    report = json.loads((run / "manifest.json").read_text())["stages"]["report"]["advice"]
    assert (
        report["cache_hits"] == len(families)
        and report["calls"] == 0
        and "sk-advice" not in json.dumps(report)
    )
    assert "written for this family by trajfm-test" in (run / "report.html").read_text()


def test_a_failing_endpoint_keeps_the_nearest_advice_and_says_why(tmp_path: Path) -> None:
    with LocalEndpoint(EndpointConfig(fault_rate=1.0, faults=("500",))) as ep:
        adviser = LlmAdviser(
            ep.url, "trajfm-test", max_retries=1, backoff_base=0.01, cache_path=tmp_path / "c.json"
        )
        advice, source = adviser.advise({"name": "Loops"}, ("Stop repeating the call.", "advice of 1.3"))
        assert len(ep.requests) == 2  # the call and one retry
    assert advice == "Stop repeating the call."
    assert source.startswith("advice of 1.3; the LLM (trajfm-test) gave no advice") and "500" in source
    assert adviser.stats["failed"] == 1 and not (tmp_path / "c.json").exists()  # nothing bad is cached


def test_advice_llm_without_a_model_or_endpoint_fails_before_any_work(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=6, hostile=False)
    res = CliRunner().invoke(app, ["report", str(run), "--advice", "llm"])
    assert res.exit_code != 0 and "--llm-model" in res.output and not (run / "report.html").exists()
    res = CliRunner().invoke(app, ["report", str(run), "--advice", "oracle"])
    assert res.exit_code != 0 and "--advice must be one of nearest, llm" in res.output
