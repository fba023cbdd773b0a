"""run_judge: order, concurrency, bounded retries with backoff and retry-after, failures recorded, cache reuse."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from trajfm.errors import BackendError, ParseError
from trajfm.judges import runner
from trajfm.judges.base import Diagnosis
from trajfm.judges.cache import JudgeCache
from trajfm.judges.runner import RateLimiter, RunStats, backoff_delay, run_judge
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import AsyncScriptedJudge, ScriptedJudge, clean_diagnosis, synthetic_traces

TAX = load_taxonomy("mast")
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "progress": False}


class FakeClock(runner.Clock):
    """Time stands still; every wait the runner asks for is recorded and returns at once (yielding to the loop)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return 1000.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(runner, "CLOCK", fake)
    return fake


def test_results_come_back_in_input_order_with_bounded_concurrency() -> None:
    traces = synthetic_traces(40)
    rng = random.Random(1)
    delays = {t.trace_id: rng.uniform(0.0, 0.03) for t in traces}

    class Jittery(AsyncScriptedJudge):
        async def adiagnose(self, trace, taxonomy):  # type: ignore[no-untyped-def]
            self.delay_s = delays[trace.trace_id]
            return await super().adiagnose(trace, taxonomy)

    judge = Jittery()
    finished: list[str] = []
    out = run_judge(
        judge, traces, TAX, concurrency=5, on_result=lambda d: finished.append(d.trace_id), **FAST
    )
    assert [d.trace_id for d in out] == [t.trace_id for t in traces]
    assert finished != [t.trace_id for t in traces]  # they really completed out of order
    assert sorted(finished) == sorted(t.trace_id for t in traces)
    assert judge.max_in_flight == 5


def test_concurrency_keeps_that_many_calls_in_flight() -> None:
    """What makes an async judge fast: 16 calls wait on the backend at once (the speed-up itself is measured by
    benchmarks/, not by a timed test)."""
    traces = synthetic_traces(32)
    judge = AsyncScriptedJudge(delay_s=0.01)
    run_judge(judge, traces, TAX, concurrency=16, **FAST)
    assert judge.max_in_flight == 16
    serial = AsyncScriptedJudge(delay_s=0.01)
    run_judge(serial, traces[:4], TAX, concurrency=1, **FAST)
    assert serial.max_in_flight == 1


def test_transient_errors_are_retried_until_ok() -> None:
    t = synthetic_traces(1)[0]
    judge = AsyncScriptedJudge(
        {t.trace_id: [BackendError("503"), ParseError("bad json", raw="{"), clean_diagnosis]}
    )
    stats = RunStats()
    [d] = run_judge(judge, [t], TAX, stats=stats, **FAST)
    assert d.status == "ok"
    assert judge.calls[t.trace_id] == 3
    assert d.extra["attempts"] == 3
    assert d.calls == 1 + 2  # the successful call plus two failed ones
    assert stats.retries == 2 and stats.calls == 3 and stats.ok == 1


def test_retry_after_is_honoured(clock: FakeClock) -> None:
    t = synthetic_traces(1)[0]
    judge = AsyncScriptedJudge({t.trace_id: [BackendError("429", retry_after=40.0), clean_diagnosis]})
    [d] = run_judge(judge, [t], TAX, **FAST)
    assert d.status == "ok"
    # The backend's 40 s (plus at most 10% jitter), not the 0.01-0.05 s backoff.
    assert len(clock.waits) == 1 and 40.0 <= clock.waits[0] <= 44.0


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    for attempt in range(1, 8):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(50):
            assert ceiling / 2 <= backoff_delay(attempt, None, base=0.5, cap=30.0) <= ceiling
    assert 2.0 <= backoff_delay(1, 2.0, base=0.5, cap=30.0) <= 2.2


def test_exhausted_retries_end_as_recorded_errors_without_killing_the_run() -> None:
    traces = synthetic_traces(4)
    a, b, c, _ = (t.trace_id for t in traces)
    judge = AsyncScriptedJudge(
        {
            a: [BackendError("HTTP 500 from endpoint")],
            b: [ParseError("no JSON object", raw="I refuse")],
            c: [BackendError("HTTP 401", retryable=False)],
        }
    )
    stats = RunStats()
    out = run_judge(judge, traces, TAX, max_retries=3, stats=stats, **FAST)
    by = {d.trace_id: d for d in out}
    assert by[a].status == "backend_error" and "HTTP 500" in (by[a].error or "")
    assert judge.calls[a] == 4 and by[a].extra["attempts"] == 4
    assert by[b].status == "parse_error" and by[b].raw_reply == "I refuse"
    assert judge.calls[c] == 1  # not retryable
    assert out[3].status == "ok"
    assert (stats.ok, stats.backend_error, stats.parse_error) == (1, 2, 1)
    assert by[a].judge == "scripted" and by[a].prompt_version == "scripted-1"


