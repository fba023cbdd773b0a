"""Final answers that claim success the observations contradict, and sub-agent failures accepted unchecked.

`overstated_completion`: the final answer claims the work was done ("successfully", "has been created",
"completed") while a call it depends on failed and was never made to succeed, or a result came back empty
(no data, zero records, not available) and nothing later filled the gap, and the answer admits none of it.

`unverified_subagent_failure`: a sub-agent (or tool) reported through its own review that it did not accomplish
its task (a failing status such as "failed" or "incomplete", or a format's own status words from its
vocabulary file), and the agent neither called it again nor
said in its final answer that part of the work failed: the negative review was accepted without a check.
"""

from __future__ import annotations

import json
import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Act, Finding, TraceView
from trajfm.judges.detectors.errors import (
    answer_admits_failure,
    error_in,
    result_failed,
    review_failed_in,
    same_request,
)
from trajfm.traces.model import Step

# The alternation `\b(?:successfully|success|...|as requested)\b`, searched one branch at a time (`tx.AnyOf`: the same
# match; each branch opens with a literal, where the alternation was tried at every position of the answer), each
# only when its own words occur.
_CLAIM: Final = tx.AnyOf(
    tx.Pattern(r"\bsuccessfully\b", needles=("success",)),
    tx.Pattern(r"\bsuccess\b", needles=("success",)),
    tx.Pattern(r"\baccomplished\b", needles=("accomplished",)),
    tx.Pattern(r"\bverified\b", needles=("verified",)),
    tx.Pattern(
        r"\b(?:has|have) (?:now )?(?:been )?(?:successfully )?(?:[a-z]+ed|done|sent|made|set up|written|run|forecast|"
        r"built)\b",
        needles=("has ", "have "),
    ),
    tx.Pattern(
        r"\b(?:task|request|analysis|job) (?:is|was|has been) (?:complete|completed|done|finished)\b",
        needles=("task", "request", "analysis", "job"),
    ),
    tx.Pattern(r"\bcompleted (?:successfully|the task)\b", needles=("completed",)),
    tx.Pattern(r"\beverything (?:was|is|has been) [a-z]+ed\b", needles=("everything",)),
    tx.Pattern(
        r"\ball (?:requested |the )?(?:steps|tasks|items|data)[^.\n]{0,40}(?:complete|completed|done|retrieved)\b",
        needles=("all ",),
    ),
    tx.Pattern(r"\bas requested\b", needles=("as requested",)),
    # every match holds one of these (the single pattern's needles)
    gate=(
        "success",
        "accomplished",
        "verified",
        "has ",
        "have ",
        "task",
        "request",
        "analysis",
        "job",
        "completed",
        "everything",
        "all ",
        "as requested",
    ),  # fmt: skip
)
# Results that came back empty. One alternation would run every branch at every position of a long JSON result;
# searched as separate alternatives (`tx.AnyOf`, same match), each skips text without its keyword.
_EMPTY: Final = tx.AnyOf(
    tx.Pattern(
        r"\b(?:0|zero|no) (?:observations|records|rows|results|entries|data points|items|matches)\b",
        needles=("0 ", "zero ", "no "),
    ),
    tx.Pattern(
        r"\bno (?:data|records|results|observations|entries|matches|rows) (?:was |were )?(?:found|available|returned|"
        r"exist|matched|match)",
        needles=("no ",),
    ),
    tx.Pattern(
        r"\b(?:data|dataset|file|results?|records?|values?)\b[^.\n]{0,60}?\b(?:is|are|was|were) "
        r"(?:not |un)available\b",
        needles=("available",),
    ),
    tx.Pattern(r"\bempty (?:result|response|list|file|dataset)\b", needles=("empty ",)),
    tx.Pattern(
        r"\b(?:result|response|list|dataset|result set) (?:is|was|are|were) empty\b", needles=(" empty",)
    ),
)
# A line that is only an empty value. It makes the result empty only when every other line is a label (ends in a
# colon) or blank: "Output:\nNone" came back empty, but "Found 3 files: a, b, c\nNone" printed data and then the
# return value of a print call, which code-running agents show after every snippet.
_EMPTY_LINE: Final = re.compile(r"^\s*(?:\[\s*\]|\{\s*\}|null|none)\s*$", re.M)


def _bare_empty_value(low: str) -> re.Match[str] | None:
    m = _EMPTY_LINE.search(low)
    if m is None:
        return None
    rest = low[: m.start()] + low[m.end() :]
    if all(line.rstrip().endswith(":") for line in rest.splitlines() if line.strip()):
        return m
    return None


def _empty_in(view: TraceView, step: Step) -> re.Match[str] | None:
    """The "came back empty" match in the first 1,500 characters of a result, or None. Memoised per trace: the
    repair check asks it of every later call for every failed one."""
    key = ("empty", step.position)
    if key in view.memo:
        return view.memo[key]  # type: ignore[return-value]
    head = view.head(step)
    low = view.low(step)[:1500]
    m = _EMPTY.search(head[:1500], low) or _bare_empty_value(low)
    if m is None and structurally_empty(step.content):
        m = re.search(r"\S[^\n]*", head)
    view.memo[key] = m
    return m


_NOT_FOUND_STATUS: Final = frozenset({"404", "not_found", "not found", "notfound", "no_results", "empty"})
STRUCTURE_CHARS: Final = 400  # longer results are not parsed: a payload of that size is not an empty one


