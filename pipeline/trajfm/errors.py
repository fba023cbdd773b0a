"""Errors a user can fix.

Every `TrajfmError` message says what was wrong, where (file, line, trace id, field) and what to do. The CLI prints
it without a traceback and exits with `exit_code`; `TRAJFM_DEBUG=1` shows the traceback.
"""

from __future__ import annotations


class TrajfmError(Exception):
    """Base class for errors caused by input, options or environment the user controls."""

    exit_code: int = 1


class UsageError(TrajfmError):
    """Bad options or arguments."""

    exit_code = 2


class TraceLoadError(TrajfmError):
    """A trace file could not be read or understood. Carries the path and, where known, the trace id."""

    def __init__(self, message: str, *, path: str | None = None, trace_id: str | None = None) -> None:
        self.path = path
        self.trace_id = trace_id
        where = path or ""
        if trace_id:
            where = f"{where} (trace {trace_id})" if where else f"trace {trace_id}"
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class SchemaError(TrajfmError):
    """A run-folder table does not match its schema (names the table and column)."""


class RunFolderError(TrajfmError):
    """A run folder is missing, incomplete or from an incompatible version."""


class JudgeError(TrajfmError):
    """A judge could not be configured (unknown judge, missing endpoint or model)."""


class BackendError(Exception):
    """A judge backend call failed (HTTP error, timeout). Not user-facing by itself: recorded per trace."""

    def __init__(self, message: str, *, retry_after: float | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.retryable = retryable


class ParseError(Exception):
    """A judge reply could not be parsed or validated. Keeps the raw reply for the record. `retryable=False` when
    asking again cannot help (e.g. a repair turn already failed to fix it at temperature 0)."""

    def __init__(self, message: str, *, raw: str | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.raw = raw
        self.retryable = retryable
