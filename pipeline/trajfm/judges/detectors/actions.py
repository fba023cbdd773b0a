"""Invalid or unparseable actions, and actions that contradict the reasoning just before them.

`invalid_action`: the environment answered that the action was malformed (cannot parse, unknown tool,
incorrectly formatted), or the action itself cannot be a call: a tool name with spaces, brackets or line breaks
in it, no tool name at all, or an input that opens like JSON and does not parse.

`action_reasoning_mismatch`: the reasoning announces one thing and the action does another: it says it will use
tool A and calls tool B without naming B, or it names entity X-6 and the action sends X-9 (same kind of
identifier, different number).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView

# The environment's ways of saying an action was malformed, searched as three groups of branches (`tx.AnyOf`, the
# same match as one alternation), each only when one of its keywords is in the text: the "tool ... not found"
# branch would otherwise be tried at every "tool" and "action" of a result.
_MALFORMED: Final = tx.AnyOf(
    tx.Pattern(
        r"incorrectly formatted|improperly formatted|wrongly formatted|invalid (?:action|format|json|tool call|"
        r"tool name|function call|arguments?)\b|(?:could not|cannot|can't|unable to|failed to) (?:parse|decode)|"
        r"unpars(?:e)?able|not a valid (?:tool|action|json|function)|unknown (?:tool|action|function)\b|"
        r"no such (?:tool|action|function)",
        needles=(
            "formatted",
            "invalid ",
            " parse",
            " decode",
            "unpars",
            "not a valid ",
            "unknown ",
            "no such ",
        ),
    ),
    tx.Pattern(
        r"(?:tool|action|function) [\w.\-]{1,60} (?:is |was )?(?:not found|does not exist|not available|not recogni[sz]ed)",
        needles=("not found", "does not exist", "not available", "not recogni"),
    ),
    tx.Pattern(
        r"malformed|invalid syntax|json ?decode ?error|expecting (?:value|property name)|action (?:input )?is missing|"
        r"missing (?:action|tool name)",
        needles=("malformed", "invalid syntax", "decode", "expecting ", "missing"),
    ),
    # every match holds one of these: looked for all at once, they settle most needles without a search of their own
    gate=("pars", "decode", "missing", "invalid", "unknown ", "no such ", "formatted", "not ", "malformed", "expecting "),
)
_TOOL_NAME_OK: Final = re.compile(r"^[A-Za-z_][\w.\-:/ ]{0,80}$")


@functools.lru_cache(maxsize=4096)
def bad_tool_name(tool: str) -> bool:
    """Cached: asked of every call by several detectors, and a trace has a handful of distinct tool names."""
    if not tool:
        return True
    if "\n" in tool or "[" in tool or "(" in tool or "{" in tool:
        return True
    # Real tool names have at most a couple of words ("Final Answer"); "call jsonreader with /tmp/x.json" is a
    # sentence written where the name belongs.
    return _TOOL_NAME_OK.match(tool) is None or tool.count(" ") > 2


def _bad_json_input(args: str) -> bool:
    s = args.strip()
    if not s or s[0] not in "{[" or len(s) > 20000:
        return False
    try:
        json.loads(s)
    except ValueError:
        return True
    return False


def detect_invalid_actions(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    for a in view.main_acts:
        content = a.step.content
        reason = ""
        evidence = ""
        if a.result is not None and a.result is not a.step:
            m = _MALFORMED.search(view.head(a.result)[:600], view.low(a.result)[:600])
            if m:
                evidence = tx.quote_match(a.result.content, m)
                reason = f'the environment rejected the action: "{tx.short(evidence, 90)}"'
        if not reason and (content.strip() or a.args):
            if bad_tool_name(a.tool) and not (a.tool == "" and not content.strip()):
                evidence = (
                    tx.quote(content, max_len=120) if content.strip() else tx.quote(a.args, max_len=120)
                )
                reason = (
                    f'the action names no callable tool ("{tx.short(a.tool or content, 60)}")'
                    if a.tool
                    else "the action could not be read as a tool call"
                )
            elif _bad_json_input(a.args):  # the call's own input (`base.build_view`: not a model span's prompt)
                src = a.step.tool_input if a.step.tool_input and a.args in a.step.tool_input else content
                evidence = tx.quote(src, max_len=120)
                reason = f"the input to {a.tool} opens as JSON but does not parse"
        if reason and evidence:
            out.append(
                Finding.at(
                    "invalid_action",
                    a.step,
                    evidence,
                    f"step {a.index}: {reason}",
                    tool=a.tool or None,
                    error=tx.short(evidence, 100),
                )
            )
    return out


# Identifiers like "Unit 6", "AB01234", "x_1", "Block-2B": a word and a number. Months, units and trace
# scaffolding words are not entities.
_IDENT: Final = re.compile(r"\b([A-Za-z]{2,12})[ _\-]?(\d{1,8}[A-Za-z]?)\b")
_NOT_ENTITY: Final = frozenset(
    [
        "step",
        "steps",
        "action",
        "input",
        "observation",
        "thought",
        "question",
        "answer",
        "top",
        "last",
        "first",
        "next",
        "past",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "hour",
        "hours",
        "minute",
        "minutes",
        "second",
        "seconds",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "q",
        "version",
        "v",
        "page",
        "line",
        "option",
        "item",
        "items",
        "sample",
        "samples",
        "iteration",
        "round",
        "attempt",
        "top",
        "version",
        "model",
        "gpt",
        "llama",
        "granite",
        "mistral",
        "qwen",
        "claude",
        "utc",
        "gmt",
        "h",
        "m",
        "s",
        "k",
        "no",
        "number",
    ]
)
_TOOL_LIKE: Final = re.compile(
    r"\b[A-Z][A-Za-z]*(?:Agent|Tool|API)\b|(?:(?<=use )|(?<=call ))[a-z]+(?:_[a-z]+)+\b|"
    r"\b[a-z]+(?:reader|writer|agent|tool|api|search|lookup|finder|parser)\b"
)
# `_TOOL_LIKE.findall`, branch by branch (`tx.Branches`: same result), each tried only when its words occur: the
# single alternation has no literal opening and is tried at every position of the reasoning.
_TOOL_SUFFIXES: Final = ("reader", "writer", "agent", "tool", "api", "search", "lookup", "finder", "parser")
_TOOL_LIKE_BRANCHES: Final = tx.Branches(
    (tx.compile_fast(r"\b[A-Z][A-Za-z]*(?:Agent|Tool|API)\b"), ("Agent", "Tool", "API")),
    (tx.AfterWords(("use ", "call "), r"[a-z]+(?:_[a-z]+)+\b"), ()),
    (tx.compile_fast(r"\b[a-z]+(?:" + "|".join(_TOOL_SUFFIXES) + r")\b"), _TOOL_SUFFIXES),
)
# "<Tool> can ...; I will call it", "<Tool> handles this": the tool is announced as the subject.
_SUBJECT_INTENT: Final = (
    r"\W+(?:can|will|handles|should|is able to)\b[^.\n]{0,80}\b(?:i will|i'll|let me|calling|call it|use it)"
)
_INTENT: Final = (
    r"(?:use|call|query|ask|invoke|run|using|consult|request|via|delegate to|hand (?:it )?to|send (?:it )?to)"
)
# Every match of `_INTENT` or `_SUBJECT_INTENT` holds one of these: reasoning without any of them announces no tool.
_INTENT_WORDS: Final = (
    "use", "call", "query", "ask", "invoke", "run", "using", "consult", "request", "via", "delegate to", "hand",
    "send", "i will", "i'll", "let me",
)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _intent_patterns(tool: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(reasoning that says it will use `tool`, reasoning with `tool` as the subject of an intent), compiled once per
    tool name rather than looked up in `re`'s cache by a freshly built pattern string at every call."""
    return (
        re.compile(_INTENT + r"\W+(?:the\W+)?" + re.escape(tool), re.I),
        re.compile(re.escape(tool) + _SUBJECT_INTENT, re.I),
    )


