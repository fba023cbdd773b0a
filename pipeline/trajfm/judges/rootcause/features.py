"""Framework-neutral features of the steps of one trace, for the root-cause step scorer (`rootcause.model`).

Contract:
- `candidates(trace)` lists the steps a root cause can be named at: one per step number (`Step.index`), the first
  step in reading order that carries it, in reading order.
- `step_features(view, findings, rule_pick)` returns, for those candidates, one row of floats per candidate in
  the order of `FEATURES`. Every feature is read from the normalized trace alone: a step's role (agent, tool,
  user, system), its relative position, error signals in it and right after it, where the first error appeared
  and who produced it, the detectors' findings at it, the rules' own evidence-based pick, whether it is a call
  that changes state, and whether it holds code. Nothing reads `Trace.source_format`, a tool name,
  an agent name or a domain word: the same features mean the same thing on a chat log, a ReAct log and a span
  tree, which is what lets weights fitted on some datasets hold on others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from trajfm.judges.detectors import FINDING_KINDS, Finding, TraceView
from trajfm.judges.detectors.base import ACTION_KINDS, AGENT_KINDS, RESULT_KINDS
from trajfm.judges.detectors.origin import _failed, first_error_origin, first_state_change
from trajfm.traces.model import Step, Trace

# Chosen by leave-one-dataset-out hit rate on the visible sets (benchmarks/README.md, "root-cause step scorer"):
# relative position, "after the first error", speaker share and other position-shaped features were dropped,
# because what they learned on one dataset pointed the wrong way on the next.
FEATURES: Final[tuple[str, ...]] = (
    "role_agent",
    "role_tool",
    "role_user",
    "role_system",
    "second_agent_step",
    "last_agent_step",
    "error_next",
    "error_word_next",
    "first_error_producer",
    "decisive_finding",
    "rule_pick",
    "state_change_call",
    "tool_call",
    "code_block",
    "encloses_steps",
)

# The plainest error signal any log shows (a traceback, a non-zero exit code, the word error or exception),
# read in every step whoever wrote it; `_failed` (the detectors' stricter reading) is the other signal. The word
# does not count where it says there was none: an empty error field of a result (`"error": null`, `error=None`,
# `"exception": ""`) or "no error" / "without error".
_ERROR_WORD: Final = re.compile(
    r"traceback \(most recent call last\)|exit ?code:? *[1-9]"
    r"|(?<!\bno )(?<!without )\b(?:error|exception)\b"
    r"(?![\"']?\s*[:=]\s*(?:null|none|nil|false|0|\"\"|''|\[\]|\{\})(?![\w.]))",
    re.I,
)

# Speaker names that are roles rather than agents: the person the agent serves.
_USER_NAMES: Final = frozenset({"user", "human", "customer"})
# Span kinds (OpenInference `span_kind`) and the role of the step they stand for.
_SPAN_ROLE: Final = {"LLM": "agent", "TOOL": "tool", "RETRIEVER": "tool", "EMBEDDING": "tool"}


def step_role(step: Step) -> str:
    """agent | tool | user | system: who wrote the step. The loader's `Step.role` wins (environment reads as tool:
    words the world produced); a hand-built step without one falls back to its kind, and a span to its kind."""
    role = step.role
    if role:
        return "tool" if role == "environment" else role
    kind = step.kind
    if kind in AGENT_KINDS:
        return "agent"
    if kind in RESULT_KINDS:
        return "tool"
    if kind == "system":
        return "system"
    if kind == "span":
        if step.tool_name:
            return "tool"
        return _SPAN_ROLE.get(str(step.meta.get("span_kind") or "").upper(), "system")
    if (step.agent or "").strip().lower() in _USER_NAMES:
        return "user"
    return "agent"


def candidates(trace: Trace) -> list[Step]:
    """One step per step number, the first one in reading order that carries it."""
    seen: set[int] = set()
    out = []
    for s in trace.steps:
        if s.index not in seen:
            seen.add(s.index)
            out.append(s)
    return out


@dataclass(slots=True)
class StepTable:
    """The candidates of one trace and their feature rows (aligned)."""

    steps: list[Step]
    rows: list[list[float]]
    roles: list[str]


def _environment_speakers(cands: list[Step]) -> set[str]:
    """Speakers of a chat log that only ever answer code: every message of theirs follows one holding a code
    block (a terminal or interpreter taking part in a group chat under a name)."""
    follows: dict[str, list[bool]] = {}
    for prev, cur in zip(cands, cands[1:], strict=False):
        if cur.kind == "message" and cur.agent:
            follows.setdefault(cur.agent, []).append("```" in prev.content)
    return {a for a, flags in follows.items() if len(flags) >= 1 and all(flags)}


def _error_word(view: TraceView, step: Step) -> bool:
    low = view.low(step)[:2000]
    # most steps hold none of the words: a substring test is far cheaper than the regex
    if "error" not in low and "exception" not in low and "traceback" not in low and "exit" not in low:
        return False
    return _ERROR_WORD.search(low) is not None


def step_features(view: TraceView, findings: list[Finding], rule_pick: int | None) -> StepTable:
    """The feature rows of a trace's candidate steps (see the module docstring)."""
    trace = view.trace
    cands = candidates(trace)
    n = len(cands)
    env = _environment_speakers(cands) if any(c.kind == "message" for c in cands) else set()
    # A step other steps nest in (a chain or agent span around its model calls and tools) holds no choice of its
    # own: its children do. It gets the role "wrapper" here, so the role features and the agent positions
    # (second, last agent step) count the steps that speak.
    enclosing = {s.parent_id for s in trace.steps if s.parent_id is not None}
    roles = []
    for c in cands:
        r = step_role(c)
        if r == "agent" and c.agent in env:
            r = "tool"
        if c.step_id in enclosing:
            r = "wrapper"
        elif r == "agent" and c.kind == "span" and not c.meta.get("span_kind") and not c.tool_name:
            r = "system"
        roles.append(r)
    # error signal per step number: any step carrying that number shows one
    err_by_index: dict[int, bool] = {}
    for s in trace.steps:
        if s.index in err_by_index and err_by_index[s.index]:
            continue
        shown = s.is_error or (
            bool(s.content) and s.kind not in ACTION_KINDS and s.kind != "thought" and _failed(view, s)
        )
        err_by_index[s.index] = err_by_index.get(s.index, False) or shown
    errs = [err_by_index.get(c.index, False) for c in cands]
    words = [_error_word(view, c) for c in cands]
    origin = first_error_origin(view)
    origin_index = origin.index if origin is not None else None
    agent_pos = [i for i, r in enumerate(roles) if r == "agent"]
    last_agent = agent_pos[-1] if agent_pos else None
    second_agent = agent_pos[1] if len(agent_pos) > 1 else None
    decisive: dict[int, int] = {}
    for f in findings:
        if FINDING_KINDS[f.kind].decisive:
            for st in set(f.steps):
                decisive[st] = decisive.get(st, 0) + 1
    change = first_state_change(view)
    change_index = change.index if change is not None else None
    # `1.0 if x else 0.0` is float(bool(x)) without the calls (the rows are built for every candidate of every trace)
    rows = []
    for i, c in enumerate(cands):
        role = roles[i]
        nxt = i + 1 < n
        index = c.index
        kind = c.kind
        rows.append(
            [
                1.0 if role == "agent" else 0.0,
                1.0 if role == "tool" else 0.0,
                1.0 if role == "user" else 0.0,
                1.0 if role == "system" else 0.0,
                1.0 if i == second_agent else 0.0,
                1.0 if i == last_agent else 0.0,
                1.0 if nxt and errs[i + 1] else 0.0,
                1.0 if nxt and words[i + 1] else 0.0,
                1.0 if origin_index is not None and index == origin_index else 0.0,
                float(min(decisive.get(index, 0), 2)) / 2.0,
                1.0 if rule_pick is not None and index == rule_pick else 0.0,
                1.0 if change_index is not None and index == change_index else 0.0,
                1.0 if kind in ACTION_KINDS or (kind == "span" and c.tool_name) else 0.0,
                0.0 if c.content.find("```", 0, 4000) == -1 else 1.0,  # "```" in content[:4000], uncopied
                1.0 if role == "wrapper" else 0.0,
            ]
        )
    return StepTable(steps=cands, rows=rows, roles=roles)
