"""Behaviour planters: turn a clean plan into a run that shows the chosen behaviours, and label where.

`build_episode(rng, scenario, model, behaviours)` returns a finished `Episode`. Each planter edits the step list
and tags the step objects that show its behaviour (what the sidecar's `steps` point at), so the evidence is in the
content at those indices:
- step_repetition: the action (tool and input) at two tagged steps is identical.
- ineffective_error_recovery: the first tagged observation starts with "Error encountered", the following tagged
  steps repeat the identical action and get the identical error.
- overstated_completion: a tagged observation shows an error or no data; the final answer claims success.
- invalid_action_format: the tagged action's tool name is not a tool (state "Invalid Action Decoding").
- hallucinated_entity: the tagged action names an entity that the tagged observation says does not exist.
- premature_termination: the tagged step is Finish while a tool the task needs was never called.
- ignored_termination: tagged steps run after the answer was in hand, or the run hits max_steps without Finish.
- no_clarification: the task names no asset; the tagged thought assumes one and the action uses it.
- action_reasoning_mismatch: the tagged thought names one tool, the action calls another.
- output_format_ignored: the task asks for JSON/table/list/Fahrenheit; the final answer (Finish step) does not.
- unverified_subagent_failure: the tagged observation's review status is "Not Accomplished" and the run goes on.
- leftover_artefacts: the final answer (Finish step) contains ReAct scaffolding or chat-template tokens.
"""

from __future__ import annotations

import json
import random

from trajfm.synth import phrasing as P
from trajfm.synth.domain import ASSET_CLASSES, PHANTOM_ASSETS, PHANTOM_SENSORS, SUB_AGENTS, assets_at
from trajfm.synth.episode import (
    AGENT_LABEL,
    Episode,
    SynthStep,
    clean_step,
    prose_ignoring_format,
    render_answer,
    subagent_observation,
)
from trajfm.synth.scenarios import Scenario

# Behaviours that make the task fail when planted.
FAILING = {
    "no_clarification",
    "premature_termination",
    "ineffective_error_recovery",
    "overstated_completion",
    "unverified_subagent_failure",
    "hallucinated_entity",
    "output_format_ignored",
}

# Models whose Finish input carries the "answer=" prefix (and so does their final_answer, as in the real files).
ANSWER_PREFIX_MODELS = {"mistral-large", "granite-3-3-8b-instruct"}

RECOVERED_ERROR_RATE = 0.12
FORMAT_FIX = (
    "Fixing the action format. ",
    "Let me format that correctly. ",
    "Retrying with a valid action. ",
    "Same step, proper format this time. ",
)
RECOVERY_SUFFIXES = (
    " for all sites",
    " at full resolution",
    " including every sensor",
    " with raw timestamps",
    " for the whole year",
)

MALFORMED = (
    "{tool}[{arg}]",
    '{{"tool": "{tool}", "input": "{arg}"}}',
    "{low}({arg!r})",
    "call {tool} with {arg}",
    "{tool}: {arg}",
    "Action 1 = {tool} -> {arg}",
)

EXTRA_REQUESTS = (
    "get metadata of {asset}",
    "list sensors of {asset} at {site}",
    "get the latest reading of {sensor} for {asset}",
    "confirm the site of {asset}",
    "check data quality of {sensor} on {asset}",
    "get the install date of {asset}",
    "list recent alerts of {asset}",
    "get units of {sensor} on {asset}",
    "check whether {asset} is in service",
    "get the operating schedule of {asset}",
)


def applicable(scenario: Scenario, behaviour: str) -> bool:
    """Whether `behaviour` can be planted in a run of `scenario` (e.g. no_clarification needs an ambiguous task)."""
    agent_steps = [s for s in scenario.subtasks if s.tool in SUB_AGENTS]
    if behaviour == "no_clarification":
        return scenario.ambiguous
    if behaviour == "output_format_ignored":
        return scenario.fmt is not None and not scenario.ambiguous
    if behaviour == "premature_termination":
        return _cut_points(scenario) != [] and not scenario.ambiguous
    if behaviour in (
        "ineffective_error_recovery",
        "overstated_completion",
        "unverified_subagent_failure",
        "hallucinated_entity",
    ):
        return bool(agent_steps) and not scenario.ambiguous
    if behaviour == "leftover_artefacts":
        return scenario.fmt != "json"
    return True


