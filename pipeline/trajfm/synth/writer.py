"""Serialise synthetic episodes as AssetOpsBench MetaAgent files and write the corpus with its label sidecar.

File form: one extensionless JSON object per run, `json.dumps(record, indent=2)` with no trailing newline (the
real files are exactly that), keys in the MetaAgent's order: type, task, environment, system_prompt,
demonstration, scratchpad, endstate, trajectroy_log (sic), history, trajectory, info, final_answer, reviews,
reflections, overall_metric. Sub-agent observations are double-encoded JSON strings; some sub-agent calls carry
their own nested run as a JSON string in `trajectroy_log[i].step_trajectory_json`.
Layout: `<out>/<run-timestamp>/<vendor>/<model>/<4-digit utterance id>`, plus `<out>/labels.jsonl`.
Compression (`compress=True`, the default and the form committed in traces/assetops): each file is written as
`<4-digit id>.gz` holding exactly the bytes of the extensionless file, as one gzip member with a fixed header
(no file name, mtime 0, XFL 2, OS 255) and deflate level 9, so the bytes depend only on the content and zlib.
`compress=False` writes the plain extensionless files of the real layout. The sidecar's `trace_path` is always
the extensionless relative path; `trace_file(root, trace_path)` finds the file on disk in either form.
Determinism: every run draws from its own `random.Random(f"{seed}:{model}:{uid}")`, so a subset (`limit`) writes
byte-identical copies of the same files as the full corpus; nothing reads the clock or uuid4.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajfm.errors import TrajfmError
from trajfm.synth import phrasing as P
from trajfm.synth.catalogue import build_catalogue
from trajfm.synth.domain import MODEL_IDS, MODELS
from trajfm.synth.episode import Episode, SynthStep, parse_subagent_observation
from trajfm.synth.planters import FAILING, build_episode
from trajfm.synth.prompts import (
    DEMONSTRATION,
    ISSUE_PREFIX,
    SUB_DEMONSTRATION,
    SUB_SYSTEM_PROMPTS,
    SYSTEM_PROMPT,
)
from trajfm.synth.rates import BEHAVIOURS, sample_behaviours
from trajfm.synth.scenarios import Scenario

RUN_DIR = re.compile(r"^\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d$")
LABELS_NAME = "labels.jsonl"
GZ_LEVEL = 9
# ID1 ID2, CM=deflate, FLG=0 (no name/comment/extra), MTIME=0, XFL=2 (max compression), OS=255 (unknown): written
# here rather than by the gzip module, so the header cannot change with the Python version.
_GZ_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
NESTED_RATE = 0.12
_NESTED_TOOL = {
    "iot.sites": "sites",
    "iot.assets": "assets",
    "iot.sensors": "sensors",
    "iot.history": "history",
    "fmsr.list": "failure_modes",
    "fmsr.sensors": "fm_sensor_map",
    "fmsr.recipe": "recipe",
    "tsfm.models": "models",
    "tsfm.tasks": "models",
    "tsfm.forecast": "forecast",
    "tsfm.anomaly": "anomaly",
    "wo.list": "workorders",
    "wo.create": "create_workorder",
    "wo.bundle": "bundle",
    "wo.events": "events",
}


class SynthError(TrajfmError):
    """The synthetic corpus cannot be written where asked."""


@dataclass(frozen=True, slots=True)
class CorpusSummary:
    out: Path
    seed: int
    n_traces: int
    per_model: dict[str, int]
    # bytes of the plain JSON files plus the sidecar, and bytes written to disk (the .gz files when compressed)
    total_bytes: int
    disk_bytes: int = 0


def gzip_bytes(data: bytes) -> bytes:
    """`data` as one gzip member whose bytes depend only on `data` (and zlib): see the module docstring."""
    body = zlib.compress(data, GZ_LEVEL, wbits=-15)  # raw deflate; header and trailer are ours
    return _GZ_HEADER + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def trace_file(root: Path, trace_path: str) -> Path:
    """The file on disk for a sidecar `trace_path`: `<root>/<trace_path>` or, in a compressed corpus, `.gz`."""
    plain = root / trace_path
    gz = plain.with_name(plain.name + ".gz")
    return gz if not plain.exists() and gz.exists() else plain


# ---- one run -> MetaAgent record --------------------------------------------------------------------------------


def _stats(rng: random.Random, n_steps: int, answer_len: int) -> dict[str, int]:
    return {
        "tokens_sent": 9000 + n_steps * rng.randint(3200, 5200),
        "tokens_received": n_steps * rng.randint(40, 110) + answer_len // 4,
        "api_calls": 2 * n_steps + 2,
        "total_cost": 0,
        "instance_cost": 0,
    }


def _review_text(status: str, reasoning: str, suggestions: str) -> str:
    return f"Task Status: {status}\nReasoning: {reasoning}\nSuggestions for Improvement: {suggestions}\n"


def _nested(rng: random.Random, s: SynthStep, payload: dict[str, Any], model: str) -> tuple[str, str]:
    """A sub-agent's own run for step `s`, as the JSON strings step_trajectory_json and step_metric_json."""
    assert s.subtask is not None
    task = s.tool_input.removeprefix("request=")
    sub_tool = _NESTED_TOOL.get(s.subtask.kind, "sites")
    sub_input = f"query={task}" if not s.subtask.subject else f"target={s.subtask.subject}, query={task}"
    sub_obs = json.dumps({"message": payload["answer"], "ok": payload["review"]["status"] == "Accomplished"})
    answer = payload["answer"]
    steps = [
        (f"I should call {sub_tool} for this.", sub_tool, sub_input, sub_obs),
        ("I now know the final answer", "Finish", answer, ""),
    ]
    log, traj, scratch = [], [], []
    for i, (thought, tool, inp, obs) in enumerate(steps, start=1):
        log.append(_log_entry(i, thought, tool, inp, obs, "Valid Action" if obs else "", None, None))
        traj.append(
            {
                "thought": thought,
                "action": f"Tool Name: {tool} , Tool Parameter: Action Input {i}: {inp}",
                "observation": obs,
            }
        )
        scratch.append(_scratch(i, thought, tool, inp, obs))
    status = payload["review"]["status"]
    stats = _stats(rng, len(steps), len(answer))
    record = {
        "type": "mpe-agent",
        "task": task,
        "environment": "mpe_main",
        "system_prompt": SUB_SYSTEM_PROMPTS[s.tool],
        "demonstration": SUB_DEMONSTRATION,
        "scratchpad": "".join(scratch),
        "endstate": "",
        "trajectroy_log": log,
        "history": [
            {"role": "system", "content": SUB_SYSTEM_PROMPTS[s.tool], "agent": "primary"},
            {"agent": "primary", "content": SUB_DEMONSTRATION, "is_demo": True, "role": "user"},
            {"role": "user", "content": ISSUE_PREFIX + task + "\n\n", "agent": "primary"},
        ],
        "trajectory": traj,
        "info": {"model_stats": stats},
        "final_answer": answer,
        "reviews": [_review_text(status, payload["review"]["reasoning"], payload["review"]["suggestions"])],
        "reflections": [],
    }
    metric = _metric(rng, task, status, stats, len(steps), model, max_steps=15, reflections=0)
    return json.dumps(record), json.dumps(metric)


