"""Replies cut off at the token budget, and prompts too long for the server's context window.

Sending the same request again after `finish_reason: "length"` buys the same cut-off reply (a local server even
serves it from its prompt cache), and a prompt that overflows the context window fails the same way every time.
This module decides how the next request differs.

Contract:
- `compact_message(max_tokens)` is the user message that asks a model whose reply was cut off for the compact
  form of the same JSON object (short rationales, empty fields for modes not detected, nothing outside the
  object); it contains `COMPACT_MARKER`.
- `next_budget(max_tokens, ceiling)`: the larger token budget for the next request (double, at most
  `ceiling`); None when the budget cannot grow (`ceiling` reached or unknown).
- `compact_request(messages, cut_reply, max_tokens, ceiling, already_compact)` returns the next request's
  `(messages, max_tokens)` after a cut-off reply, or None when nothing is left to change (already compact and the
  budget cannot grow): the first cut-off gets the compact-form instruction (and a larger budget when allowed);
  a later one only a larger budget. The cut-off reply goes back as the assistant turn, shortened to its first
  `ECHO_CHARS` characters so a rambling reply does not fill the context window again.
- `is_context_overflow(status, body)`: an HTTP error whose message says the prompt does not fit the model's
  context window (OpenAI / vLLM / llama-cpp-python "maximum context length", llama.cpp's
  "exceed_context_size_error", "context window", ...).
- `context_limits(body)`: `(context_tokens, prompt_tokens)` read from such a message when it gives them.
- `smaller_budget(budget_chars, prompt_chars, body, reply_tokens, min_chars)`: the trace-rendering budget (in
  characters) for re-rendering the trace in smaller chunks: sized from the server's numbers when it gave them
  (the fixed instructions included), else half the current one; None when it cannot get smaller than
  `min_chars` (the trace cannot be made to fit: the failure is then final and says so).
- `CutOffRepair(ceiling)` plugs the cut-off handling into the judge's attempt loop (`trajfm.judges.attempts`),
  recorded as the repair code `truncated`; `UnlessCutOff(policy)` keeps the generic repair turn away from
  cut-off replies. A cut-off that no request change can fix ends the attempt as a ParseError that the runner does
  not retry (the same request would be cut off again).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from trajfm.errors import ParseError
from trajfm.judges.attempts import TRUNCATION_CODE, AttemptPolicy, NextRequest, Turn
from trajfm.judges.client import ChatRequest

COMPACT_MARKER = "compact form"
ECHO_CHARS = 1500
RATIONALE_WORDS = 12
_OVERFLOW_WORDS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "exceed_context_size",
    "exceeds the available context",
    "context size",
    "context length",
    "prompt is too long",
    "too many tokens",
)
_CTX = re.compile(
    r"(?:maximum context length is|context window of|n_ctx\"?\s*[:=]\s*|context size (?:of|is)?\s*)\s*(\d+)",
    re.I,
)
_PROMPT = re.compile(
    r"(?:\((\d+) in the messages|n_prompt_tokens\"?\s*[:=]\s*(\d+)|requested tokens \((\d+)\)|prompt has (\d+))",
    re.I,
)


def compact_message(max_tokens: int) -> str:
    return (
        f"Your reply was cut off at the token limit ({max_tokens} tokens) before the JSON object was complete. "
        f"Send the whole JSON object again in {COMPACT_MARKER}: for a mode not detected write exactly "
        '{"detected": false, "steps": [], "evidence": "", "rationale": ""}; for a detected mode keep the quote '
        f"short and the rationale under {RATIONALE_WORDS} words; keep the summary to one short sentence; no text "
        "before or after the object."
    )


def next_budget(max_tokens: int, ceiling: int | None) -> int | None:
    if ceiling is None or max_tokens >= ceiling:
        return None
    return min(ceiling, max_tokens * 2)


def compact_request(
    messages: list[dict[str, str]],
    cut_reply: str,
    max_tokens: int,
    ceiling: int | None,
    already_compact: bool,
) -> tuple[list[dict[str, str]], int] | None:
    """The next request after a cut-off reply (see the module docstring)."""
    bigger = next_budget(max_tokens, ceiling)
    if already_compact:
        return (messages, bigger) if bigger is not None else None
    echo = cut_reply[:ECHO_CHARS] + (" [... cut off]" if len(cut_reply) > ECHO_CHARS else "")
    follow = [
        *messages,
        {"role": "assistant", "content": echo},
        {"role": "user", "content": compact_message(max_tokens)},
    ]
    return follow, bigger if bigger is not None else max_tokens


def is_context_overflow(status: int, body: str) -> bool:
    if status not in (400, 413, 422, 500):
        return False
    text = (body or "").lower()
    return any(word in text for word in _OVERFLOW_WORDS)


def context_limits(body: str) -> tuple[int | None, int | None]:
    """(context tokens, prompt tokens) from an overflow message; None for what it does not say."""
    ctx = _CTX.search(body or "")
    prompt = _PROMPT.search(body or "")
    p = next((int(g) for g in prompt.groups() if g), None) if prompt else None
    return (int(ctx.group(1)) if ctx else None), p


def smaller_budget(
    budget_chars: int,
    prompt_chars: int,
    body: str,
    *,
    reply_tokens: int,
    min_chars: int,
    fixed_chars: int = 0,
) -> int | None:
    """A smaller rendering budget that should fit (see the module docstring)."""
    ctx, prompt_tokens = context_limits(body)
    new: int
    if ctx and prompt_tokens and prompt_chars > 0:
        chars_per_token = prompt_chars / prompt_tokens
        # Room for the reply: the server needs it inside the same window (llama.cpp clamps, others refuse).
        room_tokens = ctx - min(reply_tokens, ctx // 2)
        # The instructions and the fence do not shrink with the budget; 10% margin for the estimate.
        new = int(room_tokens * chars_per_token * 0.9) - fixed_chars
        if new >= budget_chars:  # the estimate says it fits, the server says it does not: trust the server
            new = budget_chars // 2
    else:
        new = budget_chars // 2
    return new if new >= min_chars else None


class CutOffRepair:
    """An attempt policy (`trajfm.judges.attempts`): after a reply cut off at the token limit
    (`finish_reason: "length"`), send `compact_request(...)` (code `TRUNCATION_CODE`); None when nothing is left
    to change. `cut_offs` counts the cut-off replies seen (for the manifest)."""

    def __init__(self, ceiling: int | None) -> None:
        self.ceiling = ceiling
        self.cut_offs = 0

    def next_request(self, turns: Sequence[Turn]) -> NextRequest | None:
        last = turns[-1]
        if not _cut_off(last):
            return None
        assert last.reply is not None  # _cut_off checked it
        self.cut_offs += 1
        compact = any(t.request.reason == TRUNCATION_CODE for t in turns)
        base = last.request.messages if compact else turns[0].request.messages
        budget = last.request.max_tokens or 0
        nxt = compact_request(base, last.reply.text, budget, self.ceiling, already_compact=compact)
        if nxt is None:
            return None
        messages, max_tokens = nxt
        request = ChatRequest(messages, max_tokens, dict(last.request.params), reason=TRUNCATION_CODE)
        return NextRequest(request, TRUNCATION_CODE)


class UnlessCutOff:
    """Wrap a policy so it does not answer a cut-off reply (a generic repair turn would echo the whole cut-off
    reply back and ask for the same thing; `CutOffRepair` decides those)."""

    def __init__(self, policy: AttemptPolicy) -> None:
        self.policy = policy

    def next_request(self, turns: Sequence[Turn]) -> NextRequest | None:
        return None if _cut_off(turns[-1]) else self.policy.next_request(turns)


def _cut_off(turn: Turn) -> bool:
    return (
        isinstance(turn.error, ParseError) and turn.reply is not None and turn.reply.finish_reason == "length"
    )
