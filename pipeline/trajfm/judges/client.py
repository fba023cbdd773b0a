"""The one OpenAI-compatible chat client: everything trajfm sends to a model goes through `ChatClient`.

Used by the LLM judge (`trajfm.judges.llm`), the cluster namer (`trajfm.clustering.naming`) and the dry-run
endpoint check, so they share configuration, key handling, error messages and the retry policy.

Why httpx + tenacity (and not the `openai` SDK): trajfm must see every attempt, not only the last one. The
runner shows retries and waits as they happen, records each attempt's error per trace, bounds the total time a
trace may take, and sends repair turns (a different request) instead of identical retries; the SDK retries
inside `create()` out of sight, validates the response envelope strictly (many gateways and local servers send
envelopes it refuses) and adds a large dependency tree. httpx is already a dependency (pooled async and sync
clients, separate connect/read timeouts); tenacity is small and gives composable stop and wait rules
(`stop_after_attempt | stop_after_delay` for a total deadline, a wait that honours Retry-After) for callers
that have no runner of their own (the namer). The judge's retries stay in `trajfm.judges.runner`, the one place
that retries judges; both use `retry_wait` for the delay, so a 429 is treated the same everywhere.

Contract:
- `resolve_endpoint(model, base_url, who=...)`: model from the option or TRAJFM_MODEL, URL from the option,
  TRAJFM_BASE_URL or OPENAI_BASE_URL; a missing one is a `JudgeError` saying which option or variable to set.
- The key comes from TRAJFM_API_KEY, else OPENAI_API_KEY. It is held in memory only and sent as a bearer
  token; `key_env` names the variable it came from (for the manifest), never the key. `scrub()` removes the key
  from any text an endpoint might echo back; every error message and stored reply passes through it.
- `acomplete(request)` / `complete(request)` make exactly one call and return a `ChatReply` (text, finish
  reason, tokens), or raise `BackendError` (429 and 5xx/408/timeouts/connection errors and cut response bodies
  retryable, with `retry_after` when the endpoint gave one; 401/403/404/other 4xx not retryable, with a message
  saying what to fix) or `ParseError` (a well-formed completion without text). A 400 asking for
  `max_completion_tokens` switches the parameter name for the rest of the run (raised as retryable once).
  A 400 (and a 413/422/500 naming the response_format sent or the context window) is raised as
  `RequestRejected` (a `BackendError` carrying the body and status) so a caller's request policy (e.g.
  structured-output negotiation) can change the next request.
- Bounded time and memory on every request (the judge's calls, the namer's, the endpoint check): `timeout_s` is
  a total deadline on connect + send + the whole reply (httpx's own timeouts bound each read, so an endpoint
  sending a byte every 2 s would otherwise never time out), and a reply over `max_reply_bytes` (default
  MAX_REPLY_BYTES, decoded) is refused: unread when its Content-Length says so, else as soon as that much has
  arrived. Both are `BackendError`s: the deadline retryable (like a timeout), the oversized reply not (the same
  request would get the same reply).
- `check()`: one cheap request (GET /models; a one-token completion when the endpoint offers no model list)
  that says whether the key is accepted and the model is served, as an `EndpointCheck`;
  `EndpointCheck.problem` is a one-line message saying what to fix, or None.
- `with_retries(fn, ...)`: call `fn()` with the shared backoff (bounded attempts, optional total deadline).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import os
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import tenacity

from trajfm.errors import BackendError, JudgeError, ParseError

KEY_ENVS = ("TRAJFM_API_KEY", "OPENAI_API_KEY")
URL_ENVS = ("TRAJFM_BASE_URL", "OPENAI_BASE_URL")
MODEL_ENV = "TRAJFM_MODEL"

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
MAX_REPLY_BYTES = (
    4_000_000  # a judge reply or a model list is a few KB of JSON; anything this large is not one
)

T = TypeVar("T")


class RequestRejected(BackendError):
    """The endpoint refused the request's shape: HTTP 400, or a 422/500 whose message names what it refused
    (`response_format`, the context window). `body` holds its message (key scrubbed), `status` the HTTP status."""

    def __init__(self, message: str, *, body: str, retryable: bool = False, status: int = 400) -> None:
        super().__init__(message, retryable=retryable)
        self.body = body
        self.status = status


class Unfinished(BackendError):
    """No whole reply: the endpoint could not be reached, or the total deadline ran out. `answered` says whether
    the status line and headers had arrived (the endpoint is there, but too slow to finish)."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(factory())`, also from code that already runs an event loop (a notebook): then in a worker
    thread with a loop of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def public_url(url: str) -> str:
    """The URL without any user:password part or query (never record or print credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def key_env() -> str | None:
    """The name of the variable the key is read from (TRAJFM_API_KEY first), or None when neither is set."""
    return next((e for e in KEY_ENVS if os.environ.get(e)), None)


def resolve_endpoint(
    model: str | None, base_url: str | None, *, who: str = "the llm judge", model_option: str = "--model"
) -> tuple[str, str]:
    """(model, base URL) from the options, else the environment; a `JudgeError` naming what to set."""
    model = model or os.environ.get(MODEL_ENV)
    if not model:
        raise JudgeError(f"{who} needs a model: pass {model_option} NAME or set {MODEL_ENV}")
    url = base_url or next((os.environ[e] for e in URL_ENVS if os.environ.get(e)), None)
    if not url:
        raise JudgeError(
            f"{who} needs an OpenAI-compatible endpoint: pass --base-url URL (e.g. https://api.openai.com/v1 "
            "or http://127.0.0.1:8000/v1) or set TRAJFM_BASE_URL"
        )
    return model, url.rstrip("/")


def retry_after_s(resp: httpx.Response) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None when absent or unreadable."""
    ms = resp.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass  # fall through to retry-after
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def retry_wait(
    attempt: int, retry_after: float | None, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S
) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the backend's retry-after when given (plus a
    little jitter so waiting clients do not return in lockstep), else exponential with equal jitter."""
    if retry_after is not None:
        return max(0.0, retry_after) * (1.0 + 0.1 * random.random())
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling / 2 + random.random() * ceiling / 2


@dataclass(slots=True)
class ChatRequest:
    """One chat-completions request: messages plus body parameters (temperature, seed, response_format, ...).
    `max_tokens` is sent under the parameter name the endpoint accepts. `reason` says why this request was sent
    (None for a first request, e.g. "repair_turn" for a repair); it is not sent."""

    messages: list[dict[str, str]]
    max_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass(slots=True)
class ChatReply:
    """The text of one completion and what it cost."""

    text: str
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    tokens_estimated: bool


@dataclass(slots=True)
class EndpointCheck:
    """What one cheap request found out about an endpoint (`ChatClient.check`)."""

    url: str
    reachable: bool
    key_accepted: bool | None  # None: the endpoint did not say (e.g. /models not offered)
    model_served: bool | None  # None: the endpoint lists no models
    models: list[str] = field(default_factory=list)
    problem: str | None = None  # one line saying what to fix; None when nothing is wrong


def _estimate_tokens(chars: int) -> int:
    return (chars + 3) // 4


def _names_what_it_refused(status: int, body: str, request: ChatRequest) -> bool:
    """A 413/422/500 that refuses the request's response_format or overflows the context window."""
    from trajfm.judges.cutoff import is_context_overflow
    from trajfm.judges.negotiate import is_refusal

    fmt = request.params.get("response_format")
    mode = fmt.get("type") if isinstance(fmt, dict) else None
    return bool(mode and is_refusal(status, body, str(mode))) or is_context_overflow(status, body)


