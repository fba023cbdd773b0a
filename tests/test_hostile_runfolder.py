"""Run folders that cannot lie: a run id on every table, one writer at a time, staged runs swapped in whole.

The kill -9, concurrency and full-disk tests run `trajfm` in subprocesses on a slice of the bundled corpus; after
each, `trajfm report` must either work on one complete run (every table's run id equals the manifest's) or
refuse with a clear message, never mix two runs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.errors import RunFolderError
from trajfm.runfolder import RUN_ID_KEY, RunFolder
from trajfm.runlock import COMPLETE_MARKER, STAGING_PREFIX, recover, run_lock, staged_run

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "traces" / "assetops"
TABLES = ("traces", "steps", "diagnoses", "modes", "novel_modes")


def _corpus(tmp_path: Path, n: int, name: str = "traces") -> Path:
    """A copy of the first `n` bundled traces (sorted), in their folder layout."""
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix == ".gz")[:n]
    root = tmp_path / name
    for f in files:
        dest = root / f.relative_to(CORPUS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    return root


def _trajfm(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trajfm.cli", *args], capture_output=True, text=True, timeout=600, **kw
    )  # type: ignore[call-overload]


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trajfm.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run_ids(run: Path) -> tuple[str | None, dict[str, str | None]]:
    manifest = json.loads((run / "manifest.json").read_text())
    ids = {
        t: pl.read_parquet_metadata(run / f"{t}.parquet").get(RUN_ID_KEY)
        for t in (*TABLES, "clusters", "novel_assignments")
        if (run / f"{t}.parquet").exists()
    }
    return manifest.get("run_id"), ids


def _assert_one_complete_run(run: Path) -> str:
    run_id, ids = _run_ids(run)
    assert run_id and set(ids) >= set(TABLES), (run_id, ids)
    assert set(ids.values()) == {run_id}, f"tables from several runs: {ids} (manifest {run_id})"
    return run_id


def test_every_table_carries_the_run_id_of_the_manifest(tmp_path: Path) -> None:
    traces = _corpus(tmp_path, 6)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["extract", str(traces), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    first = _assert_one_complete_run(out)
    res = CliRunner().invoke(app, ["extract", str(traces), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert _assert_one_complete_run(out) != first  # a new run, a new id
    assert not [p.name for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_a_table_from_another_run_is_refused_naming_it(tmp_path: Path) -> None:
    traces = _corpus(tmp_path, 4)
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert (
            CliRunner().invoke(app, ["extract", str(traces), "--out", str(out), "--no-progress"]).exit_code
            == 0
        )
    shutil.copy(b / "diagnoses.parquet", a / "diagnoses.parquet")
    res = CliRunner().invoke(app, ["report", str(a)])
    assert res.exit_code == 1
    message = " ".join(res.output.split())
    assert "mixes two runs" in message and "diagnoses.parquet" in message
    assert _run_ids(b)[0] in message and _run_ids(a)[0] in message
    with pytest.raises(RunFolderError, match="mixes two runs"):
        RunFolder(a).read_table("diagnoses")


def test_a_second_writer_is_refused_naming_the_first_and_a_dead_holder_is_taken_over(tmp_path: Path) -> None:
    traces = _corpus(tmp_path, 3)
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from trajfm.runlock import run_lock\n"
         f"with run_lock(Path({str(out)!r}), 'trajfm extract (test holder)'):\n"
         "    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        res = _trajfm("extract", str(traces), "--out", str(out), "--no-progress")
        assert res.returncode == 1
        err = " ".join(res.stderr.split())
        assert (
            "in use by another trajfm process" in err and f"pid {holder.pid}" in err and "test holder" in err
        )
        assert "Traceback" not in res.stderr and not (out / "traces.parquet").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder died without unlocking: the lock file is still there, but the next writer takes over.
    assert (out / ".trajfm.lock").exists()
    res = _trajfm("extract", str(traces), "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    _assert_one_complete_run(out)


def test_stale_temp_files_and_unfinished_staging_are_removed(tmp_path: Path) -> None:
    traces = _corpus(tmp_path, 3)
    out = tmp_path / "run"
    out.mkdir()
    (out / ".traces.parquet.x1y2.tmp").write_bytes(b"half a table")
    (out / f"{STAGING_PREFIX}20260101T000000Z-dead").mkdir()
    (out / f"{STAGING_PREFIX}20260101T000000Z-dead" / "traces.parquet").write_bytes(b"half")
    assert (
        CliRunner().invoke(app, ["extract", str(traces), "--out", str(out), "--no-progress"]).exit_code == 0
    )
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".trajfm.lock"]


def test_a_run_killed_while_being_swapped_in_is_finished_by_the_next_command(tmp_path: Path) -> None:
    traces = _corpus(tmp_path, 4)
    out = tmp_path / "run"
    assert (
        CliRunner().invoke(app, ["extract", str(traces), "--out", str(out), "--no-progress"]).exit_code == 0
    )
    old_id = _assert_one_complete_run(out)
    live = RunFolder(out)
    real_replace = os.replace
    moved: list[str] = []

    def die_after_two(src: str | Path, dst: str | Path) -> None:
        if Path(src).parent.name.startswith(STAGING_PREFIX) and Path(dst).parent == out:
            if len(moved) == 2:
                raise KeyboardInterrupt  # stands for a kill -9 half-way through the swap
            moved.append(str(dst))
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as mp, run_lock(out, "test"):
        stage_df = {t: live.read_table(t) for t in TABLES}
        mp.setattr(os, "replace", die_after_two)
        with pytest.raises(KeyboardInterrupt), staged_run(live, seed_manifest=live.read_manifest()) as stage:
            for t, df in stage_df.items():
                stage.write_table(t, df)
            new_id = stage.run_id
    # Now the folder mixes runs on disk: readers refuse, and the next command under the lock finishes the swap.
    staging = [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(staging) == 1 and (staging[0] / COMPLETE_MARKER).exists()
    with pytest.raises(RunFolderError, match="mixes two runs"):
        for t in TABLES:
            live.read_table(t)
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert _assert_one_complete_run(out) == new_id != old_id


@pytest.mark.slow
def test_kill_9_at_random_points_and_two_concurrent_extracts_never_mix(tmp_path: Path) -> None:
    traces = _corpus(tmp_path, 120)
    out = tmp_path / "run"
    assert _trajfm("run", str(traces), "--out", str(out), "--no-progress").returncode == 0
    ids = {_assert_one_complete_run(out)}
    rng = random.Random(16)
    outcomes = []
    for _ in range(6):
        proc = _spawn("extract", str(traces), "--out", str(out), "--no-progress")
        time.sleep(rng.uniform(0.5, 15.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rep = _trajfm("report", str(out))
        if rep.returncode == 0:
            run_id = _assert_one_complete_run(out)
            outcomes.append("old run" if run_id in ids else "new run")
            ids.add(run_id)
        else:  # a refusal must say why in one line, without a traceback
            assert "Traceback" not in rep.stderr and rep.stderr.strip().startswith("error:"), rep.stderr
            outcomes.append("refused")
    print("after kill -9:", outcomes)
    assert "refused" not in outcomes  # the lock + roll-forward always leave one complete run to report on
    # Two extracts at once into one folder: one wins, the other is refused (or runs after it); never a mix.
    procs = [_spawn("extract", str(traces), "--out", str(out), "--no-progress") for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, results
    for code, (_, err) in zip(codes, results, strict=True):
        if code != 0:
            assert "in use by another trajfm process" in " ".join(err.split())
    assert _trajfm("report", str(out)).returncode == 0
    _assert_one_complete_run(out)


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path("/tmp") / f"trajfm-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(probe)], capture_output=True)
    if ok.returncode == 0:
        subprocess.run(["umount", str(probe)], capture_output=True)
    probe.rmdir()
    return ok.returncode == 0


def test_full_disk_gives_one_line_and_keeps_the_previous_run(tmp_path: Path) -> None:
    if not _can_mount():
        pytest.skip("mounting a 5 MB tmpfs is not permitted here (needs root and mount); nothing measured")
    traces = _corpus(tmp_path, 20)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5M", "tmpfs", str(mnt)], check=True)
    try:
        out = mnt / "run"
        assert _trajfm("extract", str(traces), "--out", str(out), "--no-progress").returncode == 0
        old_id = _assert_one_complete_run(out)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".parquet"}
        free = shutil.disk_usage(mnt).free
        (mnt / "filler").write_bytes(b"\0" * max(free - 40_000, 0))  # leave too little for a new run
        res = _trajfm("extract", str(traces), "--out", str(out), "--no-progress")
        assert res.returncode == 1
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.stderr, res.stderr
        assert "space" in lines[0].lower()
        assert _assert_one_complete_run(out) == old_id
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".parquet"} == before
        assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
        (mnt / "filler").unlink()
        assert _trajfm("report", str(out)).returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_recover_on_a_clean_folder_does_nothing(tmp_path: Path) -> None:
    assert recover(tmp_path) == []


_TRY_LOCK = (
    "import sys; from pathlib import Path; from trajfm.errors import RunFolderError; "
    "from trajfm.runlock import run_lock\n"
    "try:\n"
    "    with run_lock(Path(sys.argv[1]), 'trajfm extract (second writer)'):\n"
    "        print('taken')\n"
    "except RunFolderError as exc:\n"
    "    print('refused:', exc)\n"
)


def test_trajfm_run_holds_the_lock_between_its_stages(tmp_path: Path) -> None:
    """Another process trying to write while `trajfm run` is between extract and the report is refused: the lock
    is held across all three stages, not taken stage by stage."""
    from trajfm.orchestrate import run_pipeline

    traces = _corpus(tmp_path, 4)
    out = tmp_path / "run"
    seen: dict[str, str] = {}

    def on_stage(message: str) -> None:  # called as the cluster and report stages start, after extract
        probe = subprocess.run([sys.executable, "-c", _TRY_LOCK, str(out)], capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        seen[message] = probe.stdout.strip() + probe.stderr.strip()

    run_pipeline([traces], out, extract_options={"progress": False}, on_stage=on_stage)
    assert seen, "no stage started after extract"
    for message, answer in seen.items():
        assert answer.startswith("refused:") and "`trajfm run`" in answer, (message, answer)
    assert subprocess.run([sys.executable, "-c", _TRY_LOCK, str(out)], capture_output=True, text=True,
                          timeout=120).stdout.strip() == "taken"  # fmt: skip
    _assert_one_complete_run(out)


def test_trajfm_run_against_a_dead_endpoint_leaves_no_folder(tmp_path: Path) -> None:
    import socket

    from trajfm.errors import JudgeError
    from trajfm.orchestrate import run_pipeline

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "new-run"
    options = {"judge": "llm", "model": "m", "base_url": f"http://127.0.0.1:{port}/v1", "progress": False}
    with pytest.raises(JudgeError, match="nothing answers"):
        run_pipeline([_corpus(tmp_path, 1)], out, extract_options=options)
    assert not out.exists()
