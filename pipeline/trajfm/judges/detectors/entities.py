"""Entities the agent named that the observations say do not exist.

A result that says an entity does not exist ("asset X not found", "no sensor named 'Y'", "X does not exist",
"unknown site Z") yields the entity names quoted or written as identifiers near that phrase. The finding is raised
when the agent's final answer still presents the entity after being told it does not exist, or when the agent
itself introduced the entity (it appears in the agent's actions or reasoning but not in the task or in any result
before the agent first used it) and kept using it afterwards. An agent that tries an entity the *user* named and then reports it missing is
behaving well and yields nothing here.
"""

from __future__ import annotations

import re

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView

_MISSING = tx.Pattern(
    r"\b(?:does not exist|doesn't exist|do not exist|don't exist|not found|could not be found|cannot be found|"
    r"was not found|were not found|no such|unknown (?:asset|sensor|site|equipment|entity|item|id|identifier|"
    r"device|component|product|user|order|file|column|table|variable)|is not (?:a )?(?:valid|known|recogni[sz]ed|"
    r"registered|available) (?:asset|sensor|site|equipment|id|identifier|device|name|entity)|"
    r"not (?:present|listed|available) (?:in|at|on|for) (?:the )?(?:system|site|database|inventory|records?|list))",
    needles=("exist", "found", "no such", "unknown", "is not", "not present", "not listed", "not available"),
)
_QUOTED = re.compile(r"[\"'‘“]([^\"'’”\n]{2,60})[\"'’”]")
_ID = re.compile(
    r"\b[A-Za-z][A-Za-z]*[ _\-]?\d+[A-Za-z0-9_\-]*\b|\b[A-Z][A-Za-z]+(?:[ _][A-Z0-9][A-Za-z0-9]*){0,3}\b"
)
_NOT_NAMES = frozenset(
    {
        "the",
        "error",
        "not",
        "found",
        "sensor",
        "asset",
        "site",
        "no",
        "unknown",
        "exist",
        "available",
        "file",
        "i",
        "it",
        "this",
        "that",
        "there",
        "please",
        "final",
        "answer",
        "observation",
        "question",
        "note",
        "however",
        "available sensors",
        "the asset",
        "the sensor",
    }
)


_SEARCH_MISS = re.compile(r"\b(?:search|query|queries|results?|on (?:this|the) page|matching)\b", re.I)


def _looks_like_entity(name: str) -> bool:
    """An identifier ("CWC04009", "Chiller 6", "mp_1") or a proper name ("Chiller Nine"), not a plain phrase."""
    return any(c.isdigit() for c in name) or any(c.isupper() for c in name)


def _names_near(text: str, m: re.Match[str]) -> list[str]:
    """Entity names in the sentence around a "does not exist" phrase: quoted names first, then identifiers.
    A search that found nothing ("the search string 'x' was not found on this page") names no entity."""
    s = max(text.rfind(".", 0, m.start()), text.rfind("\n", 0, m.start()), m.start() - 200)
    e = text.find(".", m.end())
    e = min(e if e != -1 else len(text), m.end() + 120)
    window = text[s + 1 : e]
    if _SEARCH_MISS.search(window):
        return []
    names = [q.strip() for q in _QUOTED.findall(window)]
    if not names:
        names = [x.group(0).strip() for x in _ID.finditer(window)]
    return [n for n in names if n.lower() not in _NOT_NAMES and len(n) >= 2 and _looks_like_entity(n)]


def detect_hallucinated_entities(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    task_l = view.task.lower()
    answer = view.final_answer
    answer_l = answer.lower()
    reported: set[str] = set()
    # What the environment had said up to each point, to tell an entity the agent invented from one it read.
    seen_env = task_l
    acts = view.main_acts
    act_texts = [(a, (a.args + " " + (a.thought.content[:1500] if a.thought else "")).lower()) for a in acts]
    for k, (act, _) in enumerate(act_texts):
        r = act.result
        if r is None:
            continue
        head = view.head(r)
        for m in _MISSING.finditer(head, view.low(r)):
            for name in _names_near(head, m):
                key = name.lower()
                if key in reported or len(key) < 3:
                    continue
                # The agent used the name itself: in this call or an earlier one.
                used_at = [a for a, t in act_texts[: k + 1] if key in t]
                if not used_at:
                    continue
                first_use = used_at[0]
                introduced = key not in task_l and key not in _env_before(view, first_use, seen_env)
                in_answer = re.search(
                    r"(?<!\w)" + re.escape(key) + r"(?!\w)", answer_l
                ) is not None and not re.search(
                    re.escape(key)
                    + r".{0,80}"
                    + _MISSING.pattern
                    + "|"
                    + _MISSING.pattern
                    + r".{0,80}"
                    + re.escape(key),
                    answer_l,
                    re.I,
                )
                # An invented name that the agent dropped after being told it does not exist was a slip it
                # corrected; it counts when the agent keeps using the name or the answer still presents it.
                reused = introduced and any(key in t for _, t in act_texts[k + 1 :])
                if not (reused or in_answer):
                    continue
                reported.add(key)
                evidence = tx.quote_match(head, m, context=70)
                where = "introduced by the agent" if introduced else "named by the user"
                tail = (
                    " and the final answer still presents it" if in_answer else " and the agent kept using it"
                )
                out.append(
                    Finding(
                        kind="hallucinated_entity",
                        steps=sorted({first_use.index, act.index}),
                        evidence=evidence,
                        detail=(
                            f"'{tx.short(name, 50)}' ({where}) was sent to {act.tool or 'a tool'}, which answered that it "
                            f"does not exist{tail}"
                        ),
                        position=first_use.step.position,
                        agent=first_use.step.agent,
                        tool=act.tool or None,
                        error=tx.short(evidence, 100),
                    )
                )
    return out


def _env_before(view: TraceView, act: object, seen: str) -> str:
    """Lower-cased text of all results before `act` (the task is passed in `seen`)."""
    parts = [seen]
    for a in view.main_acts:
        if a is act:
            break
        if a.result is not None:
            parts.append(view.head(a.result).lower())
    return "\n".join(parts)
