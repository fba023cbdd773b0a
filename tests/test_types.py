"""The package type-checks: mypy (configured in pyproject.toml, [tool.mypy]) on pipeline/trajfm passes.

Part of the test suite so that every change is checked before it lands, not only in CI (`.ci/run` also runs
mypy on its own). Skips with a reason where mypy is not installed (`pip install -e '.[dev]'` installs it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_mypy_passes_on_the_package(repo_root: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    res = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=repo_root, capture_output=True, text=True, timeout=1500
    )
    assert res.returncode == 0, f"mypy found type errors:\n{res.stdout[-4000:]}{res.stderr[-1000:]}"
    assert "Success: no issues found" in res.stdout
