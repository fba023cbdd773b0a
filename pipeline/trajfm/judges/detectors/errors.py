"""Tool and system errors, and what the agent did next.

An error is a result (observation, tool result, chat message from a tool or terminal) flagged `is_error` by the
loader or whose opening text reads as an error (an exception name, "error encountered", "execution failed", a
non-zero exit code, an HTTP 4xx/5xx in its first line, a JSON status of "error"; a log record's level, as in
"ERROR 2024-01-02 12:00 pump tripped", is the log's data, not an error of the call). Only the head of a result is scanned: errors
announce themselves at the start, and the body of a long result is data, where words like "failure" are
domain vocabulary (failure modes of a pump), not errors.

For each run of consecutive failed calls at one agent level the detector classifies the reaction:
- `error_retried_identically`: the next call repeats the failed call unchanged (same tool, same input);
- `error_unresolved`: the agent changed its input but the tool kept failing and never succeeded;
- `error_ignored`: the agent moved on (another tool, or finished) and neither fixed the call later nor said
  that something failed, in its final answer or in a message of its own before its next call.
A failed call followed by a changed call that succeeds, or an honest final answer, yields no finding; so does a
run the agent announced as reproducing a failure that then raised (`meant_to_fail`: the bug found). One failed
read followed at once by a successful read from elsewhere (`read_elsewhere`) is not ignored: the agent looked
for what it could not read in another place.
An error phrase counts only as the result's verdict: not inside code, a condition, a document, a tally row, one
record of a list or a list item (`_not_a_verdict`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Act, Finding, TraceView, changes_state, previous_speaker
from trajfm.traces.model import Step, default_role

ERROR_HEAD_CHARS: Final = 400

# A JSON result's non-empty "error" field (also asked alone of a record, `_error_in`).
_JSON_ERROR_FIELD: Final = tx.Pattern(r"\"error\"\s*:\s*\"[^\"]", needles=('"error"',))

# One alternative at a time (`tx.AnyOf`, same match as their alternation), each run only when its keyword is in
# the text: most results contain "error" or "fail" somewhere, but few contain the words of every branch.
_ERROR: Final = tx.AnyOf(
    tx.Pattern(
        # not a log record's level ("ERROR 2024-01-02 12:00:01 pump tripped"): a log the agent read is data
        # nor a file name ("error.log", "traceback.py" in a listing)
        r"^\W{0,3}(?:error|exception|traceback|fatal)\b(?![.\-/]\w)"
        r"(?![\s:|\]-]{0,3}(?:\d{4}-\d\d-\d\d|\d\d?:\d\d:\d\d|\d\d/\d\d/\d))",
        re.M,
        needles=("error", "exception", "traceback", "fatal"),
    ),
    tx.Pattern(
        r"\berror (?:encountered|occurred|occured|while|calling|executing|in tool|from tool)",
        needles=("error ",),
    ),
    tx.Pattern(
        r"\b(?:execution|request|call|tool call|tool execution|invocation) failed\b", needles=(" failed",)
    ),
    tx.Pattern(
        r"\bfailed (?:to (?:execute|call|run|load|connect|fetch|parse|process|invoke|reach|open|read)|with "
        r"(?:status|error|code))",
        needles=("failed ",),
    ),
    # (not "the exit code 1" of a discussion that refers to an exit code already seen)
    tx.Pattern(r"(?<!\bthe )\bexit ?code:? ?[1-9]", needles=("exit",)),
    tx.Pattern(r"\bexecution failed\b", needles=("execution failed",)),
    tx.Pattern(
        r"\"(?:status|state|result)\"\s*:\s*\"(?:error|failure|failed)\"",
        # (both sets must occur; the failing values are the needles: most JSON results hold a "status" field, few a
        # failing value, so fewer texts get past the needles)
        needles=('"error"', '"failure"', '"failed"'),
        requires=('"status"', '"state"', '"result"'),
    ),
    _JSON_ERROR_FIELD,
    tx.Pattern(
        r"\b(?:timed out|timeout error|connection (?:refused|reset|error))",
        needles=("timed out", "timeout error", "connection "),
    ),
    tx.Pattern(r"\b(?:is|are) not supported\b", needles=(" not supported",)),
    tx.Pattern(r"\bnot supported (?:for|by|in)\b", needles=("not supported ",)),
    # an HTTP error status in the result's first line, unless that line is an item of a list (search results
    # about "HTTP 404" pages are data)
    tx.Pattern(r"\A\s*(?!\d{1,3}[.)]\s|[-*\u2022]\s)[^\n]{0,120}?\bhttp ?[45]\d\d\b", needles=("http",)),
    # every needle above holds one of these (so does every match): looked for first, they settle the needles that
    # hold an absent one ("fail" stands for the four failed/failure needles, which most results hold none of)
    gate=("exit", "http", "error", "fatal", "fail", "exception", "traceback", "timed out", "connection ", "not supported"),
)
# Exception class names ("KeyError:", "ValueError:") are matched case-sensitively on the original text, and
# HTTP status codes separately: both are cheap literal-led searches run only when their keyword is present.
# Not where code names one: "except KeyError:" in a source listing or a diff, ":raises KeyError:" in a docstring.
_EXCEPTION_NAME: Final = re.compile(r"(?<!except )(?<!raises )\b[A-Z][A-Za-z0-9]*(?:Error|Exception):")
# (`tx.compile_fast`: searched as the literal "status" then a boundary test; a leading `\b` hides the literal)
_STATUS_CODE: Final = tx.compile_fast(r"\bstatus(?: code)?:? [45]\d\d\b")

# A sub-agent's own verdict that it did not do the job ("status": "failed", "Task Status: incomplete"). The
# generic status words are here; a framework's own ones come from its vocabulary file (`judges/formats/`).
_REVIEW_FAILED_WORDS: Final = ("not completed", "incomplete", "unsuccessful", "failed")


@functools.lru_cache(maxsize=16)
def review_pattern(extra: tuple[str, ...] = ()) -> tx.Pattern:
    """The review-status pattern for the generic failing statuses plus a format's own (`vocab.subagent_review_failed`)."""
    words = tuple(dict.fromkeys((*extra, *_REVIEW_FAILED_WORDS)))
    alternation = "|".join(re.escape(w) for w in words)
    return tx.Pattern(
        r"(?:task[ _]status|\"?status\"?)\s*[:=]\s*\"?(?P<status>" + alternation + r")\b",
        needles=("status",),
        requires=words,
    )


