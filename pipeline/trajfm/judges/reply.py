"""Reading an LLM judge's reply the way real models write it: normalise first, then validate.

Contract: `parse_reply(text, taxonomy, valid_steps)` returns a `JudgeReply` or raises `trajfm.errors.ParseError`
carrying the raw text and a message saying what was wrong (the message is what a repair turn shows the model).

Normalised, each recorded as a short code in `JudgeReply.repairs` (so a user can see which model needs which fix):
- `json_fenced` / `prose_around_json`: the JSON object sits in a ```json fence or has prose around it;
  `json_repaired`: it was malformed and json-repair fixed it.
- Failure-mode keys matched by their id however written: `id_with_name` ("1.1 Disobey Task Specification"),
  `id_prefixed` ("FM-1.1", "[1.1]"), `id_by_name` (the mode's name alone); `failure_modes_as_list` (a list of
  objects carrying an "id"); `unknown_mode_dropped` (a key naming no mode of the taxonomy).
- `bare_boolean`: a mode given as `true`/`false` (or "yes"/"no") means detected / not detected, no evidence.
- `modes_not_reported`: modes left out are recorded as not reported (`JudgeReply.not_reported`), never false.
- `steps_as_text`: steps written "3", "Step 3", "steps 3-5"; `steps_dropped`: step numbers that do not exist
  in the trace are dropped (listed in `dropped_steps`), never kept.
- `detected_without_step`: a detected mode with no valid step stays detected, with no steps
  (`JudgeReply.steps_missing`); its evidence is not counted as verified. `novel_without_step` likewise.
- `booleans_as_text` ("true"/"false" strings), `summary_missing`, `task_completed_missing` (None), `novel_capped`
  (novel modes beyond MAX_NOVEL dropped; their titles in `dropped_novel_titles`).
What was dropped is also said in full by `dropped_entries()`: entries starting "dropped:" that the judge adds to
`reply_repairs` (so `diagnoses.parquet` shows which steps and novel modes were thrown away, not only the cache).
Refused (ParseError): no JSON object; no `failure_modes` at all; a reply reporting on none of the modes; two keys
for the same mode that disagree (the reply contradicts itself).
"""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair
from pydantic import BaseModel, ConfigDict, Field

from trajfm.errors import ParseError
from trajfm.judges.prompt import MAX_NOVEL
from trajfm.taxonomy import Taxonomy

