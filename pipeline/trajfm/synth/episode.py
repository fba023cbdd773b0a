"""One synthetic MetaAgent run before serialisation: ordered ReAct steps, the final answer, the planted labels.

`SynthStep` is one Thought/Action/Observation triple of the top-level agent. Planters (see `planters.py`) tag the
step objects that show a behaviour; indices are assigned only when the episode is finished (`Episode.finish`), so
inserting a step never invalidates an earlier label. Index i is the 1-based position in `trajectory`, the number
the MetaAgent prints as "Action Input i" and `trajectroy_log[i-1].step`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from trajfm.synth import phrasing as P
from trajfm.synth.scenarios import Scenario, SubTask

AGENT_LABEL = {
    "IoTAgent": "IoT Agent",
    "FMSRAgent": "FMSR Agent",
    "TSFMAgent": "TSFM Agent",
    "WOAgent": "WO Agent",
}

# Name of the top-level agent in labels (decisive_agent); sub-agent failures name the sub-agent tool instead.
PRIMARY_AGENT = "MetaAgent"


@dataclass(slots=True)
class SynthStep:
    """One top-level ReAct step. `malformed` holds the undecodable action text of an invalid-format step."""

    thought: str
    tool: str
    tool_input: str
    observation: str
    state: str = "Valid Action"
    malformed: str | None = None
    subtask: SubTask | None = None
    nested: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def action_text(self) -> str:
        """The normalised action: tool and input without the step counter (equal for repeated actions)."""
        return f"{self.tool}|{self.tool_input}"


@dataclass(slots=True)
class Episode:
    scenario: Scenario
    model: str
    steps: list[SynthStep] = field(default_factory=list)
    final_answer: str = ""
    finished: bool = True
    task_success: bool = True
    decisive: dict[str, tuple[SynthStep, str]] = field(default_factory=dict)
    planted: list[str] = field(default_factory=list)
    max_steps: int = 10
    flags: dict[str, Any] = field(default_factory=dict)

    def tag(
        self, behaviour: str, *steps: SynthStep, decisive: SynthStep | None = None, agent: str = PRIMARY_AGENT
    ) -> None:
        for s in steps:
            if behaviour not in s.tags:
                s.tags.append(behaviour)
        if behaviour not in self.planted:
            self.planted.append(behaviour)
        if decisive is not None:
            self.decisive[behaviour] = (decisive, agent)

    def index_of(self, step: SynthStep) -> int:
        for i, s in enumerate(self.steps):
            if s is step:
                return i + 1
        raise ValueError("step not in episode")

    def sub_agent_steps(self) -> list[SynthStep]:
        return [s for s in self.steps if s.tool in AGENT_LABEL and s.subtask is not None]


def subagent_observation(rng: random.Random, tool: str, answer: str, status: str = "Accomplished") -> str:
    """The observation string of a sub-agent call, double-encoded JSON exactly as the MetaAgent stores it."""
    ok = status == "Accomplished"
    payload = {
        "answer": answer,
        "review": {
            "status": status,
            "reasoning": P.say(rng, P.REVIEW_OK if ok else P.REVIEW_FAIL),
            "suggestions": P.say(rng, P.SUGGEST_OK if ok else P.SUGGEST_FAIL),
        },
        "final_result": answer,
        "summary": P.say(rng, P.SUMMARY_LINE, label=AGENT_LABEL.get(tool, tool)),
    }
    return json.dumps(json.dumps(payload, indent=2))


def parse_subagent_observation(observation: str) -> dict[str, Any] | None:
    """Inverse of `subagent_observation`; None when the observation is not a sub-agent payload."""
    if not observation.startswith('"'):
        return None
    inner = json.loads(observation)
    return json.loads(inner) if isinstance(inner, str) and inner.startswith("{") else None


def compose_thought(rng: random.Random, sub: SubTask, verbose: bool) -> str:
    """A thought for a clean call of `sub`: it may name the tool it calls, never another one."""
    core = P.say(rng, P.CORE_BY_KIND[sub.kind], subject=sub.subject or "the asset")
    opener = rng.choice(P.OPENERS)
    keep_case = core.startswith(("I ", "I'"))
    if opener.endswith(", ") or opener == "Now ":
        text = opener + (core if keep_case else core[0].lower() + core[1:])
    else:
        text = opener + core[0].upper() + core[1:]
    if verbose or rng.random() < 0.3:
        text += rng.choice(P.CLOSERS).format(tool=sub.tool)
    return text


def tool_input_for(sub: SubTask) -> str:
    return sub.request if sub.tool == "jsonreader" else f"request={sub.request}"


def clean_step(rng: random.Random, sub: SubTask, verbose: bool) -> SynthStep:
    obs = sub.answer if sub.tool == "jsonreader" else subagent_observation(rng, sub.tool, sub.answer)
    return SynthStep(compose_thought(rng, sub, verbose), sub.tool, tool_input_for(sub), obs, subtask=sub)


# ---- final answers ----------------------------------------------------------------------------------------------


def _to_fahrenheit(value: str) -> str:
    num, _, unit = value.partition(" ")
    if unit != "\N{DEGREE SIGN}C":
        return value
    return f"{round(float(num) * 9 / 5 + 32, 1)} \N{DEGREE SIGN}F"


def render_answer(rng: random.Random, headline: str, facts: list[tuple[str, str]], fmt: str | None) -> str:
    """The final answer in the requested format (`fmt` None means prose in one of several styles)."""
    if fmt == "json":
        return json.dumps({k.replace(" ", "_"): v for k, v in facts})
    if fmt == "table":
        rows = "\n".join(f"| {k} | {v} |" for k, v in facts)
        return f"{headline}\n\n| item | value |\n|---|---|\n{rows}"
    if fmt == "list":
        items: list[str] = []
        for k, v in facts:
            parts = [p.strip() for p in v.split(",")] if len(facts) == 1 else [f"{k}: {v}"]
            items.extend(parts)
        bullet = rng.choice(("- ", "* "))
        return headline + "\n" + "\n".join(bullet + p for p in items)
    if fmt == "degF":
        facts = [(k, _to_fahrenheit(v)) for k, v in facts]
    style = rng.randrange(3)
    if style == 0:
        return f"{headline} " + "; ".join(f"{k} {v}" for k, v in facts) + "."
    if style == 1:
        return f"{headline} " + ", ".join(f"{k}: {v}" for k, v in facts) + "."
    return " ".join(f"{k[0].upper()}{k[1:]}: {v}." for k, v in facts)


def prose_ignoring_format(rng: random.Random, headline: str, facts: list[tuple[str, str]], fmt: str) -> str:
    """A prose answer that does not follow `fmt`: no JSON, no table, no list, temperatures left in Celsius."""
    lead = rng.choice(("Here is what I found.", "Summary of the results:", "In short,", "Result:"))
    body = " and ".join(f"{k} {v}" for k, v in facts)
    if fmt == "degF" and "\N{DEGREE SIGN}C" not in body:
        body += " (values in \N{DEGREE SIGN}C)"
    return f"{lead} {headline.rstrip(':')} - {body}."
