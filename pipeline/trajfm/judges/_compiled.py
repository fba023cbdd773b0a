"""Which rules-judge modules are compiled with mypyc (setup.py), and the switch back to their source.

The build (setup.py) compiles the modules of `COMPILED` into C extensions beside their .py files; Python imports
an extension before the source of the same name. They share one runtime library, so they are used all together
or not at all: `use()` (run by `trajfm.judges` before any of them is imported) makes every one of them import
from source when `TRAJFM_PURE_PYTHON` is set, or when a source file is newer than its extension (edited after
the build: the extension would run the old code). `STATE` says which is in use and why.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# The rules judge's per-trace code, and the trace model it reads (`trajfm.traces.model`: compiled, `Step` and `Trace`
# are native classes, whose fields the compiled detectors read directly instead of through Python's attribute lookup;
# their constructors then check the field types, as the annotations say). Not compiled: `judges/detectors/__init__.py`
# and `detectors/repetition.py`, whose functions tests replace at run time (a compiled caller in the same build calls
# the original directly). `trajfm.traces` imports this module first, so the choice is made before the model loads.
COMPILED: tuple[str, ...] = (
    "trajfm.judges.rules",
    "trajfm.judges.detectors.actions",
    "trajfm.judges.detectors.ambiguity",
    "trajfm.judges.detectors.base",
    "trajfm.judges.detectors.call_errors",
    "trajfm.judges.detectors.claims",
    "trajfm.judges.detectors.completion",
    "trajfm.judges.detectors.coverage",
    "trajfm.judges.detectors.entities",
    "trajfm.judges.detectors.errors",
    "trajfm.judges.detectors.mapping",
    "trajfm.judges.detectors.model_turns",
    "trajfm.judges.detectors.origin",
    "trajfm.judges.detectors.outcome",
    "trajfm.judges.detectors.output",
    "trajfm.judges.detectors.retrieval",
    "trajfm.judges.detectors.termination",
    "trajfm.judges.detectors.text",
    "trajfm.judges.rootcause.features",
    "trajfm.judges.rootcause.model",
    "trajfm.traces.model",
)

# mypyc's name for the build; its runtime library, which holds the code of every compiled module (their own
# extensions only load it), is GROUP + "__mypyc" beside the `trajfm` package.
GROUP = "trajfm_rules"

# An extension built from a source file is at least as new as it; a source this much newer was edited after the
# build (the slack: installing a wheel writes its files in no particular order).
STALE_AFTER_S = 2.0

STATE = "source (not imported yet)"


def source_path(root: Path, module: str) -> Path:
    """The .py file of `module` under the folder `root` that holds the `trajfm` package."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def _extension(source: Path) -> Path | None:
    """The extension module beside `source` (same name, an extension suffix), if any."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        ext = source.with_name(source.stem + suffix)
        if ext.exists():
            return ext
    return None


class _SourceFinder:
    """A meta path finder that imports the compiled modules from their .py files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(name, source_path(self.root, name))


def use() -> str:
    """Decide between the compiled modules and their source (see the module docstring); returns `STATE`."""
    global STATE
    if any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        return STATE
    root = Path(__file__).resolve().parents[2]
    why = None
    if os.environ.get("TRAJFM_PURE_PYTHON"):
        why = "TRAJFM_PURE_PYTHON is set"
    else:
        pairs = [(source, _extension(source)) for source in (source_path(root, m) for m in COMPILED)]
        missing = [source.name for source, ext in pairs if ext is None]
        if len(missing) == len(pairs):
            STATE = "source (not compiled)"
            return STATE
        if missing:  # a partial build: they share a runtime, so all or none
            why = f"no extension for {', '.join(missing)}"
        # The runtime library is rebuilt whenever a source changes (a module's own extension need not be): a
        # source newer than it was edited after the build.
        shared = _extension(root / f"{GROUP}__mypyc.py")
        if why is None and shared is None:
            why = f"no {GROUP}__mypyc library"
        for source, _ in pairs:
            if why is None and shared is not None and source.stat().st_mtime > shared.stat().st_mtime + STALE_AFTER_S:
                why = f"{source.name} was edited after its extension was built; `pip install -e .` compiles it"
    if why is None:
        STATE = "compiled (mypyc)"
    else:
        STATE = f"source ({why})"
        sys.meta_path.insert(0, _SourceFinder(root))  # type: ignore[arg-type]
    return STATE
