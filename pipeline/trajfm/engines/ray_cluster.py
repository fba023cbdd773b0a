"""Joining a Ray cluster, and what the workers of one run share through it.

Contract:
- `connect(address)`: `address` (e.g. `ray://head:10001`, `head:6379`, `auto`), else the `RAY_ADDRESS`
  environment variable, else a local Ray started in this process with at most 2 CPUs and a 1 GB object store
  (this machine class is small and shared). Already connected: nothing happens. Ray missing is a `UsageError`
  saying what to install; an address where no cluster answers, or a local start that timed out three times
  (Ray allows a starting node 30 s, which a saturated machine can exceed), is a `UsageError` naming it. Ray Data's
  progress bars and the workers' log forwarding are off, so the CLI prints only trajfm's own lines.
- `SharedRateLimit(rate)`: one rate limit for every worker of a run. A small actor hands out start times
  evenly spaced at 1/rate seconds (the same rule as the runner's per-process `RateLimiter`), and each worker
  waits its turn in its own event loop (`await limit.acquire()`), so N workers together start at most `rate`
  judge calls per second, not N x rate.
- `cluster_cpus()`: the CPUs the cluster offers (how many workers a stage starts by default).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from trajfm.errors import UsageError

LOCAL_CPUS = 2
LOCAL_OBJECT_STORE_BYTES = 1_000_000_000
START_ATTEMPTS = 3


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UsageError(
            "--engine ray needs Ray: pip install 'trajfm[ray]' (or pip install 'ray[data]'), on this machine "
            "and on every node of the cluster"
        ) from exc
    return ray


def connect(address: str | None = None) -> str:
    """Join the cluster (see the module docstring); returns a description of where we run, for the manifest."""
    ray = _ray()
    target = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return target or "already connected"
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if not target:
        kwargs.update(num_cpus=min(LOCAL_CPUS, os.cpu_count() or 1),
                      object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False)  # fmt: skip
    last: Exception | None = None
    # Ray gives a starting node 30 s to register; on a saturated machine that can run out, so try again.
    for _ in range(START_ATTEMPTS):
        try:
            ray.init(address=target, **kwargs) if target else ray.init(**kwargs)
            break
        except Exception as exc:  # ray raises bare Exception for a node that timed out starting
            last = exc
            ray.shutdown()
    else:
        what = f"join the Ray cluster at {target}" if target else "start a local Ray"
        raise UsageError(
            f"could not {what} in {START_ATTEMPTS} attempts ({type(last).__name__}: {last}); check --address / "
            "RAY_ADDRESS (e.g. 127.0.0.1:6379 for `ray start --head --port 6379`), or retry when the machine "
            "is less busy"
        ) from last
    return target or f"local Ray ({min(LOCAL_CPUS, os.cpu_count() or 1)} CPUs)"


def cluster_cpus() -> int:
    ray = _ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _RateGate:
    """The actor behind `SharedRateLimit`: the next free start time, handed out one at a time."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = 0.0

    def reserve(self) -> float:
        """Seconds the caller must wait before its call starts."""
        now = time.time()
        wait = self.next - now
        self.next = max(now, self.next) + self.interval
        return max(0.0, wait)


class SharedRateLimit:
    """A rate limit shared by the workers of one run (see the module docstring). Picklable: it holds only the
    actor's handle, so it travels to the workers with their other arguments."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise UsageError(f"--rate-limit must be positive, got {rate}")
        ray = _ray()
        self.rate = rate
        self._gate = ray.remote(num_cpus=0)(_RateGate).remote(rate)

    async def acquire(self) -> None:
        wait = await self._gate.reserve.remote()
        if wait > 0:
            await asyncio.sleep(wait)

    def close(self) -> None:
        _ray().kill(self._gate)
