"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _datasets_dir() -> Path:
    env = os.environ.get("TRAJFM_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The public datasets folder (../shared/datasets); tests using it skip when it is absent."""
    path = _datasets_dir()
    if not path.is_dir():
        pytest.skip(f"public datasets not found at {path} (set TRAJFM_DATASETS to their folder)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
