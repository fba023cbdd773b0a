"""The judge accuracy the report quotes comes from `trajfm bench` results (benchmarks/judge_reliability.py)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from trajfm.report.honesty import judge_reliability

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("judge_reliability", REPO / "benchmarks" / "judge_reliability.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_json(dataset: str, metrics: dict[str, float], baselines: dict[str, dict[str, float]]) -> dict:
    return {
        "dataset": dataset,
        "options": {"judge": "rules", "protocol": "lodo"},
        "parts": [
            {
                "n_traces": 40,
                "metrics": metrics,
                "metric_names": {k: f"name of {k}" for k in metrics},
                "baselines": baselines,
            }
        ],
    }


def test_figures_are_the_bench_results_beside_their_best_naive_baseline(tmp_path: Path) -> None:
    script = _script()
    (dataset, _folder, _part, metrics, label), *_ = script.ROWS
    first, *rest = metrics
    run = tmp_path / dataset
    run.mkdir()
    values = {first: 0.61234, **{m: math.nan for m in rest}}  # a nan figure is left out, not written as 0
    naive = {"always A": {first: 0.5}, "always B": {first: 0.595}, "broken": {first: math.nan}}
    (run / "bench.json").write_text(json.dumps(_bench_json(dataset, values, naive)))
    document, missing = script.reliability_document(tmp_path)
    (fig,) = document["rules"]["figures"]
    assert fig == {
        "dataset": label,
        "metric": f"name of {first}",
        "value": 0.612,
        "best_naive": 0.595,
        "best_naive_name": "always B",
        "protocol": "lodo",
        "n_traces": 40,
    }
    assert "--protocol lodo" in document["rules"]["measured"]
    assert len(missing) == len(script.ROWS) - 1  # every other row is named as not found
    assert document["llm"]["measured"] is None and document["llm"]["figures"] == []


def test_the_shipped_file_is_the_scripts_output() -> None:
    """The shipped file carries the script's marker and fields on every figure (a hand-edited copy of README
    figures had neither), and the report reads it."""
    shipped = judge_reliability()
    assert "benchmarks/judge_reliability.py" in shipped["_about"]
    labels = {label for *_, label in _script().ROWS}
    assert shipped["rules"]["figures"]
    for fig in shipped["rules"]["figures"]:
        assert fig["dataset"] in labels and fig["protocol"] in ("lodo", "shipped")
        assert set(fig) == {"dataset", "metric", "value", "best_naive", "best_naive_name", "protocol", "n_traces"}