def structurally_empty(content: str) -> bool:
    """A JSON result that carries nothing: null, an empty list, object or string; an object whose list or object
    fields are all empty (`{"items": [], "count": 0}`); or one whose status says not found. A count of zero
    beside other data (`{"name": "x", "total": 0}`) is data, not an empty result."""
    text = content.strip()
    if not text or len(text) > STRUCTURE_CHARS or text[0] not in "[{n":
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if value in (None, [], {}, ""):
        return True
    if not isinstance(value, dict):
        return False
    status = value.get("status", value.get("code"))
    if status is not None and str(status).strip().lower() in _NOT_FOUND_STATUS:
        return True
    containers = [v for v in value.values() if isinstance(v, list | dict)]
    scalars_with_data = [
        v
        for v in value.values()
        if not isinstance(v, list | dict | bool | int | float) and v not in (None, "")
    ]
    return bool(containers) and all(not v for v in containers) and not scalars_with_data


def _failed_unrepaired(view: TraceView) -> list[tuple[Act, str]]:
    """Main-level calls that failed or came back empty and whose tool never succeeded afterwards."""
    acts = [a for a in view.main_acts if not a.is_finish]
    out: list[tuple[Act, str]] = []
    for k, a in enumerate(acts):
        r = a.result
        if r is None:
            continue
        m = error_in(view, r) or review_failed_in(view, r) or _empty_in(view, r)
        if m is None:
            continue
        repaired = any(
            (same_request(a, b) or tx.alternative_tool(a.tool, b.tool))
            and b.result is not None
            and not result_failed(view, b)
            and not _empty_in(view, b.result)
            for b in acts[k + 1 :]
        )
        if not repaired:
            q = tx.quote_match(r.content, m) if m.end() <= len(r.content) else tx.first_line(r.content)
            out.append((a, q or tx.first_line(r.content)))
    return out


def result_empty(view: TraceView, act: Act) -> bool:
    """Did this call come back empty (no data, zero records, not available)?"""
    r = act.result
    return r is not None and r is not act.step and _empty_in(view, r) is not None


def _claim_sentence(answer: str, claim: re.Match[str]) -> str:
    """The sentence of the final answer that holds the claim (what the claim says was done)."""
    start = max(answer.rfind(c, 0, claim.start()) for c in ".!?\n") + 1
    ends = [e for e in (answer.find(c, claim.end()) for c in ".!?\n") if e >= 0]
    return answer[start : min(ends) if ends else len(answer)]


def _claim_describes_later_success(view: TraceView, failed: Act, said: set[str]) -> bool:
    """Does the claimed success name a call that succeeded after `failed` better than it names `failed`? The
    agent then took another way ("exchange" failed, "modify" went through) and the answer reports that one:
    the claim is about what did succeed, not an overstatement of the failed call. Words are matched by stem
    between the claim's sentence and the tool names, so no tool vocabulary is needed."""
    own = len(said & tx.name_stems(failed.tool))
    later = False
    for b in view.main_acts:
        if not later:
            later = b is failed
            continue
        if b.is_finish or b.result is None or result_failed(view, b) or _empty_in(view, b.result):
            continue
        if len(said & tx.name_stems(b.tool)) > own:
            return True
    return False


def detect_overstated_completion(view: TraceView) -> list[Finding]:
    answer = view.final_answer
    if not answer.strip():
        return []
    claim = _CLAIM.search(answer)
    if claim is None or answer_admits_failure(view):
        return []
    broken = _failed_unrepaired(view)
    if broken:
        said = tx.stems(_claim_sentence(answer, claim).lower())
        broken = [(a, q) for a, q in broken if not _claim_describes_later_success(view, a, said)]
    if not broken:
        return []
    act, problem = broken[0]
    last = view.last_index()
    steps = sorted({a.index for a, _ in broken} | ({last} if last is not None else set()))
    return [
        Finding.at(
            "overstated_completion",
            act.step,
            tx.quote_match(answer, claim, context=60),
            f'the final answer claims success ("{tx.short(claim.group(0), 40)}") although {act.tool or "a call"} '
            f'at step {act.index} returned "{tx.short(problem, 80)}" and was never made to succeed',
            steps=steps,
            tool=act.tool or None,
            error=tx.short(problem, 100),
        )
    ]


_ACKNOWLEDGE: Final = tx.Pattern(
    r"\b(?:did not (?:accomplish|complete|succeed)|failed|unsuccessful|incomplete|partial(?:ly)?|"
    r"verify|double[- ]check|re-?check|retry|try again|unable|could not|couldn't)\b",
)


def detect_unverified_subagent_failure(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    if answer_admits_failure(view):
        return []  # the final answer says something went wrong
    acts = [a for a in view.main_acts if not a.is_finish]
    last_call: dict[str, int] = {}  # tool -> position in `acts` of its last call
    for k, a in enumerate(acts):
        last_call[a.tool] = k
    for k, a in enumerate(acts):
        r = a.result
        if r is None or r is a.step or last_call[a.tool] > k:
            continue  # (called again later: the agent rechecked, whatever this review said)
        m = review_failed_in(view, r)
        if m is None:
            continue
        later = acts[k + 1 :]
        nxt = later[0] if later else None
        next_thought = nxt.thought.content[:1500] if nxt is not None and nxt.thought is not None else ""
        if next_thought and _ACKNOWLEDGE.search(next_thought) and nxt is not None and nxt.tool == a.tool:
            continue
        status = m.group("status")
        out.append(
            Finding(
                kind="unverified_subagent_failure",
                steps=sorted({a.index} | ({nxt.index} if nxt is not None else set())),
                evidence=tx.quote_match(r.content, m, context=50),
                detail=(
                    f'{a.tool or "a sub-agent"} reported its own task as "{status}" at step {a.index}; the agent '
                    "went on without calling it again or checking the result, and the final answer does not say so"
                ),
                position=r.position,
                agent=a.step.agent,
                tool=a.tool or None,
                error=f"review status {status}",
            )
        )
    return out
