"""A judge run a user can watch and plan: --dry-run checks the endpoint, progress lines without a terminal,
--sample pilots that represent the set, the key read from OPENAI_API_KEY (issue 12)."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.judges.runner import PlainProgress, RunStats
from trajfm.sampling import stratified_sample
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import EndpointConfig, LocalEndpoint
from trajfm.traces.model import Trace

TAX = load_taxonomy("mast")
CORPUS = Path(__file__).resolve().parents[1] / "traces" / "assetops"


def _dry_run(url: str, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        app,
        ["extract", str(CORPUS), "--out", "/tmp/never-written", "--judge", "llm", "--model", "trajfm-test",
         "--base-url", url, "--dry-run", "--limit", "20", *extra],
    )  # fmt: skip
    return res.exit_code, res.output


def test_dry_run_names_a_model_the_endpoint_does_not_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalEndpoint(EndpointConfig(models=("other-model", "gpt-x"))) as ep:
        code, out = _dry_run(ep.url)
        assert len(ep.requests) == 0  # one GET /models, no completion
    assert code != 0
    line = out.strip().splitlines()[-1]
    assert "does not serve model 'trajfm-test'" in line and "--model" in line and "gpt-x" in line
    assert not Path("/tmp/never-written").exists()


def test_dry_run_says_the_key_was_refused_and_which_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAJFM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0000000000000000")
    with LocalEndpoint(EndpointConfig(api_key="sk-right-1111111111111111")) as ep:
        code, out = _dry_run(ep.url)
    assert code != 0
    [line] = [x for x in out.strip().splitlines() if "refused" in x]
    assert "HTTP 401" in line and "OPENAI_API_KEY" in line and "sk-wrong" not in out


def test_dry_run_against_a_good_endpoint_prints_calls_tokens_and_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAJFM_API_KEY", "sk-right-1111111111111111")
    with LocalEndpoint(EndpointConfig(api_key="sk-right-1111111111111111")) as ep:
        code, out = _dry_run(ep.url, "--price-in", "2.5", "--price-out", "10")
        assert len(ep.requests) == 0
    assert code == 0, out
    assert "calls: 20" in out and re.search(r"est_tokens_in: \d+", out)
    assert "key accepted, model served" in out
    tokens = int(re.search(r"est_tokens_in: (\d+)", out).group(1))
    assert f"{tokens * 2.5 / 1e6:.4f} for input" in out and "for output (max_tokens bound)" in out


def test_the_key_is_read_from_openai_api_key_and_the_manifest_names_only_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trajfm.extract import run_extract

    key = "sk-openai-var-2222222222222222"
    monkeypatch.delenv("TRAJFM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with LocalEndpoint(EndpointConfig(api_key=key)) as ep:
        res = run_extract([CORPUS], tmp_path / "run", judge="llm", model="trajfm-test", base_url=ep.url, limit=3,
                          price_in=1.0, price_out=4.0)  # fmt: skip
        assert all(r.authorized for r in ep.requests) and ep.requests
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert key not in manifest
    section = json.loads(manifest)["stages"]["extract"]
    assert section["judge"]["api_key_from"] == "OPENAI_API_KEY"
    cost = section["cost"]
    assert cost["tokens_in"] > 0 and cost["cost"] == round(
        cost["tokens_in"] * 1 / 1e6 + cost["tokens_out"] * 4 / 1e6, 6
    )
    assert res.statuses == {"ok": 3}


def test_progress_lines_without_a_terminal_show_counts_and_retries() -> None:
    stream = io.StringIO()
    stats = RunStats()
    progress = PlainProgress(100, stats, every_s=0.0, every_share=0.5, stream=stream)
    stats.ok, stats.calls, stats.retries = 1, 2, 1
    progress.waiting(3.0, "rate limited by the endpoint (HTTP 429)")
    progress.advance()
    lines = stream.getvalue().splitlines()
    assert lines and "judging 1/100" in lines[-1] and "ok 1" in lines[-1] and "calls 2" in lines[-1]
    assert (
        "retries 1" in lines[-1]
        and "waiting 3.0 s: rate limited by the endpoint (HTTP 429)" in stream.getvalue()
    )


@pytest.mark.slow
def test_a_long_cli_run_without_a_terminal_prints_progress_lines_with_its_retries(tmp_path: Path) -> None:
    """`trajfm extract` as a user runs it under nohup or CI: stderr is a pipe, the run takes over 20 s."""
    import subprocess
    import sys
    import time

    cfg = EndpointConfig(latency_ms=700, fault_rate=0.15, faults=("429", "500"), retry_after_s=1.0, seed=3)
    with LocalEndpoint(cfg) as ep:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "trajfm.cli", "extract", str(CORPUS), "--out", str(tmp_path / "run"),
             "--judge", "llm", "--model", "trajfm-test", "--base-url", ep.url, "--limit", "100",
             "--concurrency", "4"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        seconds = time.monotonic() - started
        faults = sum(1 for r in ep.requests if r.fault)
    assert proc.returncode == 0, proc.stderr
    assert seconds >= 20 and faults > 0
    lines = [x for x in proc.stderr.splitlines() if x.startswith("judging (llm)")]
    assert len(lines) >= 3, proc.stderr  # every ~10 s or 5%, not only at the end
    assert lines[-1].startswith("judging (llm) 100/100") and "ok 100" in lines[-1]
    assert re.search(r"retries [1-9]", lines[-1]) and "last retry: waiting" in proc.stderr
    assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr  # plain lines, no terminal control codes


def _traces_of(models: dict[str, int]) -> list[Trace]:
    out = []
    for model, n in models.items():
        for i in range(n):
            out.append(Trace(f"{model}/{i:03d}", f"{model}/{i:03d}", "test", task="t", agent_model=model))
    return out


def test_sample_is_stratified_by_agent_model_and_reproducible() -> None:
    traces = _traces_of({"a-model": 600, "b-model": 300, "c-model": 100})
    sample, info = stratified_sample(traces, 50, seed=1)
    counts = Counter(t.agent_model for t in sample)
    assert counts == {"a-model": 30, "b-model": 15, "c-model": 5}
    assert [t.trace_id for t in stratified_sample(traces, 50, seed=1)[0]] == [t.trace_id for t in sample]
    assert [t.trace_id for t in stratified_sample(traces, 50, seed=2)[0]] != [t.trace_id for t in sample]
    assert info["sample"] and info["size"] == 50 and info["of"] == 1000
    first50 = Counter(t.agent_model for t in traces[:50])
    assert first50 == {"a-model": 50}  # what --limit 50 would have judged
    small, _ = stratified_sample(traces, 2, seed=0)
    assert len(small) == 2 and len({t.agent_model for t in small}) == 2


def test_extract_sample_records_that_the_run_is_a_sample(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "extract",
            str(CORPUS),
            "--out",
            str(tmp_path / "run"),
            "--sample",
            "40",
            "--seed",
            "3",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    section = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["extract"]
    assert section["sample"]["size"] == 40 and section["sample"]["of"] == 881
    assert len({s["agent_model"] for s in section["sample"]["strata"] if s["taken"]}) > 1


def test_summary_says_what_the_judge_spent_and_that_the_run_is_a_sample(tmp_path: Path) -> None:
    from trajfm.extract import run_extract
    from trajfm.report import build_report

    with LocalEndpoint() as ep:
        run_extract([CORPUS], tmp_path / "run", judge="llm", model="trajfm-test", base_url=ep.url, sample=12,
                    seed=5, price_in=3.0, price_out=15.0)  # fmt: skip
    build_report(tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    spend = summary["run"]["judge_spend"]
    assert spend["calls"] == 12 and spend["tokens_in"] > 0
    assert spend["cost"] == round(spend["tokens_in"] * 3 / 1e6 + spend["tokens_out"] * 15 / 1e6, 6)
    assert summary["run"]["sample"]["size"] == 12
    text = (tmp_path / "run" / "summary.md").read_text()
    assert "**A sample**: 12 of 881 traces" in text
    assert f"{spend['tokens_in']:,} input" in text and f"cost {spend['cost']:.4f}" in text
