"""The rules judge's mypyc build (setup.py, `trajfm.judges._compiled`): its modules are compiled all together or
not at all, and TRAJFM_PURE_PYTHON=1 imports every one of them from source."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

from trajfm.judges import _compiled

ROOT = Path(_compiled.__file__).resolve().parents[2]


def _is_extension(path: str | None) -> bool:
    return path is not None and path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_every_compiled_module_has_its_source() -> None:
    for module in _compiled.COMPILED:
        assert _compiled.source_path(ROOT, module).is_file(), module


def test_all_or_none_of_the_modules_are_compiled() -> None:
    files = [importlib.import_module(m).__file__ for m in _compiled.COMPILED]
    compiled = [_is_extension(f) for f in files]
    assert all(compiled) or not any(compiled), files
    assert all(compiled) == _compiled.STATE.startswith("compiled"), _compiled.STATE


def _assert_pure_python_run(code: str) -> None:
    """Run `code` in a fresh interpreter with TRAJFM_PURE_PYTHON=1; it must print the source state."""
    env = {**os.environ, "TRAJFM_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("source (TRAJFM_PURE_PYTHON is set)"), out.stdout


def test_pure_python_switch_imports_the_source() -> None:
    code = (
        "import importlib, trajfm.judges._compiled as c\n"
        "files = [importlib.import_module(m).__file__ for m in c.COMPILED]\n"
        "assert all(f.endswith('.py') for f in files), files\n"
        "print(c.STATE)\n"
    )
    _assert_pure_python_run(code)


def test_pure_python_switch_holds_when_the_trace_model_is_imported_first() -> None:
    """The trace model is compiled too; a program that imports it before any judge still gets the source under
    TRAJFM_PURE_PYTHON=1 (`trajfm.traces` decides first)."""
    code = (
        "import trajfm.traces.model as m, trajfm.judges._compiled as c\n"
        "assert m.__file__.endswith('.py'), m.__file__\n"
        "print(c.STATE)\n"
    )
    _assert_pure_python_run(code)