def _idents_of(text: str) -> dict[str, set[str]]:
    """{entity word: the numbers it is given} in `text` ("item 12" -> {"item": {"12"}}). Cached below, so callers
    only read it."""
    out: dict[str, set[str]] = {}
    for m in _IDENT.finditer(text[:1500]):
        word = m.group(1).lower()
        if word in _NOT_ENTITY:
            continue
        out.setdefault(word, set()).add(m.group(2).lower().lstrip("0") or "0")
    return out


# Tool arguments repeat across the traces of one agent (the same lookups).
_idents_cached: Final = functools.lru_cache(maxsize=4096)(_idents_of)


def _idents(text: str) -> dict[str, set[str]]:
    """`_idents_of`, cached for texts up to `tx.CACHED_CHARS` characters (`tx.cached_for_short_text` written out)."""
    return _idents_cached(text) if len(text) <= tx.CACHED_CHARS else _idents_of(text)


def detect_action_reasoning_mismatch(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    # The tools of this agent level (a sub-agent's own tools are not the top agent's to call).
    used = {a.tool for a in view.main_acts if a.tool and not a.is_finish and not bad_tool_name(a.tool)}
    for a in view.main_acts:
        th = a.thought
        if th is None or a.is_finish or not th.content or bad_tool_name(a.tool):
            continue  # a malformed call ("SomeAgent: which items...") is an invalid action, not a contradiction
        thought = th.content[:1500]
        finding: Finding | None = None
        # 1. The reasoning announces another tool than the one called.
        # (lower-casing an ASCII text keeps its length, and re.IGNORECASE then reads it as lower case does)
        if a.tool and a.tool not in thought and not (thought.isascii() and tx._none_in(_INTENT_WORDS, view.low(th))):
            # Tools the trace used, plus tool-like names the reasoning mentions (FooAgent, BarTool, BazAPI).
            tools = sorted(used | set(_TOOL_LIKE_BRANCHES.findall(thought)), key=len, reverse=True)
            for t in tools:
                if t == a.tool or t not in thought:
                    continue
                intent, subject = _intent_patterns(t)
                m = intent.search(thought) or subject.search(thought)
                if m:
                    finding = Finding(
                        kind="action_reasoning_mismatch",
                        steps=[a.index],
                        evidence=tx.quote_match(thought, m, context=40),
                        detail=f"step {a.index}: the reasoning says it will use {t} but the action calls {a.tool}",
                        position=th.position,
                        agent=a.step.agent,
                        tool=a.tool,
                    )
                    break
        # 2. The reasoning names one entity and the action sends another of the same kind.
        if finding is None and a.args:
            sent = _idents(a.args)
            said = _idents(thought) if sent else {}  # with no identifier sent there is nothing to contradict
            for word, nums in said.items():
                other = sent.get(word)
                if other and not (other & nums):
                    m = _IDENT.search(thought)
                    mm = re.search(
                        r"\b" + re.escape(word) + r"[ _\-]?0*(?:" + "|".join(map(re.escape, nums)) + r")\b",
                        thought,
                        re.I,
                    )
                    hit = mm or m
                    assert hit is not None
                    finding = Finding(
                        kind="action_reasoning_mismatch",
                        steps=[a.index],
                        evidence=tx.quote_match(thought, hit, context=40),
                        detail=(
                            f"step {a.index}: the reasoning is about {word} {', '.join(sorted(nums))} but the action "
                            f"sends {word} {', '.join(sorted(other))}"
                        ),
                        position=th.position,
                        agent=a.step.agent,
                        tool=a.tool or None,
                    )
                    break
        if finding is not None:
            out.append(finding)
    return out
