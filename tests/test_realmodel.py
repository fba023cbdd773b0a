"""The LLM judge against a real model server: llama.cpp's Python server with Gemma 3 270M on 127.0.0.1 (issue 17).

Opt-in (it starts a real model on the CPU and takes minutes): TRAJFM_REALMODEL=1, as .ci/run sets it after
installing the server (`python -m trajfm.testing.llamacpp install`). With TRAJFM_REALMODEL_INSTALL=1 the test
installs what is missing itself. It skips with the reason when the server cannot be built or imported here.
Run with `-s` to see its log: server start, the negotiated structured-output mode, per-trace statuses, timings.
With TRAJFM_REALMODEL_SUMMARY=PATH the same lines are also written to PATH (.ci/run prints it at the very end of
its log, where CI shows it).

Sized to finish in minutes on 2 busy cores: 2 traces, one at a time, replies of at most MAX_TOKENS tokens that
never grow (max_tokens_ceiling=0: a cut-off reply gets one compact-form request, then is a parse_error), one
retry, and a llama.cpp server on THREADS threads (1: found faster than 2 on a machine busy with other work; see
README "Judging with a local model"). llama-cpp-python's schema-constrained decoding costs several
times the model's own time per token, so the token budget decides the wall time. Each can be changed by an
environment variable of the same name prefixed TRAJFM_REALMODEL_.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realmodel]

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO / "traces"
N_TRACES = 2
MAX_TOKENS = int(os.environ.get("TRAJFM_REALMODEL_MAX_TOKENS", "256"))
THREADS = int(os.environ.get("TRAJFM_REALMODEL_THREADS", "1"))
# One whole reply must fit in a call's deadline: well under a minute on 2 idle cores, minutes on a busy machine.
CALL_TIMEOUT_S = float(os.environ.get("TRAJFM_REALMODEL_TIMEOUT_S", "300"))
MAX_RETRIES = int(os.environ.get("TRAJFM_REALMODEL_MAX_RETRIES", "1"))
STATUSES = {"ok", "parse_error", "backend_error", "skipped"}
SUMMARY = os.environ.get("TRAJFM_REALMODEL_SUMMARY")
_lines: list[str] = []


def _log(msg: str) -> None:
    line = f"realmodel: {msg}"
    print(line, flush=True)
    _lines.append(line)


@pytest.fixture(scope="module", autouse=True)
def summary_file():
    """Write what `_log` said to TRAJFM_REALMODEL_SUMMARY when the module is done (also after a skip or a
    failure: the lines so far)."""
    started = time.monotonic()
    yield
    _log(f"test wall time (server start included): {time.monotonic() - started:.0f} s")
    if SUMMARY:
        Path(SUMMARY).write_text("\n".join(_lines) + "\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if os.environ.get("TRAJFM_REALMODEL") != "1":
        _log("skipped: TRAJFM_REALMODEL is not 1")
        pytest.skip("opt-in: set TRAJFM_REALMODEL=1 (starts llama.cpp with Gemma 3 270M; minutes on a CPU)")
    from trajfm.testing import llamacpp

    missing = llamacpp.server_missing()
    if (missing or llamacpp.model_path() is None) and os.environ.get("TRAJFM_REALMODEL_INSTALL") == "1":
        _log(f"installing {' '.join(llamacpp.REQUIREMENTS)}")
        result = llamacpp.install()
        _log(f"install {'ok' if result.ok else 'failed'} in {result.seconds:.0f} s")
        missing = llamacpp.server_missing() or (None if result.ok else result.log_tail[-300:])
    if missing:
        _log(f"skipped: no llama.cpp server here: {missing}")
        pytest.skip(f"no llama.cpp server here: {missing}")
    model = llamacpp.model_path()
    if model is None:
        _log(f"skipped: the {llamacpp.GEMMA_PACKAGE} package is not installed")
        pytest.skip(f"the {llamacpp.GEMMA_PACKAGE} package is not installed")
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    _log(f"model {model} ({model.stat().st_size / 1e6:.0f} MB)")
    with llamacpp.LlamaServer(model, log_path=log_path, threads=THREADS) as srv:
        _log(
            f"server started in {srv.started_s:.1f} s at {srv.url} (n_ctx {srv.n_ctx}, {srv.threads} threads)"
        )
        yield srv
    _log("server stopped")


def _trajfm(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trajfm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TRAJFM_API_KEY": ""},
        check=False,
    )


def test_llm_judge_against_llama_cpp(server, tmp_path: Path) -> None:
    from trajfm.judges.cache import JudgeCache, cache_key
    from trajfm.judges.registry import get_judge
    from trajfm.taxonomy import load_taxonomy
    from trajfm.traces import load_traces

    run = tmp_path / "run"
    options = {"max_tokens": MAX_TOKENS, "max_tokens_ceiling": 0, "timeout_s": CALL_TIMEOUT_S}
    # The judge's own deadlines bound the run: per trace at most (1 + retries) attempts of at most 3 calls
    # (the negotiation and the compact-form request are calls inside an attempt), each within the call's total
    # deadline, judged one at a time. subprocess.run raises TimeoutExpired (the test fails) past that bound.
    bound = N_TRACES * (1 + MAX_RETRIES) * 3 * CALL_TIMEOUT_S
    _log(f"extract: {N_TRACES} traces, concurrency 1, max_tokens {MAX_TOKENS} (never larger), call deadline "
         f"{CALL_TIMEOUT_S:.0f} s, max {MAX_RETRIES} retries; bound {bound:.0f} s")  # fmt: skip
    started = time.monotonic()
    done = _trajfm(
        "extract", str(TRACES), "--limit", str(N_TRACES), "--judge", "llm", "--model", "gemma3-270m",
        "--base-url", server.url, "--out", str(run), "--concurrency", "1", "--no-progress",
        "--max-retries", str(MAX_RETRIES),
        *(a for k, v in options.items() for a in ("--judge-option", f"{k}={v}")),
        timeout=bound,
    )  # fmt: skip
    extract_s = time.monotonic() - started
    print(done.stdout + done.stderr, flush=True)
    said = [
        ln
        for ln in (done.stdout + done.stderr).splitlines()
        if ln.startswith(("judged", "error")) or "set aside" in ln
    ]
    _log(f"extract exit {done.returncode} in {extract_s:.1f} s: {' / '.join(said)[:300]}")
    assert (run / "diagnoses.parquet").exists(), done.stderr

    diag = pl.read_parquet(run / "diagnoses.parquet")
    for row in diag.iter_rows(named=True):
        _log(
            f"trace {'/'.join(row['trace_id'].split('/')[-2:])[-60:]}: status {row['status']}, judge_quality "
            f"{row['judge_quality']}, {row['calls']} calls, {row['latency_s']:.1f} s, {row['tokens_in']} tokens in / "
            f"{row['tokens_out']} out, repairs {row['reply_repairs']}"
            + (f", error: {row['error'][:160]}" if row["error"] else "")
        )
    assert diag.height == N_TRACES and set(diag["status"].to_list()) <= STATUSES

    manifest = json.loads((run / "manifest.json").read_text())["stages"]["extract"]
    negotiated = manifest["judge"]["structured_output"]
    _log(f"structured output negotiated: used {negotiated['used']!r} after trying {negotiated['tried']}; refused: "
         + ", ".join(f"{r['mode']} (HTTP {r['status']})" for r in negotiated.get("refusals", [])))  # fmt: skip
    used = negotiated["used"]
    assert used in ("json_schema", "json_object", "text")
    # The chosen mode is one the server accepts: ask it directly, outside trajfm.
    from trajfm.judges.negotiate import response_format
    from trajfm.judges.prompt import reply_json_schema

    tax = load_taxonomy("mast")
    probe = {
        "model": "gemma3-270m",
        "messages": [{"role": "user", "content": "Reply with {}"}],
        "max_tokens": 8,
    }
    fmt = response_format(reply_json_schema(tax), used)
    if fmt is not None:
        probe["response_format"] = fmt
    assert httpx.post(f"{server.url}/chat/completions", json=probe, timeout=CALL_TIMEOUT_S).status_code == 200
    if used != "json_schema":  # it was refused first, and the refusal is on record with its status
        assert [r["mode"] for r in negotiated["refusals"]][:1] == ["json_schema"]
        schema_probe = {**probe, "response_format": response_format(reply_json_schema(tax), "json_schema")}
        refused = httpx.post(f"{server.url}/chat/completions", json=schema_probe, timeout=CALL_TIMEOUT_S)
        assert refused.status_code == negotiated["refusals"][0]["status"] != 200

    # Degenerate replies are flagged: recompute the plainest check from the cached diagnoses themselves.
    judge = get_judge("llm", model="gemma3-270m", base_url=server.url, max_tokens=MAX_TOKENS)
    traces = load_traces([TRACES]).traces[:N_TRACES]
    quality = dict(zip(diag["trace_id"], diag["judge_quality"], strict=True))
    with JudgeCache.in_run(run) as cache:
        for t in traces:
            d = cache.get(cache_key(judge, t, tax))
            if d is None:
                continue  # not ok: not cached
            n_detected = sum(bool(m.detected) for m in d.modes)
            _log(f"trace {t.trace_id}: the reply detected {n_detected} of {len(tax.modes)} modes")
            if n_detected == len(tax.modes):
                assert "all_modes_detected" in (quality[t.trace_id] or "")
    modes = pl.read_parquet(run / "modes.parquet")
    set_aside = [t for t, q in quality.items() if q not in (None, "ok")]
    assert modes.filter(pl.col("trace_id").is_in(set_aside)).height == 0  # no findings from set-aside replies

    started = time.monotonic()
    rep = _trajfm("report", str(run), timeout=300)
    _log(f"report exit {rep.returncode} in {time.monotonic() - started:.1f} s")
    if diag.filter(pl.col("status") == "ok").height:
        assert rep.returncode == 0, rep.stderr
        assert (run / "report.html").exists()
    _log(f"wall time (extract + report): {time.monotonic() - started + extract_s:.1f} s")
