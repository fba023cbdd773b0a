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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses the public datasets must say so with the `datasets` marker (so `-m "not datasets"`
    deselects it): a test using the fixture without the marker is an error at collection, not a surprise."""
    unmarked = [
        item.nodeid
        for item in items
        if "datasets_dir" in getattr(item, "fixturenames", ()) and item.get_closest_marker("datasets") is None
    ]
    if unmarked:
        raise pytest.UsageError(f"tests use datasets_dir without @pytest.mark.datasets: {', '.join(unmarked)}")
