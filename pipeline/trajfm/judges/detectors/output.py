"""The final answer as text: the requested output format, and scaffolding left in it.

`output_format_ignored`: the task asks for a form of answer (JSON, a table, CSV, a bulleted or numbered list, a
yes/no, a single number, a unit such as Fahrenheit, a date format, "in N words/sentences") and the final answer is
not in that form. Each
rule is a (request pattern, check) pair; only checks that can be decided from the text alone are included.

A task that rules out a report of failure as the answer ("'I cannot answer' will not be tolerated") is broken
by a final answer that reports failure.

`leftover_artefacts`: the final answer carries text meant for the agent loop, not the user: ReAct labels
("Thought 2:", "Action Input:", "Observation"), step headers from the model's own chain of thought ("## Step 1:"),
prompt scaffolding ("(END OF FEEDBACK)", "Question:", "Now it's your turn"), chat-template tokens
("<|eot_id|>", "[INST]"), a repeated "Final Answer:" label, or an unclosed code fence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView
from trajfm.judges.detectors.errors import answer_admits_failure


def _is_json(answer: str) -> bool:
    s = answer.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", s, re.S)
    if fence:
        s = fence.group(1).strip()
    if not s or s[0] not in "[{":
        m = re.search(r"[\[{]", s)
        if m is None:
            return False
        s = s[m.start() :]
    try:
        json.loads(s)
    except ValueError:
        # A JSON value followed by a short remark still honours the request.
        end = max(s.rfind("}"), s.rfind("]"))
        try:
            json.loads(s[: end + 1])
        except ValueError:
            return False
    return True


def _is_table(answer: str) -> bool:
    rows = [ln for ln in answer.splitlines() if ln.count("|") >= 2]
    return len(rows) >= 2 or bool(re.search(r"<table", answer, re.I))


def _is_csv(answer: str) -> bool:
    rows = [ln for ln in answer.strip().splitlines() if ln.count(",") >= 1]
    return len(rows) >= 2


def _is_list(answer: str) -> bool:
    items = re.findall(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+\S", answer)
    inline = re.findall(r"(?:^|\s)\d+[.)]\s+\S", answer)
    return len(items) >= 1 or len(inline) >= 2


def _is_yes_no(answer: str) -> bool:
    return re.match(r"\W*(?:yes|no)\b", answer.strip(), re.I) is not None


def _is_number(answer: str) -> bool:
    s = answer.strip().rstrip(".")
    return re.fullmatch(r"[^\d\n]{0,40}?-?\d[\d,]*(?:\.\d+)?\s*[%\w/]{0,12}", s) is not None and len(s) <= 60


def _is_iso_date(answer: str) -> bool:
    return re.search(r"\b\d{4}-\d{2}-\d{2}\b", answer) is not None


# Units a task can ask for, grouped by what they measure. An answer breaks the request when it gives values in
# another unit of the same group; an answer with no unit at all cannot be judged from the text.
_UNIT_GROUPS: Final[tuple[dict[str, re.Pattern[str]], ...]] = (
    {
        "fahrenheit": re.compile(r"°\s?f\b|\bdeg\s?f\b|\bfahrenheit\b", re.I),
        "celsius": re.compile(r"°\s?c\b|\bdeg\s?c\b|\bcelsius\b", re.I),
        "kelvin": re.compile(r"\bkelvin\b|\d\s?k\b", re.I),
    },
    {
        "psi": re.compile(r"\bpsi\b", re.I),
        "kpa": re.compile(r"\bkpa\b", re.I),
        "bar": re.compile(r"\d\s?bar\b", re.I),
    },
)


def _uses_unit(answer: str, m: re.Match[str]) -> bool:
    unit = m.group("unit").lower()
    group = next(g for g in _UNIT_GROUPS if unit in g)
    if group[unit].search(answer):
        return True
    return not any(p.search(answer) for u, p in group.items() if u != unit)


_WORDS: Final = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "a single": 1, "a": 1}

FormatRule = tuple[tx.Pattern, str, Callable[[str, re.Match[str]], bool]]

# (what the task says, the form it asks for, does the answer honour it). Case-insensitive `tx.Pattern`s searched in
# the lower-cased task, each only when one of its words occurs there (most tasks ask for no form at all).
FORMAT_RULES: Final[tuple[FormatRule, ...]] = (
    (
        tx.Pattern(
            r"\b(?:in|as|using|return(?:ed)?|output|formatted as|respond with|give me)\s+(?:a\s+|valid\s+)?json\b|"
            r"\bjson (?:format|object|array|output)\b",
            needles=("json",),
            folds=True,
        ),
        "JSON",
        lambda a, m: _is_json(a),
    ),
    (
        tx.Pattern(
            r"\b(?:in|as|use|using|with) (?:a |markdown )?table\b|\btabular (?:form|format)\b|\b(?:a|one) table (?:with|of|listing)\b",
            needles=("table", "tabular"),
            folds=True,
        ),
        "a table",
        lambda a, m: _is_table(a),
    ),
    (tx.Pattern(r"\b(?:in|as) (?:a )?csv\b|\bcsv format\b", needles=("csv",), folds=True), "CSV", lambda a, m: _is_csv(a)),
    (
        tx.Pattern(
            r"\b(?:as|in) a (?:bulleted|bullet(?:-point)?|numbered) list\b|\bbullet points\b|\b(?:as|in) bullets\b",
            needles=("list", "bullet"),
            folds=True,
        ),
        "a list",
        lambda a, m: _is_list(a),
    ),
    (
        tx.Pattern(
            r"\b(?:answer|respond|reply)(?: only)? with (?:a )?(?:simple )?(?:yes or no|yes/no)\b|"
            r"\b(?:yes or no|yes/no) (?:answer|only)\b",
            needles=("yes",),
            folds=True,
        ),
        "yes or no",
        lambda a, m: _is_yes_no(a),
    ),
    (
        tx.Pattern(
            r"\b(?:only|just) (?:the|a) (?:number|count|value|total)\b|\bas a single number\b|"
            r"\breturn (?:only )?the (?:number|count)\b",
            needles=("number", "count", "value", "total"),
            folds=True,
        ),
        "a single number",
        lambda a, m: _is_number(a),
    ),
    (
        tx.Pattern(
            r"\b(?:in|into|as) (?:degrees )?(?P<unit>fahrenheit|celsius|kelvin|psi|kpa|bar)\b",
            needles=("fahrenheit", "celsius", "kelvin", "psi", "kpa", "bar"),
            folds=True,
        ),
        "values in the requested unit",
        _uses_unit,
    ),
    (
        tx.Pattern(r"\b(?:yyyy-mm-dd|iso(?: 8601)? (?:date )?format)\b", needles=("yyyy-mm-dd", "iso"), folds=True),
        "ISO dates",
        lambda a, m: _is_iso_date(a),
    ),
    (
        tx.Pattern(
            r"\bin (?:no more than |at most |under )?(one|two|three|four|five|ten|a single|\d+) "
            r"(word|words|sentence|sentences)\b",
            needles=("word", "sentence"),
            folds=True,
        ),
        "a length limit",
        lambda a, m: _within_length(a, m),
    ),
)


def _within_length(answer: str, m: re.Match[str]) -> bool:
    raw = m.group(1).lower()
    n = int(raw) if raw.isdigit() else _WORDS.get(raw, 1)
    if m.group(2).lower().startswith("word"):
        return len(answer.split()) <= n + 2
    sentences = [s for s in re.split(r"[.!?]+(?:\s|$)", answer.strip()) if s.strip()]
    return len(sentences) <= n + 1


# The task rules out a report of failure as the answer ("Failure or 'I cannot answer' will not be tolerated").
_FAILURE_FORBIDDEN: Final = re.compile(
    r"\b(?:i cannot answer|none found|i don't know|unable to (?:answer|determine))\W{0,3}[^.\n]{0,40}?"
    r"\b(?:will not|won't|is not|are not) (?:be )?(?:tolerated|accepted|allowed)\b|"
    r"\b(?:do not|don't|never) (?:answer|reply|respond) (?:with )?\W?(?:i (?:cannot|can't|don't know)|unknown|none)\b",
    re.I,
)


def detect_output_format(view: TraceView) -> list[Finding]:
    answer = view.final_answer
    task = view.task
    if not answer.strip() or not task:
        return []
    rule: tuple[str, str] | None = None  # (the form asked for, the words of the task that ask for it)
    if answer_admits_failure(view):
        # a report that the work failed owes no particular form, unless the task ruled such a report out
        forbidden = _FAILURE_FORBIDDEN.search(task)
        if forbidden is None:
            return []
        rule = ("an answer, not a report of failure", forbidden.group(0))
    else:
        low = task.lower()
        for pattern, form, ok in FORMAT_RULES:
            m = pattern.search(task, low)
            if m is not None and not ok(answer, m):
                rule = (form, task[m.start() : m.end()])  # the task's own words (the match is lower-cased)
                break
    if rule is None:
        return []
    form, asked = rule
    last = view.trace.steps[-1] if view.trace.steps else None
    return [
        Finding(
            kind="output_format_ignored",
            steps=[last.index] if last is not None else [],
            evidence=tx.quote(answer, max_len=120),
            detail=f'the task asks for {form} ("{tx.short(asked, 40)}") but the final answer is not in that form',
            position=last.position if last is not None else 0,
            agent=view.main_acts[-1].step.agent if view.main_acts else None,
        )
    ]


# Searched in the lower-cased answer (`tx.Pattern`: case-insensitive without re.IGNORECASE's cost); a match's text is
# taken from the answer itself. One branch at a time (`tx.AnyOf`: the same matches as their alternation), each
# searched only when its own words occur: the alternation opens with no literal, so `re` tried it at every position.
_ARTEFACT: Final = tx.AnyOf(
    tx.Pattern(r"(?:^|\s)#{1,4}\s*step\s*\d+\s*:", re.M, needles=("step",), requires=("#",)),
    tx.Pattern(r"\bthought\s*\d*\s*:", re.M, needles=("thought",)),
    tx.Pattern(r"\baction\s+input\s*\d*\s*:", re.M, needles=("action",), requires=("input",)),
    tx.Pattern(r"\baction\s*\d+\s*:", re.M, needles=("action",)),
    tx.Pattern(r"\bobservation\s*\d*\s*:", re.M, needles=("observation",)),
    tx.Pattern(r"\(end of feedback\)", re.M, needles=("(end of feedback)",)),
    tx.Pattern(r"\bnow it'?s your turn\b", re.M, needles=("your turn",)),
    tx.Pattern(r"(?:^|\n)\s*question\s*:?\s*$", re.M, needles=("question",)),
    tx.Pattern(r"\bquestion\s*:\s", re.M, needles=("question",)),
    tx.Pattern(r"<\|[a-z_]+\|>", re.M, needles=("<|",)),
    tx.Pattern(r"\[/?inst\]", re.M, needles=("inst]",)),
    tx.Pattern(r"</?s>", re.M, needles=("<s>", "</s>")),
    tx.Pattern(r"<\|?im_(?:start|end)\|?>", re.M, needles=("im_",)),
    tx.Pattern(r"\bassistant\s*:\s*$", re.M, needles=("assistant",)),
)
# `re.finditer(pattern, answer, re.I)`, skipped on answers without the words (`folds`: exactly re.I's matches).
_FINAL_LABEL: Final = tx.Pattern(r"\bfinal answer(?: is)?\s*:", needles=("final answer",), folds=True)
_TRAILING_LABEL: Final = tx.Pattern(
    r"\b(?:question|thought|action|observation)\s*$", needles=("question", "thought", "action", "observation")
)


def detect_leftover_artefacts(view: TraceView) -> list[Finding]:
    answer = view.final_answer
    if not answer.strip():
        return []
    low = answer.lower()
    m = _ARTEFACT.search(answer, low)
    what = ""
    if m is None:
        m = _TRAILING_LABEL.search(answer.rstrip(), low.rstrip())
        if m is not None:
            what = f'a dangling "{answer[m.start() : m.end()].strip()}" label at the end'
    if m is None:
        finals = _FINAL_LABEL.finditer(answer, low)
        if len(finals) >= 2:
            m = finals[1]
            what = 'the "final answer" label repeated'
    if m is None and answer.count("```") % 2 == 1:
        m = re.search(r"```", answer)
        what = "an unclosed code fence"
    if m is None:
        return []
    if not what:
        what = f'agent-loop text ("{tx.short(answer[m.start() : m.end()].strip(), 30)}")'
    last = view.trace.steps[-1] if view.trace.steps else None
    return [
        Finding(
            kind="leftover_artefacts",
            steps=[last.index] if last is not None else [],
            evidence=tx.quote_match(answer, m, context=50),
            detail=f"the final answer contains {what}",
            position=last.position if last is not None else 0,
            agent=view.main_acts[-1].step.agent if view.main_acts else None,
        )
    ]
