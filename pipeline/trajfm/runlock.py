"""Keeping a run folder honest: one writer at a time, a new run staged and swapped in whole, leftovers cleaned.

Contract:
- `run_lock(root, command)` holds an exclusive `flock` on `RUN/.trajfm.lock` for the block (reentrant within a
  process, so `trajfm run` can call every stage; `relabel=True` on a re-entry records its command as the
  holder's, e.g. `trajfm run` taking over the lock extract took). The file records the holder (pid, host, command, start time);
  a second process is refused at once with a `RunFolderError` naming them. A lock whose process died (kill -9)
  holds no flock any more: the next command takes it over (stale-lock recovery) without asking.
- `recover(root)` (called under the lock) finishes what a killed writer left: a staging folder marked complete is
  rolled forward into RUN, an incomplete one is deleted, and stale temp files (`.NAME.*.tmp`) are removed.
- `staged_run(live)` (under the lock) yields a `RunFolder` in `RUN/.staging-<run id>/` with a new run id: the
  stage writes its whole run there. On success the staging folder is marked complete (the marker lists its files)
  and rolled forward: outputs of the previous run the new one does not have (stale tables, report.html,
  summary.*) are removed, the new files are renamed into RUN, manifest.json last. A kill at any point leaves
  either the previous complete run (not marked yet) or a marked staging folder the next command finishes; a full
  disk or any error while staging removes the staging folder and leaves the previous run as it was.
- Readers check every table's run id against manifest.json (`RunFolder.read_table`), so a folder that was mixed by
  hand or by an old trajfm is refused, never shown.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from trajfm.errors import RunFolderError
from trajfm.schemas import SCHEMA_VERSION

if TYPE_CHECKING:
    from trajfm.runfolder import RunFolder

LOCK_NAME = ".trajfm.lock"
STAGING_PREFIX = ".staging-"
COMPLETE_MARKER = ".complete"
# What a run writes into RUN/ (removed when a new run does not write it: it would describe the old run).
RUN_OUTPUTS = (
    "traces.parquet",
    "steps.parquet",
    "diagnoses.parquet",
    "modes.parquet",
    "novel_modes.parquet",
    "clusters.parquet",
    "novel_assignments.parquet",
    "report.html",
    "summary.json",
    "summary.md",
)

_held: dict[str, tuple[int, int]] = {}  # real path of a lock file -> (fd, depth) held by this process


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "another process"
    return (
        f"pid {info.get('pid')} on {info.get('host')}, `{info.get('command')}`, started {info.get('started')}"
    )


@contextmanager
def run_lock(root: Path, command: str, *, relabel: bool = False) -> Iterator[None]:
    """See the module docstring."""
    path = Path(root) / LOCK_NAME
    key = os.path.realpath(path)
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        if relabel:
            _record(fd, command)
        try:
            yield
        finally:
            _release(key)
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise RunFolderError(
            f"cannot create the lock file {path} ({exc.strerror or exc}); check the folder"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderError(
            f"run folder {root} is in use by another trajfm process ({_holder(path)}); wait for it to finish or "
            "stop it, or choose another --out"
        ) from None
    _record(fd, command)
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        _release(key)


def _release(key: str) -> None:
    """Leave one `run_lock` block; the last one out releases the lock (blocks may end in any order: `trajfm run`
    keeps holding a lock that extract took, after extract's block ended)."""
    fd, depth = _held[key]
    if depth > 1:
        _held[key] = (fd, depth - 1)
        return
    del _held[key]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing releases the flock; the empty file stays (removing it would race a new holder)


def _record(fd: int, command: str) -> None:
    """Write who holds the lock into the lock file: a courtesy for the message a second writer gets; the flock
    is the lock."""
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)


def recover(root: Path) -> list[str]:
    """Finish or discard what a killed writer left in `root` (call under `run_lock`); returns what was done."""
    root = Path(root)
    done: list[str] = []
    if not root.is_dir():
        return done
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
            if (entry / COMPLETE_MARKER).exists():
                _roll_forward(entry, root)
                done.append(f"finished installing the interrupted run {entry.name[len(STAGING_PREFIX) :]}")
            else:
                shutil.rmtree(entry, ignore_errors=True)
                done.append(f"removed the unfinished run {entry.name[len(STAGING_PREFIX) :]}")
        elif entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            entry.unlink(missing_ok=True)
            done.append(f"removed the stale temporary file {entry.name}")
    return done


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _roll_forward(staging: Path, live: Path) -> None:
    marker = json.loads((staging / COMPLETE_MARKER).read_text())
    names = marker["files"]
    for name in marker.get("replaces", RUN_OUTPUTS):
        if name not in names:
            (live / name).unlink(missing_ok=True)
            if name.endswith(".parquet"):  # the sharded form of an old table (RUN/<table>/part-*.parquet)
                shutil.rmtree(live / name.removesuffix(".parquet"), ignore_errors=True)
    for name in sorted(names, key=lambda n: n == "manifest.json"):  # the manifest last: it names the run
        src = staging / name
        if src.exists():
            if name.endswith(".parquet"):  # a single-file table replaces an older sharded form
                shutil.rmtree(live / name.removesuffix(".parquet"), ignore_errors=True)
            os.replace(src, live / name)
    _fsync_dir(live)
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def staged_run(
    live: RunFolder,
    *,
    seed_manifest: dict[str, object] | None = None,
    run_id: str | None = None,
    replaces: tuple[str, ...] = RUN_OUTPUTS,
) -> Iterator[RunFolder]:
    """See the module docstring. `seed_manifest` starts the new run's manifest (sections carried over). A later
    stage of the same run (cluster) passes the run's `run_id` and the outputs it `replaces`; the others stay."""
    from trajfm.runfolder import MANIFEST, RunFolder, atomic_write_text

    run_id = run_id or new_run_id()
    staging = live.root / f"{STAGING_PREFIX}{run_id}"
    try:
        staging.mkdir()
        manifest = dict(seed_manifest or {})
        manifest.setdefault("schema_version", SCHEMA_VERSION)  # the staged run is written in this schema
        manifest["run_id"] = run_id
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        yield RunFolder(staging, run_id=run_id)
        files = sorted(p.name for p in staging.iterdir() if not p.name.startswith("."))
        atomic_write_text(
            staging / COMPLETE_MARKER,
            json.dumps({"run_id": run_id, "files": files, "replaces": list(replaces)}),
        )
        _fsync_dir(staging)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RunFolderError(
            f"could not write the new run into {live.root} ({exc.strerror or exc}"
            f"{': ' + str(exc.filename) if exc.filename else ''}); the previous run there is unchanged"
        ) from exc
    except RunFolderError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RunFolderError(f"{exc}; the previous run in {live.root} is unchanged") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _roll_forward(staging, live.root)
