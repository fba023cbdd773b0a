"""Pilot samples that represent the whole set: `--sample N [--seed S]`.

Contract of `stratified_sample(traces, n, seed) -> (sample, info)`:
- Strata are (agent model, scenario) as the traces record them (a missing value is its own stratum, "unknown").
  Each stratum gets a share of N proportional to its size (largest remainders break ties, in an order drawn from
  the seed), so a pilot of 50 covers every agent model in proportion instead of the first 50 sorted paths (one
  model). When N is smaller than the number of strata, the strata that get a trace are drawn with probability
  proportional to their size.
- Within a stratum the traces are drawn at random with `random.Random(seed)`; the sample keeps the input order.
  Same traces, N and seed -> the same sample.
- N >= the number of traces returns every trace. `info` says it is a sample, of how many traces, by what, with
  which seed, and how many traces of each stratum were taken (for the manifest and the report).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from trajfm.traces.model import Trace

UNKNOWN = "unknown"


def stratum(trace: Trace) -> tuple[str, str]:
    return (trace.agent_model or UNKNOWN, trace.scenario or UNKNOWN)


def stratified_sample(traces: Sequence[Trace], n: int, seed: int = 0) -> tuple[list[Trace], dict[str, Any]]:
    """A sample of `n` traces stratified by agent model and scenario (see the module docstring)."""
    if n < 1:
        raise ValueError(f"the sample size must be at least 1, got {n}")
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, t in enumerate(traces):
        groups.setdefault(stratum(t), []).append(i)
    total = len(traces)
    keys = sorted(groups)
    if n >= total:
        quota = {k: len(groups[k]) for k in keys}
    elif n < len(keys):
        # Fewer traces than strata: draw which strata get one, in proportion to their size, without replacement.
        pool = list(keys)
        quota = dict.fromkeys(keys, 0)
        for _ in range(n):
            k = rng.choices(pool, weights=[len(groups[p]) for p in pool])[0]
            quota[k] = 1
            pool.remove(k)
    else:
        exact = {k: n * len(groups[k]) / total for k in keys}
        quota = {k: max(1, int(exact[k])) for k in keys}
        # Hand out what is left by largest remainder (ties in a seeded order); take back from the largest quotas
        # when the at-least-one rule overshot.
        order = sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), rng.random()))
        left = n - sum(quota.values())
        for k in order:
            if left <= 0:
                break
            if quota[k] < len(groups[k]):
                quota[k] += 1
                left -= 1
        while left < 0:
            k = max((k for k in keys if quota[k] > 1), key=lambda k: (quota[k] - exact[k], k))
            quota[k] -= 1
            left += 1
    chosen: list[int] = []
    for k in keys:
        chosen += rng.sample(groups[k], quota[k])
    chosen.sort()
    info = {
        "sample": True,
        "size": len(chosen),
        "of": total,
        "seed": seed,
        "stratified_by": ["agent_model", "scenario"],
        "strata": [
            {"agent_model": k[0], "scenario": k[1], "taken": quota[k], "of": len(groups[k])} for k in keys
        ],
    }
    return [traces[i] for i in chosen], info
