"""Judge replies written the way real models write them when structured output is missing or ignored.

Contract: `deviate(reply_json, kind, system)` rewrites a valid judge reply (JSON text, e.g. from
`deterministic_reply`) into one deviation of DEVIATION_KINDS, keeping its content (so what a tolerant reader
recovers can be checked against the clean reply). `system` is the judge's system message (its mode lines give
the modes' names). Kinds:
- `id_with_name` keys "1.1 Disobey Task Specification"; `id_prefixed` keys "FM-1.1"; `name_only` keys
  "Disobey Task Specification";
- `bare_booleans`: modes not detected given as a bare `false`; `omitted`: modes not detected left out;
- `no_step`: the first detected mode has no steps; `step_strings`: steps written "Step 3";
- `prose_fenced`: the JSON in a ```json fence with prose around it;
- `labelled_quotes`: quotes that begin with the rendering's label (`OBSERVATION (agent X, error): ...`);
  needs `labels`, the label of each quote's line, from `deterministic_reply(..., labels=...)`;
- UNUSABLE_KINDS, which no reader can use and only a repair turn fixes: `no_json` (prose only), `wrong_shape`
  (JSON without failure_modes).
`pick(key, rate, kinds, seed)` chooses the deviation of a request deterministically from a key (the trace's
fence tag), so a trace gets the same deviation on every identical retry, like a model at temperature 0.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

USABLE_KINDS = (
    "id_with_name",
    "id_prefixed",
    "name_only",
    "bare_booleans",
    "omitted",
    "no_step",
    "step_strings",
    "prose_fenced",
    "labelled_quotes",
)
UNUSABLE_KINDS = ("no_json", "wrong_shape")
DEVIATION_KINDS = USABLE_KINDS + UNUSABLE_KINDS

_MODE_NAME = re.compile(r"^\[([^\]\s]+)\] (.+?) \(", re.M)


def pick(key: str, rate: float, kinds: tuple[str, ...], seed: int = 0) -> str | None:
    """The deviation for `key` (None: answer cleanly), the same for the same key and seed every time."""
    if not kinds or rate <= 0:
        return None
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")
    if (h % 10_000) / 10_000 >= rate:
        return None
    return kinds[(h // 10_000) % len(kinds)]


def deviate(reply_json: str, kind: str, system: str, labels: dict[str, str] | None = None) -> str:
    """`reply_json` rewritten with deviation `kind` (see the module docstring)."""
    if kind not in DEVIATION_KINDS:
        raise ValueError(f"unknown deviation {kind!r}; known: {', '.join(DEVIATION_KINDS)}")
    reply: dict[str, Any] = json.loads(reply_json)
    modes: dict[str, dict[str, Any]] = reply["failure_modes"]
    names = dict(_MODE_NAME.findall(system))
    detected = [m for m, v in modes.items() if v["detected"]]
    if kind == "id_with_name":
        reply["failure_modes"] = {f"{m} {names.get(m, '')}".strip(): v for m, v in modes.items()}
    elif kind == "id_prefixed":
        reply["failure_modes"] = {f"FM-{m}": v for m, v in modes.items()}
    elif kind == "name_only":
        reply["failure_modes"] = {names.get(m, m): v for m, v in modes.items()}
    elif kind == "bare_booleans":
        reply["failure_modes"] = {m: (v if v["detected"] else False) for m, v in modes.items()}
    elif kind == "omitted":
        reply["failure_modes"] = {m: v for m, v in modes.items() if v["detected"]} or {
            next(iter(modes)): modes[next(iter(modes))]
        }
    elif kind == "no_step" and detected:
        modes[detected[0]]["steps"] = []
    elif kind == "step_strings":
        for v in modes.values():
            v["steps"] = [f"Step {s}" for s in v["steps"]]
    elif kind == "labelled_quotes":
        for m in detected:
            label = (labels or {}).get(m)
            if label:
                modes[m]["evidence"] = f"{label}: {modes[m]['evidence']}"
    elif kind == "no_json":
        steps = sorted({s for m in detected for s in modes[m]["steps"]})
        return (
            f"Looking at this trace, the agent {'ran into problems' if detected else 'did fine'}"
            f"{' around steps ' + ', '.join(map(str, steps)) if steps else ''}. {reply['summary']}"
        )
    elif kind == "wrong_shape":
        return json.dumps(
            {"analysis": reply["summary"], "failures": detected, "completed": reply["task_completed"]}
        )
    text = json.dumps(reply, indent=2)
    if kind == "prose_fenced":
        return f"Here is my assessment of the trace.\n\n```json\n{text}\n```\n\nLet me know if you need more detail."
    return text
