"""The normalized trace model every loader produces and every judge reads.

Contract:
- `Trace.steps` is in reading order; `Step.position` is 0..n-1 in that order and unique within a trace.
- `Step.index` is the step number *as the source numbers it*, so human labels that point at steps stay valid
  (Who&When `mistake_step` is 0-based into `history`, AgentRx `step_number` is 1-based into `traj`, AssetOpsBench
  numbers ReAct steps from 1). Several steps may share an index (thought, action and observation of one ReAct
  step; nested sub-agent steps keep their parent's index).
- `Step.step_id` is unique within a trace (a span id for span trees); `parent_id` links nested steps.
- `Step.role` says whose words a step holds, one of `ROLES`: `agent` (the agent being diagnosed or one of its
  sub-agents; the name stays in `Step.agent`), `tool` (what a tool, a code executor or a called sub-agent returned
  to the caller), `user` (a person or a simulated user), `system` (prompts, policies, tool documentation) and
  `environment` (observations the world produced that no tool call asked for). Every loader fills it; judges
  never treat a user's, system's or environment's text as the agent's behaviour.
- `Trace.trace_id` is stable across runs for the same input file (derived from the path relative to the root
  the user named, plus a record number for multi-trace files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

StepKind = Literal[
    "thought", "action", "observation", "message", "tool_call", "tool_result", "span", "answer", "system"
]
STEP_KINDS: tuple[str, ...] = (
    "thought",
    "action",
    "observation",
    "message",
    "tool_call",
    "tool_result",
    "span",
    "answer",
    "system",
)

Role = Literal["agent", "tool", "user", "system", "environment"]
ROLES: tuple[str, ...] = ("agent", "tool", "user", "system", "environment")

# The role a step of each kind plays when a loader has nothing better to say (see `default_role`).
_KIND_ROLE = {
    **dict.fromkeys(("thought", "action", "tool_call", "answer", "message", "span"), "agent"),
    **dict.fromkeys(("observation", "tool_result"), "tool"),
    "system": "system",
}


def default_role(kind: str, agent: str | None = None) -> str:
    """The role a step of `kind` (spoken by `agent`) plays unless its source says otherwise."""
    if kind == "message" and agent is not None and agent.strip().lower() in ("user", "human"):
        return "user"
    return _KIND_ROLE.get(kind, "agent")


@dataclass(slots=True)
class Step:
    """One step of a trace: a thought, an action, an observation, a chat message, a tool call or a span."""

    position: int
    index: int
    kind: str
    content: str
    step_id: str = ""
    agent: str | None = None
    tool_name: str | None = None
    tool_input: str | None = None
    is_error: bool = False
    parent_id: str | None = None
    depth: int = 0
    start_time: float | None = None
    end_time: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # One of ROLES. Every loader sets it (StepBuilder fills `default_role` when a loader has nothing better);
    # a Step built by hand may leave it empty, and readers then fall back to the kind (`default_role`).
    role: str = ""

    def __post_init__(self) -> None:
        if not self.step_id:
            self.step_id = str(self.position)


@dataclass(slots=True)
class Trace:
    """One agent run: the task, its ordered steps, the final answer and what is known about the outcome."""

    trace_id: str
    source_path: str
    source_format: str
    steps: list[Step] = field(default_factory=list)
    task: str = ""
    final_answer: str | None = None
    agent_model: str | None = None
    vendor: str | None = None
    scenario: str | None = None
    utterance_id: str | None = None
    run_id: str | None = None
    multi_agent: bool | None = None
    reward: float | None = None
    is_correct: bool | None = None
    review_status: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # How the run ended as the source records it (exit status, termination reason, error), and the agent
    # framework that wrote the trace when the format says so; null when unknown, never guessed.
    outcome: str | None = None
    framework: str | None = None
    # How well the source document fitted the format that read it (Format.score), and why the trace may be
    # misread (empty steps, no agent step, no final answer or task, an ambiguous or weak format match).
    format_fit: float | None = None
    load_warnings: list[str] = field(default_factory=list)

    @property
    def agents(self) -> list[str]:
        """Distinct agent or role names in order of first appearance."""
        seen: dict[str, None] = {}
        for s in self.steps:
            if s.agent:
                seen.setdefault(s.agent, None)
        return list(seen)

    @property
    def n_chars(self) -> int:
        return len(self.task) + len(self.final_answer or "") + sum(len(s.content) for s in self.steps)

    def step_indices(self) -> set[int]:
        return {s.index for s in self.steps}

    def text(self) -> str:
        """All text of the trace (task, steps, final answer), for evidence checks."""
        parts = [self.task]
        parts.extend(s.content for s in self.steps)
        parts.extend(s.tool_input or "" for s in self.steps)
        # A tool result decoded from an envelope keeps its raw text, so quotes of either form verify.
        parts.extend(s.meta["raw_content"] for s in self.steps if "raw_content" in s.meta)
        parts.append(self.final_answer or "")
        return "\n".join(parts)


def is_empty_step(step: Step) -> bool:
    """A step with no text, no tool name and no tool input: nothing a judge could read."""
    return (not step.content or step.content.isspace()) and not step.tool_name and not step.tool_input


def is_tool_call(step: Step) -> bool:
    """A step that calls a tool (an action or tool call naming one, or a tool span)."""
    if not step.tool_name:
        return False
    return step.kind in ("action", "tool_call") or (step.kind == "span" and step.role == "tool")


def _json_or_none(d: dict[str, Any]) -> str | None:
    return json.dumps(d, sort_keys=True, default=str) if d else None


# Fields stored as table columns of the same name; the rest are derived (counts), JSON (meta) or lists.
_TRACE_COLUMNS = (
    "trace_id", "source_path", "source_format", "task", "final_answer", "agent_model", "vendor", "scenario",
    "utterance_id", "run_id", "multi_agent", "reward", "is_correct", "review_status", "outcome", "framework",
    "format_fit",
)  # fmt: skip
_STEP_COLUMNS = (
    "position", "index", "step_id", "parent_id", "depth", "kind", "agent", "tool_name", "tool_input", "content",
    "is_error", "start_time", "end_time",
)  # fmt: skip


def traces_to_frames(traces: list[Trace]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turn traces into the `traces` and `steps` tables (see `trajfm.schemas`)."""
    from trajfm.schemas import STEPS_SCHEMA, TRACES_SCHEMA, frame

    trace_rows: dict[str, list[Any]] = {name: [] for name in TRACES_SCHEMA}
    step_rows: dict[str, list[Any]] = {name: [] for name in STEPS_SCHEMA}
    trace_columns = [(trace_rows[name], name) for name in _TRACE_COLUMNS]
    step_columns = [(step_rows[name], name) for name in _STEP_COLUMNS]
    for t in traces:
        for column, name in trace_columns:
            column.append(getattr(t, name))
        trace_rows["n_steps"].append(len(t.steps))
        trace_rows["n_chars"].append(t.n_chars)
        trace_rows["agents"].append(t.agents)
        trace_rows["meta"].append(_json_or_none(t.meta))
        trace_rows["empty_steps"].append(sum(1 for s in t.steps if is_empty_step(s)))
        trace_rows["n_tool_calls"].append(sum(1 for s in t.steps if is_tool_call(s)))
        trace_rows["has_final_answer"].append(bool(t.final_answer and t.final_answer.strip()))
        trace_rows["load_warnings"].append(list(t.load_warnings))
        for s in t.steps:
            step_rows["trace_id"].append(t.trace_id)
            for column, name in step_columns:
                column.append(getattr(s, name))
            step_rows["role"].append(s.role or None)  # loaders always set it; a hand-built step may not
            step_rows["meta"].append(_json_or_none(s.meta))
    return frame(trace_rows, TRACES_SCHEMA), frame(step_rows, STEPS_SCHEMA)


def traces_from_frames(traces_df: pl.DataFrame, steps_df: pl.DataFrame) -> list[Trace]:
    """Rebuild `Trace` objects from the `traces` and `steps` tables (inverse of `traces_to_frames`)."""
    by_trace: dict[str, list[Step]] = {}
    for r in steps_df.sort(["trace_id", "position"]).iter_rows(named=True):
        fields = {name: r[name] for name in _STEP_COLUMNS}
        step = Step(**fields, role=r["role"] or "", meta=json.loads(r["meta"]) if r["meta"] else {})
        by_trace.setdefault(r["trace_id"], []).append(step)
    out = []
    for r in traces_df.iter_rows(named=True):
        fields = {name: r[name] for name in _TRACE_COLUMNS}
        out.append(
            Trace(**fields, steps=by_trace.get(r["trace_id"], []), meta=json.loads(r["meta"]) if r["meta"] else {},
                  load_warnings=list(r["load_warnings"] or []))  # fmt: skip
        )
    return out
