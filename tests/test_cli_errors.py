"""What a user sees when something is wrong: every user-fixable problem is a one-line error naming the file,
trace or field and what to do, with a non-zero exit code and no traceback; nothing already done is lost.

End to end through the typer app on tiny fixtures (the rules fixtures, a report run built from tables, a local
OpenAI-compatible endpoint on 127.0.0.1 for the LLM judge).
"""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from trajfm import plugins
from trajfm.cli import app
from trajfm.errors import BackendError
from trajfm.judges.base import Diagnosis, Judge, ModeFinding
from trajfm.runfolder import RunFolder
from trajfm.taxonomy import Taxonomy
from trajfm.testing.endpoint import EndpointConfig, LocalEndpoint
from trajfm.traces.model import Trace

HERE = Path(__file__).resolve().parent
TRACES = HERE / "fixtures" / "rules" / "assetops"  # 4 good traces and one truncated file
sys.path.insert(0, str(HERE / "fixtures" / "report"))
from make_run import make_run  # noqa: E402 - the report fixture builder lives beside the fixtures

runner = CliRunner()


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env={"TRAJFM_DEBUG": "", **(env or {})})


def _assert_clean_error(res: Any, *needles: str) -> None:
    """A non-zero exit, an `error:` line holding every needle, and no traceback."""
    assert res.exit_code != 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    line = next((x for x in res.output.splitlines() if x.startswith("error:")), "")
    for needle in needles:
        assert needle in res.output, (needle, res.output)
    assert line, res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- output paths that cannot be folders ---------------------------------------------------------------------


def test_out_below_a_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    res = _invoke("extract", str(TRACES), "--out", str(blocker / "run"), "--no-progress")
    _assert_clean_error(res, f"cannot create run folder {blocker / 'run'}", "choose another --out")


def test_report_on_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = _invoke("report", str(blocker))
    _assert_clean_error(res, f"{blocker} is a file, not a run folder")
    assert "does not exist" not in res.output


def test_export_into_a_file_is_an_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _invoke("extract", str(TRACES), "--out", str(run), "--no-progress").exit_code == 0
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = _invoke("export", str(run), "--out", str(blocker))
    _assert_clean_error(res, f"cannot write the export into {blocker}", "choose another --out")


# --- cluster --from-csv --------------------------------------------------------------------------------------