def _cut_points(scenario: Scenario) -> list[int]:
    """Positions c such that stopping before subtask c leaves a needed tool uncalled."""
    subs = scenario.subtasks
    out = []
    for c in range(1, len(subs)):
        before = {s.tool for s in subs[:c]}
        if any(s.tool not in before and s.tool in (*SUB_AGENTS, "jsonreader") for s in subs[c:]):
            out.append(c)
    return out


def _pick(rng: random.Random, steps: list[SynthStep], *, untagged: bool = True) -> SynthStep | None:
    pool = [
        s for s in steps if s.tool in AGENT_LABEL and s.subtask is not None and (not untagged or not s.tags)
    ]
    return rng.choice(pool) if pool else None


def build_episode(rng: random.Random, scenario: Scenario, model: str, behaviours: list[str]) -> Episode:
    """A finished run of `scenario` by `model` showing exactly `behaviours` (all must be `applicable`)."""
    verbose = model.startswith("llama-4") or model == "mistral-large"
    ask = scenario.ambiguous and "no_clarification" not in behaviours
    plan = scenario.ask_subtasks if ask else scenario.subtasks
    ep = Episode(scenario, model, [clean_step(rng, s, verbose) for s in plan])
    ep.flags.update(
        ask=ask, facts=list(scenario.facts), headline=scenario.headline, mode="normal", want=tuple(behaviours)
    )
    order = (
        "no_clarification",
        "premature_termination",
        "ineffective_error_recovery",
        "overstated_completion",
        "unverified_subagent_failure",
        "hallucinated_entity",
        "action_reasoning_mismatch",
        "step_repetition",
        "invalid_action_format",
        "ignored_termination",
        "output_format_ignored",
        "leftover_artefacts",
    )
    for b in order:
        if b in behaviours:
            PLANTERS[b](rng, ep)
    if rng.random() < RECOVERED_ERROR_RATE and ep.finished and len(ep.steps) < ep.max_steps - 1:
        _recovered_error(rng, ep)
    _finish(rng, ep)
    ep.task_success = not (set(ep.planted) & FAILING) and ep.finished
    return ep


# ---- planters -------------------------------------------------------------------------------------------------


def _recovered_error(rng: random.Random, ep: Episode) -> None:
    """Not a failure: a call errors and the agent changes its request, which then works (no label).

    Present so that a judge learns that an error in a trace is not by itself an ineffective recovery.
    """
    pool = [s for s in ep.steps if s.tool in AGENT_LABEL and s.subtask is not None and not s.tags]
    if not pool:
        return
    k = rng.choice(pool)
    sloppy = k.tool_input + rng.choice(RECOVERY_SUFFIXES)
    failed = SynthStep(
        k.thought,
        k.tool,
        sloppy,
        P.say(rng, P.ERRORS, tool=k.tool),
        state="Invalid Action",
        subtask=k.subtask,
    )
    ep.steps.insert(ep.steps.index(k), failed)
    k.thought = P.say(rng, P.RECOVER_THOUGHT) + " " + k.thought


def _no_clarification(rng: random.Random, ep: Episode) -> None:
    sc = ep.scenario
    assert sc.asset is not None
    first = ep.steps[0]
    first.thought = (
        P.say(
            rng, P.ASSUME, asset=sc.asset.name, site=sc.asset.site, period=sc.period or "the last seven days"
        )
        + " "
        + first.thought
    )
    ep.tag("no_clarification", first, decisive=first)