REVIEW_FAILED: Final = review_pattern()

# Words of a final answer that admit a limitation: an honest answer is not an ignored error. The alternation
# `\b(?:error|errors|fail(?:ed|ing|ure to|s to)?|...|unavailable)\b`, searched one branch at a time (`tx.AnyOf`: the
# same match; each branch opens with a literal, where the alternation was tried at every position), each only when
# its own words occur.
ADMITS_FAILURE: Final = tx.AnyOf(
    tx.Pattern(r"\berror\b", needles=("error",)),
    tx.Pattern(r"\berrors\b", needles=("error",)),
    tx.Pattern(r"\bfail(?:ed|ing|ure to|s to)?\b", needles=("fail",)),
    tx.Pattern(r"\bno results?\b", needles=("no result",)),
    tx.Pattern(r"\bunable\b", needles=("unable",)),
    tx.Pattern(r"\bcould not\b", needles=("could not",)),
    tx.Pattern(r"\bcouldn't\b", needles=("couldn't",)),
    tx.Pattern(r"\bcannot\b", needles=("cannot",)),
    tx.Pattern(r"\bcan't\b", needles=("can't",)),
    tx.Pattern(
        r"\bnot (?:be )?(?:available|possible|supported|retrieved|completed|found|able)\b", needles=("not ",)
    ),
    tx.Pattern(r"\bunfortunately\b", needles=("unfortunately",)),
    tx.Pattern(r"\bwas not able\b", needles=("was not able",)),
    tx.Pattern(r"\bwasn't able\b", needles=("wasn't able",)),
    tx.Pattern(r"\bdid not succeed\b", needles=("did not succeed",)),
    tx.Pattern(r"\bno data\b", needles=("no data",)),
    tx.Pattern(r"\bnot accessible\b", needles=("not accessible",)),
    tx.Pattern(r"\bunavailable\b", needles=("unavailable",)),
    # every match holds one of these (the single pattern's needles; most answers hold none)
    gate=(
        "error",
        "fail",
        "no result",
        "unable",
        "could",
        "can",
        "not ",
        "unfortunately",
        "wasn't able",
        "no data",
        "unavailable",
    ),
)


