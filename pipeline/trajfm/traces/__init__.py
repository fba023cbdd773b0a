"""Reading agent traces from the formats users have into one normalized model (`Trace`, `Step`).

Public API: `load_traces(paths, format=None, strict=False) -> LoadResult(traces, failures, skipped)` (see
`trajfm.traces.load`), `FORMATS` (format name -> `Format` instance, see `trajfm.traces.format`) and
`detect_format(doc)` (best-scoring format, see `trajfm.traces.detect`). One module per source format.
"""

from trajfm.traces.detect import BUILTIN_FORMATS, FORMATS
from trajfm.traces.detect import detect as detect_format
from trajfm.traces.format import Format
from trajfm.traces.load import LoadFailure, LoadResult, SkippedFile, iter_load, load_traces
from trajfm.traces.model import ROLES, Step, StepKind, Trace

__all__ = [
    "BUILTIN_FORMATS",
    "FORMATS",
    "Format",
    "ROLES",
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
