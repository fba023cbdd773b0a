"""The exploration notebook executes against a run folder (with and without the cluster stage) and shows the
two analyses with the figures of that run."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "report"))
from make_run import make_run  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_run.ipynb"


def _execute(run: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRAJFM_RUN", str(run))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            data = out.get("data", {})
            texts.append(out.get("text", "") + data.get("text/plain", "") + data.get("text/html", ""))
    return "\n".join(texts)


def test_notebook_runs_on_a_clustered_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path / "run", n_traces=20, hostile=False)
    out = _execute(run, monkeypatch)
    ok = pl.read_parquet(run / "diagnoses.parquet").filter(pl.col("status") == "ok").height
    flags = pl.read_parquet(run / "modes.parquet").filter(pl.col("detected")).height
    assert f"20 traces, {ok} diagnosed, {flags} flags" in out
    assert "Specification issues" in out and "ibm_share_of_flags" in out
    assert "Ineffective Error Recovery" in out and "stability" in out


def test_notebook_runs_without_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path / "run", n_traces=8, hostile=False, with_clusters=False)
    out = _execute(run, monkeypatch)
    assert "cluster stage was skipped" in out
