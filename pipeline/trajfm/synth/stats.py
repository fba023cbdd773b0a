"""Behaviour rates of a synthetic corpus, read back from its sidecar (labels.jsonl), as a plain-text table.

Rows are behaviours (share of traces showing each) plus task success; columns are the seven agent models, then
single-agent tasks, multi-agent (end-to-end) tasks and all traces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trajfm.errors import TrajfmError
from trajfm.synth.domain import MODELS
from trajfm.synth.rates import BEHAVIOURS

SHORT = {
    "mistral-large": "mistral-L",
    "llama-3-405b-instruct": "l3-405b",
    "llama-3-3-70b-instruct": "l3.3-70b",
    "llama-4-maverick-17b-128e-instruct-fp8": "l4-maverick",
    "llama-4-scout-17b-16e-instruct": "l4-scout",
    "gpt-4.1-2025-04-14": "gpt-4.1",
    "granite-3-3-8b-instruct": "granite-8b",
}


def read_labels(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        path = path / "labels.jsonl"
    if not path.is_file():
        raise TrajfmError(f"no sidecar at {path}: generate the corpus first (trajfm synth --out DIR)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TrajfmError(f"{path}:{n}: not JSON ({exc.msg}); regenerate the sidecar") from exc
    return rows


def corpus_stats(path: Path) -> str:
    """Task success and per-behaviour share of traces (%), per model and for single vs multi-agent tasks."""
    rows = read_labels(path)
    groups: dict[str, list[dict[str, Any]]] = {
        SHORT.get(m, m): [r for r in rows if r["model"] == m] for m in MODELS
    }
    groups["single"] = [r for r in rows if not r["multi_agent"]]
    groups["multi"] = [r for r in rows if r["multi_agent"]]
    groups["all"] = rows
    groups = {k: v for k, v in groups.items() if v}
    width = max(len(k) for k in groups) + 2
    lines = [f"{'':<28}" + "".join(f"{k:>{width}}" for k in groups)]
    lines.append(f"{'traces':<28}" + "".join(f"{len(v):>{width}}" for v in groups.values()))

    def pct(pred: Any) -> str:
        return "".join(f"{100 * sum(map(pred, v)) / len(v):>{width - 1}.1f}%" for v in groups.values())

    lines.append(f"{'task success':<28}" + pct(lambda r: r["task_success"]))
    for b in BEHAVIOURS:
        lines.append(f"{b:<28}" + pct(lambda r, b=b: any(x["id"] == b for x in r["behaviours"])))
    return "\n".join(lines)
