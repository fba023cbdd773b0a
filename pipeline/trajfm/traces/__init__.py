"""Reading agent traces from the formats users have into one normalized model (`Trace`, `Step`).

Public API: `load_traces(paths, format=None, strict=False) -> LoadResult(traces, failures, skipped)` (see
`trajfm.traces.load`), `FORMATS` (format name -> `Format` instance, see `trajfm.traces.format`) and
`detect_format(doc)` (best-scoring format, see `trajfm.traces.detect`). One module per source format; the
formats are found through the `trajfm.formats` entry-point group like every other part (`trajfm.plugins`).
"""

# The trace model is one of the modules compiled with mypyc (trajfm/judges/_compiled.py), which are used all together or
# not at all: importing `_compiled` decides which (compiled, or source under TRAJFM_PURE_PYTHON) before the model is
# imported, whichever part of the package a program imports first.
from trajfm.judges import _compiled as _compiled
from trajfm.traces._common import Source, StepBuilder, finish_trace
from trajfm.traces.detect import FORMATS
from trajfm.traces.detect import detect as detect_format
from trajfm.traces.format import Format
from trajfm.traces.load import LoadFailure, LoadResult, SkippedFile, iter_load, load_traces
from trajfm.traces.model import ROLES, Step, StepKind, Trace

__all__ = [
    "FORMATS",
    "Format",
    "ROLES",
    "LoadFailure",
    "LoadResult",
    "SkippedFile",
    "Source",
    "Step",
    "StepBuilder",
    "StepKind",
    "Trace",
    "detect_format",
    "finish_trace",
    "iter_load",
    "load_traces",
]
