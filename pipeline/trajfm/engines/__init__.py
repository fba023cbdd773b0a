"""Where the heavy stages run: `local` (this process, the default) or `ray` (an existing Ray cluster).

Contract: `check_engine(engine)` raises `UsageError` for a name that is not an engine. With `ray`,
`trajfm.engines.ray_cluster.connect(address)` joins the cluster at `address` (or `RAY_ADDRESS`), or starts a
small local one when neither is given; `trajfm.engines.ray_extract.run_extract_ray` runs stage 1 on it and
`trajfm.engines.ray_embed.RayEmbedder` runs the embedding step of stage 2 on an actor pool. Ray itself is an
optional dependency (`pip install 'trajfm[ray]'`): nothing here imports it until the `ray` engine is asked for.
"""

from __future__ import annotations

from trajfm.errors import UsageError

ENGINES = ("local", "ray")


def check_engine(engine: str, address: str | None = None) -> None:
    """Raise `UsageError` for an unknown engine, or for `--address` without `--engine ray`."""
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if address and engine != "ray":
        raise UsageError("--address only applies to --engine ray; add --engine ray or drop --address")
