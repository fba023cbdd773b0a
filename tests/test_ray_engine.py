"""`--engine ray` against a real Ray cluster on loopback: a head and one worker node, started and stopped here.

`trajfm extract --engine ray` and `trajfm cluster --engine ray` on the bundled corpus must give the same tables
as the local engine (row order aside; latency is a timing). The cluster runs with the hashing embedder so the
test stays within CI's time: the Ray side (the actor pool, the order of the vectors that come back, the shared
cache) is the same for any embedder. CI installs Ray (`.[ray]`); without it the test skips and says so.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.runfolder import RUN_ID_KEY, RunFolder

# The test cluster's own token (Ray's token authentication), for its nodes and this driver only. Ray reads the
# mode when it is first imported, so it is set before that (no other test uses Ray).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'trajfm[ray]')")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
# A loopback address Ray does not rewrite: it replaces 127.0.0.1 and localhost by the machine's outward IP so
# other machines can join, and this test must only ever talk to loopback.
NODE_IP = "127.0.0.2"
CORPUS = ROOT / "traces"
KEYS = {
    "traces": ["trace_id"],
    "steps": ["trace_id", "position"],
    "diagnoses": ["trace_id"],
    "modes": ["trace_id", "mode_id"],
    "novel_modes": ["novel_id"],
    "clusters": ["cluster_id"],
    "novel_assignments": ["novel_id"],
}
TIMINGS = ("latency_s",)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ray_start(args: list[str], temp_dir: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`ray start ... --block` in its own process group (so the test stops exactly what it started)."""
    ports = _free_ports(4)
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--block", "--num-cpus", "1",
           "--object-store-memory", str(300 * 1024 * 1024), "--node-ip-address", NODE_IP,
           "--disable-usage-stats", "--temp-dir", temp_dir,
           "--dashboard-agent-listen-port", str(ports[0]), "--dashboard-agent-grpc-port", str(ports[1]),
           "--runtime-env-agent-port", str(ports[2]), "--metrics-export-port", str(ports[3]), *args]  # fmt: skip
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group `ray start` leads (its raylet, GCS, workers), SIGKILL what outlives 5 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _start_node(args: list[str], temp_dir: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a node and wait until `ray start` says it runs. Ray gives a starting node 30 s to register, which a
    saturated machine can exceed (then `ray start` exits): such a start is tried again, up to 3 times."""
    for _ in range(3):
        before = log.read_text(errors="replace").count("Ray runtime started") if log.exists() else 0
        proc = _ray_start(args, temp_dir, log, env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.read_text(errors="replace").count("Ray runtime started") > before:
                return proc
            time.sleep(0.5)
        _stop(proc)
    raise AssertionError(f"`ray start {' '.join(args)}` did not start in 3 attempts; see {log}")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Ray's socket paths must stay short: a temp dir directly under /tmp, not pytest's deep tmp_path.
    temp_dir = tempfile.mkdtemp(prefix="trajfm-ray-", dir="/tmp")
    log = tmp_path_factory.mktemp("ray") / "ray.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    (head_port,) = _free_ports(1)
    address = f"{NODE_IP}:{head_port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_start_node(["--head", "--port", str(head_port), "--include-dashboard", "false"],
                                 temp_dir, log, env))  # fmt: skip
        procs.append(_start_node(["--address", address], temp_dir, log, env))
        # Connect this process (the driver the CLI then reuses) on the loopback node IP.
        ray.init(address=address, log_to_driver=False, _node_ip_address=NODE_IP)
        deadline = time.monotonic() + 60
        while sum(1 for node in ray.nodes() if node["Alive"]) < 2:
            assert time.monotonic() < deadline, "the worker node started but did not join the cluster in 60 s"
            time.sleep(0.5)
        yield address
    finally:
        ray.shutdown()
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"trajfm {' '.join(args)} failed:\n{result.output}"
    return result.output


def _same_table(a: RunFolder, b: RunFolder, table: str) -> None:
    x, y = a.read_table(table), b.read_table(table)
    drop = [c for c in TIMINGS if c in x.columns]
    x, y = x.drop(drop).sort(KEYS[table]), y.drop(drop).sort(KEYS[table])
    assert x.height == y.height, f"{table}: {x.height} rows locally, {y.height} on Ray"
    for column in x.columns:
        assert x[column].equals(y[column]), f"{table}.{column} differs between the local and the Ray run"


def test_extract_and_cluster_on_ray_equal_the_local_run(ray_cluster: str, tmp_path: Path) -> None:
    local, distributed = tmp_path / "local", tmp_path / "ray"
    _invoke(["extract", str(CORPUS), "--out", str(local), "--no-progress"])
    _invoke(["cluster", str(local), "--embedder", "fake"])
    out = _invoke(["extract", str(CORPUS), "--out", str(distributed), "--no-progress", "--engine", "ray",
                   "--address", ray_cluster])  # fmt: skip
    assert "judged 881 traces" in out
    # Both nodes gave the run a worker, and the tables are sharded by batch.
    run = RunFolder.open(distributed)
    assert run.is_sharded("diagnoses") and len(run.shard_paths("diagnoses")) >= 2
    engine = run.read_manifest()["stages"]["extract"]["engine"]
    assert engine["name"] == "ray" and engine["workers"] == 2
    # Every shard carries the run id the manifest names (readers refuse shards of two runs).
    run_id = run.read_manifest()["run_id"]
    shards = [p for t in ("traces", "steps", "diagnoses", "modes", "novel_modes") for p in run.shard_paths(t)]
    assert run_id and {pl.read_parquet_metadata(p).get(RUN_ID_KEY) for p in shards} == {run_id}
    _invoke(["cluster", str(distributed), "--embedder", "fake", "--engine", "ray", "--address", ray_cluster])
    assert run.read_manifest()["stages"]["cluster"]["options"]["engine"] == "ray"
    a = RunFolder.open(local)
    for table in KEYS:
        _same_table(a, run, table)
    # The manifest says the same about what was read: loading quality per format, skipped files, failures.
    mine, theirs = (r.read_manifest()["stages"]["extract"] for r in (a, run))
    for section in ("loading_quality", "skipped_files", "load_failures", "corpus_declarations"):
        assert section in theirs and theirs[section] == mine[section], f"manifest extract.{section} differs"
    assert theirs["loading_quality"]["assetops"]["traces"] == 881 and theirs["skipped_files"]  # labels.jsonl
    # The same manifest keys, counts included (the degenerate-reply counts, the sample and the cost too).
    assert set(theirs) == set(mine), f"manifest extract keys differ: {sorted(set(theirs) ^ set(mine))}"
    assert set(theirs["counts"]) == set(mine["counts"]) and set(theirs["options"]) == set(mine["options"])
    assert theirs["counts"] == mine["counts"] and theirs["sample"] is None is mine["sample"]
    assert theirs["cost"] == mine["cost"] == {"tokens_in": 0, "tokens_out": 0, "calls": 0}
    assert theirs["engine"]["name"] == "ray" and mine["engine"]["name"] == "local"
    # Sharded tables read lazily the same as whole ones.
    lazy = run.scan_table("modes").group_by("mode_id").agg(pl.col("detected").sum()).sort("mode_id").collect()
    eager = a.read_table("modes").group_by("mode_id").agg(pl.col("detected").sum()).sort("mode_id")
    assert lazy.equals(eager)


def test_llm_judge_on_ray_keeps_one_global_rate_limit_and_a_shared_cache(ray_cluster: str, tmp_path: Path) -> None:
    """Two workers, one rate: the endpoint sees calls started at most `rate` per second in all; a second run
    is all cache hits (both workers wrote into the same sqlite cache)."""
    from trajfm.extract import run_extract
    from trajfm.testing.endpoint import DEFAULT_MODEL, EndpointConfig, LocalEndpoint

    corpus = tmp_path / "traces"
    files = sorted(p for p in CORPUS.rglob("*.gz"))[:12]
    for i, f in enumerate(files):
        (corpus / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, corpus / f"d{i % 2}" / f"{i:04d}.gz")
    rate = 6.0
    with LocalEndpoint(EndpointConfig()) as endpoint:
        kwargs = {"judge": "llm", "model": DEFAULT_MODEL, "base_url": endpoint.url, "rate_limit": rate,
                  "engine": "ray", "address": ray_cluster}  # fmt: skip
        first = run_extract([corpus], tmp_path / "run", **kwargs)
        starts = sorted(r.started for r in endpoint.requests if r.path.endswith("/chat/completions"))
        again = run_extract([corpus], tmp_path / "run", **kwargs)
        calls_again = sum(1 for r in endpoint.requests if r.path.endswith("/chat/completions")) - len(starts)
    assert first.statuses == {"ok": 12} and first.calls == len(starts) >= 12
    # At most `rate` calls start in any one-second window, however many workers share them. The endpoint stamps
    # a call when it arrives, so arrival jitter on a loaded machine can bunch two calls that were started an
    # interval apart (a worker's slow new connection, a delayed send): allow 2 over the rate in any window, and
    # the whole run at least (n - 3) / rate s. Without the shared limit all 12 arrive within a fraction of a
    # second (12 in one window).
    busiest = max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts)
    assert busiest <= rate + 2, f"{busiest} calls arrived within one second at a limit of {rate}/s"
    assert starts[-1] - starts[0] >= (len(starts) - 3) / rate
    assert again.cache_hits == 12 and again.calls == 0 and calls_again == 0
    engine = RunFolder.open(tmp_path / "run").read_manifest()["stages"]["extract"]["engine"]
    assert engine["name"] == "ray"