class ChatClient:
    """An OpenAI-compatible chat endpoint (see the module docstring). One instance per judge or namer."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float = 120.0,
        pool: int = 8,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.max_reply_bytes = max_reply_bytes
        self.pool = max(1, pool)
        self.key_env = key_env()
        # The key lives only in this attribute and in the Authorization header of requests.
        self.__api_key = os.environ.get(self.key_env) if self.key_env else None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        # Newer OpenAI models refuse "max_tokens" and want "max_completion_tokens": switched on their 400.
        self.max_tokens_param = "max_tokens"

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={public_url(self.base_url)!r})"

    @property
    def public_url(self) -> str:
        return public_url(self.base_url)

    def manifest_info(self) -> dict[str, Any]:
        """Configuration for manifest.json: no key, no credentials in the URL."""
        return {
            "base_url": self.public_url,
            "model": self.model,
            "api_key_from": self.key_env,  # the variable's name only
            "max_tokens_param": self.max_tokens_param,
            "timeout_s": self.timeout_s,
            "max_reply_bytes": self.max_reply_bytes,
        }

    def scrub(self, text: str) -> str:
        """`text` with the API key replaced (an endpoint may echo it in an error or a reply)."""
        key = self.__api_key
        return text.replace(key, "[API key]") if key and len(key) >= 8 else text

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"
        return headers

    def _timeout(self, timeout_s: float | None = None) -> httpx.Timeout:
        total = self.timeout_s if timeout_s is None else timeout_s
        return httpx.Timeout(total, connect=min(10.0, total))

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages, **request.params}
        if request.max_tokens is not None:
            body[self.max_tokens_param] = request.max_tokens
        return body

    # --- calling -----------------------------------------------------------------------------------------------
    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = httpx.AsyncClient(
                timeout=self._timeout(),
                limits=httpx.Limits(max_connections=self.pool, max_keepalive_connections=self.pool),
                headers=self._headers(),
            )
            self._async_loop = loop
        return self._async

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        self._async, self._async_loop = None, None

    async def acomplete(self, request: ChatRequest) -> ChatReply:
        """One call (see the module docstring); never retries, never sleeps."""
        resp = await self._send(self._async_client(), "POST", "/chat/completions", self._body(request))
        return self._read(resp, request)

    def complete(self, request: ChatRequest) -> ChatReply:
        """`acomplete` for synchronous callers (one short-lived connection per call, same deadline and cap)."""
        resp = run_coroutine(lambda: self._send_once("POST", "/chat/completions", self._body(request)))
        return self._read(resp, request)

    async def _send_once(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float | None = None
    ) -> httpx.Response:
        """`_send` on a client of its own, closed afterwards (the sync calls and the endpoint check)."""
        async with httpx.AsyncClient(timeout=self._timeout(timeout_s), headers=self._headers()) as client:
            return await self._send(client, method, path, body, timeout_s)

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """One exchange within the total deadline (`timeout_s`, default the client's) and the reply-size cap;
        every failure to get a whole reply is a `BackendError` (see the module docstring)."""
        deadline = self.timeout_s if timeout_s is None else timeout_s
        where = public_url(f"{self.base_url}{path}")
        answered: list[bool] = []  # set once the status line and headers are in
        try:
            return await asyncio.wait_for(self._read_capped(client, method, path, body, answered), deadline)
        except TimeoutError as exc:
            what = "the whole reply did not arrive" if answered else "no reply"
            raise Unfinished(
                f"{where}: {what} within {deadline:g} s (total deadline)", answered=bool(answered)
            ) from exc
        except httpx.TimeoutException as exc:
            raise Unfinished(
                f"{where}: no reply within {deadline:g} s ({type(exc).__name__})", answered=bool(answered)
            ) from exc
        except httpx.TransportError as exc:
            raise Unfinished(
                self.scrub(f"cannot reach {where}: {type(exc).__name__}: {exc}"), answered=bool(answered)
            ) from exc

    async def _read_capped(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        answered: list[bool],
    ) -> httpx.Response:
        """Send, then read the reply into memory, refusing one over `max_reply_bytes`."""
        where = public_url(f"{self.base_url}{path}")
        cap = self.max_reply_bytes
        async with client.stream(method, f"{self.base_url}{path}", json=body) as resp:
            answered.append(True)
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise BackendError(
                    f"{where}: a reply of {int(declared):,} bytes refused unread (HTTP {resp.status_code}; over "
                    f"the {cap:,}-byte cap on replies)",
                    retryable=False,
                )
            content = bytearray()
            async for chunk in resp.aiter_bytes():
                content += chunk
                if len(content) > cap:
                    raise BackendError(
                        f"{where}: the reply (HTTP {resp.status_code}) grew past the {cap:,}-byte cap on replies; "
                        "refused",
                        retryable=False,
                    )
            # Decoded already: the copy must not claim an encoding or a length it no longer has.
            headers = [
                (k, v)
                for k, v in resp.headers.items()
                if k.lower() not in ("content-encoding", "content-length")
            ]
            return httpx.Response(
                resp.status_code, headers=headers, content=bytes(content), request=resp.request
            )

    def _read(self, resp: httpx.Response, request: ChatRequest) -> ChatReply:
        try:
            return self._read_unscrubbed(resp, request)
        except (BackendError, ParseError) as exc:
            # Never let an endpoint that echoes the key put it into a message or a stored raw reply.
            exc.args = (self.scrub(str(exc)),)
            if isinstance(exc, ParseError) and exc.raw:
                exc.raw = self.scrub(exc.raw)
            if isinstance(exc, RequestRejected):
                exc.body = self.scrub(exc.body)
            raise

    def _read_unscrubbed(self, resp: httpx.Response, request: ChatRequest) -> ChatReply:
        status = resp.status_code
        body = resp.text
        if status == 429:
            raise BackendError(
                f"rate limited by the endpoint (HTTP 429): {body[:200]}", retry_after=retry_after_s(resp)
            )
        if status in (413, 422, 500) and _names_what_it_refused(status, body, request):
            # A refusal of the request's shape dressed as another status (llama-cpp-python answers a
            # response_format it does not know with HTTP 500): the caller's policy changes the next request.
            raise RequestRejected(
                f"endpoint refused the request (HTTP {status}) for model {self.model!r}: {body[:300]}",
                body=body,
                status=status,
            )
        if status >= 500 or status == 408:
            raise BackendError(f"endpoint error HTTP {status}: {body[:200]}", retry_after=retry_after_s(resp))
        if status in (401, 403):
            raise BackendError(
                f"endpoint refused the credentials (HTTP {status}); set {' or '.join(KEY_ENVS)} to a valid key",
                retryable=False,
            )
        if status == 400 and self.max_tokens_param == "max_tokens" and "max_completion_tokens" in body:
            self.max_tokens_param = "max_completion_tokens"
            raise RequestRejected(
                f"endpoint wants max_completion_tokens instead of max_tokens (HTTP 400): {body[:200]}",
                body=body,
                retryable=True,
            )
        if status == 400:
            raise RequestRejected(
                f"endpoint rejected the request (HTTP 400) for model {self.model!r}: {body[:300]}", body=body
            )
        if status == 404:
            raise BackendError(
                f"endpoint answered HTTP 404 for model {self.model!r} at {self.public_url}: {body[:200]}; check "
                "--model (the names it serves: GET /models) and that --base-url ends in /v1",
                retryable=False,
            )
        if status >= 400:
            raise BackendError(
                f"endpoint rejected the request (HTTP {status}) for model {self.model!r}: {body[:300]}",
                retryable=False,
            )
        try:
            envelope = resp.json()
        except ValueError as exc:
            # A body cut off or garbled on the way is the backend's fault, not the model's: retry as is.
            raise BackendError(
                f"the endpoint's response body is not JSON ({len(body)} bytes: {body[:80]!r})"
            ) from exc
        try:
            choice = envelope["choices"][0]
            message = choice["message"]
            text = message.get("content")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(
                f"the endpoint's response is not an OpenAI chat completion (no choices[0].message): {body[:120]!r}"
            ) from exc
        finish = choice.get("finish_reason")
        if not isinstance(text, str) or not text.strip():
            refusal = message.get("refusal") if isinstance(message, dict) else None
            raise ParseError(
                f"the reply has no text content{f' (refusal: {refusal})' if refusal else ''}"
                f"{f' (finish_reason {finish})' if finish else ''}",
                raw=body,
            )
        usage = envelope.get("usage") or {}
        if isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
            return ChatReply(
                self.scrub(text), finish, usage["prompt_tokens"], usage["completion_tokens"], False
            )
        chars_in = sum(len(m.get("content") or "") for m in request.messages)
        return ChatReply(
            self.scrub(text), finish, _estimate_tokens(chars_in), _estimate_tokens(len(text)), True
        )

    def _probe(self, result: EndpointCheck, timeout_s: float) -> EndpointCheck:
        """A one-token completion, for endpoints without GET /models."""
        body = self._body(ChatRequest([{"role": "user", "content": "Reply with OK."}], max_tokens=1))
        try:
            resp = run_coroutine(lambda: self._send_once("POST", "/chat/completions", body, timeout_s))
        except BackendError:
            return result  # it answered GET a moment ago: the run's own retries deal with a slow endpoint
        result.problem = _probe_problem(self, resp.status_code, self.scrub(resp.text))
        if resp.status_code < 400:
            result.key_accepted, result.model_served = True, True
        elif resp.status_code in (401, 403):
            result.key_accepted = False
        return result

    # --- the dry-run check -----------------------------------------------------------------------------------
    def check(self, timeout_s: float = 10.0) -> EndpointCheck:
        """One GET /models: is the endpoint there, is the key accepted, is the model served? (See the module
        docstring.) Never raises for an endpoint's answer; the problem is in the result. `timeout_s` bounds the
        whole exchange, like every request's deadline."""
        where = self.public_url
        result = EndpointCheck(url=where, reachable=False, key_accepted=None, model_served=None)
        try:
            resp = run_coroutine(lambda: self._send_once("GET", "/models", None, timeout_s))
        except Unfinished as exc:
            if exc.answered:  # it is there, but did not finish its answer in time: the run's deadlines apply
                result.reachable = True
                result.problem = self.scrub(
                    f"the endpoint at {where} did not finish answering GET /models within {timeout_s:g} s; check "
                    "that it is not overloaded or stuck"
                )
                return result
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "no reply"
            result.problem = self.scrub(
                f"nothing answers at --base-url {where} ({cause}); start the endpoint or fix the URL "
                "(it should end in /v1, e.g. http://127.0.0.1:8000/v1)"
            )
            return result
        except BackendError as exc:  # the reply-size cap
            result.reachable = True
            result.problem = self.scrub(
                f"the endpoint at {where} sent an unusable answer to GET /models: {exc}"
            )
            return result
        result.reachable = True
        if resp.status_code in (401, 403):
            result.key_accepted = False
            set_var = self.key_env or " or ".join(KEY_ENVS)
            result.problem = (
                f"the endpoint at {where} refused the API key (HTTP {resp.status_code}); set {set_var} to a key "
                "it accepts" + ("" if self.key_env else " (no key is set)")
            )
            return result
        if resp.status_code >= 400:
            # Some servers offer no /models: ask for one token instead.
            return self._probe(result, timeout_s)
        result.key_accepted = True
        try:
            data = resp.json().get("data") or []
            result.models = sorted(str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id"))
        except (ValueError, AttributeError, TypeError):
            return result
        if result.models:
            result.model_served = self.model in result.models
            if not result.model_served:
                shown = ", ".join(result.models[:8]) + (" ..." if len(result.models) > 8 else "")
                result.problem = (
                    f"the endpoint at {where} does not serve model {self.model!r}; pass --model with one it serves "
                    f"({shown})"
                )
        return result


def _probe_problem(client: ChatClient, status: int, body: str) -> str | None:
    where = client.public_url
    if status in (401, 403):
        set_var = client.key_env or " or ".join(KEY_ENVS)
        return (
            f"the endpoint at {where} refused the API key (HTTP {status}); set {set_var} to a key it accepts"
        )
    if status == 404 or (status == 400 and "model" in body.lower()):
        return (
            f"the endpoint at {where} does not serve model {client.model!r} (HTTP {status}: {body[:120]}); pass "
            "--model with one it serves"
        )
    return None


def with_retries(
    fn: Callable[[], T],
    *,
    max_retries: int = 4,
    deadline_s: float | None = None,
    base: float = BACKOFF_BASE_S,
    cap: float = BACKOFF_CAP_S,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """`fn()` retried on retryable `BackendError`s and on `ParseError`s, at most `max_retries` times and, with
    `deadline_s`, never starting a wait that would end past the deadline; the last error is raised."""

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, ParseError) or (isinstance(exc, BackendError) and exc.retryable)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return retry_wait(state.attempt_number, getattr(exc, "retry_after", None), base=base, cap=cap)

    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(max_retries + 1)
    if deadline_s is not None:
        stop = stop | tenacity.stop_before_delay(deadline_s)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        if on_retry is not None and failure is not None and state.next_action is not None:
            on_retry(state.attempt_number, failure, state.next_action.sleep)

    retrying = tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(retryable),
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(fn)
