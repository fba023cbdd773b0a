"""Running any judge over many traces: cache, concurrency, rate limit, bounded retries, progress. One place.

Contract of `run_judge(judge, traces, taxonomy, ...) -> list[Diagnosis]` (a sync entry point):
- Returns one Diagnosis per input trace, in input order, always: a trace that fails ends as a Diagnosis with
  status `backend_error` or `parse_error`, the last error message and (for parse errors) the raw reply.
- `judge` is a `trajfm.judges.base.Judge`; anything else is a TypeError. Sync judges (`diagnose`) run inline in the calling thread; async judges (`adiagnose`) run on an asyncio loop
  with at most `concurrency` traces in flight and at most `rate_limit` attempts started per second.
- Retries: a `BackendError` with `retryable=True` (429, 5xx, timeouts, connection errors) and a `ParseError`
  with `retryable=True` are retried up to `max_retries` times, waiting `retry_after` when the backend gave one
  (at most `max_wait` seconds: a longer ask fails the trace at once with that reason)
  and otherwise an exponential backoff with jitter (`trajfm.judges.client.retry_wait`, shared with the cluster
  namer). A judge that already tried a repair turn raises its ParseError with `retryable=False`: asking the same
  again would buy the same reply. Other exceptions are judge bugs: recorded as `backend_error` at once, named.
  A trace's calls and tokens include those of its failed attempts (an error carries `calls`, `tokens_in`,
  `tokens_out` when the judge says); a failed trace's latency is the time from its first attempt.
- Progress (`progress`): True shows a bar on a terminal (with the current wait and why) and, without a terminal,
  plain lines to stderr every ~10 s or 5% (`PlainProgress`); "lines" forces the plain lines, "bar" the bar;
  False is silent. A `JudgeProgress` the caller entered is used as it is (one display over several calls).
- Cache: with a `JudgeCache`, a trace whose key is stored is not judged again (`cached=True`, `calls=0`), and
  every ok diagnosis is committed to the cache as soon as it arrives, before `on_result` sees it, so a killed run
  resumes where it stopped.
- `on_result(diagnosis)` is called once per trace as results arrive (cached ones first), in the calling
  thread for sync judges and on the loop thread for async ones.
- `stats` (optional, compatible extension of the shared signature): a `RunStats` filled with counts of ok,
  failed, cached, calls, retries, tokens and wall time, for the manifest.
- `limiter` (optional): replaces the per-process rate limiter, so several processes can share one rate.
`judge_manifest(judge, diagnoses, stats)` is the judge's section for manifest.json: its configuration, which
traces were shortened or chunked, statuses, calls, cache hits, retries and tokens.
The judge never sleeps or retries; the runner does both.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trajfm.errors import BackendError, ParseError
from trajfm.judges.base import Diagnosis, Judge
from trajfm.judges.cache import JudgeCache, cache_key
from trajfm.judges.client import retry_wait, run_coroutine
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
DEFAULT_MAX_WAIT_S = 60.0  # the longest Retry-After obeyed; longer asks fail the trace (--max-wait)


class Clock:
    """Where the runner reads the time and waits: the real clock, replaced in tests by a fake one so that waits
    are checked as numbers rather than measured on a busy machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


CLOCK = Clock()


@dataclass
class RunStats:
    """What one `run_judge` call did (for the manifest and the console)."""

    traces: int = 0
    ok: int = 0
    parse_error: int = 0
    backend_error: int = 0
    cached: int = 0
    calls: int = 0  # backend calls made by this run, failed attempts included
    retries: int = 0
    tokens_in: int = 0  # spent by this run (cache hits cost nothing)
    tokens_out: int = 0
    wall_s: float = 0.0
    concurrency: int = 1
    max_retries: int = 0
    rate_limit: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # first line of the final error -> traces

    @property
    def failed(self) -> int:
        return self.parse_error + self.backend_error

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = self.failed
        return d


