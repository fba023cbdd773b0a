"""Behaviour rates of a synthetic corpus, read back from its sidecar (labels.jsonl), as a plain-text table."""

from __future__ import annotations

import json
from pathlib import Path

from trajfm.errors import TrajfmError
from trajfm.synth.domain import MODELS
from trajfm.synth.rates import BEHAVIOURS


def read_labels(path: Path) -> list[dict]:
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
    """Task success and per-behaviour share of traces, per model and for single vs multi-agent tasks."""
    rows = read_labels(path)
    groups: dict[str, list[dict]] = {m: [] for m in MODELS}
    groups.update({"single-agent": [], "multi-agent": [], "ALL": []})
    for r in rows:
        groups[r["model"]].append(r)
        groups["single-agent" if not r["multi_agent"] else "multi-agent"].append(r)
        groups["ALL"].append(r)
    ids = list(BEHAVIOURS)
    short = {b: b[:12] for b in ids}
    head = f"{'group':<40}{'n':>5}{'succ%':>7}" + "".join(f"{short[b]:>14}" for b in ids)
    lines = [head, "-" * len(head)]
    for name, rs in groups.items():
        n = len(rs)
        if not n:
            continue
        succ = 100 * sum(r["task_success"] for r in rs) / n
        cells = []
        for b in ids:
            k = sum(any(x["id"] == b for x in r["behaviours"]) for r in rs)
            cells.append(f"{100 * k / n:>13.1f}%")
        lines.append(f"{name:<40}{n:>5}{succ:>6.1f}%" + "".join(cells))
    return "\n".join(lines)
