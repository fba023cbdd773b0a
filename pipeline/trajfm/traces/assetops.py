"""AssetOpsBench MetaAgent ("mpe-agent") trajectories and the AgentHive plan-execute form.

ReAct form (extensionless JSON files in `<run>/<vendor>/<model>/<utterance id>` or `<dir>/<model>/<id>`):
- `trajectory[i-1]` = {thought, action, observation} gives steps thought / action / observation, all with
  `Step.index = i` (1-based, matching `trajectroy_log[k].step`; the key is misspelt in the source).
- The action string `Tool Name: X , Tool Parameter: Action Input 1: request=...` is parsed into tool_name X and
  tool_input `request=...`; an action that does not follow that shape keeps tool_name None and
  `meta["action_format"] = "unparsed"`.
- The observation of a sub-agent call is a JSON *string* of a JSON string ({answer, review{status,...},
  final_result, summary}); its review status goes to `Step.meta["review_status"]`. Observations that are tool
  or system errors ("Error encountered: ...", an action-format rejection, `{"status": "failure"}`) set is_error.
- `trajectroy_log[k].step_trajectory_json` (a JSON string, the sub-agent's own mpe-agent run) becomes child
  steps: index i, depth 1, parent_id = the observation step's step_id, agent = the sub-agent tool name. They sit
  between the action and the observation, in the order they happened. Deeper nesting is not expanded.
- `Trace.review_status` is the status of the last entry of `reviews` ("Task Status: X").
- Model, vendor, run id and utterance id come from the path (the files do not name them), but only where the
  path has AssetOpsBench's documented layout: the file name is a numeric utterance id (`0001`, a trailing `.gz`
  or `.json` dropped) and its folder a plausible model name (letters with a digit or a dash, not a generic folder
  name such as `samples` or `traces`); a timestamp-like ancestor folder is the run, and a single folder between
  run and model is the vendor. Anything else leaves model, vendor and run null: a folder name is never guessed
  as a model. A gzipped `0001.gz` gets the trace id the
  plain `0001` would get (no `.gz`), so compressing a corpus does not change its ids. `multi_agent` is True
  when more than one distinct sub-agent (a tool whose name ends in "Agent") is called, or when an optional
  `scenario` field says end-to-end / multi-agent.
- Roles: thoughts and actions are the agent's (MetaAgent, or the sub-agent in nested steps); an observation is
  what the called tool or sub-agent returned (role tool, the sub-agent's name in `agent`).

Plan-execute form (AgentHive): `{id, text, trajectory: [{task_number, task_description, agent_name, response}]}`:
each task gives an action step (the task description, tool_name = agent_name, role agent) and an observation
step (the response, role tool), both with index = task_number (1-based position when absent). Model and vendor come from the path
only under a timestamp-like run folder (else from an optional `model` field); utterance id = `id`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from trajfm.traces._common import Source, StepBuilder, finish_trace, new_trace, numbered
from trajfm.traces.fields import dumps, opt_int, opt_str, require_dict, require_list, to_text
from trajfm.traces.format import Format, combine, item_fit, key_fit
from trajfm.traces.model import Trace

FORMAT = "assetops"

TOP_AGENT = "MetaAgent"
_TIMESTAMP_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}")
_KNOWN_VENDORS = {
    "meta-llama", "ibm", "ibm-granite", "mistralai", "mistral", "openai", "anthropic", "google", "meta",
    "microsoft", "qwen", "deepseek", "deepseek-ai", "cohere", "amazon", "azure", "watsonx", "nvidia",
}  # fmt: skip
_ERROR_PREFIXES = ("Error encountered", "The generated Action and/or Action Input are incorrectly")
_E2E = re.compile(r"e2e|end.?to.?end|multi.?agent", re.IGNORECASE)
_UTTERANCE_ID = re.compile(r"^\d{1,8}$")
_DIGIT = re.compile(r"\d")
_MODEL_NAME = re.compile(r"^[A-Za-z][\w.+:-]{1,80}$")
_GENERIC_DIRS = frozenset({
    "traces", "trajectories", "samples", "sample", "runs", "run", "data", "output", "outputs", "results", "logs",
    "tmp", "test", "tests", "fixtures", "examples", "mini-traces", "trace-files",
})  # fmt: skip


def plausible_model(name: str) -> bool:
    """A folder name that reads like a model name (`llama-4-maverick`, `gpt4o`), not a generic folder."""
    if not _MODEL_NAME.match(name) or name.lower() in _GENERIC_DIRS:
        return False
    return "-" in name or _DIGIT.search(name) is not None


_REACT_KEYS = ("task", "final_answer", "trajectroy_log", "type", "reviews")
_REACT_STEP = ("thought", "action", "observation")
_PLAN_KEYS = ("id", "text")
_PLAN_STEP = ("task_number", "task_description", "agent_name", "response")


def score(doc: Any) -> float:
    """Fit of either AssetOpsBench form: top-level keys and {thought, action, observation} or task items."""
    if not isinstance(doc, dict):
        return 0.0
    traj = doc.get("trajectory")
    if traj is None:
        return 0.0
    marked = "trajectroy_log" in doc or doc.get("type") == "mpe-agent"
    if not isinstance(traj, list):
        # Unmistakably this format (its own misspelt log key): a malformed trajectory is parse's error to report.
        return 0.5 if marked else 0.0
    react_keys = key_fit(doc, _REACT_KEYS)
    react_steps = item_fit(traj, _REACT_STEP, content=_REACT_STEP)
    # Without any of this format's own keys, thought/action/observation items alone (a common ReAct shape) are
    # too weak to claim the document: half weight.
    react = combine(react_keys, react_steps) if react_keys else round(0.5 * react_steps, 4)
    if react >= 1.0:
        return 1.0
    plan = combine(key_fit(doc, _PLAN_KEYS), item_fit(traj, _PLAN_STEP, content=("task_description", "response")))
    best = max(react, plan)
    return max(best, 0.5) if marked else best


def parse(doc: Any, source: Source) -> list[Trace]:
    if source.rel.endswith(".gz") and len(source.rel) > 3:
        # `0001.gz` is the same run as the extensionless `0001` (the bundled corpus ships gzipped): same trace id.
        source = Source(source.path, source.rel[:-3], source.record)
    doc = require_dict(doc, "an AssetOpsBench trajectory", source)
    traj = require_list(doc.get("trajectory"), "'trajectory'", source)
    if traj and isinstance(traj[0], dict) and "task_description" in traj[0] and "thought" not in traj[0]:
        return [_parse_plan_execute(doc, traj, source)]
    return [_parse_react(doc, traj, source)]


# ---- path ----------------------------------------------------------------------------------------------------


def path_info(rel: str) -> dict[str, str | None]:
    """Model, vendor, run id and utterance id from `.../<run>/<vendor>/<model>/<id>` or `.../<model>/<id>`."""
    parts = [p for p in rel.split("/") if p]
    info: dict[str, str | None] = {"utterance_id": None, "model": None, "vendor": None, "run_id": None}
    if not parts:
        return info
    name = parts[-1]
    for suffix in (".gz", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    info["utterance_id"] = name
    dirs = parts[:-1]
    if not dirs or not _UTTERANCE_ID.match(name) or not plausible_model(dirs[-1]):
        # Not AssetOpsBench's <model>/<numeric id> layout: the folders say nothing about the model or run.
        return info
    info["model"] = dirs[-1]
    above = dirs[:-1]
    run_at = next((k for k in range(len(above) - 1, -1, -1) if _TIMESTAMP_DIR.match(above[k])), None)
    if run_at is not None:
        info["run_id"] = above[run_at]
        between = above[run_at + 1 :]
        if len(between) == 1:
            info["vendor"] = between[0]
        elif len(between) > 1:
            info["model"] = "/".join([*between[1:], dirs[-1]])
            info["vendor"] = between[0]
    elif above and above[-1].lower() in _KNOWN_VENDORS:
        info["vendor"] = above[-1]
    return info


# ---- ReAct form ----------------------------------------------------------------------------------------------


def parse_action(action: str) -> tuple[str | None, str | None]:
    """`Tool Name: X , Tool Parameter: Action Input 3: request=...` -> ("X", "request=...")."""
    head = action.lstrip()
    if not head.startswith("Tool Name:"):
        return None, None
    cut = head.find("Tool Parameter:")
    if cut < 0:
        name = head[len("Tool Name:") :].strip().rstrip(",").strip()
        return (name or None), None
    name = head[len("Tool Name:") : cut].strip().rstrip(",").strip()
    param = head[cut + len("Tool Parameter:") :].strip()
    if param.startswith("Action Input"):
        colon = param.find(":")
        if colon >= 0 and param[len("Action Input") : colon].strip().isdigit():
            param = param[colon + 1 :].strip()
    return (name or None), (param or None)


def decode_observation(obs: str) -> tuple[str, dict[str, Any]]:
    """The readable text of an observation and what it says about itself (review status, error)."""
    meta: dict[str, Any] = {}
    text = obs
    value: Any = obs
    # Sub-agent answers are JSON strings of JSON strings: unwrap at most twice.
    for _ in range(2):
        if not isinstance(value, str):
            break
        s = value.strip()
        if not s or s[0] not in '"{[':
            break
        try:
            value = orjson.loads(s)
        except orjson.JSONDecodeError:
            break
        if isinstance(value, str):
            text = value
    if isinstance(value, dict):
        review = value.get("review")
        if isinstance(review, dict) and opt_str(review.get("status")):
            meta["review_status"] = opt_str(review.get("status"))
        if "answer" in value:
            meta["observation_format"] = "subagent_json"
            answer = opt_str(value.get("answer"))
            if answer and answer.startswith("Agent failed"):
                meta["subagent_failed"] = True
        status = value.get("status")
        if isinstance(status, str) and status.lower() in ("failure", "failed", "error"):
            meta["is_error"] = True
    if text.lstrip().startswith(_ERROR_PREFIXES):
        meta["is_error"] = True
    return text, meta


def _parse_review_status(review: Any) -> str | None:
    if isinstance(review, dict):
        return opt_str(review.get("status"))
    if not isinstance(review, str):
        return None
    for line in review.splitlines():
        line = line.strip()
        if line.lower().startswith("task status:"):
            return line.split(":", 1)[1].strip() or None
    return None


def _react_steps(
    builder: StepBuilder,
    traj: list[Any],
    source: Source,
    *,
    index: int | None,
    depth: int,
    agent: str,
    parent_id: str | None,
    id_prefix: str,
    log_by_step: dict[int, dict[str, Any]] | None,
    tools_used: list[str],
) -> None:
    """Emit thought/action/observation steps of one ReAct trajectory (top level or one sub-agent run)."""
    for i, item in enumerate(traj, start=1):
        if not isinstance(item, dict):
            raise source.error(f"trajectory step {i} should be an object with thought/action/observation")
        idx = i if index is None else index
        sid = f"{id_prefix}{i}"
        meta_common: dict[str, Any] = {} if index is None else {"sub_step": i}
        log = (log_by_step or {}).get(i, {})
        if log:
            state = opt_str(log.get("state"))
            if state:
                meta_common["state"] = state
            if log.get("llm_error") is True or (
                isinstance(log.get("llm_error"), str) and log["llm_error"] == "True"
            ):
                meta_common["llm_error"] = True
        thought = to_text(item.get("thought"))
        if thought:
            builder.add(index=idx, kind="thought", content=thought, role="agent", step_id=f"{sid}.thought", agent=agent,
                        parent_id=parent_id, depth=depth, meta=dict(meta_common))  # fmt: skip
        action = to_text(item.get("action"))
        tool_name: str | None = None
        if action:
            tool_name, tool_input = parse_action(action)
            ameta = dict(meta_common)
            if tool_name is None:
                ameta["action_format"] = "unparsed"
            else:
                tools_used.append(tool_name)
            builder.add(index=idx, kind="action", content=action, role="agent", step_id=f"{sid}.action", agent=agent,
                        tool_name=tool_name, tool_input=tool_input, parent_id=parent_id, depth=depth,
                        meta=ameta)  # fmt: skip
        obs_id = f"{sid}.observation"
        sub = _sub_trajectory(log, source) if depth == 0 else None
        if sub is not None:
            sub_agent = tool_name or opt_str(log.get("action")) or "SubAgent"
            sub_traj = sub.get("trajectory")
            if isinstance(sub_traj, list):
                _react_steps(builder, sub_traj, source, index=idx, depth=1, agent=sub_agent, parent_id=obs_id,
                             id_prefix=f"{sid}.sub", log_by_step=None, tools_used=[])  # fmt: skip
        raw_obs = item.get("observation")
        obs = to_text(raw_obs)
        if obs or sub is not None:
            text, ometa = decode_observation(obs)
            is_error = bool(ometa.pop("is_error", False))
            ometa.update(meta_common)
            if tool_name:
                ometa["tool_name"] = tool_name
            builder.add(index=idx, kind="observation", content=text, role="tool", step_id=obs_id,
                        agent=(tool_name if tool_name and tool_name.endswith("Agent") else None) or agent,
                        is_error=is_error, parent_id=parent_id, depth=depth, meta=ometa)  # fmt: skip


def _sub_trajectory(log: dict[str, Any], source: Source) -> dict[str, Any] | None:
    raw = log.get("step_trajectory_json")
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        sub = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # A broken nested log should not lose the parent trajectory; the observation still carries the answer.
        return None
    return sub if isinstance(sub, dict) else None


def _parse_react(doc: dict[str, Any], traj: list[Any], source: Source) -> Trace:
    info = path_info(source.path.replace("\\", "/"))
    log_by_step: dict[int, dict[str, Any]] = {}
    raw_log = doc.get("trajectroy_log", doc.get("trajectory_log"))
    if isinstance(raw_log, list):
        for k, entry in enumerate(raw_log, start=1):
            if isinstance(entry, dict):
                step_no = opt_int(entry.get("step"))
                log_by_step[step_no if step_no is not None else k] = entry

    builder = StepBuilder()
    tools_used: list[str] = []
    _react_steps(builder, traj, source, index=None, depth=0, agent=TOP_AGENT, parent_id=None, id_prefix="",
                 log_by_step=log_by_step, tools_used=tools_used)  # fmt: skip

    reviews = doc.get("reviews")
    review_status = None
    if isinstance(reviews, list) and reviews:
        review_status = _parse_review_status(reviews[-1])
    elif reviews is not None:
        review_status = _parse_review_status(reviews)

    final_answer = opt_str(doc.get("final_answer"))
    if final_answer is None:
        finish = [s for s in builder.steps if s.tool_name == "Finish" and s.depth == 0 and s.tool_input]
        if finish:
            final_answer = finish[-1].tool_input

    scenario_raw = doc.get("scenario")
    scenario = opt_str(scenario_raw)
    if isinstance(scenario_raw, dict):
        scenario = opt_str(scenario_raw.get("type")) or opt_str(scenario_raw.get("category"))
    sub_agents = {t for t in tools_used if t.endswith("Agent")}
    multi_agent = len(sub_agents) > 1 or bool(scenario and _E2E.search(scenario))

    meta: dict[str, Any] = {"sub_agents": sorted(sub_agents)}
    for key in ("type", "environment"):
        if opt_str(doc.get(key)):
            meta[key] = opt_str(doc.get(key))
    info_block = doc.get("info")
    if isinstance(info_block, dict) and isinstance(info_block.get("model_stats"), dict):
        meta["model_stats"] = info_block["model_stats"]
    overall = doc.get("overall_metric")
    if isinstance(overall, dict) and "total_execution_time" in overall:
        meta["total_execution_time"] = overall.get("total_execution_time")
    reflections = doc.get("reflections")
    if isinstance(reflections, list) and reflections:
        meta["reflections"] = [to_text(r) for r in reflections]

    trace = new_trace(
        source,
        FORMAT,
        task=to_text(doc.get("task")),
        final_answer=final_answer,
        # The real files never name the model; a field is only a fallback for hand-made files.
        agent_model=info["model"] if info["model"] else opt_str(doc.get("model")),
        vendor=info["vendor"] if info["vendor"] else opt_str(doc.get("vendor")),
        scenario=scenario,
        utterance_id=opt_str(doc.get("utterance_id")) or info["utterance_id"],
        run_id=info["run_id"] if info["run_id"] else opt_str(doc.get("run_id")),
        multi_agent=multi_agent,
        review_status=review_status,
        meta=meta,
    )
    return finish_trace(trace, builder.steps, source)


# ---- plan-execute form ---------------------------------------------------------------------------------------


def _parse_plan_execute(doc: dict[str, Any], traj: list[Any], source: Source) -> Trace:
    info = path_info(source.path.replace("\\", "/"))
    if info["run_id"] is None:
        # Plan-execute files do not follow the <run>/<vendor>/<model>/<id> layout unless a run folder says so:
        # without one, the parent folder is just a folder, not a model name.
        info = {**info, "model": None, "vendor": None}
    builder = StepBuilder()
    agents: set[str] = set()
    expected = "trajectory task {n} should be an object with task_description and response"
    for pos, idx, item in numbered(traj, source, expected, key="task_number"):
        agent = opt_str(item.get("agent_name"))
        if agent:
            agents.add(agent)
        desc = to_text(item.get("task_description"))
        builder.add(index=idx, kind="action", content=desc, role="agent", step_id=f"{pos}.task", agent="planner",
                    tool_name=agent, tool_input=desc or None)  # fmt: skip
        response = item.get("response")
        text, ometa = decode_observation(to_text(response))
        is_error = bool(ometa.pop("is_error", False))
        builder.add(index=idx, kind="observation", content=text, role="tool", step_id=f"{pos}.response", agent=agent,
                    is_error=is_error, meta=ometa)  # fmt: skip
    final = opt_str(doc.get("final_answer"))
    if final is None and builder.steps:
        final = builder.steps[-1].content or None
    trace = new_trace(
        source,
        FORMAT,
        task=to_text(doc.get("text", doc.get("task"))),
        final_answer=final,
        agent_model=info["model"] if info["model"] else opt_str(doc.get("model")),
        vendor=info["vendor"],
        utterance_id=opt_str(doc.get("id")) or info["utterance_id"],
        run_id=info["run_id"],
        multi_agent=len(agents) > 1,
        meta={"form": "plan_execute", "agents": sorted(agents)},
    )
    if "id" in doc and not isinstance(doc.get("id"), dict | list):
        trace.meta["native_id"] = dumps(doc["id"]) if not isinstance(doc["id"], str) else doc["id"]
    return finish_trace(trace, builder.steps, source)


class AssetOpsFormat(Format, scorer=score, parser=parse):
    name = FORMAT
    description = (
        "AssetOpsBench MetaAgent ReAct trajectories (thought/action/observation, nested sub-agent runs) and the "
        "AgentHive plan-execute form"
    )
    origin = "IBM AssetOpsBench / TrajFM: extensionless JSON files in `<run>/<vendor>/<model>/<id>`"
