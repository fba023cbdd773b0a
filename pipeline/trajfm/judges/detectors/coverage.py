"""What the task asked for against what the agent did, and what the answer used against when it was known.

`premature_termination` (ending before required steps): the task is split into its requests (clauses separated
by commas, "and", "then", colons); a request none of whose content words (compared by a five-letter prefix, so
"anomalies" meets "anomaly") appears in any of the agent's calls or in its final answer was never acted on.
Requests about the form of the answer (JSON, a table, a list), conditions ("if any are found") and context
("based on last week's data") are not requests for work. An answer that admits failure or asks the user a
question is not a premature ending.

`continued_after_answer` (looping after the answer): every fact of the final answer that came from a tool
(words and numbers of the answer that are not in the task but are in some result) was already known after call
k, yet the agent made two or more further calls, none of which failed or changed state (an edit or an update is
the task's work), whose results the answer does not use.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.ambiguity import ASKS_USER
from trajfm.judges.detectors.base import Act, Finding, TraceView, changes_state
from trajfm.judges.detectors.completion import result_empty
from trajfm.judges.detectors.errors import answer_admits_failure, result_failed

# (`\d\d*` is `\d+`, written so that every branch opens with a character class: `re` then skips to the positions
# that can start a match instead of trying each one)
_WORD: Final = re.compile(r"[a-z][a-z\-]{2,}|\d\d*(?:\.\d+)?")
_STOP: Final = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "these",
        "those",
        "what",
        "which",
        "when",
        "where",
        "who",
        "whom",
        "whose",
        "how",
        "why",
        "are",
        "was",
        "were",
        "has",
        "have",
        "had",
        "been",
        "being",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "after",
        "before",
        "during",
        "between",
        "each",
        "every",
        "any",
        "all",
        "some",
        "its",
        "their",
        "them",
        "they",
        "you",
        "your",
        "our",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "please",
        "give",
        "show",
        "tell",
        "get",
        "find",
        "check",
        "make",
        "use",
        "using",
        "used",
        "need",
        "needed",
        "needs",
        "want",
        "let",
        "also",
        "then",
        "than",
        "there",
        "here",
        "just",
        "only",
        "very",
        "more",
        "most",
        "less",
        "least",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "per",
        "via",
        "not",
        "yes",
        "no",
        "none",
        "whether",
        "does",
        "did",
        "done",
        "doing",
    ]
)
# Words that ask for a form of answer, not for work: handled by the output-format check.
_FORMAT: Final = re.compile(
    r"\b(?:json|table|tabular|csv|list|bullet|numbered|reply|respond|return|format|summar\w*|present\w*|answer\w*|"
    r"words?|sentences?)\b",
    re.I,
)
_QUESTION: Final = re.compile(
    r"\?|^(?:what|which|how|when|where|who|whom|whose|why|is|are|can|could|does|do|did|should|will)\b", re.I
)
# A statement, not a request for work: a clause that opens with the writer as its subject ("I know ...", "we
# believe ..."), with the reader's situation ("you have access ...", "you can use ..."), or with a subject of one
# or two words and then an auxiliary or modal verb ("success will be rewarded", "the data is in the folder").
# A request opens with its verb ("count the rows") or says what the reader must do ("you must count ...").
_STATEMENT: Final = re.compile(
    r"(?:i|we)\b|you (?:have|are|were|had|know|can|may|will)\b"
    r"|(?!you\b)[a-z]+(?: [a-z]+)? (?:is|are|was|were|will|would|has|have|had|can|could|may|might)\b",
    re.I,
)
_SPLIT: Final = re.compile(r"[,;:]|\band then\b|\bthen\b|\band\b|\bif\b|\.\s", re.I)
_CONTEXT: Final = re.compile(r"(?:based on|using|given|for|over|during|from|in|on|at|with)\b", re.I)
# Words that do not name a specific request: any data satisfies "data", any call "analyse".
_GENERIC: Final = frozenset(
    [
        "data",
        "value",
        "values",
        "result",
        "results",
        "week",
        "month",
        "year",
        "day",
        "days",
        "hours",
        "time",
        "period",
        "window",
        # verbs any call satisfies ("analyse its data", "look into it"): they name no specific request
        "analyse",
        "analyze",
        "analysis",
        "investigate",
        "examine",
        "look",
        "review",
        "assess",
        "evaluate",
        "study",
        "process",
        "handle",
        "perform",
        "information",
        "details",
    ]
)


MAX_TASK_CHARS: Final = 600


def _stem(word: str) -> str:
    if word.endswith("s") and len(word) > 3:
        word = word[:-1]
    return word[:5]


def _stems_of(text: str) -> frozenset[str]:
    return frozenset(
        _stem(w)
        for w in _WORD.findall(text.lower())
        if not w[0].isdigit() and w not in _STOP and w not in _GENERIC
    )


# Tasks, tool calls and their arguments repeat across the traces of one benchmark or production agent.
_stems_cached: Final = lru_cache(maxsize=4096)(_stems_of)


def _stems(text: str) -> frozenset[str]:
    """`_stems_of`, cached for texts up to `tx.CACHED_CHARS` characters (`tx.cached_for_short_text` written out)."""
    return _stems_cached(text) if len(text) <= tx.CACHED_CHARS else _stems_of(text)


@lru_cache(maxsize=1024)
def _requests(task: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The task's requests that ask for work: not the form of the answer, not a condition ("if any are found"),
    not context ("based on last week's data"), not a question (the answer answers it), not a statement
    (`_STATEMENT`: "I know you have access to the tools", "success will be rewarded")."""
    out = []
    parts = _SPLIT.split(task)
    seps = _SPLIT.findall(task)
    prev_format = False
    for k, clause in enumerate(parts):
        clause = clause.strip()
        after_if = k > 0 and seps[k - 1].strip().lower() == "if"
        # "Return the min, mean and max as JSON": the fragments after a format request belong to it.
        fragment = prev_format and len(clause.split()) <= 2
        is_format = bool(_FORMAT.search(clause)) or fragment
        prev_format = is_format
        if (
            not clause or after_if or is_format or _CONTEXT.match(clause) or _QUESTION.search(clause)
            or _STATEMENT.match(clause)
        ):  # fmt: skip
            continue
        stems = _stems(clause)
        if stems:
            out.append((clause, stems))
    return tuple(out)


