"""One model call and what to send next when its reply cannot be used: repair turns, not identical retries.

Contract:
- `converse(client, request, read, policy)` sends `request` through the `ChatClient`, then `read(reply)` turns
  the reply into a value or raises `ParseError`. On a `ParseError` (or a `RequestRejected` 400) the `policy` is
  asked what to send next: a `NextRequest` (a new request and a short code saying why, recorded) or None (give
  up). Giving up raises `ParseError` with the last raw reply and a message naming the last error and, after
  repair turns, that the repair did not fix it. `BackendError`s other than a handled 400 propagate at once:
  waiting and retrying them is the runner's job (`trajfm.judges.runner`), never this loop's.
- Every call made is counted on the `Exchange` record (calls, tokens, codes), also when the loop gives up:
  the error carries `calls`, `tokens_in`, `tokens_out` so the runner can account for them.
- Policies are small and composable (`PolicyChain` asks each in turn; the first answer wins), so other request
  changes plug in beside the repair turn: a truncation repair for `finish_reason == "length"`, structured-output
  negotiation after a 400 (`json_schema` -> `json_object` -> plain), each returning its own `NextRequest`.
- `RepairTurn(max_turns)` answers a `ParseError` on a reply it has seen with the conversation so far plus the
  judge's own reply (as the assistant) and a user message naming what was wrong, so the model can fix it.
  `max_turns=0` switches repair turns off (the reply's error is then final for this attempt).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from trajfm.errors import BackendError, ParseError
from trajfm.judges.client import ChatClient, ChatReply, ChatRequest, RequestRejected

T = TypeVar("T")

REPAIR_CODE = "repair_turn"
# A cut-off reply answered with a changed request (trajfm.judges.cutoff); like a repair turn, a failure after it
# is final (the runner does not send the same conversation again).
TRUNCATION_CODE = "truncated"


@dataclass(slots=True)
class Turn:
    """One call of a conversation: what was sent, what came back (None for a rejected request), the error."""

    request: ChatRequest
    reply: ChatReply | None
    error: ParseError | BackendError | None


@dataclass(slots=True)
class NextRequest:
    """A policy's answer: send `request` next; `code` is recorded (e.g. "repair_turn")."""

    request: ChatRequest
    code: str


class AttemptPolicy(Protocol):
    """Decides the next request after a failed turn; None means "not mine / give up"."""

    def next_request(self, turns: Sequence[Turn]) -> NextRequest | None: ...


@dataclass(slots=True)
class Exchange:
    """What one conversation cost and what had to be changed to get a usable reply."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_estimated: bool = False
    codes: list[str] = field(default_factory=list)
    finish_reason: str | None = None

    def add(self, reply: ChatReply) -> None:
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out
        self.tokens_estimated = self.tokens_estimated or reply.tokens_estimated
        self.finish_reason = reply.finish_reason


def repair_message(error: str) -> str:
    """The user message of a repair turn: what was wrong, and what to send instead."""
    return (
        f"Your reply could not be used: {error}. Reply again with only the corrected JSON object, in the shape "
        'described in your instructions (every failure-mode id under "failure_modes", each with "detected", '
        '"steps", "evidence" and "rationale"), and nothing else.'
    )


@dataclass(slots=True)
class RepairTurn:
    """Answer an unusable reply with a repair turn (see the module docstring)."""

    max_turns: int = 1

    def next_request(self, turns: Sequence[Turn]) -> NextRequest | None:
        last = turns[-1]
        done = sum(1 for t in turns if t.request.reason == REPAIR_CODE)  # repair turns already sent
        if not isinstance(last.error, ParseError) or last.reply is None or done >= self.max_turns:
            return None
        messages = [
            *last.request.messages,
            {"role": "assistant", "content": last.reply.text},
            {"role": "user", "content": repair_message(str(last.error))},
        ]
        request = ChatRequest(
            messages, last.request.max_tokens, dict(last.request.params), reason=REPAIR_CODE
        )
        return NextRequest(request, REPAIR_CODE)


@dataclass(slots=True)
class PolicyChain:
    """Ask each policy in turn; the first that answers decides."""

    policies: list[AttemptPolicy]

    def next_request(self, turns: Sequence[Turn]) -> NextRequest | None:
        for policy in self.policies:
            answer = policy.next_request(turns)
            if answer is not None:
                return answer
        return None


def _fail(
    exc: ParseError | BackendError, exchange: Exchange, turns: Sequence[Turn]
) -> ParseError | BackendError:
    repaired = [t for t in turns if t.request.reason in (REPAIR_CODE, TRUNCATION_CODE)]
    if isinstance(exc, ParseError) and repaired:
        first = turns[0].error
        exc.args = (
            f"unusable reply after {len(repaired)} repair turn(s): the repair's reply: {exc} (the first reply: "
            f"{first})",
        )
        # The model was told what was wrong and could not fix it: sending the same conversation again from the
        # start would most likely buy the same replies. The runner does not retry it.
        exc.retryable = False
    exc.calls = exchange.calls  # type: ignore[union-attr]
    exc.tokens_in, exc.tokens_out = exchange.tokens_in, exchange.tokens_out  # type: ignore[union-attr]
    exc.codes = list(exchange.codes)  # type: ignore[union-attr]
    return exc


async def converse(
    client: ChatClient,
    request: ChatRequest,
    read: Callable[[ChatReply], T],
    policy: AttemptPolicy,
    *,
    max_turns: int = 8,
) -> tuple[T, Exchange]:
    """Send, read, and ask `policy` what to send next until a reply is usable (see the module docstring)."""
    exchange = Exchange()
    turns: list[Turn] = []
    current = request
    while True:
        reply: ChatReply | None = None
        try:
            exchange.calls += 1
            reply = await client.acomplete(current)
            exchange.add(reply)
            return read(reply), exchange
        except (ParseError, RequestRejected) as exc:
            turns.append(Turn(current, reply, exc))
            nxt = policy.next_request(turns) if len(turns) < max_turns else None
            if nxt is None:
                raise _fail(exc, exchange, turns) from None
            exchange.codes.append(nxt.code)
            current = nxt.request
        except BackendError as exc:
            raise _fail(exc, exchange, turns) from None