def _metric(
    rng: random.Random,
    task: str,
    status: str,
    stats: dict[str, int],
    n_steps: int,
    model: str,
    *,
    max_steps: int,
    reflections: int,
    rounds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    mid = MODEL_IDS[model]
    return {
        "questions": task,
        "number_of_reflections": reflections,
        "total_execution_time": round(n_steps * rng.uniform(0.15, 4.0), 6),
        "per_round_info": rounds or [{"step": n_steps + 1, "info": {"model_stats": stats}}],
        "configuration_parameters": {
            "shots_in_reflect": 2,
            "reflect_llm_model_id": mid,
            "react_llm_model_id": mid,
            "shots_in_react": 28,
        },
        "status": status,
        "max_steps": max_steps,
        "num_reflect_iteration": 1 if not reflections else 10,
        "max_retries": 1,
        "num_tools": 5,
    }


def _log_entry(
    i: int,
    thought: str,
    tool: str,
    tool_input: str | None,
    obs: str,
    state: str,
    nested: str | None,
    metric: str | None,
    malformed: str | None = None,
) -> dict[str, Any]:
    if malformed is not None:
        action, raw_action = f" {malformed}\nObservation", ""
    else:
        action, raw_action = tool, f" {tool}\nAction Input {i}: {tool_input}\nObservation"
    return {
        "step": i,
        "raw_llm_thought_output": f" {thought}\nAction",
        "raw_llm_action_output": raw_action,
        "raw_observation_output": obs,
        "raw_llm_output": "",
        "thought": thought,
        "action": action,
        "action_input": tool_input,
        "observation": obs,
        "state": state,
        "is_loop_detected": None,
        "additional_scratchpad_feedback": "",
        "step_trajectory_file_name": None,
        "step_metric_file_name": None,
        "step_trajectory_json": nested,
        "step_metric_json": metric,
    }


def _scratch(i: int, thought: str, tool: str, tool_input: str | None, obs: str) -> str:
    text = f"\nThought {i}: {thought}\nAction {i}: {tool}\nAction Input {i}: {tool_input or ''}"
    return text + (f"\nObservation {i}: {obs}" if tool != "Finish" else "")


def episode_record(rng: random.Random, ep: Episode) -> dict[str, Any]:
    """The MetaAgent JSON object of one finished episode."""
    sc = ep.scenario
    log, traj, scratch = [], [], []
    for i, s in enumerate(ep.steps, start=1):
        nested = metric = None
        payload = parse_subagent_observation(s.observation) if s.state == "Valid Action" else None
        if payload is not None and s.subtask is not None and rng.random() < NESTED_RATE:
            nested, metric = _nested(rng, s, payload, ep.model)
        if s.malformed is not None:
            action = f"Tool Name: {s.malformed} , Tool Parameter: Action Input {i}:"
            log.append(
                _log_entry(i, s.thought, s.tool, None, s.observation, s.state, None, None, s.malformed)
            )
            scratch.append(_scratch(i, s.thought, s.malformed, "", s.observation))
        else:
            action = f"Tool Name: {s.tool} , Tool Parameter: Action Input {i}: {s.tool_input}"
            log.append(_log_entry(i, s.thought, s.tool, s.tool_input, s.observation, s.state, nested, metric))
            scratch.append(_scratch(i, s.thought, s.tool, s.tool_input, s.observation))
        traj.append({"thought": s.thought, "action": action, "observation": s.observation})

    fooled = "overstated_completion" in ep.planted and rng.random() < 0.6
    if ep.task_success or fooled:
        status, reasoning = "Accomplished", P.say(rng, P.REVIEW_TOP_FOOLED if fooled else P.REVIEW_TOP_OK)
        suggestions = P.say(rng, P.SUGGEST_OK)
    else:
        status = rng.choice(("Not Accomplished", "Partially Accomplished"))
        reasoning, suggestions = P.say(rng, P.REVIEW_TOP_FAIL), P.say(rng, P.SUGGEST_FAIL)
    stats = _stats(rng, len(ep.steps), len(ep.final_answer))
    reviews = [_review_text(status, reasoning, suggestions)]
    reflections: list[str] = []
    rounds = None
    if status != "Accomplished" and rng.random() < 0.35:
        first = _stats(rng, max(1, len(ep.steps) - 2), 0)
        reviews.insert(
            0, _review_text("Not Accomplished", P.say(rng, P.REVIEW_TOP_FAIL), P.say(rng, P.SUGGEST_FAIL))
        )
        reflections.append(P.say(rng, P.REFLECTION))
        stats = {k: v + first[k] for k, v in stats.items()}
        rounds = [
            {"step": len(ep.steps) - 1, "info": {"model_stats": first}},
            {"step": len(ep.steps) + 1, "info": {"model_stats": stats}},
        ]
    return {
        "type": "mpe-agent",
        "task": sc.text,
        "environment": "mpe_main",
        "system_prompt": SYSTEM_PROMPT,
        "demonstration": DEMONSTRATION,
        "scratchpad": "".join(scratch),
        "endstate": "",
        "trajectroy_log": log,
        "history": [
            {"role": "system", "content": SYSTEM_PROMPT, "agent": "primary"},
            {"agent": "primary", "content": DEMONSTRATION, "is_demo": True, "role": "user"},
            {"role": "user", "content": ISSUE_PREFIX + sc.text + "\n\n", "agent": "primary"},
        ],
        "trajectory": traj,
        "info": {"model_stats": stats},
        "final_answer": ep.final_answer,
        "reviews": reviews,
        "reflections": reflections,
        "overall_metric": _metric(
            rng,
            sc.text,
            status,
            stats,
            len(ep.steps),
            ep.model,
            max_steps=ep.max_steps,
            reflections=len(reflections),
            rounds=rounds,
        ),
    }


def episode_label(ep: Episode, trace_path: str, vendor: str) -> dict[str, Any]:
    """The sidecar line of one episode (contract in the team brief, plus a few extra keys at the end)."""
    sc = ep.scenario
    behaviours = []
    first: dict[str, tuple[int, str]] = {}
    for b in BEHAVIOURS:
        if b not in ep.planted:
            continue
        steps = sorted({i for i, s in enumerate(ep.steps, start=1) if b in s.tags})
        mast, family = BEHAVIOURS[b]
        behaviours.append({"id": b, "mast": mast, "novel_family": family, "steps": steps})
        if b in ep.decisive:
            step, agent = ep.decisive[b]
            first[b] = (ep.index_of(step), agent)
    if not behaviours:
        behaviours.append({"id": "clean_success", "mast": [], "novel_family": None, "steps": []})
    failing = {
        b: v for b, v in first.items() if b in FAILING or (b == "ignored_termination" and not ep.finished)
    }
    pool = failing or first
    decisive = min(pool.values()) if pool else None
    required = [s.tool for s in (sc.ask_subtasks if ep.flags["ask"] else sc.subtasks)]
    return {
        "trace_path": trace_path,
        "model": ep.model,
        "scenario": f"{sc.group}/{sc.template}",
        "multi_agent": sc.multi_agent,
        "task_success": ep.task_success,
        "behaviours": behaviours,
        "decisive_step": decisive[0] if decisive else None,
        "decisive_agent": decisive[1] if decisive else None,
        # extensions (not in the brief's contract): what the task needs, so checks can work from content
        "vendor": vendor,
        "utterance_id": f"{sc.uid:04d}",
        "required_tools": list(dict.fromkeys(required)),
        "requested_format": sc.fmt,
        "ambiguous": sc.ambiguous,
    }


# ---- the corpus -------------------------------------------------------------------------------------------------


def _run_timestamps(rng: random.Random) -> dict[tuple[str, bool], str]:
    """Two MetaAgent runs per model (single-agent utterances, end-to-end utterances), each with its start time."""
    out = {}
    for model in MODELS:
        for multi in (False, True):
            day, h, m, s = rng.randint(1, 28), rng.randint(8, 22), rng.randint(0, 59), rng.randint(0, 59)
            out[(model, multi)] = f"2025-{rng.choice((6, 7, 8)):02d}-{day:02d}T{h:02d}_{m:02d}_{s:02d}"
    return out


def plan_corpus(seed: int) -> list[tuple[str, str, Scenario, str]]:
    """Every run of the corpus as (model, vendor, scenario, run timestamp), in write order."""
    rng = random.Random(seed)
    catalogue = build_catalogue(rng)
    stamps = _run_timestamps(rng)
    jobs = []
    for model, (vendor, count) in MODELS.items():
        chosen = sorted(rng.sample(catalogue, count), key=lambda s: s.uid)
        for sc in chosen:
            group_is_multi = sc.group == "E2E"
            jobs.append((model, vendor, sc, stamps[(model, group_is_multi)]))
    return jobs


def _clear(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise SynthError(f"--out {out} is a file, not a folder; pick another --out")
    entries = [p for p in out.iterdir() if p.name != "README.md"]
    if not entries:
        return
    ours = [p for p in entries if (p.is_dir() and RUN_DIR.match(p.name)) or p.name == LABELS_NAME]
    if not overwrite or len(ours) != len(entries):
        strangers = sorted(p.name for p in entries if p not in ours)
        raise SynthError(
            f"{out} is not empty ({', '.join(strangers) or 'an earlier corpus'}); pass --overwrite to replace an "
            "earlier synthetic corpus (only run-timestamp folders and labels.jsonl are removed), or pick another "
            "--out"
        )
    for p in ours:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def generate_corpus(
    out: Path, seed: int, *, limit: int | None = None, overwrite: bool = False, compress: bool = True
) -> CorpusSummary:
    """Write the synthetic corpus (all 881 runs, or `limit` runs spread over models and tasks) and its sidecar.

    `compress` writes `<id>.gz` files (same content, byte-deterministic gzip); False writes plain `<id>` files.
    """
    jobs = plan_corpus(seed)
    if limit is not None:
        if limit < 1:
            raise SynthError(f"--limit must be at least 1, got {limit}")
        stride = max(1, len(jobs) // limit)
        jobs = jobs[::stride][:limit]
    _clear(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    labels = []
    per_model: dict[str, int] = {}
    total = disk = 0
    for model, vendor, sc, stamp in jobs:
        rng = random.Random(f"{seed}:{model}:{sc.uid}")
        ep = build_episode(rng, sc, model, sample_behaviours(rng, sc, model))
        record = episode_record(rng, ep)
        rel = f"{stamp}/{vendor}/{model}/{sc.uid:04d}"
        path = out / (rel + ".gz" if compress else rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(record, indent=2).encode("utf-8")
        written = gzip_bytes(data) if compress else data
        path.write_bytes(written)
        total += len(data)
        disk += len(written)
        labels.append(episode_label(ep, rel, vendor))
        per_model[model] = per_model.get(model, 0) + 1
    labels.sort(key=lambda r: r["trace_path"])
    body = "".join(json.dumps(r) + "\n" for r in labels)
    (out / LABELS_NAME).write_text(body, encoding="utf-8")
    side = len(body.encode("utf-8"))
    return CorpusSummary(out, seed, len(labels), per_model, total + side, disk + side)
