"""The judge reply cache: a finished Diagnosis per (judge configuration, trace content), safe against SIGKILL.

Contract:
- Keys are `trajfm-judge-v1:` + sha256 of the canonical JSON (sorted keys, no whitespace) of a dict holding
  everything that changes a judge's output: the judge name and `cache_material()` (model, prompt version,
  parameters), the taxonomy (name, version and the mode definitions), and the judge's input for this trace
  (`Judge.cache_input(trace, taxonomy)`: e.g. the rendered prompt of the LLM judge; by default the full
  content of the trace). `cache_key` builds it.
- Storage is one sqlite file in WAL mode with one committed transaction per stored reply, so a process killed
  with SIGKILL keeps every reply it stored before the kill and none half-written. Only `ok` diagnoses are stored:
  failures are retried by the next run.
- The API key, or anything else not in the key material, never reaches the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

KEY_PREFIX = "trajfm-judge-v1:"
DEFAULT_FILENAME = "judge_cache.sqlite"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def taxonomy_material(taxonomy: Taxonomy) -> dict[str, Any]:
    return {
        "name": taxonomy.name,
        "version": taxonomy.version,
        "modes": [[m.id, m.name, m.category, m.definition] for m in taxonomy.modes],
    }


def trace_material(trace: Trace) -> dict[str, Any]:
    """The whole trace as data (what a judge without `cache_input` may read)."""
    return dataclasses.asdict(trace)


def cache_key(judge: Judge, trace: Trace, taxonomy: Taxonomy) -> str:
    """The cache key of `judge`'s verdict on `trace` (see the module docstring)."""
    material = {
        "judge": judge.name,
        "judge_material": judge.cache_material(),
        "taxonomy": taxonomy_material(taxonomy),
        "input": judge.cache_input(trace, taxonomy),
    }
    return KEY_PREFIX + hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


def diagnosis_to_json(d: Diagnosis) -> str:
    return canonical_json(dataclasses.asdict(d))


def diagnosis_from_json(text: str) -> Diagnosis:
    raw = json.loads(text)
    raw["modes"] = [ModeFinding(**m) for m in raw.get("modes", [])]
    raw["novel"] = [NovelMode(**n) for n in raw.get("novel", [])]
    return Diagnosis(**raw)


class JudgeCache:
    """A sqlite cache of finished diagnoses. Usable from one thread at a time (the runner's event loop)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a killed process in WAL mode (only power loss can drop the last commits).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, trace_id TEXT NOT NULL, "
            "diagnosis TEXT NOT NULL, created REAL NOT NULL)"
        )
        self.hits = 0
        self.misses = 0
        self.writes = 0

    @classmethod
    def in_run(cls, run_root: Path | str) -> JudgeCache:
        """The cache of a run folder (RUN/cache/judge_cache.sqlite)."""
        return cls(Path(run_root) / "cache" / DEFAULT_FILENAME)

    def get(self, key: str) -> Diagnosis | None:
        with self._lock:
            row = self._db.execute("SELECT diagnosis FROM replies WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return diagnosis_from_json(row[0])

    def put(self, key: str, diagnosis: Diagnosis) -> None:
        """Store an ok diagnosis, committed before returning. Other statuses are refused (they get retried)."""
        if diagnosis.status != "ok":
            raise ValueError(f"only ok diagnoses are cached, not {diagnosis.status!r} ({diagnosis.trace_id})")
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies (key, trace_id, diagnosis, created) VALUES (?, ?, ?, ?)",
                (key, diagnosis.trace_id, diagnosis_to_json(diagnosis), time.time()),
            )
        self.writes += 1

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def trace_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT trace_id FROM replies ORDER BY created")]

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "writes": self.writes}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