def test_csv_without_the_columns_names_what_it_found(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("name,text\na,b\n")
    run = tmp_path / "run"
    res = _invoke("cluster", str(run), "--from-csv", str(csv), "--embedder", "fake")
    _assert_clean_error(res, "lacks column(s) title, description", "found: name, text")
    assert res.exit_code == 2 and not run.exists()


# --- re-running extract on a clustered run --------------------------------------------------------------------


def test_report_refuses_clusters_made_from_other_novel_modes(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run", n_traces=8, hostile=False)
    run = RunFolder(root)
    novel = run.read_table("novel_modes")
    assert novel.height > 1
    run.write_table("novel_modes", novel.head(1))  # as if extract had been re-run on fewer traces
    res = _invoke("report", str(root))
    _assert_clean_error(res, "clusters.parquet was made from other novel modes", f"trajfm cluster {root}")
    assert not (root / "report.html").exists()


def test_re_extract_with_other_novel_modes_removes_stale_clusters_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _invoke("extract", str(TRACES), "--out", str(out), "--no-progress").exit_code == 0
    run = RunFolder(out)
    # Pretend an earlier cluster stage grouped novel modes that this extract does not produce.
    make_run(tmp_path / "other", n_traces=4, hostile=False)
    for table in ("clusters", "novel_assignments"):
        shutil.copy(tmp_path / "other" / f"{table}.parquet", run.table_path(table))
    res = _invoke("extract", str(TRACES), "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    assert "removed clusters.parquet, novel_assignments.parquet" in res.output
    assert f"trajfm cluster {out}" in res.output
    assert not run.has("clusters") and not run.has("novel_assignments")
    res = _invoke("report", str(out))
    assert res.exit_code == 0, res.output  # the report now shows the run as not clustered, not stale families


def test_re_extract_with_the_same_novel_modes_keeps_clusters(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _invoke("extract", str(TRACES), "--out", str(out), "--no-progress").exit_code == 0
    res = _invoke("cluster", str(out), "--embedder", "fake", "--reducer", "none")
    assert res.exit_code == 0, res.output
    run = RunFolder(out)
    clusters = run.read_table("clusters")
    assert (
        run.read_table("novel_modes").height == 3
    )  # the fixtures' rules findings the taxonomy does not name
    res = _invoke("extract", str(TRACES), "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    assert "removed" not in res.output
    assert run.read_table("clusters").equals(clusters)  # nothing already done is lost


# --- the LLM judge: dead endpoint, wrong model, partial failures ------------------------------------------------


def test_llm_judge_with_nothing_listening_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    url = f"http://127.0.0.1:{_free_port()}/v1"
    res = _invoke(
        "extract", str(TRACES), "--out", str(out), "--judge", "llm", "--model", "m", "--base-url", url,
        "--no-progress", env={"TRAJFM_API_KEY": "test"},
    )  # fmt: skip
    _assert_clean_error(res, f"nothing answers at --base-url {url}", "Nothing was judged")
    assert not out.exists()


def test_llm_judge_base_url_without_scheme_is_named(tmp_path: Path) -> None:
    res = _invoke(
        "extract", str(TRACES), "--out", str(tmp_path / "run"), "--judge", "llm", "--model", "m",
        "--base-url", "localhost-8000", "--no-progress",
    )  # fmt: skip
    _assert_clean_error(res, "nothing answers at --base-url localhost-8000", "http://")


def test_llm_judge_model_the_endpoint_does_not_serve_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with LocalEndpoint(EndpointConfig()) as ep:
        res = _invoke(
            "run", str(TRACES), "--out", str(out), "--judge", "llm", "--model", "not-served", "--base-url", ep.url,
            "--no-progress", env={"TRAJFM_API_KEY": "test"},
        )  # fmt: skip
    _assert_clean_error(res, "no trace could be judged (4 backend_error)", "not-served", "--model")
    # the attempt is recorded, and the pipeline stopped before clustering and reporting nothing
    assert set(RunFolder(out).read_table("diagnoses")["status"]) == {"backend_error"}
    assert not (out / "report.html").exists()


def test_llm_run_then_rerun_makes_no_calls_and_run_prints_them(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(TRACES), "--out", str(out), "--judge", "llm", "--model", "trajfm-test", "--no-progress",
            "--no-cluster"]  # fmt: skip
    with LocalEndpoint(EndpointConfig()) as ep:
        first = _invoke(*args, "--base-url", ep.url, env={"TRAJFM_API_KEY": "test"})
        assert first.exit_code == 0, first.output
        assert "judged 4 traces (ok 4)" in first.output and "4 calls, 0 cache hits" in first.output
        n = len(ep.requests)
        second = _invoke(*args, "--base-url", ep.url, env={"TRAJFM_API_KEY": "test"})
        assert second.exit_code == 0, second.output
        assert "0 calls, 4 cache hits" in second.output
        assert len(ep.requests) == n


class _HalfBroken(Judge):
    """A judge that fails on every trace whose id ends in 0002 (recorded as backend_error by the runner)."""

    name = "half-broken"
    model = "fake"
    prompt_version = "t1"
    cacheable = False

    def cache_material(self) -> dict[str, Any]:
        return {"model": self.model}

    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        if trace.trace_id.endswith("0002"):
            raise BackendError("HTTP 503 from the gateway", retryable=False)
        return Diagnosis(trace_id=trace.trace_id, judge=self.name, judge_model=self.model, prompt_version="t1",
                         task_completed=True, summary="fine",
                         modes=[ModeFinding(m.id, False) for m in taxonomy.modes])  # fmt: skip


def test_partial_judge_failures_are_listed_with_the_reason_and_exit_zero(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with plugins.override("judges", "half-broken", _HalfBroken):
        res = _invoke("extract", str(TRACES), "--out", str(out), "--judge", "half-broken", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "1 traces backend_error" in res.output and "HTTP 503 from the gateway" in res.output
    assert "re-run the same command to retry them" in res.output
    diags = RunFolder(out).read_table("diagnoses")
    assert diags.filter(pl.col("status") == "ok").height == 3  # the good traces are kept


def test_debug_env_shows_the_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = runner.invoke(app, ["report", str(blocker)], env={"TRAJFM_DEBUG": "1"})
    assert res.exit_code != 0
    from trajfm.errors import RunFolderError

    assert isinstance(res.exception, RunFolderError)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["extract", "{traces}", "--out", "{out}", "--judge", "nope"], "unknown judge 'nope'"),
        (["extract", "{traces}", "--out", "{out}", "--taxonomy", "nope"], "unknown taxonomy 'nope'"),
        (["extract", "{traces}", "--out", "{out}", "--format", "nope"], "unknown trace format 'nope'"),
        (["extract", "{traces}", "--out", "{out}", "--judge", "llm"], "--model"),
        (["extract", "{traces}", "--out", "{out}", "--judge", "llm", "--model", "m"], "--base-url"),
        (["extract", "{missing}", "--out", "{out}"], "no such file or folder"),
        (["export", "{out}", "--format", "xlsx"], "unknown export format 'xlsx'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    values = {"traces": str(TRACES), "out": str(tmp_path / "run"), "missing": str(tmp_path / "missing")}
    res = _invoke(*[a.format(**values) for a in args], env={"TRAJFM_MODEL": "", "TRAJFM_BASE_URL": "",
                                                             "OPENAI_BASE_URL": ""})  # fmt: skip
    _assert_clean_error(res, needle)


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--method", "nope"], "unknown --method 'nope'"),
        (["--text", "nope"], "--text must be one of"),
        (["--baseline", "{missing}"], "no such run folder"),
    ],
)
def test_run_checks_cluster_options_before_extract_spends_anything(
    tmp_path: Path, option: list[str], needle: str
) -> None:
    out = tmp_path / "run"
    opts = [o.format(missing=tmp_path / "missing") for o in option]
    res = _invoke("run", str(TRACES), "--out", str(out), "--no-progress", *opts)
    _assert_clean_error(res, needle)
    assert not out.exists()  # nothing was extracted (with an LLM judge that would have cost calls)


def test_missing_taxonomy_file_says_the_file_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "mine.json"
    res = _invoke("extract", str(TRACES), "--out", str(tmp_path / "run"), "--taxonomy", str(missing))
    _assert_clean_error(res, f"taxonomy file {missing} does not exist")
    assert "unknown taxonomy" not in res.output


def test_traces_on_an_empty_folder_says_it_is_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _invoke("traces", str(empty))
    _assert_clean_error(res, f"no files found in {empty}")
    assert "see the reasons above" not in res.output


def test_ctrl_c_during_llm_extract_says_how_to_resume_and_resuming_reuses_the_cache(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    env = {
        k: v for k, v in os.environ.items() if k not in ("TRAJFM_DEBUG", "TRAJFM_BASE_URL", "OPENAI_BASE_URL")
    }
    env["TRAJFM_API_KEY"] = "test"
    with LocalEndpoint(EndpointConfig(latency_ms=300)) as ep:
        cmd = [sys.executable, "-m", "trajfm.cli", "extract", str(TRACES), "--out", str(out), "--judge", "llm",
               "--model", "trajfm-test", "--base-url", ep.url, "--concurrency", "1", "--no-progress"]  # fmt: skip
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(ep.requests) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    hits = int(done.stdout.split(" cache hits")[0].rsplit(" ", 1)[-1])
    assert hits >= 1  # what was judged before Ctrl-C was not judged again


@pytest.mark.slow
def test_cluster_with_the_real_model_prints_no_loading_bar(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _invoke("extract", str(TRACES), "--out", str(out), "--no-progress").exit_code == 0
    res = _invoke("cluster", str(out), "--reducer", "none")
    assert res.exit_code == 0, res.output
    assert "Loading weights" not in res.output and "wrote" in res.output


def test_file_system_errors_no_stage_caught_are_one_line_errors_naming_the_path(tmp_path: Path) -> None:
    import os
    import subprocess

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cmd = [sys.executable, "-m", "trajfm.cli", "synth", "--out", str(blocker / "sub"), "--limit", "1"]
    env = {k: v for k, v in os.environ.items() if k != "TRAJFM_DEBUG"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert f"error: {blocker / 'sub'}: Not a directory" in res.stderr and "Traceback" not in res.stderr
    debug = subprocess.run(cmd, env={**env, "TRAJFM_DEBUG": "1"}, capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "NotADirectoryError" in debug.stderr


def test_synth_into_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = _invoke("synth", "--out", str(blocker), "--limit", "1")
    _assert_clean_error(res, f"--out {blocker} is a file, not a folder")


def test_corrupt_manifest_fails_extract_before_judging(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _invoke("extract", str(TRACES), "--out", str(out), "--no-progress").exit_code == 0
    (out / "manifest.json").write_text("{bad")
    before = (out / "diagnoses.parquet").stat().st_mtime_ns
    res = _invoke("extract", str(TRACES), "--out", str(out), "--no-progress")
    _assert_clean_error(res, f"{out / 'manifest.json'} is not valid JSON", "delete it")
    assert (out / "diagnoses.parquet").stat().st_mtime_ns == before  # nothing was re-judged or rewritten


def test_run_announces_the_stages_that_have_no_progress_bar(tmp_path: Path) -> None:
    from trajfm.orchestrate import run_pipeline

    said: list[str] = []
    result = run_pipeline(
        [TRACES], tmp_path / "run", extract_options={"progress": False},
        cluster_options={"embedder": "fake", "reducer": "none"}, on_stage=said.append,
    )  # fmt: skip
    assert said == ["clustering 3 novel failure modes into families ...", "writing the report ..."]
    assert result.extract is not None and result.extract.statuses == {"ok": 4}


def test_bench_llm_judge_errors_name_the_bench_options(tmp_path: Path) -> None:
    env = {"TRAJFM_MODEL": "", "TRAJFM_BASE_URL": "", "OPENAI_BASE_URL": ""}
    res = _invoke("bench", "whowhen", str(tmp_path), "--out", str(tmp_path / "b"), "--judge", "llm", env=env)
    _assert_clean_error(res, "needs a model", "--judge-option model=NAME")
    url = f"http://127.0.0.1:{_free_port()}/v1"
    res = _invoke(
        "bench", "whowhen", str(tmp_path), "--out", str(tmp_path / "b"), "--judge", "llm",
        "--judge-option", "model=m", "--judge-option", f"base_url={url}", env=env,
    )  # fmt: skip
    _assert_clean_error(res, f"nothing answers at --base-url {url}")
    assert not (tmp_path / "b" / "bench.json").exists()


def test_report_with_another_taxonomy_than_the_run_was_judged_against_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _invoke("extract", str(TRACES), "--out", str(out), "--no-progress").exit_code == 0
    res = _invoke("report", str(out), "--taxonomy", "trail")
    _assert_clean_error(
        res, "mode ids the trail taxonomy does not have", "judged against mast", "drop --taxonomy"
    )
    assert not (out / "report.html").exists()
    assert _invoke("report", str(out)).exit_code == 0  # the recorded taxonomy still works


@pytest.mark.datasets
def test_bench_where_the_judge_judged_nothing_exits_non_zero(tmp_path: Path, datasets_dir: Path) -> None:
    whowhen = datasets_dir / "who_and_when"
    if not whowhen.is_dir():
        pytest.skip(f"{whowhen} not present")
    out = tmp_path / "b"
    with LocalEndpoint(EndpointConfig()) as ep:
        res = _invoke(
            "bench", "whowhen", str(whowhen), "--out", str(out), "--limit", "2", "--judge", "llm",
            "--judge-option", "model=not-served", "--judge-option", f"base_url={ep.url}",
            env={"TRAJFM_API_KEY": "test"},
        )  # fmt: skip
    _assert_clean_error(res, "could not judge any trace", "backend_error", "measure nothing")
    assert (out / "bench.json").exists()  # what was measured is still written


def test_out_inside_the_traces_folder_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(TRACES, corpus)
    for out in (corpus, corpus / "runs" / "demo"):
        res = _invoke("run", str(corpus), "--out", str(out), "--no-progress")
        _assert_clean_error(
            res, f"--out {out} is inside the traces folder {corpus}", "choose a folder outside it"
        )
    assert not (corpus / "manifest.json").exists() and not (corpus / "runs").exists()