def answer_admits_failure(view: TraceView) -> bool:
    """Does the final answer admit a limitation (`ADMITS_FAILURE`)? Memoised per trace: five detectors ask."""
    key = ("admits", -1)
    v = view.memo.get(key)
    if v is None:
        v = view.memo[key] = ADMITS_FAILURE.search(view.final_answer) is not None
    return v  # type: ignore[return-value]


def error_in(view: TraceView, step: Step) -> re.Match[str] | None:
    """The error match in a result step's head, or None. `is_error` without a recognisable phrase matches the
    first line. Memoised per trace: several detectors ask about the same steps."""
    key = ("error", step.position)
    if key in view.memo:
        return view.memo[key]  # type: ignore[return-value]
    m = _error_in(view, step)
    view.memo[key] = m
    return m


# A JSON result that is a record of something (it has an "id" or "<thing>_id" key, other than an id of the request
# itself) reports that thing's state: {"id": 42, "state": "failed"} is a job that failed, not a call that did.
_RECORD_ID: Final = re.compile(r'"(?!(?:request|trace|correlation|error)_id")(?:id|\w+_id)"\s*:')


# Where an error phrase is content, not the result's verdict (asked only of a match, so only of the few results
# that hold one):
# - a document: a result that opens with a Markdown heading (a README's "## Troubleshooting" section);
_DOCUMENT: Final = re.compile(r"\A\s*#{1,6} \S")
# - a string literal in a line of code: `logger.error("Failed to connect ...")`, `raise X(f"Error occurred ...")`,
#   `msg = "timed out"` (the line before the phrase ends inside a quote opened after a call's "(" or an "=");
_IN_CODE_STRING: Final = re.compile(r"""(?:[\w)\]]\(|[^=!<>]=)\s*[rRbBfFuU]{0,2}["'][^"'\n]*\Z""")
#   (but a line that opens with an exception's repr, "ConnectionError('failed to connect')", is a reported error);
_EXCEPTION_REPR: Final = re.compile(r"\W{0,3}[A-Z]\w*(?:Error|Exception)\(")
# - a hypothetical: the sentence before the phrase makes it a condition ("If the request timed out, ...");
_HYPOTHETICAL: Final = re.compile(r"\b(?:if|when|whenever|unless|in case)\b[^.!?;\n]*\Z", re.I)
# - a row of a table or a tally: a label and a number and nothing else ("error        3" of value_counts()).
_TALLY_ROW: Final = re.compile(r"\W{0,3}[A-Za-z][\w ]{0,30}?(?:[ \t]{2,}|\t)\d[\d,.]*%?[ \t]*")
# A list item ("2. How to handle KeyError: ...", "- ValueError: ..." in search results) names an exception; an
# error report does not start with a list marker.
_LIST_ITEM: Final = re.compile(r"\s*(?:\d{1,3}[.)]|[-*\u2022])\s")
VERDICT_TRIES: Final = 4  # phrases set aside before a result is read as holding no error phrase


