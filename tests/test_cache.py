"""The judge reply cache: keys change with everything that changes the output, replies survive SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trajfm.judges.base import Diagnosis, ModeFinding, NovelMode
from trajfm.judges.cache import KEY_PREFIX, JudgeCache, cache_key, canonical_json
from trajfm.judges.llm import LLMJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import ScriptedJudge, synthetic_traces

TAX = load_taxonomy("mast")


def _llm(**kw: object) -> LLMJudge:
    return LLMJudge("m1", base_url="http://127.0.0.1:9/v1", **kw)  # never called in these tests


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json(
        {"a": [1, {"c": 3, "d": 2}], "b": 1}
    )


def test_key_is_prefixed_sha256_and_stable() -> None:
    t = synthetic_traces(1)[0]
    k1, k2 = cache_key(_llm(), t, TAX), cache_key(_llm(), synthetic_traces(1)[0], TAX)
    assert k1 == k2
    assert k1.startswith(KEY_PREFIX) and len(k1) == len(KEY_PREFIX) + 64
    int(k1[len(KEY_PREFIX) :], 16)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "m2"},
        {"temperature": 0.3},
        {"max_tokens": 10},
        {"samples": 3},
        {"redact": True},
        {"budget_chars": 1000},
        {"structured_output": "off"},
    ],
)
def test_key_changes_with_model_and_parameters(change: dict[str, object]) -> None:
    t = synthetic_traces(1)[0]
    base = cache_key(_llm(), t, TAX)
    kw = dict(change)
    model = kw.pop("model", "m1")
    other = LLMJudge(str(model), base_url="http://127.0.0.1:9/v1", **kw)  # type: ignore[arg-type]
    assert cache_key(other, t, TAX) != base


def test_key_changes_with_trace_content_prompt_version_and_taxonomy(monkeypatch: pytest.MonkeyPatch) -> None:
    t = synthetic_traces(1)[0]
    base = cache_key(_llm(), t, TAX)
    t2 = synthetic_traces(1)[0]
    t2.steps[0].content += " (edited)"
    assert cache_key(_llm(), t2, TAX) != base
    assert cache_key(_llm(), t, load_taxonomy("trail")) != base
    monkeypatch.setattr("trajfm.judges.llm.PROMPT_VERSION", "trajfm-p999")
    assert cache_key(_llm(), t, TAX) != base


def test_key_ignores_the_api_key_and_the_endpoint_url(monkeypatch: pytest.MonkeyPatch) -> None:
    t = synthetic_traces(1)[0]
    monkeypatch.setenv("TRAJFM_API_KEY", "sk-first-aaaaaaaaaaaaaaaaaaaa")
    k1 = cache_key(_llm(), t, TAX)
    monkeypatch.setenv("TRAJFM_API_KEY", "sk-second-bbbbbbbbbbbbbbbbbbbb")
    k2 = cache_key(LLMJudge("m1", base_url="http://127.0.0.1:10/v1"), t, TAX)
    assert k1 == k2


def test_generic_judge_key_covers_the_whole_trace() -> None:
    judge = ScriptedJudge()
    t = synthetic_traces(1)[0]
    base = cache_key(judge, t, TAX)
    t.meta["note"] = "x"
    assert cache_key(judge, t, TAX) != base
    assert cache_key(ScriptedJudge(version="2"), synthetic_traces(1)[0], TAX) != base


def _diag() -> Diagnosis:
    return Diagnosis(
        trace_id="t1",
        judge="llm",
        judge_model="m",
        prompt_version="p",
        task_completed=False,
        summary="s",
        root_cause_step=3,
        root_cause_agent="IoTAgent",
        modes=[ModeFinding("1.3", True, [2, 3], "quote", True, "why", 0.66), ModeFinding("1.1", False)],
        novel=[NovelMode("Title", "Desc", [3], "q")],
        tokens_in=10,
        tokens_out=5,
        calls=1,
        extra={"render": {"chunks": 1}},
    )


def test_roundtrip_and_refuses_failures(tmp_path: Path) -> None:
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        d = _diag()
        cache.put("k", d)
        assert cache.get("k") == d
        assert cache.get("missing") is None
        assert cache.stats() == {"hits": 1, "misses": 1, "writes": 1}
        with pytest.raises(ValueError, match="only ok"):
            cache.put("k2", Diagnosis("t2", "llm", status="backend_error", error="boom"))
        assert len(cache) == 1
    con = sqlite3.connect(tmp_path / "c.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_committed_replies_survive_sigkill(tmp_path: Path) -> None:
    """A writer killed with SIGKILL right after its 25th put: all 25 are there, the file is intact."""
    db = tmp_path / "cache" / "judge_cache.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from trajfm.judges.base import Diagnosis
        from trajfm.judges.cache import JudgeCache
        cache = JudgeCache({str(db)!r})
        for i in range(25):
            cache.put(f"k{{i}}", Diagnosis(f"t{{i}}", "x"))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with JudgeCache(db) as cache:
        assert len(cache) == 25
        assert sorted(cache.trace_ids()) == sorted(f"t{i}" for i in range(25))
        assert cache.get("k24") is not None
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert os.path.exists(db)
