"""Parsing and validating an LLM judge's reply (the JSON shape asked for in `trajfm.judges.prompt`).

Contract: `parse_reply(text, taxonomy, valid_steps)` returns a validated `JudgeReply` or raises
`trajfm.errors.ParseError` carrying the raw text and a message saying what was wrong. Accepted: plain JSON, a
fenced ```json block, or the first {...} in the text, each repaired with json-repair when malformed. Refused
(ParseError): no JSON object at all, missing keys, failure-mode ids that are not in the taxonomy or missing from
the reply, and a detected mode (or novel mode) without any step number that exists in the trace. Step numbers
that do not exist in the trace are dropped and listed in `JudgeReply.dropped_steps`, never kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trajfm.errors import ParseError
from trajfm.judges.prompt import MAX_NOVEL
from trajfm.taxonomy import Taxonomy

_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?([\s\S]*?)```")
_INT = re.compile(r"-?\d+")


def _as_steps(value: Any) -> list[int]:
    """Step lists as ints: judges sometimes write "3", "step 3" or a bare 3; anything else is refused."""
    if value is None:
        return []
    if isinstance(value, int | str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"steps must be a list of step numbers, got {type(value).__name__}")
    out: list[int] = []
    for v in value:
        if isinstance(v, bool):
            raise ValueError("steps must be numbers, got a boolean")
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, float) and v.is_integer():
            out.append(int(v))
        elif isinstance(v, str) and len(found := _INT.findall(v)) == 1:
            out.append(int(found[0]))
        else:
            raise ValueError(f"step {v!r} is not a step number")
    return out


class ModeVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    detected: bool
    steps: list[int] = Field(default_factory=list)
    evidence: str = ""
    rationale: str = ""

    _steps = field_validator("steps", mode="before")(lambda v: _as_steps(v))


class NovelReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field(min_length=1)
    description: str = ""
    steps: list[int] = Field(default_factory=list)
    evidence: str = ""

    _steps = field_validator("steps", mode="before")(lambda v: _as_steps(v))


class RootCause(BaseModel):
    model_config = ConfigDict(extra="ignore")
    step: int | None = None
    agent: str | None = None


class DimensionVerdicts(BaseModel):
    """The six scorecard dimensions (`trajfm.judges.dimensions`), keyed without the `dim_` prefix; a missing or
    null verdict is "not assessed"."""

    model_config = ConfigDict(extra="ignore")
    task_completion: bool | None = None
    data_retrieval: bool | None = None
    result_verification: bool | None = None
    sequence: bool | None = None
    clarity: bool | None = None
    hallucination: bool | None = None

    def as_columns(self) -> dict[str, bool | None]:
        return {f"dim_{k}": v for k, v in self.model_dump().items()}


class JudgeReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str
    task_completed: bool
    failure_modes: dict[str, ModeVerdict]
    novel_failure_modes: list[NovelReply] = Field(default_factory=list)
    root_cause: RootCause = Field(default_factory=RootCause)
    dimensions: DimensionVerdicts = Field(default_factory=DimensionVerdicts)
    # Filled by parse_reply, not by the judge.
    dropped_steps: list[int] = Field(default_factory=list)
    dropped_novel: int = 0


def extract_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a reply: the whole text, a fenced block, or the first {...}; repaired if needed."""
    stripped = text.strip()
    candidates: list[str] = [stripped]
    candidates += [m.group(1).strip() for m in _FENCED.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start >= 0:
        candidates.append(text[start : end + 1] if end > start else text[start:])
    for cand in candidates:
        if not cand.startswith("{"):
            continue
        try:
            obj = json.loads(cand)
        except json.JSONDecodeError:
            obj = json_repair.loads(cand)
        if isinstance(obj, dict) and obj:
            return obj
    raise ParseError("the reply contains no JSON object", raw=text)


def parse_reply(text: str, taxonomy: Taxonomy, valid_steps: set[int]) -> JudgeReply:
    """Parse and validate one reply (see the module docstring)."""
    obj = extract_json_object(text)
    try:
        reply = JudgeReply.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ParseError(f"the reply does not match the expected JSON shape ({problems})", raw=text) from exc
    known = set(taxonomy.ids)
    got = set(reply.failure_modes)
    if got - known:
        raise ParseError(
            f"the reply names failure-mode ids not in taxonomy {taxonomy.name}: {', '.join(sorted(got - known))}",
            raw=text,
        )
    if known - got:
        raise ParseError(
            f"the reply leaves out failure-mode ids {', '.join(sorted(known - got))} of taxonomy {taxonomy.name}",
            raw=text,
        )
    dropped: set[int] = set()

    def keep(steps: list[int]) -> list[int]:
        dropped.update(s for s in steps if s not in valid_steps)
        return sorted({s for s in steps if s in valid_steps})

    for mode_id, verdict in reply.failure_modes.items():
        verdict.steps = keep(verdict.steps)
        if verdict.detected and not verdict.steps:
            raise ParseError(
                f"the reply detects mode {mode_id} without a step number that exists in the trace "
                f"(the trace has steps {_span(valid_steps)})",
                raw=text,
            )
    if len(reply.novel_failure_modes) > MAX_NOVEL:
        reply.dropped_novel = len(reply.novel_failure_modes) - MAX_NOVEL
        reply.novel_failure_modes = reply.novel_failure_modes[:MAX_NOVEL]
    for novel in reply.novel_failure_modes:
        novel.steps = keep(novel.steps)
        if not novel.steps:
            raise ParseError(
                f"the reply's novel mode {novel.title!r} has no step number that exists in the trace "
                f"(the trace has steps {_span(valid_steps)})",
                raw=text,
            )
    if reply.root_cause.step is not None and reply.root_cause.step not in valid_steps:
        dropped.add(reply.root_cause.step)
        reply.root_cause.step = None
    reply.dropped_steps = sorted(dropped)
    return reply


def _span(steps: set[int]) -> str:
    return f"{min(steps)}..{max(steps)}" if steps else "(none)"
