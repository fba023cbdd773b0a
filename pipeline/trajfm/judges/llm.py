"""The LLM judge: any OpenAI-compatible chat-completions endpoint labels a trace against the taxonomy.

Contract:
- Configuration: `model` (option or env TRAJFM_MODEL), `base_url` (option, env TRAJFM_BASE_URL or
  OPENAI_BASE_URL; e.g. http://127.0.0.1:8000/v1), API key from env TRAJFM_API_KEY or OPENAI_API_KEY. The key is
  held in memory only and sent as a bearer token: it is never part of `cache_material`, `manifest_info`, a
  Diagnosis, an error message or a log line. A missing endpoint or model is a `JudgeError`.
- `adiagnose(trace, taxonomy)` renders the trace (`trajfm.judges.render`, budgeted, chunked when too long,
  optionally redacted), sends the prompt of `trajfm.judges.prompt` once per chunk and sample, parses each reply
  (`trajfm.judges.reply`), verifies every quote against the trace (`evidence_verified`), votes across samples
  (a mode is detected when more than half of the samples detect it; confidence = share of samples agreeing with
  the verdict) and merges chunks (a mode is detected when any chunk detects it).
- It never sleeps or retries: a failed call raises `BackendError` (with `retry_after` for 429, `retryable=False`
  for 401/403/404 and other client errors) and an unusable reply raises `ParseError(raw=...)`; the runner
  (`trajfm.judges.runner`) retries and records.
- Structured output: `structured_output="auto"` (default) sends a strict JSON schema as `response_format`; when
  the endpoint refuses it (HTTP 400 naming response_format), the judge switches to JSON-in-text with repair for
  the rest of the run, raises a retryable BackendError for that attempt, and records the switch in
  `manifest_info()`. "json_schema" never switches; "off" never sends a schema.
- `plan(traces, taxonomy)` is the `--dry-run`: calls and estimated tokens (characters / 4), without any call.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from trajfm.errors import BackendError, JudgeError, ParseError
from trajfm.judges.base import Diagnosis, ModeFinding, NovelMode
from trajfm.judges.combine import merge_chunks, vote_samples
from trajfm.judges.evidence import verify_evidence
from trajfm.judges.prompt import PROMPT_VERSION, build_messages, reply_json_schema
from trajfm.judges.render import (
    DEFAULT_BUDGET_CHARS,
    DEFAULT_MIN_STEP_CHARS,
    RENDER_VERSION,
    Rendering,
    estimate_tokens,
    render_trace,
)
from trajfm.judges.reply import JudgeReply, parse_reply
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

KEY_ENVS = ("TRAJFM_API_KEY", "OPENAI_API_KEY")
URL_ENVS = ("TRAJFM_BASE_URL", "OPENAI_BASE_URL")
MODEL_ENV = "TRAJFM_MODEL"
STRUCTURED_MODES = ("auto", "json_schema", "off")


@dataclass(slots=True)
class CallResult:
    text: str
    tokens_in: int
    tokens_out: int
    tokens_estimated: bool


def _retry_after(resp: httpx.Response) -> float | None:
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


def _public_url(url: str) -> str:
    """The URL without any user:password part (never record credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


MAX_REPLY_BYTES = 4_000_000  # a judge reply is a few KB of JSON; anything this large is not one


class LLMJudge:
    """Judge traces with an OpenAI-compatible chat model (see the module docstring)."""

    name = "llm"
    prompt_version = PROMPT_VERSION

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        temperature: float | None = None,
        max_tokens: int = 4000,
        samples: int = 1,
        seed: int | None = None,
        structured_output: str = "auto",
        redact: bool = False,
        budget_chars: int = DEFAULT_BUDGET_CHARS,
        min_step_chars: int = DEFAULT_MIN_STEP_CHARS,
        timeout_s: float = 120.0,
        concurrency: int = 8,
    ) -> None:
        model = model or os.environ.get(MODEL_ENV)
        if not model:
            raise JudgeError(f"the llm judge needs a model: pass --model NAME or set {MODEL_ENV}")
        url = base_url or next((os.environ[e] for e in URL_ENVS if os.environ.get(e)), None)
        if not url:
            raise JudgeError(
                "the llm judge needs an OpenAI-compatible endpoint: pass --base-url URL (e.g. "
                "https://api.openai.com/v1 or http://127.0.0.1:8000/v1) or set TRAJFM_BASE_URL"
            )
        if structured_output not in STRUCTURED_MODES:
            raise JudgeError(
                f"structured_output must be one of {', '.join(STRUCTURED_MODES)}, not {structured_output!r}"
            )
        if samples < 1:
            raise JudgeError(f"--samples must be at least 1, got {samples}")
        self.model: str | None = model
        self.base_url = url.rstrip("/")
        self.samples = samples
        # One sample: deterministic decoding. Several: they must differ to be worth voting over.
        self.temperature = temperature if temperature is not None else (0.0 if samples == 1 else 0.7)
        self.max_tokens = max_tokens
        self.seed = seed
        self.structured_output = structured_output
        self._use_schema = structured_output in ("auto", "json_schema")
        self._schema_refused = False
        self.redact = redact
        self.budget_chars = budget_chars
        self.min_step_chars = min_step_chars
        self.timeout_s = timeout_s
        self._pool = max(1, concurrency) * samples
        self._key_env = next((e for e in KEY_ENVS if os.environ.get(e)), None)
        # The key lives only in this attribute and in the Authorization header of requests.
        self.__api_key = os.environ.get(self._key_env) if self._key_env else None
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        # Traces whose rendering had to be shortened or split, by trace id (for the manifest: never cut silently).
        self._shortened: dict[str, dict[str, Any]] = {}
        # Newer OpenAI models refuse "max_tokens" and want "max_completion_tokens": switched on their 400.
        self._max_tokens_param = "max_tokens"

    def __repr__(self) -> str:
        return (
            f"LLMJudge(model={self.model!r}, base_url={_public_url(self.base_url)!r}, samples={self.samples})"
        )

    # --- what changes the output (cache keys) and what the manifest records -----------------------------------
    def cache_material(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt_version": PROMPT_VERSION,
            "render_version": RENDER_VERSION,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "samples": self.samples,
            "seed": self.seed,
            "structured_output": self.structured_output,
            "redact": self.redact,
            "budget_chars": self.budget_chars,
            "min_step_chars": self.min_step_chars,
        }

    def cache_input(self, trace: Trace, taxonomy: Taxonomy) -> dict[str, Any]:
        """What the model sees for this trace (every message of every chunk), plus what evidence and step checks
        read (the trace's full text and its step numbers)."""
        rendering = self._render_judged(trace)
        return {
            "messages": [build_messages(c, taxonomy) for c in rendering.chunks],
            "trace_text_sha256": hashlib.sha256(trace.text().encode("utf-8")).hexdigest(),
            "steps": sorted(trace.step_indices()),
        }

    def manifest_info(self) -> dict[str, Any]:
        """Configuration for manifest.json: no key, no credentials in the URL."""
        return {
            "judge": self.name,
            "model": self.model,
            "base_url": _public_url(self.base_url),
            "api_key_from": self._key_env,  # the variable's name only
            "prompt_version": PROMPT_VERSION,
            "render_version": RENDER_VERSION,
            "parameters": {
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "samples": self.samples,
                "seed": self.seed,
                "timeout_s": self.timeout_s,
            },
            "rendering": {
                "budget_chars": self.budget_chars,
                "min_step_chars": self.min_step_chars,
                "redact": self.redact,
            },
            "rendering_outcome": self.rendering_outcome(),
            "structured_output": {
                "requested": self.structured_output,
                "used": "json_schema" if self._use_schema else "json_in_text_with_repair",
                "refused_by_endpoint": self._schema_refused,
            },
        }

    # --- rendering and the dry run ----------------------------------------------------------------------------
    def render(self, trace: Trace) -> Rendering:
        return render_trace(
            trace,
            budget_chars=self.budget_chars,
            min_step_chars=self.min_step_chars,
            redact_secrets=self.redact,
        )

    def _render_judged(self, trace: Trace) -> Rendering:
        """Render a trace that is being judged (or looked up in the cache) and remember any shortening."""
        rendering = self.render(trace)
        if rendering.truncated or rendering.chunked or rendering.redactions:
            self._shortened[trace.trace_id] = rendering.info()
        return rendering

    def rendering_outcome(self) -> dict[str, Any]:
        """Which traces judged by this judge so far were shortened (middles of long steps elided, marked in the
        prompt) or split into chunks, and how many secrets were redacted: the manifest records it."""
        infos = self._shortened
        redactions: Counter[str] = Counter()
        for info in infos.values():
            redactions.update(info["redactions"])
        return {
            "truncated_traces": sorted(t for t, i in infos.items() if i["elided_steps"]),
            "elided_chars": sum(i["elided_chars"] for i in infos.values()),
            "chunked_traces": sorted(t for t, i in infos.items() if i["chunks"] > 1),
            "redactions": dict(redactions),
        }

    def plan(
        self, traces: Sequence[Trace], taxonomy: Taxonomy, *, skip: set[str] | None = None
    ) -> dict[str, Any]:
        """What judging `traces` would cost, without calling: calls and tokens estimated as characters / 4.
        `skip` holds trace ids already done (e.g. cached) and not counted."""
        calls = chars_in = chunked = truncated = 0
        todo = [t for t in traces if not skip or t.trace_id not in skip]
        for t in todo:
            r = self.render(t)
            chunked += r.chunked
            truncated += r.truncated
            for c in r.chunks:
                chars_in += sum(len(m["content"]) for m in build_messages(c, taxonomy)) * self.samples
                calls += self.samples
        return {
            "traces": len(traces),
            "traces_to_judge": len(todo),
            "calls": calls,
            "est_tokens_in": estimate_tokens(chars_in),
            "max_tokens_out": calls * self.max_tokens,
            "chunked_traces": chunked,
            "truncated_traces": truncated,
            "token_estimate": "characters / 4",
            "model": self.model,
        }

    # --- calling ---------------------------------------------------------------------------------------------
    def prepare(self, *, concurrency: int) -> None:
        """Size the connection pool to the runner's concurrency (times samples: they run in parallel)."""
        self._pool = max(1, concurrency) * self.samples

    def _client_here(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            headers = {"Content-Type": "application/json"}
            if self.__api_key:
                headers["Authorization"] = f"Bearer {self.__api_key}"
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                limits=httpx.Limits(max_connections=self._pool, max_keepalive_connections=self._pool),
                headers=headers,
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client, self._client_loop = None, None

    async def _call(self, messages: list[dict[str, str]], taxonomy: Taxonomy, sample: int) -> CallResult:
        url = f"{self.base_url}/chat/completions"
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self._max_tokens_param: self.max_tokens,
            "temperature": self.temperature,
        }
        if self.seed is not None or self.samples > 1:
            payload["seed"] = (self.seed or 0) + sample
        schema_sent = self._use_schema
        if schema_sent:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "trajfm_diagnosis",
                    "strict": True,
                    "schema": reply_json_schema(taxonomy),
                },
            }
        client = self._client_here()
        try:
            # httpx's timeout bounds each read; a reply trickled a byte at a time needs a deadline on the whole.
            # The whole exchange gets twice the per-read timeout plus 10 s: slow but steady replies pass.
            deadline = self.timeout_s * 2 + 10
            resp = await asyncio.wait_for(self._post_capped(client, url, payload), deadline)
        except TimeoutError as exc:
            raise BackendError(
                f"{_public_url(url)}: the whole reply did not arrive within {deadline:g} s (total deadline: twice "
                f"timeout_s={self.timeout_s:g} plus 10 s)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"{_public_url(url)}: no reply within {self.timeout_s} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach {_public_url(url)}: {type(exc).__name__}: {exc}") from exc
        try:
            return self._read_response(resp, messages, schema_sent)
        except (BackendError, ParseError) as exc:
            # Never let an endpoint that echoes the key put it into a message or a stored raw reply.
            exc.args = (self._scrub(str(exc)),)
            if isinstance(exc, ParseError) and exc.raw:
                exc.raw = self._scrub(exc.raw)
            raise

    async def _post_capped(
        self, client: httpx.AsyncClient, url: str, payload: dict[str, Any]
    ) -> httpx.Response:
        """POST and read the reply, refusing one over MAX_REPLY_BYTES (by its Content-Length, unread, or as soon
        as that many bytes have arrived)."""
        async with client.stream("POST", url, json=payload) as resp:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
                raise BackendError(
                    f"{_public_url(url)}: reply of {int(declared):,} bytes refused unread (over the "
                    f"{MAX_REPLY_BYTES:,}-byte cap)",
                    retryable=False,
                )
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise BackendError(
                        f"{_public_url(url)}: reply over the {MAX_REPLY_BYTES:,}-byte cap; refused",
                        retryable=False,
                    )
            headers = [
                (k, v)
                for k, v in resp.headers.items()
                if k.lower() not in ("content-encoding", "content-length")
            ]
            return httpx.Response(
                resp.status_code, headers=headers, content=bytes(body), request=resp.request
            )

    def _scrub(self, text: str) -> str:
        key = self.__api_key
        return text.replace(key, "[API key]") if key and len(key) >= 8 else text

    def _read_response(
        self, resp: httpx.Response, messages: list[dict[str, str]], schema_sent: bool
    ) -> CallResult:
        status = resp.status_code
        body = resp.text
        if status == 429:
            raise BackendError(
                f"rate limited by the endpoint (HTTP 429): {body[:200]}", retry_after=_retry_after(resp)
            )
        if status >= 500 or status == 408:
            raise BackendError(f"endpoint error HTTP {status}: {body[:200]}", retry_after=_retry_after(resp))
        if (
            status == 400
            and schema_sent
            and self.structured_output == "auto"
            and any(word in body for word in ("response_format", "json_schema", "structured"))
        ):
            # The endpoint does not do structured output: use JSON in text from now on, recorded in the manifest.
            self._use_schema = False
            self._schema_refused = True
            raise BackendError(
                f"endpoint refused response_format json_schema (HTTP 400); switching to JSON in text: {body[:200]}"
            )
        if status == 400 and self._max_tokens_param == "max_tokens" and "max_completion_tokens" in body:
            self._max_tokens_param = "max_completion_tokens"
            raise BackendError(
                f"endpoint wants max_completion_tokens instead of max_tokens (HTTP 400): {body[:200]}"
            )
        if status in (401, 403):
            raise BackendError(
                f"endpoint refused the credentials (HTTP {status}); set {' or '.join(KEY_ENVS)} to a valid key",
                retryable=False,
            )
        if status >= 400:
            raise BackendError(
                f"endpoint rejected the request (HTTP {status}) for model {self.model!r}: {body[:300]}",
                retryable=False,
            )
        try:
            envelope = resp.json()
            choice = envelope["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ParseError(
                f"the endpoint's response is not an OpenAI chat completion ({exc!r})", raw=resp.text
            ) from exc
        if not isinstance(text, str) or not text.strip():
            refusal = choice.get("message", {}).get("refusal")
            raise ParseError(
                f"the reply has no text content{f' (refusal: {refusal})' if refusal else ''}", raw=resp.text
            )
        if choice.get("finish_reason") == "length":
            raise ParseError(
                f"the reply was cut off at max_tokens={self.max_tokens} (finish_reason length); raise the judge's "
                "max_tokens option",
                raw=text,
            )
        usage = envelope.get("usage") or {}
        if isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
            return CallResult(self._scrub(text), usage["prompt_tokens"], usage["completion_tokens"], False)
        chars_in = sum(len(m["content"]) for m in messages)
        return CallResult(self._scrub(text), estimate_tokens(chars_in), estimate_tokens(len(text)), True)

    async def adiagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        started = time.perf_counter()
        rendering = self._render_judged(trace)
        jobs = [(c, k) for c in rendering.chunks for k in range(self.samples)]
        outcomes = await asyncio.gather(
            *(self._call(build_messages(c, taxonomy), taxonomy, k) for c, k in jobs), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            for f in failures:
                if not isinstance(f, BackendError | ParseError):
                    raise f
            # A backend failure outranks a parse failure (it decides the wait); tell the runner how many calls.
            first = next((f for f in failures if isinstance(f, BackendError)), failures[0])
            first.calls = len(jobs)  # type: ignore[union-attr]
            raise first
        results = [o for o in outcomes if isinstance(o, CallResult)]
        valid = trace.step_indices()
        extra_text = (rendering.text,) if self.redact else ()
        chunk_diags: list[Diagnosis] = []
        dropped: set[int] = set()
        for ci, chunk in enumerate(rendering.chunks):
            sample_diags = []
            for k in range(self.samples):
                res = results[ci * self.samples + k]
                try:
                    reply = parse_reply(res.text, taxonomy, valid)
                except ParseError as exc:
                    exc.calls = len(jobs)  # type: ignore[attr-defined]
                    if chunk.parts > 1:
                        exc.args = (f"part {chunk.part} of {chunk.parts}: {exc.args[0]}",)
                    raise
                dropped.update(reply.dropped_steps)
                sample_diags.append(self._to_diagnosis(trace, taxonomy, reply, extra_text))
            chunk_diags.append(vote_samples(sample_diags, taxonomy))
        d = merge_chunks(chunk_diags, taxonomy)
        d.tokens_in = sum(r.tokens_in for r in results)
        d.tokens_out = sum(r.tokens_out for r in results)
        d.calls = len(jobs)
        d.latency_s = time.perf_counter() - started
        d.extra["render"] = rendering.info()
        d.extra["samples"] = self.samples
        d.extra["structured_output"] = "json_schema" if self._use_schema else "json_in_text_with_repair"
        if any(r.tokens_estimated for r in results):
            d.extra["tokens_estimated"] = "characters / 4 (the endpoint reported no usage)"
        if dropped:
            d.extra["dropped_steps"] = sorted(dropped)
        return d

    def _to_diagnosis(
        self, trace: Trace, taxonomy: Taxonomy, reply: JudgeReply, extra_text: tuple[str, ...]
    ) -> Diagnosis:
        modes = []
        for m in taxonomy.modes:
            v = reply.failure_modes[m.id]
            modes.append(
                ModeFinding(
                    mode_id=m.id,
                    detected=v.detected,
                    steps=list(v.steps) if v.detected else [],
                    evidence=v.evidence if v.detected else "",
                    evidence_verified=bool(v.detected and verify_evidence(v.evidence, trace, *extra_text)),
                    rationale=v.rationale,
                    confidence=1.0,
                )
            )
        novel = [
            NovelMode(n.title, n.description, list(n.steps), n.evidence) for n in reply.novel_failure_modes
        ]
        d = Diagnosis(
            trace_id=trace.trace_id,
            judge=self.name,
            judge_model=self.model,
            prompt_version=PROMPT_VERSION,
            task_completed=reply.task_completed,
            summary=reply.summary,
            root_cause_step=reply.root_cause.step,
            root_cause_agent=reply.root_cause.agent,
            modes=modes,
            novel=novel,
            dimensions=reply.dimensions.as_columns(),
        )
        d.extra["novel_evidence_verified"] = [verify_evidence(n.evidence, trace, *extra_text) for n in novel]
        if reply.dropped_novel:
            d.extra["novel_dropped"] = reply.dropped_novel
        return d


def make_llm_judge(**options: Any) -> LLMJudge:
    """Registry factory: `get_judge("llm", model=..., base_url=..., samples=..., ...)`. Options given as None
    count as not given; an option this judge does not know is a JudgeError naming it."""
    from trajfm.judges.options import check_options

    given = {k: v for k, v in options.items() if v is not None}
    return LLMJudge(**check_options(LLMJudge.__init__, given, "llm"))