def _line_span(text: str, at: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return start, len(text) if end < 0 else end


def _not_a_verdict(head: str, m: re.Match[str]) -> bool:
    """Is this error phrase content of the result (code, a condition, a tally row) rather than its verdict?"""
    start, end = _line_span(head, m.start())
    before = head[start : m.start()]
    return bool(
        (_IN_CODE_STRING.search(before) and not _EXCEPTION_REPR.match(before))
        or _HYPOTHETICAL.search(before)
        or _TALLY_ROW.fullmatch(head, start, end)
    )


def _first_verdict(head: str, low: str, m: re.Match[str] | None) -> re.Match[str] | None:
    """The first error phrase of the head that is a verdict: a phrase that is content (`_not_a_verdict`) has its
    line blanked (same length, so positions hold) and the head is searched again, `VERDICT_TRIES` times at most."""
    for _ in range(VERDICT_TRIES):
        if m is None or not _not_a_verdict(head, m):
            return m
        start, end = _line_span(head, m.start())
        blank = " " * (end - start)
        head, low = head[:start] + blank + head[end:], low[:start] + blank + low[end:]
        m = _ERROR.search(head, low)
    return None


def _first_in_place(head: str, matches: Iterable[re.Match[str]]) -> re.Match[str] | None:
    """The first of these matches that stands as a verdict: not content (`_not_a_verdict`) nor in a list item."""
    for m in matches:
        start, _ = _line_span(head, m.start())
        if not _not_a_verdict(head, m) and not _LIST_ITEM.match(head, start):
            return m
    return None


def verdict_label_in(label: tx.Pattern, head: str, low: str) -> re.Match[str] | None:
    """The first match of an error label ("Error:", "Exception:") that is a verdict: not in a document, a string
    literal of code, a condition, a tally row or a list item."""
    return None if _DOCUMENT.match(head) else _first_in_place(head, label.finditer(head, low))


def _error_in(view: TraceView, step: Step) -> re.Match[str] | None:
    head = view.head(step)[:ERROR_HEAD_CHARS]
    low = view.low(step)[:ERROR_HEAD_CHARS]
    m = _ERROR.search(head, low)
    if m is not None and not step.is_error:
        if _DOCUMENT.match(head):
            return None
        doc = tx.json_container(step.content) if head.lstrip()[:1] in ("{", "[") else None
        if isinstance(doc, list) and sum(isinstance(x, dict) for x in doc) >= 2:
            # A list of records: a "status": "failed" or an "error" in one of them is that record's (a job of
            # several that failed), not the call's.
            return None
        if doc is not None and _RECORD_ID.search(low):
            # A record with its own id: its status and the words of its values are the record's ("state":
            # "failed" of a job, "title": "Login fails with timeout error" of a ticket); only an "error" field
            # beside it says the call went wrong ({"user_id": "u1", "error": "user not found"}).
            return _JSON_ERROR_FIELD.search(head, low)
        m = _first_verdict(head, low, m)
    if m is None and ("error:" in low or "exception:" in low) and not _DOCUMENT.match(head):
        # an exception class name with its colon ("KeyError: 'x'"), where it stands as the verdict
        m = _first_in_place(head, _EXCEPTION_NAME.finditer(head))
    # (every match has a space then a 4 or 5: most results with a "status" field hold neither)
    if m is None and "status" in low and len(low) == len(head) and (" 4" in low or " 5" in low):
        m = _STATUS_CODE.search(low)
    if m is None and step.is_error and head.strip():
        m = re.search(r"\S[^\n]*", head)
    return m


def review_failed_in(view: TraceView, step: Step) -> re.Match[str] | None:
    key = ("review", step.position)
    if key in view.memo:
        return view.memo[key]  # type: ignore[return-value]
    m = review_pattern(view.vocab.subagent_review_failed).search(view.head(step), view.low(step))
    view.memo[key] = m
    return m


def result_failed(view: TraceView, act: Act) -> bool:
    """Did this call fail (an error, or a sub-agent that reported not accomplishing its task)?"""
    r = act.result
    if r is None:
        return False
    return error_in(view, r) is not None or review_failed_in(view, r) is not None


SAME_REQUEST: Final = 0.5


def same_request(a: Act, b: Act) -> bool:
    """Is `b` another try at `a`'s request (same tool, input tokens mostly shared)? A tool that serves many kinds
    of request (a sub-agent) succeeding on another request does not repair a failed one."""
    if a.tool != b.tool:
        return False
    if not a.tokens or not b.tokens:
        return a.signature == b.signature
    return tx.jaccard(a.tokens, b.tokens) >= SAME_REQUEST


# An error that says the source refused the read or holds nothing under that name: an HTTP status of refusal or
# absence (401, 403, 404, 410, 451), "not found", "no results", "forbidden", "access denied", "unauthorized".
_SOURCE_REFUSED: Final = re.compile(
    r"\b(?:40[134]|410|451)\b|not ?found|\bno (?:such|results?\b)|\bforbidden\b|\baccess denied\b|\bunauthori[sz]ed\b",
    re.I,
)


def read_elsewhere(view: TraceView, failed: Act, b: Act, error_line: str) -> bool:
    """Is `b` the agent reading what `failed` could not read, from elsewhere? The error says the source refused
    the read or has nothing there (`_SOURCE_REFUSED`: an HTTP 403 or 404, "not found", "no results"), neither
    call changes anything (`base.changes_state`), and `b` is the same tool with other input (a page refused, so
    another page; nothing under one key or query, so another) or another tool given the same input
    (`SAME_REQUEST`: the archived copy of the refused page). The agent cannot fix a call the source refuses;
    going to another source is the repair. A failed change is not repaired by changing something else, and a
    call that raised (a bad argument, a crash) is not repaired by the next different call."""
    if b.is_finish or _SOURCE_REFUSED.search(error_line) is None:
        return False
    if changes_state(view, failed) or changes_state(view, b):
        return False
    if b.tool == failed.tool:
        return b.signature != failed.signature
    return bool(failed.tokens) and bool(b.tokens) and tx.jaccard(failed.tokens, b.tokens) >= SAME_REQUEST


def _call_error(view: TraceView, act: Act) -> re.Match[str] | None:
    """An error of this call that is not just a sub-agent's negative review (reviews.py judges those)."""
    r = act.result
    if r is None:
        return None
    # (error_in first: without an error there is nothing to set aside, and most results hold none)
    m = error_in(view, r)
    if m is None or (review_failed_in(view, r) is not None and not r.is_error):
        return None
    return m


TOLD_CHARS: Final = 1500  # how much of a message is read for a mention of the failure
TOLD_SHARED_STEMS: Final = 2  # stems a message must share with the error line to restate it


def told_of_failure(view: TraceView, failed: Act, until: Act | None, error_line: str) -> bool:
    """Did the agent tell someone (the user, another agent) about the failure in a message of its own between
    the failed call and `until` (the next call that changes something; None: the end)? A conversational agent
    that explains a refused request ("exchanges can only be processed for delivered orders") and goes on as
    agreed has not ignored the error, although its final answer may speak only of what it then did. The input
    of a think tool (`reasoning_tools` of the format's vocabulary) counts as the agent's own words too; the final
    answer does not. A mention is a message that admits a limitation (`ADMITS_FAILURE`) or restates the error
    (`TOLD_SHARED_STEMS` word stems in common with its line)."""
    if failed.result is None:
        return False
    start = failed.result.position
    end = until.step.position if until is not None else None
    said = tx.stems(error_line.lower())
    final = view.final_answer.strip()
    texts = [
        msg.content
        for msg in view.messages
        # (LLM spans and system text are not words addressed to anyone; the final answer is judged on its own:
        # it may name what the agent did instead, which is not telling of the failure)
        if msg.position > start and msg.kind == "message" and (end is None or msg.position < end)
        and (msg.role or default_role(msg.kind, msg.agent)) == "agent" and msg.content.strip() != final
    ]  # fmt: skip
    # the input of a think tool is the agent's own reasoning about what happened
    thinking = view.vocab.reasoning_tools
    if thinking:
        texts += [
            a.args
            for a in view.main_acts
            if a.step.position > start and (end is None or a.step.position < end)
            and not thinking.isdisjoint(tx.name_words(a.tool))
        ]  # fmt: skip
    for text in texts:
        text = text[:TOLD_CHARS]
        if ADMITS_FAILURE.search(text) or len(said & tx.stems(text.lower())) >= TOLD_SHARED_STEMS:
            return True
    return False


_WORD: Final = re.compile(r"[a-z]+")


def meant_to_fail(view: TraceView, act: Act) -> bool:
    """Did the agent say this call runs something to reproduce a failure (a word of the vocabulary's
    `reproduction_words` in the reasoning before it, its input or its tool: "let me reproduce the bug",
    `python reproduce.py`), and did the program it ran raise (a traceback or an exception name in the result)?
    Then the traceback is the bug found, not a failed call. A run that could not start ("can't open file",
    "command not found") still failed."""
    words = view.vocab.reproduction_words
    if not words or act.result is None:
        return False
    head = view.head(act.result)[:ERROR_HEAD_CHARS]
    if "Traceback" not in head and _EXCEPTION_NAME.search(head) is None:
        return False
    said = " ".join((act.thought.content[:1500] if act.thought is not None else "", act.args[:500], act.tool))
    return not words.isdisjoint(_WORD.findall(said.lower()))


def detect_error_recovery(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    acts = [a for a in view.main_acts if not a.is_finish]
    n = len(acts)
    i = 0
    answer_admits = answer_admits_failure(view)
    while i < n:
        first = acts[i]
        m = _call_error(view, first)
        if m is None or meant_to_fail(view, first):
            i += 1
            continue
        # Collect the run of consecutive failed calls starting here.
        chain = [first]
        j = i + 1
        while j < n and _call_error(view, acts[j]) is not None:
            chain.append(acts[j])
            j += 1
        after = acts[j] if j < n else None  # the first call that did not fail, if any
        assert first.result is not None
        err_quote = tx.line_of(first.result.content, m) if m.end() <= len(first.result.content) else ""
        if not err_quote:
            err_quote = tx.first_line(first.result.content)
        err_line = tx.short(err_quote, 140)
        tool = first.tool or "a tool"
        identical = [
            b
            for a, b in zip(chain, chain[1:], strict=False)
            if a.tool == b.tool and a.signature == b.signature
        ]
        # Another tool of the same operation (lookup_account_by_email, then lookup_account_by_phone) that
        # succeeds also repairs the failure: the agent reached the result another way.
        recovered = (
            after is not None
            and any(same_request(c, after) or tx.alternative_tool(c.tool, after.tool) for c in chain)
            and not result_failed(view, after)
        )
        later_success = any(
            any(same_request(c, a) or tx.alternative_tool(c.tool, a.tool) for c in chain)
            and not result_failed(view, a)
            for a in acts[j:]
        )
        steps = sorted({a.index for a in chain} | ({after.index} if after is not None else set()))
        if identical:
            out.append(
                Finding.at(
                    "error_retried_identically",
                    first.step,
                    err_quote,
                    f'{tool} failed with "{err_line}" and the agent repeated the identical call '
                    f"{len(identical)} time(s) without changing its input",
                    steps=sorted({a.index for a in chain}),
                    tool=first.tool or None,
                    error=err_line,
                )
            )
        elif len(chain) >= 2 and not later_success and not recovered:
            out.append(
                Finding.at(
                    "error_unresolved",
                    first.step,
                    err_quote,
                    f'{tool} failed {len(chain)} times in a row ("{err_line}"); changing the input never '
                    "produced a successful call",
                    steps=sorted({a.index for a in chain}),
                    tool=first.tool or None,
                    error=err_line,
                )
            )
        elif (
            not later_success
            and not answer_admits
            and not recovered
            # a read that failed once, then a successful read from elsewhere: not moving on as if it had worked
            and not (
                len(chain) == 1
                and after is not None
                and read_elsewhere(view, first, after, err_line)
                and not result_failed(view, after)
            )
            # the window for telling: up to the next call that changes something (looking things up first, then
            # telling the user, is not moving on as if the call had worked)
            and not told_of_failure(
                view, chain[-1], next((a for a in acts[j:] if changes_state(view, a)), None), err_line
            )
        ):
            nxt = f"moved on to {after.tool}" if after is not None and after.tool else "finished"
            out.append(
                Finding.at(
                    "error_ignored",
                    first.step,
                    err_quote,
                    f'{tool} failed with "{err_line}"; the agent {nxt} without fixing the call, and the final '
                    "answer does not mention the failure",
                    steps=steps,
                    tool=first.tool or None,
                    error=err_line,
                    confidence=0.7,
                )
            )
        i = j
    return out


def detect_message_errors(view: TraceView) -> list[Finding]:
    """Chat logs without actions: an error reported in a message, followed by the same code or request being
    sent again unchanged, is an identical retry; an error followed by the end of the log is left unresolved."""
    if view.acts:
        return []
    out: list[Finding] = []
    msgs = view.messages
    for k, msg in enumerate(msgs):
        m = error_in(view, msg)
        if m is None:
            continue
        # the message whose code or request produced the error (the code's author when a coordinator passed it on)
        before = previous_speaker(msgs, k)
        again = msgs[k + 1 :]
        if (
            before is not None
            and before.content.strip()
            and any(x.agent == before.agent and x.content.strip() == before.content.strip() for x in again)
        ):
            err_quote = tx.quote_match(msg.content, m)
            out.append(
                Finding.at(
                    "error_retried_identically",
                    before,
                    err_quote,
                    f'{before.agent or "the agent"} sent the same content again after "{tx.short(err_quote, 80)}"',
                    steps=[before.index, msg.index],
                    error=tx.short(err_quote, 100),
                )
            )
            break
    return out
