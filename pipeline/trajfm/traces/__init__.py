"""Reading agent traces from the formats users have into one normalized model (`Trace`, `Step`).

Public API: `load_traces(paths, format=None, strict=False) -> LoadResult(traces, failures, skipped)` (see
`trajfm.traces.load`), `FORMATS` (format name -> loader module) and `detect_format(doc)` (see `trajfm.traces.detect`).
One module per source format: assetops, whowhen, agentrx, otel, mast, chat.
"""

from trajfm.traces.detect import FORMATS
from trajfm.traces.detect import detect as detect_format
from trajfm.traces.load import LoadFailure, LoadResult, SkippedFile, iter_load, load_traces
from trajfm.traces.model import Step, StepKind, Trace

__all__ = [
    "FORMATS",
    "LoadFailure",
    "LoadResult",
    "SkippedFile",
    "Step",
    "StepKind",
    "Trace",
    "detect_format",
    "iter_load",
    "load_traces",
]
