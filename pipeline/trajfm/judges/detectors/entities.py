"""Entities the agent named that the observations say do not exist.

A result that says an entity does not exist ("device X not found", "no record named Y exists", "X is not
registered", "X does not exist", "unknown account Z") yields the entity it is about: the name written just before
the phrase ("Unit 7 is not registered"), or just after it ("no item named Box 14"), or a quoted
name in the same sentence. A search that found nothing ("the search string 'x' was not found on this page")
names no entity. The finding is raised when
- the agent's final answer still presents the entity after being told it does not exist, or
- the agent itself introduced the entity (it is in the agent's action or reasoning but not in the task nor in any
  result before the agent first used it) and did not correct the slip with its next call (same tool, and that
  call succeeded).
An agent that tries an entity the *user* named and then reports it missing is behaving well and yields nothing.
"""

from __future__ import annotations

import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Act, Finding, TraceView
from trajfm.judges.detectors.errors import result_failed

# One branch per literal opening (`tx.AnyOf`: the same matches as the single alternation
# `\b(?:does not exist|doesn't exist|...)`), each searched only when its words occur in the result.
_ENTITY_KINDS: Final = r"(?:valid|known|recogni[sz]ed|registered|defined|listed)"
_MISSING: Final = tx.AnyOf(
    tx.Pattern(r"\bdoes not exist", needles=("does not exist",)),
    tx.Pattern(r"\bdoesn't exist", needles=("doesn't exist",)),
    tx.Pattern(r"\bdo not exist", needles=("do not exist",)),
    tx.Pattern(r"\bdon't exist", needles=("don't exist",)),
    tx.Pattern(r"\bnot found", needles=("not found",)),
    tx.Pattern(r"\bcould(?:not| not) be found", needles=("be found",)),
    tx.Pattern(r"\bcan(?:not| not) be found", needles=("be found",)),
    tx.Pattern(r"\bno such", needles=("no such",)),
    tx.Pattern(r"\bunknown \w+(?= [\"'A-Z0-9])", needles=("unknown ",)),
    tx.Pattern(r"\bis not (?:a )?" + _ENTITY_KINDS, needles=("is not ",)),
    tx.Pattern(r"\bare not (?:a )?" + _ENTITY_KINDS, needles=("are not ",)),
    tx.Pattern(r"\bnot registered", needles=("not registered",)),
    tx.Pattern(
        r"\bno \w+(?: or \w+)? (?:named|called|with (?:the )?(?:name|id))",
        needles=("named", "called", "with "),
        requires=("no ",),
    ),
    tx.Pattern(
        r"\bnot (?:present|listed|available) (?:in|at|on|for) (?:the )?\w+",
        needles=("not present", "not listed", "not available"),
    ),
    gate=("exist", "found", "no such", "unknown", "not ", "registered", "named", "called", "with the", "with id"),
)
_AFTER: Final = tx.Pattern(r"\b(?:named|called|no such \w+|unknown \w+|with (?:the )?(?:name|id))\s*$")
_QUOTED: Final = re.compile(r"[\"'‘“]([^\"'’”\n]{2,60})[\"'’”]")
# An identifier ("AB01234", "Unit 6", "x_1", "Block 3 East") or a capitalised name of up to four words.
_NAME: Final = re.compile(
    r"[A-Za-z][A-Za-z]*[ _\-]?\d+[A-Za-z0-9_\-]*(?: [A-Z][a-z]+)?|[A-Z][A-Za-z0-9]*(?:[ _\-][A-Z0-9][A-Za-z0-9]*){0,3}"
)
_NAME_AT_END: Final = re.compile(r"(?:" + _NAME.pattern + r")[\"'’”]?\s*$")
_COPULA_AT_END: Final = re.compile(r"\s+(?:is|are|was|were|has been|have been|does|do|could|can)\s*$", re.I)
_SEARCH_MISS: Final = re.compile(r"\b(?:search|query|queries|results?|on (?:this|the) page|matching)\b", re.I)
_NOT_NAMES: Final = frozenset(
    [
        "the",
        "error",
        "not",
        "found",
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
        "lookup",
        "failed",
        "warning",
        "result",
    ]
)


def _looks_like_entity(name: str) -> bool:
    """An identifier or a proper name, not a plain phrase."""
    return any(c.isdigit() for c in name) or any(c.isupper() for c in name)


def _clean(name: str) -> str:
    return name.strip().strip("\"'‘’“”").strip()


