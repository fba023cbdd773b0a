"""Repeated actions and repeated reasoning (exact and near-duplicate).

An action repeats when the same tool is called with the same (normalised) input, or with inputs whose token
Jaccard similarity is at least `NEAR_DUPLICATE`, at a later step of the same agent level, and the first call did
not fail (a repeat after an error is a retry; `errors.py` judges those). Finish-style pseudo-tools never count,
nor does polling: a tool named for a changing state (the format vocabulary's `polling_words`: a status, a health
check) that answered differently the second time, nor a call made again after a state-changing call in between
that then answered differently (running the tests again after an edit checks the edit), nor the exact same call
answered differently after a call of another tool (searching a newly opened page for the same words).
Reasoning repeats only matters in logs without actions (multi-agent chat logs): there a message that repeats an
earlier message of the same speaker, identically or near-identically and long enough to carry content, counts.
Only an agent's own messages are reasoning: system prompts, tool or executor output and the user's turns are not.
Text that several speakers share again and again (a framework's role-play preamble, a log banner) is a template,
not anyone's reasoning: lines that recur in the messages of two or more speakers are dropped before comparing.
"""

from __future__ import annotations

import json
import math
from collections import Counter

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Act, Finding, TraceView, changes_state
from trajfm.judges.detectors.errors import result_failed
from trajfm.judges.detectors.model_turns import is_model_span
from trajfm.traces.model import Step

NEAR_DUPLICATE = 0.85
MIN_TOKENS = 3  # "list items" twice is too short to call near-duplicate by tokens alone
MIN_THOUGHT_CHARS = 40
TEMPLATE_MESSAGES = 3  # a line in this many messages of two or more speakers is a template
# Step roles whose text is not an agent's reasoning (a step without a role may be an agent's).
_NOT_REASONING = frozenset({"system", "tool", "user"})


def _same_call(a: Act, b: Act) -> tuple[bool, bool]:
    """(is a repeat, is exact). A call without arguments (page down, next, refresh) acts on state that may have
    changed, so it only repeats when it also got the same result back."""
    if a.tool.lower() != b.tool.lower():
        return False, False
    if len(a.tokens) <= 1 + len(a.tool.split()):
        same_result = a.result is not None and b.result is not None and a.result.content == b.result.content
        return (same_result and a.signature == b.signature), True
    if a.signature == b.signature:
        return True, True
    if (
        len(a.tokens) >= MIN_TOKENS
        and len(b.tokens) >= MIN_TOKENS
        and tx.jaccard(a.tokens, b.tokens) >= NEAR_DUPLICATE
    ):
        # Two identifiers that share most of their words still name two things ("/datasets/x" and
        # "/datasets/x/viewer" are two pages); only a URL's #fragment, which scrolls the same page, is set aside.
        ia, ib = _identifier(a.args), _identifier(b.args)
        if ia is not None and ib is not None and ia != ib:
            return False, False
        return True, False
    return False, False


def _identifier(args: str) -> str | None:
    """A call's input when it is one identifier: a single value with no whitespace in it (a URL, a file path, a
    key), bare or as the only field of a JSON object; without a URL's "#fragment". None for anything else."""
    text = args.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict) or len(value) != 1:
            return None
        only = next(iter(value.values()))
        if not isinstance(only, str):
            return None
        text = only.strip()
    if not text or any(c.isspace() for c in text):
        return None
    return text.split("#", 1)[0]


def _saw_a_change(view: TraceView, acts: list[Act], i: int, j: int) -> bool:
    """Did acts[j], the same call as acts[i], read a state that changed in between? It answered differently, and
    either its tool polls a state that changes by itself (a name holding one of the format vocabulary's
    `polling_words`: a job's status, a health check), or its input was exactly the same and a call of another tool
    came between (that call moved what it reads: searching a page for the same words after opening another page),
    or a state-changing call (`base.changes_state`: an edit, an update) came between. Waiting for a job, running
    the tests again after an edit and seeing them pass, or finding a word on a new page is not repeating a step;
    reading an untouched record again, with the same answer, is."""
    a, b = acts[i].result, acts[j].result
    if a is None or b is None or a.content == b.content:
        return False
    words = view.vocab.polling_words
    if words and not words.isdisjoint(tx.name_words(acts[i].tool)):
        return True
    if acts[i].signature == acts[j].signature and any(x.tool != acts[i].tool for x in acts[i + 1 : j]):
        return True  # the same input read something else: a call of another tool in between moved what it reads
    return any(changes_state(view, x) for x in acts[i + 1 : j])