_USER_ROLES: Final = frozenset({"user", "human", "customer", "client"})


def is_dialogue(view: TraceView) -> bool:
    """A run where the user speaks again after the agent started acting: the task is then a brief, the final
    answer closes only the last turn, and neither can be held against the calls."""
    if not view.acts:
        return False
    first = view.acts[0].step.position
    return any(m.position > first and (m.agent or "").lower() in _USER_ROLES for m in view.messages)


def detect_unmet_requests(view: TraceView) -> list[Finding]:
    if is_dialogue(view):
        return []
    acts = view.main_acts
    answer = view.final_answer
    if not any(not a.is_finish for a in acts):
        return []  # no calls to compare with: the agent worked some other way (e.g. code in its own replies)
    if not answer.strip() or answer_admits_failure(view) or ASKS_USER.search(answer[:3000]):
        return []  # an honest failure report or a clarifying question is not a premature ending
    # A request counts as met when a call acted on it or the answer addresses it. (Requiring a call or a result
    # alone was tried: task and calls use different words for the same operation, "predict" for "forecast",
    # "pull" for "download", and half the flags were wrong.)
    if len(view.task) > MAX_TASK_CHARS:
        return []  # a long prompt mixes instructions with context; clause matching says little there
    requests = _requests(view.task)
    if not requests:
        return []  # nothing asked for work: no need to collect what the calls and the answer covered
    done = set(_stems(answer))
    for a in acts:
        if not a.is_finish:
            done |= _stems(f"{a.tool} {a.args}")
    unmet = [clause for clause, stems in requests if not stems & done]
    if not unmet:
        return []
    last = acts[-1]
    return [
        Finding.at(
            "premature_termination",
            last.step,
            tx.quote(unmet[0], max_len=120),
            f"the agent answered after {len([a for a in acts if not a.is_finish])} call(s) without acting on "
            f"the request(s) {'; '.join(repr(tx.short(c, 60)) for c in unmet[:3])}",
        )
    ]


def _facts_of(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower())).difference(_STOP)  # faster than a filtering comprehension


_facts_cached: Final = lru_cache(maxsize=1024)(_facts_of)


def _facts(text: str) -> frozenset[str]:
    """`_facts_of`, cached for texts up to `tx.CACHED_CHARS` characters (`tx.cached_for_short_text` written out)."""
    return _facts_cached(text) if len(text) <= tx.CACHED_CHARS else _facts_of(text)


_RUN: Final = frozenset("abcdefghijklmnopqrstuvwxyz-")
MAX_SEARCHED_WORDS: Final = 12  # measured: one substring search costs about a twelfth of tokenizing a 2,000-character result
_NUMBER: Final = re.compile(r"\d\d*(?:\.\d+)?")  # `\d+(?:\.\d+)?` (`re` skips to the digits: see `_WORD`)


def _is_word_of(text: str, word: str) -> bool:
    """Is `word` (a letter word of `_WORD`: [a-z] then [a-z-]) one of `_WORD.findall(text)`? `findall` takes each run
    of [a-z-] from its first letter to its end (when that is three characters or more), so the word is one exactly
    where it occurs with no letter before it in its run and the run ending with it."""
    n = len(word)
    i = text.find(word)
    while i != -1:
        e = i + n
        if e >= len(text) or text[e] not in _RUN:
            k = i - 1
            while k >= 0 and text[k] == "-":
                k -= 1
            if k < 0 or text[k] not in _RUN:
                return True
        i = text.find(word, i + 1)
    return False