_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?([\s\S]*?)```")
_INT = re.compile(r"-?\d+")
_RANGE = re.compile(r"^\D*?(-?\d+)\s*(?:-|\u2013|to|\.\.)\s*(-?\d+)\D*$")
_WORDS = re.compile(r"[^a-z0-9]+")
_TRUE = {"true", "yes", "y", "detected", "present", "1"}
_FALSE = {"false", "no", "n", "not detected", "absent", "none", "0", ""}


class ModeVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    detected: bool
    steps: list[int] = Field(default_factory=list)
    evidence: str = ""
    rationale: str = ""


class NovelReply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field(min_length=1)
    description: str = ""
    steps: list[int] = Field(default_factory=list)
    evidence: str = ""


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
    summary: str = ""
    task_completed: bool | None = None
    failure_modes: dict[str, ModeVerdict]  # only the modes the reply reported on
    novel_failure_modes: list[NovelReply] = Field(default_factory=list)
    root_cause: RootCause = Field(default_factory=RootCause)
    dimensions: DimensionVerdicts = Field(default_factory=DimensionVerdicts)
    # Filled by parse_reply, not by the judge.
    not_reported: list[str] = Field(default_factory=list)
    steps_missing: list[str] = Field(default_factory=list)  # detected modes with no valid step
    dropped_steps: list[int] = Field(default_factory=list)
    dropped_novel: int = 0
    dropped_novel_titles: list[str] = Field(default_factory=list)
    repairs: list[str] = Field(default_factory=list)


DROPPED = "dropped:"  # the prefix of a reply_repairs entry saying what was thrown away


def dropped_entries(steps: set[int] | list[int], novel_titles: list[str]) -> list[str]:
    """`reply_repairs` entries naming what was dropped from the judge's replies: step numbers not in the trace,
    novel modes beyond the MAX_NOVEL asked for (titles shortened to 80 characters)."""
    entries = []
    if steps:
        shown = sorted(steps)
        more = f" and {len(shown) - 20} more" if len(shown) > 20 else ""
        entries.append(f"{DROPPED}steps {', '.join(map(str, shown[:20]))}{more} (not in the trace)")
    for title in dict.fromkeys(novel_titles):
        entries.append(f"{DROPPED}novel mode {title[:80]!r} (beyond the {MAX_NOVEL} asked for)")
    return entries


def extract_json_object(text: str) -> tuple[dict[str, Any], list[str]]:
    """The JSON object in a reply (the whole text, a fenced block, or the outermost {...}), repaired if needed,
    with the repair codes that applied."""
    stripped = text.strip()
    candidates: list[tuple[str, str | None]] = [(stripped, None)]
    candidates += [(m.group(1).strip(), "json_fenced") for m in _FENCED.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start >= 0:
        candidates.append((text[start : end + 1] if end > start else text[start:], "prose_around_json"))
    for cand, code in candidates:
        if not cand.startswith("{"):
            continue
        codes = [code] if code else []
        try:
            obj = json.loads(cand)
        except json.JSONDecodeError:
            obj = json_repair.loads(cand)
            codes.append("json_repaired")
        if isinstance(obj, dict) and obj:
            if code == "json_fenced" and _FENCED.sub("", text).strip():
                codes.append("prose_around_json")
            return obj, codes
    raise ParseError(
        "the reply contains no JSON object; reply with one JSON object of the shape described in the instructions",
        raw=text,
    )


def _norm_words(text: str) -> str:
    return _WORDS.sub(" ", text.casefold()).strip()


class _ModeKeys:
    """Matches the keys a model writes for a failure mode to the taxonomy's ids."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.ids = list(taxonomy.ids)
        self.by_name = {_norm_words(m.name): m.id for m in taxonomy.modes}
        # An id inside a key, not part of a longer number ("1.1" in "FM-1.1" but not in "11.1" or "1.12").
        self.patterns = [
            (mode_id, re.compile(rf"(?<![\d.]){re.escape(mode_id)}(?!\d|\.\d)", re.I)) for mode_id in self.ids
        ]

    def match(self, key: str) -> tuple[str | None, str | None]:
        """(taxonomy id, repair code) for a key; (None, None) when it names no mode."""
        k = key.strip()
        if k in self.ids:
            return k, None
        found = [mode_id for mode_id, pat in self.patterns if pat.search(k)]
        if len(found) == 1:
            rest = _norm_words(self.patterns[self.ids.index(found[0])][1].sub(" ", k, count=1))
            return found[0], ("id_with_name" if len(rest) > 3 else "id_prefixed")
        if not found:
            name = _norm_words(k)
            if name in self.by_name:
                return self.by_name[name], "id_by_name"
        return None, None


def _as_bool(value: Any, repairs: set[str]) -> bool | None:
    """A boolean from true/false or their common text forms; None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        repairs.add("booleans_as_text")
        return bool(value)
    if isinstance(value, str):
        v = value.strip().casefold()
        if v in _TRUE:
            repairs.add("booleans_as_text")
            return True
        if v in _FALSE:
            repairs.add("booleans_as_text")
            return False
    return None


def _as_steps(value: Any, repairs: set[str]) -> list[int]:
    """Step numbers from ints, "3", "Step 3", "steps 3-5", "3, 4" or lists of those; anything else is ignored."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, int | float | str):
        value = [value]
    if not isinstance(value, list):
        return []
    out: list[int] = []
    for v in value:
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, float) and v.is_integer():
            out.append(int(v))
        elif isinstance(v, str):
            repairs.add("steps_as_text")
            rng = _RANGE.match(v.strip())
            if rng and 0 <= int(rng.group(2)) - int(rng.group(1)) <= 50:
                out.extend(range(int(rng.group(1)), int(rng.group(2)) + 1))
            else:
                out.extend(int(x) for x in _INT.findall(v))
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # several quotes: keep the first non-empty one
        return next((str(v) for v in value if v), "")
    return str(value)


def _verdict(value: Any, repairs: set[str]) -> dict[str, Any] | None:
    """A mode's entry as {detected, steps, evidence, rationale}; None when it says nothing usable."""
    flag = _as_bool(value, set())
    if flag is not None and not isinstance(value, dict):
        repairs.add("bare_boolean")
        return {"detected": flag, "steps": [], "evidence": "", "rationale": ""}
    if not isinstance(value, dict):
        return None
    raw_detected = next((value[k] for k in ("detected", "present", "value") if k in value), None)
    detected = _as_bool(raw_detected, repairs)
    if detected is None:
        return None
    return {
        "detected": detected,
        "steps": _as_steps(value.get("steps", value.get("step")), repairs),
        "evidence": _text(value.get("evidence", value.get("quote"))),
        "rationale": _text(value.get("rationale", value.get("reason"))),
    }


def _mode_entries(raw: Any, repairs: set[str]) -> list[tuple[str, Any]] | None:
    if isinstance(raw, dict):
        return [(str(k), v) for k, v in raw.items()]
    if isinstance(raw, list):  # [{"id": "1.1", "detected": ...}, ...]
        entries = []
        for item in raw:
            if isinstance(item, dict):
                key = next((item[k] for k in ("id", "mode_id", "mode", "name") if k in item), None)
                if key is not None:
                    entries.append((str(key), item))
        repairs.add("failure_modes_as_list")
        return entries
    return None


def _dimensions(raw: Any, repairs: set[str]) -> DimensionVerdicts:
    """The scorecard verdicts, keyed with or without the `dim_` prefix, booleans possibly written as text; an
    unreadable one is not assessed (None)."""
    if not isinstance(raw, dict):
        return DimensionVerdicts()
    fields = set(DimensionVerdicts.model_fields)
    values: dict[str, bool | None] = {}
    for key, value in raw.items():
        name = str(key).strip().casefold().removeprefix("dim_").replace(" ", "_")
        if name in fields and value is not None:
            values[name] = _as_bool(value, repairs)
    return DimensionVerdicts(**values)


def parse_reply(text: str, taxonomy: Taxonomy, valid_steps: set[int]) -> JudgeReply:
    """Normalise and validate one reply (see the module docstring)."""
    obj, codes = extract_json_object(text)
    repairs: set[str] = set(codes)
    entries = _mode_entries(obj.get("failure_modes"), repairs)
    if entries is None:
        keys = ", ".join(sorted(str(k) for k in obj)[:8])
        raise ParseError(
            f'the reply has no "failure_modes" object (its keys: {keys or "none"}); reply with the JSON object '
            'described in the instructions, with one entry per failure-mode id under "failure_modes"',
            raw=text,
        )
    matcher = _ModeKeys(taxonomy)
    verdicts: dict[str, dict[str, Any]] = {}
    for key, value in entries:
        mode_id, code = matcher.match(key)
        if mode_id is None:
            repairs.add("unknown_mode_dropped")
            continue
        if code:
            repairs.add(code)
        verdict = _verdict(value, repairs)
        if verdict is None:
            continue
        if mode_id in verdicts and verdicts[mode_id]["detected"] != verdict["detected"]:
            raise ParseError(
                f"the reply contradicts itself: failure mode {mode_id} is given twice, once detected and once "
                "not; give each failure-mode id exactly once",
                raw=text,
            )
        verdicts.setdefault(mode_id, verdict)
    if not verdicts:
        raise ParseError(
            'the reply reports on none of the failure modes; give "failure_modes" one entry per failure-mode '
            f'id ({", ".join(taxonomy.ids[:3])}, ...), each with "detected", "steps", "evidence", "rationale"',
            raw=text,
        )
    not_reported = [m for m in taxonomy.ids if m not in verdicts]
    if not_reported:
        repairs.add("modes_not_reported")

    dropped: set[int] = set()

    def keep(steps: list[int]) -> list[int]:
        if any(s not in valid_steps for s in steps):
            repairs.add("steps_dropped")
        dropped.update(s for s in steps if s not in valid_steps)
        return sorted({s for s in steps if s in valid_steps})

    failure_modes: dict[str, ModeVerdict] = {}
    steps_missing: list[str] = []
    for mode_id in taxonomy.ids:
        if mode_id not in verdicts:
            continue
        v = verdicts[mode_id]
        steps = keep(v["steps"]) if v["detected"] else []
        if v["detected"] and not steps:
            repairs.add("detected_without_step")
            steps_missing.append(mode_id)
        failure_modes[mode_id] = ModeVerdict(
            detected=v["detected"], steps=steps, evidence=v["evidence"] if v["detected"] else "",
            rationale=v["rationale"],
        )  # fmt: skip

    novel: list[NovelReply] = []
    raw_novel = obj.get("novel_failure_modes") or []
    if isinstance(raw_novel, dict):
        raw_novel = [raw_novel]
    for item in raw_novel if isinstance(raw_novel, list) else []:
        if not isinstance(item, dict):
            continue
        title = _text(item.get("title", item.get("name"))).strip()
        if not title:
            continue
        steps = keep(_as_steps(item.get("steps", item.get("step")), repairs))
        if not steps:
            repairs.add("novel_without_step")
        novel.append(
            NovelReply(title=title, description=_text(item.get("description")), steps=steps,
                       evidence=_text(item.get("evidence", item.get("quote"))))
        )  # fmt: skip
    dropped_novel = max(0, len(novel) - MAX_NOVEL)
    if dropped_novel:
        repairs.add("novel_capped")

    summary = _text(obj.get("summary")).strip()
    if not summary:
        repairs.add("summary_missing")
    task_completed = _as_bool(obj.get("task_completed"), repairs)
    if task_completed is None:
        repairs.add("task_completed_missing")

    root = obj.get("root_cause")
    root_step: int | None = None
    root_agent: str | None = None
    if isinstance(root, dict):
        found = _as_steps(root.get("step"), repairs)
        root_step = found[0] if found else None
        agent = root.get("agent")
        root_agent = str(agent) if agent not in (None, "", "null") else None
    elif root is not None and not isinstance(root, bool):
        found = _as_steps(root, repairs)
        root_step = found[0] if found else None
    if root_step is not None and root_step not in valid_steps:
        dropped.add(root_step)
        repairs.add("steps_dropped")
        root_step = None

    return JudgeReply(
        dimensions=_dimensions(obj.get("dimensions"), repairs),
        summary=summary,
        task_completed=task_completed,
        failure_modes=failure_modes,
        novel_failure_modes=novel[:MAX_NOVEL],
        root_cause=RootCause(step=root_step, agent=root_agent),
        not_reported=not_reported,
        steps_missing=steps_missing,
        dropped_steps=sorted(dropped),
        dropped_novel=dropped_novel,
        dropped_novel_titles=[n.title for n in novel[MAX_NOVEL:]],
        repairs=sorted(repairs),
    )