def _premature(rng: random.Random, ep: Episode) -> None:
    cut = rng.choice(_cut_points(ep.scenario))
    ep.steps = ep.steps[:cut]
    facts = ep.flags["facts"]
    ep.flags["facts"] = facts[: max(1, len(facts) // 2)]
    ep.flags["premature"] = True


def _error_recovery(rng: random.Random, ep: Episode) -> None:
    k = _pick(rng, ep.steps)
    if k is None:
        return
    k.observation = P.say(rng, P.ERRORS, tool=k.tool)
    k.state = "Invalid Action"
    pos = ep.steps.index(k)
    retries = []
    for _ in range(rng.choice((1, 2, 2, 3))):
        retries.append(
            SynthStep(
                P.say(rng, P.RETRY_THOUGHT),
                k.tool,
                k.tool_input,
                k.observation,
                state="Invalid Action",
                subtask=k.subtask,
            )
        )
    ep.steps = ep.steps[: pos + 1] + retries
    ep.tag("ineffective_error_recovery", k, *retries, decisive=retries[0])
    ep.flags["failed_step"] = k
    ep.flags["mode"] = "hedged"


def _overstated(rng: random.Random, ep: Episode) -> None:
    k = ep.flags.get("failed_step")
    if k is None:
        # The last delegation fails, so no later step could have used its (missing) result.
        pool = [s for s in ep.steps if s.tool in AGENT_LABEL and s.subtask is not None and not s.tags]
        if not pool:
            return
        k = pool[-1]
        assert k.subtask is not None  # the pool holds delegations with a subtask only
        if rng.random() < 0.6:
            answer = P.say(rng, P.NO_DATA_ANSWER, subject=k.subtask.subject or "the asset")
            k.observation = subagent_observation(rng, k.tool, answer)
        else:
            k.observation = P.say(rng, P.ERRORS, tool=k.tool)
            k.state = "Invalid Action"
        ep.steps = ep.steps[: ep.steps.index(k) + 1]
    ep.tag("overstated_completion", k)
    ep.flags["overstated_step"] = k
    ep.flags["mode"] = "overstate"


def _unverified(rng: random.Random, ep: Episode) -> None:
    k = _pick(rng, ep.steps)
    if k is None:
        return
    subject = (k.subtask.subject if k.subtask is not None else None) or "the asset"
    answer = rng.choice((P.say(rng, P.FAILED_ANSWER), P.say(rng, P.NO_DATA_ANSWER, subject=subject)))
    k.observation = subagent_observation(rng, k.tool, answer, status="Not Accomplished")
    pos = ep.steps.index(k)
    move_on = P.say(rng, P.MOVE_ON_THOUGHT, label=AGENT_LABEL[k.tool].replace(" Agent", " agent"))
    if pos + 1 < len(ep.steps):
        nxt = ep.steps[pos + 1]
        nxt.thought = move_on + " " + nxt.thought
        ep.tag("unverified_subagent_failure", k, nxt, decisive=k, agent=k.tool)
    else:
        ep.tag("unverified_subagent_failure", k, decisive=k, agent=k.tool)
        ep.flags["finish_prefix"] = move_on
        ep.flags.setdefault("tag_finish", []).append("unverified_subagent_failure")


def _hallucinated(rng: random.Random, ep: Episode) -> None:
    sc = ep.scenario
    site = sc.asset.site if sc.asset else "RIVERSIDE"
    if sc.asset is not None and rng.random() < 0.5:
        entity = rng.choice(PHANTOM_SENSORS)
        available = ", ".join(ASSET_CLASSES[sc.asset.kind].sensors[:4])
        request = f"download {entity} of {sc.asset.name} at {site} for {sc.period or 'the last week'}"
    else:
        entity = rng.choice(PHANTOM_ASSETS)
        available = ", ".join(a.name for a in assets_at(site)[:5])
        request = f"download recent readings of {entity} at {site}"
    obs = subagent_observation(
        rng, "IoTAgent", P.say(rng, P.NOT_FOUND, entity=entity, site=site, available=available)
    )
    step = SynthStep(P.say(rng, P.HALLUCINATE, entity=entity), "IoTAgent", f"request={request}", obs)
    pos = rng.randint(0, len(ep.steps))
    ep.steps.insert(pos, step)
    ep.tag("hallucinated_entity", step, decisive=step)
    ep.flags["facts"] = ep.flags["facts"] + [
        (entity, rng.choice(("within normal range", "stable", "no anomalies", "trending slightly upward")))
    ]
    ep.flags.setdefault("tag_finish", []).append("hallucinated_entity")


def _mismatch(rng: random.Random, ep: Episode) -> None:
    k = _pick(rng, ep.steps)
    if k is None:
        return
    other = rng.choice([t for t in (*SUB_AGENTS, "jsonreader") if t != k.tool])
    k.thought = P.say(rng, P.MISMATCH_THOUGHT, tool=other, purpose=P.PURPOSE[other])
    ep.tag("action_reasoning_mismatch", k, decisive=k)


def _repetition(rng: random.Random, ep: Episode) -> None:
    pool = [s for s in ep.steps if s.state == "Valid Action" and s.subtask is not None and not s.tags]
    if not pool:
        return
    first = rng.choice(pool)
    pos = ep.steps.index(first)
    thought = first.thought if rng.random() < 0.4 else P.say(rng, P.EXTRA_THOUGHT)
    dup = SynthStep(thought, first.tool, first.tool_input, first.observation, subtask=first.subtask)
    ep.steps.insert(min(len(ep.steps), pos + rng.choice((1, 1, 2))), dup)
    ep.tag("step_repetition", first, dup, decisive=dup)


def _invalid_format(rng: random.Random, ep: Episode) -> None:
    pool = [s for s in ep.steps if s.subtask is not None and s.state == "Valid Action"]
    if not pool:
        return
    pool = [s for s in pool if not s.tags]  # a tagged step's thought may carry another behaviour
    if not pool:
        return
    k = rng.choice(pool)
    arg = k.tool_input.split("=", 1)[-1]
    raw = rng.choice(MALFORMED).format(tool=k.tool, arg=arg, low=k.tool.lower())
    bad = SynthStep(
        k.thought,
        k.tool,
        k.tool_input,
        P.say(rng, P.FORMAT_ERROR),
        state="Invalid Action Decoding",
        malformed=raw,
    )
    ep.steps.insert(ep.steps.index(k), bad)
    k.thought = rng.choice(FORMAT_FIX) + k.thought
    ep.tag("invalid_action_format", bad, decisive=bad)


def _ignored_termination(rng: random.Random, ep: Episode) -> None:
    sc = ep.scenario
    asset = sc.asset
    blocked = {
        "output_format_ignored",
        "leftover_artefacts",
        "overstated_completion",
        "hallucinated_entity",
        "unverified_subagent_failure",
    }
    to_max = rng.random() < 0.4 and not (blocked & set(ep.flags.get("want", ())))
    n_extra = (ep.max_steps - len(ep.steps)) if to_max else rng.randint(2, 3)
    if n_extra < 2:
        to_max, n_extra = False, 2
    used = {s.tool_input for s in ep.steps}
    name = asset.name if asset else "Chiller 5"
    site = asset.site if asset else "RIVERSIDE"
    sensors = ASSET_CLASSES[asset.kind].sensors if asset else ASSET_CLASSES["chiller"].sensors
    requests = [r.format(asset=name, site=site, sensor=s) for r in EXTRA_REQUESTS for s in sensors]
    requests = [r for r in dict.fromkeys(requests) if f"request={r}" not in used]
    rng.shuffle(requests)
    thoughts = rng.sample(P.EXTRA_THOUGHT, len(P.EXTRA_THOUGHT))  # distinct: these steps are not repetitions
    extra = []
    for n, req in enumerate(requests[:n_extra]):
        answer = rng.choice(
            (
                f"Done: {req}.",
                f"Result for '{req}': no change from the earlier answer.",
                f"{req}: nothing new.",
            )
        )
        extra.append(
            SynthStep(
                thoughts[n % len(thoughts)],
                "IoTAgent",
                f"request={req}",
                subagent_observation(rng, "IoTAgent", answer),
            )
        )
    ep.steps.extend(extra)
    ep.tag("ignored_termination", *extra, decisive=extra[0])
    if to_max:
        ep.finished = False


def _format_ignored(rng: random.Random, ep: Episode) -> None:
    ep.flags["format_ignored"] = True
    ep.flags.setdefault("tag_finish", []).append("output_format_ignored")


def _artefacts(rng: random.Random, ep: Episode) -> None:
    ep.flags["artefacts"] = True
    ep.flags.setdefault("tag_finish", []).append("leftover_artefacts")


PLANTERS = {
    "no_clarification": _no_clarification,
    "premature_termination": _premature,
    "ineffective_error_recovery": _error_recovery,
    "overstated_completion": _overstated,
    "unverified_subagent_failure": _unverified,
    "hallucinated_entity": _hallucinated,
    "action_reasoning_mismatch": _mismatch,
    "step_repetition": _repetition,
    "invalid_action_format": _invalid_format,
    "ignored_termination": _ignored_termination,
    "output_format_ignored": _format_ignored,
    "leftover_artefacts": _artefacts,
}


# ---- the final answer and the Finish step ----------------------------------------------------------------------


def _answer(rng: random.Random, ep: Episode) -> str:
    sc, flags = ep.scenario, ep.flags
    facts, headline = flags["facts"], flags["headline"]
    if flags["ask"]:
        return P.say(rng, P.ASK_ANSWER, clarify=sc.clarify)
    mode = flags["mode"]
    if mode == "hedged":
        failed = flags["failed_step"]
        return rng.choice(
            (
                f"I could not complete the request: {failed.tool} returned an error on every attempt.",
                f"The {failed.tool} call kept failing, so no result can be given for this request.",
                "Unable to finish: the data could not be retrieved because the tool call failed.",
            )
        )
    if flags.get("format_ignored"):
        body = prose_ignoring_format(rng, headline, facts, sc.fmt or "")
    elif mode == "overstate" and sc.fmt == "json":  # keep the requested form; the claim goes in as a field
        claim = rng.choice(("completed successfully", "success: all data retrieved", "done, verified"))
        return json.dumps({"status": claim, **json.loads(render_answer(rng, headline, facts, "json"))})
    else:
        body = render_answer(rng, headline, facts, sc.fmt)
    return P.say(rng, P.OVERSTATE, headline=body) if mode == "overstate" else body


def _finish(rng: random.Random, ep: Episode) -> None:
    if not ep.finished:
        ep.final_answer = ""
        return
    answer = _answer(rng, ep)
    if ep.flags.get("artefacts"):
        short = answer.split("\n")[0][:60]
        answer = rng.choice(P.ARTEFACTS).format(body=answer, body_short=short)
    if ep.model in ANSWER_PREFIX_MODELS:
        answer = "answer=" + answer
    thought = P.say(rng, P.PREMATURE_THOUGHT if ep.flags.get("premature") else P.FINAL_THOUGHT)
    if ep.flags.get("finish_prefix"):
        thought = ep.flags["finish_prefix"] + " " + thought
    if ep.model == "mistral-large" or rng.random() < 0.3:
        thought += " Final Answer: " + answer.removeprefix("answer=").split("\n")[0][:200]
    fin = SynthStep(thought, "Finish", answer, "", state="")
    ep.steps.append(fin)
    ep.final_answer = answer
    for b in ep.flags.get("tag_finish", []):
        ep.tag(b, fin)
    if ep.flags.get("premature"):
        ep.tag("premature_termination", fin, decisive=fin)
    if "overstated_completion" in ep.planted:
        ep.tag("overstated_completion", fin, decisive=fin)
    if ep.flags.get("format_ignored"):
        ep.tag("output_format_ignored", fin, decisive=fin)
    if ep.flags.get("artefacts"):
        ep.tag("leftover_artefacts", fin, decisive=fin)
