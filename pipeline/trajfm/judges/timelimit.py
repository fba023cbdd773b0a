"""A per-trace time limit for judges that compute in-process (the rules judge): one odd trace never stalls a run.

Contract: `with time_limit(seconds, what):` raises `TraceTimeLimit` (a non-retryable `BackendError`, so the
runner records the trace as failed with the message and goes on) when the block runs longer than `seconds`.
In the main thread the block is interrupted by a SIGALRM timer (pure-Python loops stop within a few
milliseconds; a single long C call such as one huge regex search finishes first). Elsewhere (a worker thread,
a platform without SIGALRM) signals cannot interrupt, so the limit is checked when the block ends: the trace
still fails with the reason, after it finished. `seconds` None or <= 0 disables the limit. Nested limits: the
outer timer is restored afterwards.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from trajfm.errors import BackendError


class TraceTimeLimit(BackendError):
    """The judge spent longer than its per-trace limit on one trace."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """See the module docstring; `what` completes the message ("the rules judge on trace X ...")."""
    if seconds is None or seconds <= 0:
        yield
        return
    message = (
        f"{what} stopped after its per-trace time limit of {seconds:g} s; the trace is recorded as failed and the "
        "run goes on (raise the limit with --judge-option time_limit_s=SECONDS)"
    )
    started = time.monotonic()
    if not _can_alarm():
        yield
        if time.monotonic() - started > seconds:
            raise TraceTimeLimit(message)
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise TraceTimeLimit(message)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:  # an enclosing timer keeps counting down from where it was
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
