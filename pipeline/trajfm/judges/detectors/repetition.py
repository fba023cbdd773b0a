"""Repeated actions and repeated reasoning (exact and near-duplicate).

An action repeats when the same tool is called with the same (normalised) input, or with inputs whose token
Jaccard similarity is at least `NEAR_DUPLICATE`, at a later step of the same agent level, and the first call did
not fail (a repeat after an error is a retry; `errors.py` judges those). Finish-style pseudo-tools never count.
Reasoning repeats only matters in logs without actions (multi-agent chat logs): there a message that repeats an
earlier message of the same speaker, identically or near-identically and long enough to carry content, counts.
"""

from __future__ import annotations

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Act, Finding, TraceView
from trajfm.judges.detectors.errors import result_failed

NEAR_DUPLICATE = 0.85
MIN_TOKENS = 3  # "list items" twice is too short to call near-duplicate by tokens alone
MIN_THOUGHT_CHARS = 40


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
        return True, False
    return False, False


def detect_repeated_actions(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    reported: set[int] = set()  # positions already named as a repeat
    by_group: dict[tuple[str, int], list[Act]] = {}
    for a in view.main_acts:
        if a.is_finish or not (a.tool or a.args):
            continue
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
                if not same:
                    continue
                # A repeat right after a failed call is a retry, judged by the error detector.
                if result_failed(view, first):
                    break
                repeats = [first] + [
                    x for x in acts[j:] if _same_call(first, x)[0] and x.index != first.index
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


def detect_repeated_thoughts(view: TraceView) -> list[Finding]:
    out: list[Finding] = []
    seen: dict[tuple[str | None, str], int] = {}  # (agent, normalised thought) -> index of first occurrence
    token_sets: list[tuple[frozenset[str], int, str | None]] = []
    if view.acts:
        # With actions, a restated thought followed by a different action is not a repeated step (and one
        # followed by the same action is already a repeated action): only action-less logs are judged here.
        return []
    units = [m for m in view.messages if m.kind == "message"] or view.thoughts
    for st in units:
        if len(st.content) < MIN_THOUGHT_CHARS:
            continue
        norm = tx.normalise(st.content, limit=1500)
        key = (st.agent, norm)
        first = seen.get(key)
        exact = first is not None and first != st.index
        near_first = None
        if not exact:
            toks = frozenset(tx.tokens(norm))
            for other, idx, agent in token_sets:
                if (
                    agent == st.agent
                    and idx != st.index
                    and len(toks) >= 8
                    and tx.jaccard(toks, other) >= 0.9
                ):
                    near_first = idx
                    break
            token_sets.append((toks, st.index, st.agent))
            seen.setdefault(key, st.index)
        if exact or near_first is not None:
            start = first if exact else near_first
            assert start is not None
            out.append(
                Finding(
                    kind="repeated_thought",
                    steps=[start, st.index],
                    evidence=tx.quote(st.content, max_len=140),
                    detail=f"the agent restated the same reasoning at steps {start} and {st.index}",
                    position=st.position,
                    agent=st.agent,
                    confidence=0.8 if exact else 0.6,
                )
            )
            if len(out) >= 3:
                break
    return out
