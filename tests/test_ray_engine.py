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
from trajfm.runfolder import RunFolder

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
    """SIGTERM the process group `ray start` leads (its raylet, GCS, workers), SIGKILL what outlives 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _connect_and_wait(address: str, n: int, timeout_s: float = 90.0) -> None:
    """Connect this process (the driver the CLI then reuses) on the loopback node IP; wait for `n` nodes."""
    ray.init(address=address, log_to_driver=False, _node_ip_address=NODE_IP)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(1 for node in ray.nodes() if node["Alive"]) >= n:
            return
        time.sleep(0.5)
    raise AssertionError(f"the Ray cluster at {address} did not reach {n} nodes in {timeout_s} s")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Ray's socket paths must stay short: a temp dir directly under /tmp, not pytest's deep tmp_path.
    temp_dir = tempfile.mkdtemp(prefix="trajfm-ray-", dir="/tmp")
    log = tmp_path_factory.mktemp("ray") / "ray.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    (head_port,) = _free_ports(1)
    address = f"{NODE_IP}:{head_port}"
    procs = [_ray_start(["--head", "--port", str(head_port), "--include-dashboard", "false"], temp_dir, log, env)]
    try:
        time.sleep(3)
        procs.append(_ray_start(["--address", address], temp_dir, log, env))
        _connect_and_wait(address, 2)
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
    _invoke(["cluster", str(distributed), "--embedder", "fake", "--engine", "ray", "--address", ray_cluster])
    assert run.read_manifest()["stages"]["cluster"]["options"]["engine"] == "ray"
    a = RunFolder.open(local)
    for table in KEYS:
        _same_table(a, run, table)
    # Sharded tables read lazily the same as whole ones.
    lazy = run.scan_table("modes").group_by("mode_id").agg(pl.col("detected").sum()).sort("mode_id").collect()
    eager = a.read_table("modes").group_by("mode_id").agg(pl.col("detected").sum()).sort("mode_id")
    assert lazy.equals(eager)
