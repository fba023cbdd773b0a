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

import _signal  # signal's C functions: `signal.signal` wraps them in enum conversions costing more than the call
import signal
import threading
import time
from types import FrameType, TracebackType

from trajfm.errors import BackendError


class TraceTimeLimit(BackendError):
    """The judge spent longer than its per-trace limit on one trace."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class time_limit:  # noqa: N801 (used as a function: `with time_limit(seconds, what):`)
    """See the module docstring; `what` completes the message ("the rules judge on trace X ..."). A class rather
    than a generator-based context manager: the rules judge enters one per trace, thousands per second."""

    __slots__ = ("seconds", "what", "started", "alarm", "previous", "outer_delay")

    def __init__(self, seconds: float | None, what: str) -> None:
        self.seconds = seconds if seconds is not None and seconds > 0 else None
        self.what = what
        self.alarm = False
        self.started = 0.0
        self.previous: object = None
        self.outer_delay = 0.0

    def _message(self) -> str:
        return (
            f"{self.what} stopped after its per-trace time limit of {self.seconds:g} s; the trace is recorded as "
            "failed and the run goes on (raise the limit with --judge-option time_limit_s=SECONDS)"
        )

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        raise TraceTimeLimit(self._message())

    def __enter__(self) -> None:
        if self.seconds is None:
            return
        self.started = time.monotonic()
        if not _can_alarm():
            return
        self.alarm = True
        self.previous = _signal.signal(signal.SIGALRM, self._on_alarm)
        self.outer_delay, _ = signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.seconds is None:
            return
        if not self.alarm:
            if exc_type is None and time.monotonic() - self.started > self.seconds:
                raise TraceTimeLimit(self._message())
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        _signal.signal(signal.SIGALRM, self.previous)
        if self.outer_delay:  # an enclosing timer keeps counting down from where it was
            left = self.outer_delay - (time.monotonic() - self.started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