def _calls_to_compare(view: TraceView) -> list[Act]:
    """The main acts, each call once. In a span tree `build_view` makes a model span's call and the tool span of
    its parent that ran it one act; a model span's call that no tool span of its parent ran (its result is itself)
    is skipped where tool spans elsewhere run that tool (they are the calls), else compared like any call (its
    `args` are the call's own arguments, `base.build_view`)."""
    run_by_tool_spans = {
        a.tool.lower() for a in view.main_acts if a.step.kind == "span" and not is_model_span(a.step)
    }
    out = []
    for a in view.main_acts:
        if a.is_finish or not (a.tool or a.args):
            continue
        if (
            a.step.kind == "span" and is_model_span(a.step) and a.result is a.step
            and a.tool.lower() in run_by_tool_spans
        ):  # fmt: skip
            continue
        out.append(a)
    return out


def detect_repeated_actions(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    reported: set[int] = set()  # positions already named as a repeat
    by_group: dict[tuple[str, int], list[Act]] = {}
    for a in _calls_to_compare(view):
        by_group.setdefault(a.group, []).append(a)
    for acts in by_group.values():
        for j in range(1, len(acts)):
            later = acts[j]
            if later.step.position in reported:
                continue
            for i in range(j):
                first = acts[i]
                if first.index == later.index:
                    continue
                same, exact = _same_call(first, later)
                if not same or _saw_a_change(view, acts, i, j):
                    continue
                # A repeat right after a failed call is a retry, judged by the error detector.
                if result_failed(view, first):
                    break
                repeats = [first] + [
                    x
                    for k, x in enumerate(acts[j:], start=j)
                    if _same_call(first, x)[0]
                    and x.index != first.index
                    and not _saw_a_change(view, acts, i, k)
                ]
                for x in repeats:
                    reported.add(x.step.position)
                steps = sorted({x.index for x in repeats})
                evidence = (
                    tx.quote(later.args)
                    if later.args and later.args in later.step.content + (later.step.tool_input or "")
                    else tx.quote(later.step.content)
                )
                out.append(
                    Finding(
                        kind="repeated_action",
                        steps=steps,
                        evidence=evidence,
                        detail=(
                            f"{later.tool or 'the same action'} was called {len(steps)} times with "
                            f"{'identical' if exact else 'near-identical'} input at steps "
                            f"{', '.join(map(str, steps))}"
                        ),
                        position=first.step.position,
                        agent=later.step.agent,
                        tool=later.tool or None,
                        confidence=0.9 if exact else 0.7,
                    )
                )
                break
    return out


NEAR_THOUGHT = 0.9  # token Jaccard at which two messages of one speaker count as the same reasoning restated
MIN_NEAR_TOKENS = 8
MAX_CANDIDATES = (
    32  # per prefix token and size band, the earliest and latest half of its messages are compared
)


def _similar_earlier(
    units: list[tuple[frozenset[str], int, str | None]], threshold: float
) -> list[int | None]:
    """For each unit (tokens, step index, agent), the step index of the earliest earlier unit of the same agent
    with token Jaccard >= `threshold` (None when there is none).

    A prefix filter finds the candidates instead of comparing all pairs: order every set's tokens rarest first
    (ties by the token); two sets with Jaccard >= t share a token among the first |x| - ceil(t*|x|) + 1 tokens
    of each, so an inverted index of those prefix tokens yields every pair that can match. The index is also
    keyed by a size band (Jaccard >= t needs t*|x| <= |y| <= |x|/t, so only the neighbouring bands can match).
    Per key only the earliest and the latest MAX_CANDIDATES/2 messages are compared, so the cost per message is
    bounded and the whole check linear in the trace, even when many messages share their rarest tokens (a
    restatement far from both ends of such a crowded list can then be missed)."""
    freq: Counter[str] = Counter()
    for toks, _, _ in units:
        freq.update(toks)
    band_width = math.log(1 / threshold)
    index: dict[tuple[str | None, str, int], list[int]] = {}
    found: list[int | None] = []
    half = MAX_CANDIDATES // 2
    for n, (toks, step, agent) in enumerate(units):
        size = len(toks)
        ordered = sorted(sorted(toks), key=freq.__getitem__)  # rarest first, ties by the token (stable sort)
        prefix = ordered[: size - math.ceil(threshold * size) + 1] if size else []
        band = int(math.log(size) / band_width) if size else 0
        match = None
        if size >= MIN_NEAR_TOKENS:
            seen: set[int] = set()
            for t in prefix:
                for b in (band - 1, band, band + 1):
                    post = index.get((agent, t, b))
                    if post:
                        seen.update(post[:half] if len(post) <= half else post[:half] + post[-half:])
            lo, hi = threshold * size, size / threshold
            for c in sorted(seen):
                other, other_step, _ = units[c]
                if lo <= len(other) <= hi and other_step != step and tx.jaccard(toks, other) >= threshold:
                    match = other_step
                    break
        found.append(match)
        for t in prefix:
            index.setdefault((agent, t, band), []).append(n)
    return found


def _own_text(units: list[Step]) -> list[str]:
    """Each message's text without its template lines: lines (stripped, non-empty) that recur in at least
    `TEMPLATE_MESSAGES` messages of at least two speakers, the wrapper a framework puts around every agent's turn.
    (A line one other speaker quotes once is a quote, not a template.) One pass to count, one to filter."""
    owner: dict[str, str | None] = {}  # line -> the first speaker who used it
    mixed: set[str] = set()  # lines used by two or more speakers
    count: Counter[str] = Counter()  # line -> messages holding it
    split = [st.content.splitlines() for st in units]
    for st, lines in zip(units, split, strict=True):
        for line in {raw.strip() for raw in lines}:
            if line:
                count[line] += 1
                if owner.setdefault(line, st.agent) != st.agent:
                    mixed.add(line)
    shared = {line for line in mixed if count[line] >= TEMPLATE_MESSAGES}
    if not shared:
        return [st.content for st in units]
    return ["\n".join([raw for raw in lines if raw.strip() not in shared]) for lines in split]


def detect_repeated_thoughts(view: TraceView) -> list[Finding]:
    """A message that restates an earlier one of the same speaker, exactly (after normalising) or with token
    Jaccard >= NEAR_THOUGHT. Linear in the trace: exact repeats by hashing, near ones by `_similar_earlier`."""
    if view.acts:
        # With actions, a restated thought followed by a different action is not a repeated step (and one
        # followed by the same action is already a repeated action): only action-less logs are judged here.
        return []
    units = [m for m in view.messages if m.kind == "message" and m.role not in _NOT_REASONING] or [
        t for t in view.thoughts if t.role not in _NOT_REASONING
    ]
    own = _own_text(units)
    seen: dict[tuple[str | None, str], int] = {}  # (agent, normalised thought) -> index of first occurrence
    candidates: list[tuple[frozenset[str], int, str | None]] = []
    repeats: list[tuple[Step, int | None, bool]] = []  # (step, first index when exact, exact?)
    for st, text in zip(units, own, strict=True):
        if len(text) < MIN_THOUGHT_CHARS:
            continue
        norm = tx.normalise(text, limit=1500)
        first = seen.get((st.agent, norm))
        if first is not None and first != st.index:
            repeats.append((st, first, True))
            continue
        seen.setdefault((st.agent, norm), st.index)
        candidates.append((frozenset(tx.tokens(norm)), st.index, st.agent))
        repeats.append((st, len(candidates) - 1, False))
    near = _similar_earlier(candidates, NEAR_THOUGHT)
    out: list[Finding] = []
    for st, ref, exact in repeats:
        start = ref if exact else near[ref] if ref is not None else None
        if start is None:
            continue
        out.append(
            Finding.at(
                "repeated_thought",
                st,
                tx.quote(st.content, max_len=140),
                f"the agent restated the same reasoning at steps {start} and {st.index}",
                steps=[start, st.index],
                confidence=0.8 if exact else 0.6,
            )
        )
        if len(out) >= 3:
            break
    return out