def _words_among(text: str, words: list[str], numbers: frozenset[str]) -> set[str] | frozenset[str]:
    """`(words | numbers) & set(_WORD.findall(text))` without tokenizing the whole text: each letter word by a
    substring search and a look at its neighbours, the numbers (whose reading depends on what came before them) by
    the number branch of `_WORD` alone, which letters never interrupt. With many words one tokenization is cheaper:
    the same set, by `findall`."""
    if len(words) > MAX_SEARCHED_WORDS:
        return numbers.union(words).intersection(_WORD.findall(text))
    found = {w for w in words if _is_word_of(text, w)}
    if numbers and not tx._none_in(tuple(numbers), text):
        found |= _numbers_among(text, numbers)
    return found


MAX_NUMBER_RUNS: Final = 8  # past this many runs of digits to read, one tokenization of the whole text is cheaper


def _numbers_among(text: str, numbers: frozenset[str]) -> set[str]:
    """`numbers & set(_NUMBER.findall(text))`, tokenizing only the runs of digits and dots that hold a number. A match of
    `_NUMBER` holds nothing but digits and dots, so `findall` reads each maximal run of them on its own, from the run's
    start: the tokens of the runs around the numbers' occurrences are exactly the tokens that can equal them."""
    found: set[str] = set()
    read: set[int] = set()  # the starts of the runs already tokenized
    n_text = len(text)
    for n in numbers:
        i = text.find(n)
        while i != -1:
            s = i
            while s > 0 and (text[s - 1] == "." or text[s - 1].isdecimal()):
                s -= 1
            if s not in read:
                if len(read) >= MAX_NUMBER_RUNS:
                    return set(numbers.intersection(_NUMBER.findall(text)))
                read.add(s)
                e = i + len(n)
                while e < n_text and (text[e] == "." or text[e].isdecimal()):
                    e += 1
                found.update(numbers.intersection(_NUMBER.findall(text, s, e)))
            i = text.find(n, i + 1)
    return found


def detect_calls_after_answer_known(view: TraceView) -> list[Finding]:
    if is_dialogue(view):
        return []
    acts: list[Act] = [a for a in view.main_acts if not a.is_finish and a.result is not None]
    answer = view.final_answer
    if len(acts) < 3 or not answer.strip():
        return []
    wanted = _facts(answer) - _facts(view.task)
    if len(wanted) < 2:
        return []  # fewer than two answer facts to look for: `used` below could not reach two
    if any(result_failed(view, a) or result_empty(view, a) for a in acts[-2:]):
        # Two or more extra calls (below) always include the last two, and none of them may have failed or come back
        # empty: decided before the results are read.
        return []
    # Only the wanted facts of each result matter below (`known` collects `r & used`, and used is within wanted);
    # wanted has no stop words, so intersecting the raw words with it equals intersecting `_facts`.
    words = sorted(w for w in wanted if "a" <= w[0] <= "z")  # sorted: the same work in every run
    numbers = wanted.difference(words)
    # (an ASCII head lowers to its memoised lower-cased form, `TraceView.low`, cut the same)
    results = [
        _words_among(
            view.low(a.result)[:2000]
            if view.head(a.result).isascii()
            else view.head(a.result)[:2000].lower(),
            words,
            numbers,
        )
        for a in acts
        if a.result is not None
    ]
    used = wanted & set().union(*results)
    if len(used) < 2:
        return []
    known: set[str] = set()
    ready = None
    for i, r in enumerate(results):
        known |= r & used
        if known == used:
            ready = i
            break
    if ready is None:
        return []
    extra = acts[ready + 1 :]
    if len(extra) < 2 or any(result_failed(view, a) or result_empty(view, a) for a in extra):
        return []
    if any(changes_state(view, a) for a in extra):
        return []  # the run went on to change the world (an edit, an update): that is the task's work, not a loop
    earlier = acts[: ready + 1]
    if all(any(a.tool == b.tool and tx.jaccard(a.tokens, b.tokens) >= 0.85 for b in earlier) for a in extra):
        return []  # every extra call repeats an earlier one: that is step repetition, reported as such
    first = extra[0]
    tools = sorted({a.tool for a in extra if a.tool})
    return [
        Finding.at(
            "continued_after_answer",
            first.step,
            tx.quote(first.args or first.step.content, max_len=120),
            f"everything the final answer reports was known after step {acts[ready].index}, yet the agent made "
            f"{len(extra)} more call(s) to {', '.join(tools) or 'tools'} that the answer does not use",
            steps=[a.index for a in extra],
            tool=tools[0] if tools else None,
        )
    ]