def test_a_judge_bug_is_recorded_on_its_trace_only() -> None:
    traces = synthetic_traces(3)
    judge = ScriptedJudge({traces[1].trace_id: [ZeroDivisionError("oops")]})
    out = run_judge(judge, traces, TAX, **FAST)
    assert [d.status for d in out] == ["ok", "backend_error", "ok"]
    assert "judge failed unexpectedly: ZeroDivisionError" in (out[1].error or "")
    assert judge.calls[traces[1].trace_id] == 1


def test_sync_judges_run_inline_with_retries() -> None:
    t = synthetic_traces(1)[0]
    judge = ScriptedJudge({t.trace_id: [BackendError("timeout"), clean_diagnosis]})
    [d] = run_judge(judge, [t], TAX, **FAST)
    assert d.status == "ok" and judge.calls[t.trace_id] == 2


def test_cache_makes_the_second_run_free_and_retries_only_failures(tmp_path: Path) -> None:
    traces = synthetic_traces(10)
    bad = traces[3].trace_id
    cache = JudgeCache(tmp_path / "cache.sqlite")
    first = AsyncScriptedJudge({bad: [BackendError("500")]})
    out1 = run_judge(first, traces, TAX, cache=cache, max_retries=1, **FAST)
    assert sum(d.status == "ok" for d in out1) == 9
    second = AsyncScriptedJudge()
    stats = RunStats()
    out2 = run_judge(second, traces, TAX, cache=cache, stats=stats, **FAST)
    assert dict(second.calls) == {bad: 1}  # only the failed trace is judged again
    assert stats.cached == 9 and stats.calls == 1
    assert all(d.status == "ok" for d in out2)
    assert [d.cached for d in out2] == [t.trace_id != bad for t in traces]
    assert all(d.calls == 0 for d in out2 if d.cached)
    third = AsyncScriptedJudge()
    run_judge(third, traces, TAX, cache=cache, **FAST)
    assert sum(third.calls.values()) == 0


def test_identical_content_under_another_id_reuses_the_verdict_with_its_own_id(tmp_path: Path) -> None:
    t = synthetic_traces(1)[0]
    cache = JudgeCache(tmp_path / "c.sqlite")
    run_judge(ScriptedJudge(), [t], TAX, cache=cache, **FAST)
    t.trace_id = "renamed"  # ScriptedJudge's key covers the whole trace, so this is a different key
    judge = ScriptedJudge()
    [d] = run_judge(judge, [t], TAX, cache=cache, **FAST)
    assert d.trace_id == "renamed" and judge.calls["renamed"] == 1


def test_rate_limit_spaces_attempts(clock: FakeClock) -> None:
    traces = synthetic_traces(6)
    run_judge(AsyncScriptedJudge(), traces, TAX, concurrency=6, rate_limit=20.0, **FAST)
    # Six attempts at once, 20 per second: the first starts now, the others 0.05 s apart (no burst).
    assert sorted(clock.waits) == pytest.approx([0.05, 0.10, 0.15, 0.20, 0.25])


def test_rate_limiter_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_runs_from_inside_a_running_event_loop() -> None:
    traces = synthetic_traces(3)

    async def notebook_cell() -> list[Diagnosis]:
        return run_judge(AsyncScriptedJudge(), traces, TAX, **FAST)

    out = asyncio.run(notebook_cell())
    assert [d.status for d in out] == ["ok"] * 3


def test_progress_bar_shows_ok_failed_and_cached(capsys: pytest.CaptureFixture[str]) -> None:
    traces = synthetic_traces(3)
    judge = ScriptedJudge({traces[0].trace_id: [BackendError("x", retryable=False)]})
    run_judge(judge, traces, TAX, backoff_base=0.01, progress="bar")
    err = capsys.readouterr().err
    assert "ok 2" in err and "failed 1" in err and "cached 0" in err
    # Without a terminal, progress=True means plain lines, and a run done in a blink prints none of them.
    run_judge(ScriptedJudge({}), traces, TAX, progress=True)
    assert capsys.readouterr().err == ""


def test_rejects_non_judges() -> None:
    with pytest.raises(TypeError):
        run_judge(object(), synthetic_traces(1), TAX, progress=False)


def test_a_failed_trace_records_what_its_attempts_cost() -> None:
    """Calls and tokens of failed attempts are on the trace's row (a parse_error is not free), and its latency
    spans its attempts."""
    from trajfm.judges.base import Judge
    from trajfm.taxonomy import Taxonomy
    from trajfm.traces.model import Trace

    class Costly(Judge):
        name = "costly"

        def __init__(self) -> None:
            self.n = 0

        def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
            self.n += 1
            exc = ParseError("cut off", raw="{")
            exc.calls, exc.tokens_in, exc.tokens_out = 2, 100, 50  # type: ignore[attr-defined]
            raise exc

    [d] = run_judge(Costly(), synthetic_traces(1, seed=1), TAX, max_retries=1, progress=False,
                    backoff_base=0.001, backoff_cap=0.001)  # fmt: skip
    assert d.status == "parse_error" and d.calls == 4
    assert (d.tokens_in, d.tokens_out) == (200, 100) and d.latency_s > 0