def backoff_delay(attempt: int, retry_after: float | None, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the shared policy of `trajfm.judges.client`
    (the backend's retry-after when given, with a little jitter; else exponential with equal jitter)."""
    return retry_wait(attempt, retry_after, base=base, cap=cap)


class PlainProgress:
    """Progress for a run without a terminal (CI, nohup, logs): one plain line to `stream` every `every_s`
    seconds or every `every_share` of the traces (but not more than one a second), and at the end of a run that
    took at least `quiet_s` seconds or printed before (a run done in a blink prints nothing). Each line says
    done/total, ok, failed, cached, calls, retries, tokens, elapsed and ETA, and the last wait and why."""

    def __init__(
        self,
        total: int,
        stats: RunStats,
        *,
        every_s: float = 10.0,
        every_share: float = 0.05,
        stream: TextIO | None = None,
        label: str = "judging",
        min_gap_s: float = 1.0,
        quiet_s: float = 2.0,
    ) -> None:
        self.min_gap_s, self.quiet_s, self.printed = min_gap_s, quiet_s, False
        self.total, self.stats, self.label = total, stats, label
        self.every_s, self.step = every_s, max(1, int(total * every_share))
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self.last_time = self.started
        self.last_done = 0
        self.last_wait: str | None = None

    def waiting(self, seconds: float, why: str) -> None:
        self.last_wait = f"waiting {seconds:.1f} s: {why}"
        self._maybe_print()

    def advance(self) -> None:
        self.done += 1
        self._maybe_print()

    def _maybe_print(self) -> None:
        now = time.monotonic()
        since = now - self.last_time
        if since >= self.every_s or (self.done - self.last_done >= self.step and since >= self.min_gap_s):
            self.print_line(now)

    def print_line(self, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        s = self.stats
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        parts = [
            f"{self.label} {self.done}/{self.total}",
            f"ok {s.ok}", f"failed {s.failed}", f"cached {s.cached}", f"calls {s.calls}", f"retries {s.retries}",
            f"tokens {s.tokens_in}/{s.tokens_out}", f"elapsed {_clock(elapsed)}",
            f"ETA {_clock(eta) if eta is not None else '?'}",
        ]  # fmt: skip
        if self.last_wait:
            parts.append(f"last retry: {self.last_wait}")
            self.last_wait = None
        print(", ".join(parts), file=self.stream, flush=True)
        self.last_time, self.last_done, self.printed = now, self.done, True

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.done != self.last_done and (self.printed or time.monotonic() - self.started >= self.quiet_s):
            self.print_line()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _why(exc: BaseException) -> str:
    """A short reason for a wait ("HTTP 429", "no reply within 2.0 s"): the first clause of the error."""
    text = str(exc).split(";")[0].split(": {")[0]
    return text[:100]


class RateLimiter:
    """At most `rate` acquisitions per second, evenly spaced (no bursts). Used on one event loop."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate_limit must be positive, got {rate}")
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = CLOCK.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await CLOCK.asleep(wait)


def _failure(
    judge: Judge,
    trace: Trace,
    status: str,
    error: str,
    raw: str | None,
    attempts: int,
    calls: int,
    errors: list[str],
) -> Diagnosis:
    return Diagnosis(
        trace_id=trace.trace_id,
        judge=judge.name,
        judge_model=judge.model,
        prompt_version=judge.prompt_version,
        status=status,
        error=error,
        raw_reply=raw,
        calls=calls,
        extra={"attempts": attempts, "attempt_errors": errors},
    )


class JudgeProgress:
    """The progress display of a run (a bar on a terminal, plain lines without one; see the module docstring).

    `run_judge` makes one per call. A caller that judges batch after batch (`trajfm extract` streams its traces)
    makes one itself, enters it once and passes it as `progress=` to every call, adding each batch to the total
    with `add(n)` as it is loaded: one bar for the run, whose total is exact once the last batch is loaded."""

    def __init__(self, judge: Judge, n: int, stats: RunStats, progress: bool | str) -> None:
        self.stats = stats
        self.plain: PlainProgress | None = None
        if progress == "lines" or (progress is True and not sys.stderr.isatty()):
            self.plain = PlainProgress(n, stats, label=f"judging ({judge.name})")
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]judging[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=progress is False or self.plain is not None,
        )
        self.name = judge.name
        self.total = n
        self.task = self.bar.add_task(self.name, total=n, counts=self._counts())

    def add(self, n: int) -> None:
        """`n` more traces to judge (the next batch)."""
        self.total += n
        self.bar.update(self.task, total=self.total)
        if self.plain is not None:
            self.plain.total = self.total
            self.plain.step = max(1, int(self.total * 0.05))

    def _counts(self) -> str:
        s = self.stats
        return f"[green]ok {s.ok}[/] [red]failed {s.failed}[/] [cyan]cached {s.cached}[/]"

    def waiting(self, seconds: float, why: str) -> None:
        if self.plain is not None:
            self.plain.waiting(seconds, why)
        else:
            self.bar.update(self.task, description=f"{self.name} (waiting {seconds:.1f} s: {why})")

    def advance(self) -> None:
        self.bar.update(self.task, advance=1, counts=self._counts(), description=self.name)
        if self.plain is not None:
            self.plain.advance()

    def __enter__(self) -> JudgeProgress:
        self.bar.__enter__()
        if self.plain is not None:
            self.plain.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.plain is not None:
            self.plain.__exit__(*exc)
        self.bar.__exit__(*exc)


class _Tracker:
    """Counts, cache writes, callbacks and the progress display, shared by the sync and async paths."""

    def __init__(
        self,
        judge: Judge,
        n: int,
        stats: RunStats,
        cache: JudgeCache | None,
        on_result: Callable[[Diagnosis], None] | None,
        progress: bool | str | JudgeProgress,
    ) -> None:
        self.judge, self.stats, self.cache, self.on_result = judge, stats, cache, on_result
        self.max_wait: float | None = DEFAULT_MAX_WAIT_S
        # A display of the caller's (entered by it, spanning several calls), or one for this call only.
        self.shared = isinstance(progress, JudgeProgress)
        self.display = progress if isinstance(progress, JudgeProgress) else JudgeProgress(judge, n, stats, progress)

    def waiting(self, seconds: float, exc: BaseException) -> None:
        """A retry is about to wait: say so where the user is looking (bar description or the next line)."""
        self.display.waiting(seconds, _why(exc))

    def record(self, d: Diagnosis, key: str | None) -> None:
        s = self.stats
        if d.cached:
            s.cached += 1
        else:
            s.calls += d.calls
            s.tokens_in += d.tokens_in
            s.tokens_out += d.tokens_out
        if d.status == "ok":
            s.ok += 1
            if self.cache is not None and key is not None and not d.cached:
                self.cache.put(key, d)  # committed before anyone downstream sees the result
        elif d.status == "parse_error":
            s.parse_error += 1
        elif d.status == "backend_error":
            s.backend_error += 1
        if d.status != "ok" and d.error:
            first = d.error.splitlines()[0][:160]
            s.errors[first] = s.errors.get(first, 0) + 1
        self.display.advance()
        if self.on_result is not None:
            self.on_result(d)


def _from_cache(cache: JudgeCache | None, key: str | None, trace: Trace) -> Diagnosis | None:
    if cache is None or key is None:
        return None
    hit = cache.get(key)
    if hit is None:
        return None
    hit.trace_id = trace.trace_id  # identical content under another id shares the verdict
    hit.cached = True
    hit.calls = 0
    hit.latency_s = 0.0
    return hit


def _final_ok(d: Diagnosis, attempts: int, failed_calls: int, errors: list[str]) -> Diagnosis:
    d.calls += failed_calls
    d.extra = dict(d.extra)
    d.extra["attempts"] = attempts
    if errors:
        d.extra["attempt_errors"] = errors
    return d


def _capture(fn: Callable[..., Diagnosis], *args: Any) -> Diagnosis | Exception:
    """`fn(*args)`, or the exception it raised (sorted out by `_Attempts.settle`)."""
    try:
        return fn(*args)
    except Exception as exc:  # a retry, a final failure or a judge bug: `settle` says which
        return exc


async def _acapture(fn: Callable[[], Awaitable[Diagnosis]], timeout: float | None) -> Diagnosis | Exception:
    """`await fn()` within `timeout` seconds, or the exception it raised (see `_capture`)."""
    try:
        return await (asyncio.wait_for(fn(), timeout) if timeout else fn())
    except TimeoutError:
        return TimeoutError(f"no reply within {timeout} s (runner timeout)")
    except Exception as exc:  # see _capture
        return exc


class _Attempts:
    """One trace's attempts, shared by the sync and async paths: what each outcome means (retry after a delay,
    a final failure, a judge bug, success) and the errors and failed calls so far. The caller does the waiting."""

    def __init__(
        self, judge: Judge, trace: Trace, tracker: _Tracker, max_retries: int, base: float, cap: float
    ) -> None:
        self.judge, self.trace, self.tracker = judge, trace, tracker
        self.max_retries, self.base, self.cap = max_retries, base, cap
        self.max_wait = tracker.max_wait
        self.errors: list[str] = []
        self.failed_calls = 0
        self.failed_tokens = [0, 0]  # in, out: what the failed attempts cost (their errors carry it)
        self.started = time.perf_counter()
        self.attempt = 0

    def retry_delay(self, exc: BackendError | ParseError) -> float | None:
        """Record a failed attempt; the seconds to wait before trying again, or None when it is final.

        A wait the backend asks for (Retry-After) longer than `max_wait` is not obeyed: the trace fails now, with
        that reason, so one endpoint cannot park a run for a day."""
        self.failed_calls += getattr(exc, "calls", 1)
        self.failed_tokens[0] += getattr(exc, "tokens_in", 0)
        self.failed_tokens[1] += getattr(exc, "tokens_out", 0)
        self.errors.append(f"{type(exc).__name__}: {exc}")
        asked = getattr(exc, "retry_after", None)
        if asked is not None and self.max_wait is not None and asked > self.max_wait:
            exc.args = (
                f"{exc} -- the endpoint asked to wait {asked:,.0f} s before retrying (Retry-After), more than "
                f"--max-wait {self.max_wait:g} s; the trace is failed instead of waiting (re-run later, or raise "
                "--max-wait)",
            )
            return None
        retryable = getattr(exc, "retryable", True)
        if retryable and self.attempt <= self.max_retries:
            self.tracker.stats.retries += 1
            return backoff_delay(
                self.attempt, getattr(exc, "retry_after", None), base=self.base, cap=self.cap
            )
        return None

    def settle(self, result: Diagnosis | Exception) -> Diagnosis | float:
        """What one attempt's result (a diagnosis, or the exception it raised) means: the trace's final diagnosis
        (success, a failure for good, or a judge bug), or the seconds to wait before the next attempt (the wait
        is announced). A `TimeoutError` (the runner's own per-attempt limit) counts as a backend's."""
        self.attempt += 1
        if isinstance(result, Diagnosis):
            return self.succeeded(result)
        exc = result
        if isinstance(exc, TimeoutError):
            exc = BackendError(str(exc) or "timed out (TimeoutError)")
        if not isinstance(exc, (BackendError, ParseError)):
            return self.crashed(exc)  # a bug in the judge: record it on this trace, keep the run going
        delay = self.retry_delay(exc)
        if delay is None:
            return self.failed(exc)
        self.tracker.waiting(delay, exc)
        return float(delay)

    def failed(self, exc: BackendError | ParseError) -> Diagnosis:
        """The diagnosis of a trace whose last attempt failed for good (after `retry_delay` said so)."""
        status = "parse_error" if isinstance(exc, ParseError) else "backend_error"
        d = _failure(
            self.judge,
            self.trace,
            status,
            str(exc),
            getattr(exc, "raw", None),
            self.attempt,
            self.failed_calls,
            self.errors,
        )
        if getattr(exc, "codes", None):  # e.g. the repair turn the judge tried before giving up
            d.extra["reply_repairs"] = list(exc.codes)  # type: ignore[union-attr]
        d.tokens_in, d.tokens_out = self.failed_tokens  # what the trace cost, though nothing came of it
        d.latency_s = time.perf_counter() - self.started
        return d

    def crashed(self, exc: Exception) -> Diagnosis:
        """A bug in the judge: recorded on this trace at once, never retried, so the run keeps going."""
        self.errors.append(f"{type(exc).__name__}: {exc}")
        return _failure(
            self.judge,
            self.trace,
            "backend_error",
            f"judge failed unexpectedly: {type(exc).__name__}: {exc}",
            None,
            self.attempt,
            self.failed_calls,
            self.errors,
        )

    def succeeded(self, d: Diagnosis) -> Diagnosis:
        d.tokens_in += self.failed_tokens[0]  # earlier failed attempts were paid for too, like their calls
        d.tokens_out += self.failed_tokens[1]
        return _final_ok(d, self.attempt, self.failed_calls, self.errors)


@dataclass
class _Job:
    """One `run_judge` call: the traces, where their results go, and the retry policy for each trace."""

    judge: Judge
    traces: Sequence[Trace]
    taxonomy: Taxonomy
    keys: list[str | None]
    results: list[Diagnosis | None]
    tracker: _Tracker
    max_retries: int
    base: float
    cap: float

    def pending(self) -> list[tuple[int, Trace]]:
        return [(i, t) for i, t in enumerate(self.traces) if self.results[i] is None]

    def attempts(self, trace: Trace) -> _Attempts:
        return _Attempts(self.judge, trace, self.tracker, self.max_retries, self.base, self.cap)

    def done(self, i: int, d: Diagnosis) -> None:
        self.results[i] = d
        self.tracker.record(d, self.keys[i])


def _run_sync(job: _Job) -> None:
    for i, trace in job.pending():
        attempts = job.attempts(trace)
        while isinstance(
            outcome := attempts.settle(_capture(job.judge.diagnose, trace, job.taxonomy)), float
        ):
            CLOCK.sleep(outcome)
        job.done(i, outcome)


async def _run_async(
    job: _Job, concurrency: int, rate_limit: float | None, timeout: float | None, limiter: Any = None
) -> None:
    if limiter is None and rate_limit:
        limiter = RateLimiter(rate_limit)
    gate = asyncio.Semaphore(concurrency)
    judge = job.judge

    async def one(i: int, trace: Trace) -> None:
        async with gate:
            attempts = job.attempts(trace)
            while True:
                if limiter is not None:
                    await limiter.acquire()
                outcome = attempts.settle(
                    await _acapture(lambda: judge.adiagnose(trace, job.taxonomy), timeout)
                )
                if not isinstance(outcome, float):
                    break
                await CLOCK.asleep(outcome)
        job.done(i, outcome)

    try:
        await asyncio.gather(*(one(i, t) for i, t in job.pending()))
    finally:
        await judge.aclose()


def run_judge(
    judge: Judge,
    traces: Sequence[Trace],
    taxonomy: Taxonomy,
    *,
    concurrency: int = 8,
    cache: JudgeCache | None = None,
    max_retries: int = 4,
    rate_limit: float | None = None,
    progress: bool | str | JudgeProgress = True,
    on_result: Callable[[Diagnosis], None] | None = None,
    stats: RunStats | None = None,
    timeout: float | None = None,
    backoff_base: float = BACKOFF_BASE_S,
    backoff_cap: float = BACKOFF_CAP_S,
    max_wait: float | None = DEFAULT_MAX_WAIT_S,
    limiter: Any = None,
) -> list[Diagnosis]:
    """Judge every trace (see the module docstring). `timeout` bounds one async attempt in seconds; `max_wait`
    is the longest Retry-After obeyed (a longer one fails the trace with that reason; None obeys any).

    `limiter`: an object with `async acquire()` used instead of a `RateLimiter(rate_limit)` of this process,
    e.g. one rate shared by every worker of a Ray run (`trajfm.engines.ray_engine`)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if not isinstance(judge, Judge):
        raise TypeError(f"{judge!r} is not a judge: derive its class from trajfm.judges.base.Judge")
    is_async = judge.is_async
    stats = stats if stats is not None else RunStats()
    stats.traces += len(traces)
    stats.concurrency, stats.max_retries, stats.rate_limit = concurrency, max_retries, rate_limit
    started = time.perf_counter()
    judge.prepare(concurrency=concurrency)
    keys: list[str | None] = [cache_key(judge, t, taxonomy) if cache is not None else None for t in traces]
    results: list[Diagnosis | None] = [None] * len(traces)
    tracker = _Tracker(judge, len(traces), stats, cache, on_result, progress)
    tracker.max_wait = max_wait
    job = _Job(judge, traces, taxonomy, keys, results, tracker, max_retries, backoff_base, backoff_cap)
    with contextlib.nullcontext() if tracker.shared else tracker.display:
        for i, trace in enumerate(traces):
            hit = _from_cache(cache, keys[i], trace)
            if hit is not None:
                job.done(i, hit)
        if is_async:
            run_coroutine(lambda: _run_async(job, concurrency, rate_limit, timeout, limiter))
        else:
            _run_sync(job)
    stats.wall_s += time.perf_counter() - started
    missing = [traces[i].trace_id for i, r in enumerate(results) if r is None]
    if missing:  # cannot happen unless a coroutine was cancelled; never return a short list silently
        raise RuntimeError(f"run_judge lost results for {len(missing)} traces, e.g. {missing[:3]}")
    return [r for r in results if r is not None]


def judge_manifest(
    judge: Judge, diagnoses: Sequence[Diagnosis], stats: RunStats | None = None
) -> dict[str, Any]:
    """The judge's part of the extract manifest: configuration (`manifest_info()`), what rendering had to shorten or split (per trace ids),
    statuses, and this run's calls, cache hits, retries and tokens. Never holds credentials."""
    info = dict(judge.manifest_info())
    truncated: list[str] = []
    chunked: list[str] = []
    redactions: Counter[str] = Counter()
    elided = 0
    for d in diagnoses:
        render = d.extra.get("render") if d.extra else None
        if not render:
            continue
        if render.get("elided_steps"):
            truncated.append(d.trace_id)
            elided += int(render.get("elided_chars", 0))
        if render.get("chunks", 1) > 1:
            chunked.append(d.trace_id)
        redactions.update(render.get("redactions") or {})
    info["rendering_outcome"] = {
        "truncated_traces": truncated,
        "elided_chars": elided,
        "chunked_traces": chunked,
        "redactions": dict(redactions),
    }
    info["statuses"] = dict(Counter(d.status for d in diagnoses))
    if stats is not None:
        info["run"] = stats.as_dict()
    return info