def names_missing(text: str, m: re.Match[str], nouns: tuple[str, ...] = ()) -> list[str]:
    """The entity names a "does not exist" match is about (see the module docstring)."""
    s = max(text.rfind(".", 0, m.start()), text.rfind("\n", 0, m.start()), text.rfind(":", 0, m.start()),
            m.start() - 200)  # fmt: skip
    e = text.find(".", m.end())
    e = min(e if e != -1 else len(text), m.end() + 120)
    window = text[s + 1 : e]
    if _SEARCH_MISS.search(window):
        return []
    names: list[str] = []
    before = text[s + 1 : m.start()]
    phrase = text[m.start() : m.end()]
    if _AFTER.search(phrase, phrase.lower()) is not None:
        after = _NAME.match(text, m.end() + (1 if text[m.end() : m.end() + 1] == " " else 0))
        if after:
            names.append(after.group(0))
    else:
        subject = _COPULA_AT_END.sub("", before).rstrip(" ,")
        tail = _NAME_AT_END.search(subject)
        if tail:
            names.append(tail.group(0))
    names.extend(_QUOTED.findall(window))
    out = []
    for n in map(_clean, names):
        if (
            n
            and n.lower() not in _NOT_NAMES
            and n.lower() not in nouns
            and len(n) >= 3
            and _looks_like_entity(n)
            and n not in out
        ):
            out.append(n)
    return out


def _mentions(text_l: str, key: str) -> bool:
    """Does `key` occur in `text_l` as a whole word (`(?<!\\w)key(?!\\w)`)? Found by substring search and a look at
    the characters either side (`re` would try that pattern, whose lookbehind hides the literal, at every position)."""
    n = len(key)
    end = len(text_l)
    i = text_l.find(key)
    while i != -1:
        e = i + n
        if (i == 0 or not tx._is_word(text_l[i - 1])) and (e >= end or not tx._is_word(text_l[e])):
            return True
        i = text_l.find(key, i + 1)
    return False


_SENTENCE_END: Final = re.compile(r"(?<=[.!?\n])\s+")


def _presents(answer_l: str, key: str) -> bool:
    """The answer names the entity, and not in a sentence saying it does not exist."""
    for sentence in _SENTENCE_END.split(answer_l):
        if _mentions(sentence, key) and _MISSING.search(sentence, sentence) is None:
            return True
    return False


def detect_hallucinated_entities(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    reported: set[str] = set()
    acts = [a for a in view.main_acts if not a.is_finish]
    # The lower-cased texts below are built only once a result names a missing entity (most traces have none).
    task_l = answer_l = ""
    act_texts: list[tuple[Act, str]] = []
    # The lower-cased results before each act, joined only when a name needs them (building every prefix up
    # front copied the results quadratically in the number of calls).
    env_parts: list[str] = []
    env_count: list[int] = []  # how many of env_parts come before each act
    for k, act in enumerate(acts):
        r = act.result
        if r is None:
            continue
        head = view.head(r)
        for m in _MISSING.finditer(head, view.low(r)):
            for name in names_missing(head, m, view.vocab.entity_nouns):
                key = name.lower()
                if key in reported:
                    continue
                if not act_texts:
                    task_l, answer_l = view.task.lower(), view.final_answer.lower()
                    act_texts = [
                        (a, (a.args + " " + (a.thought.content[:1500] if a.thought else "")).lower()) for a in acts
                    ]
                    for a in acts:
                        env_count.append(len(env_parts))
                        if a.result is not None and a.result is not a.step:
                            env_parts.append("\n" + view.low(a.result))
                used_at = [i for i, (_, t) in enumerate(act_texts[: k + 1]) if _mentions(t, key)]
                if not used_at:
                    continue
                first = used_at[0]
                introduced = not _mentions(task_l, key) and not _mentions(
                    "".join(env_parts[: env_count[first]]), key
                )
                in_answer = _presents(answer_l, key)
                nxt: Act | None = acts[k + 1] if k + 1 < len(acts) else None
                corrected = nxt is not None and nxt.tool == act.tool and not result_failed(view, nxt)
                if not (in_answer or (introduced and not corrected)):
                    continue
                reported.add(key)
                first_act = act_texts[first][0]
                where = "introduced by the agent" if introduced else "named by the user"
                tail = " and the final answer still presents it" if in_answer else ""
                out.append(
                    Finding.at(
                        "hallucinated_entity",
                        first_act.step,
                        tx.quote_match(head, m, context=70),
                        f"'{tx.short(name, 50)}' ({where}) was sent to {act.tool or 'a tool'}, which answered that it "
                        f"does not exist{tail}",
                        steps=sorted({first_act.index, act.index}),
                        tool=act.tool or None,
                        error=tx.short(tx.line_of(head, m), 120),
                    )
                )
    return out
