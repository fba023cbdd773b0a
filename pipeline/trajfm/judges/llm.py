"""The LLM judge: any OpenAI-compatible chat-completions endpoint labels a trace against the taxonomy.

Contract:
- Configuration: `model` (option or env TRAJFM_MODEL), `base_url` (option, env TRAJFM_BASE_URL or
  OPENAI_BASE_URL; e.g. http://127.0.0.1:8000/v1), API key from env TRAJFM_API_KEY or OPENAI_API_KEY. The key is
  held in memory only and sent as a bearer token: it is never part of `cache_material`, `manifest_info`, a
  Diagnosis, an error message or a log line. A missing endpoint or model is a `JudgeError`.
- `adiagnose(trace, taxonomy)` renders the trace (`trajfm.judges.render`, budgeted, chunked when too long,
  optionally redacted), sends the prompt of `trajfm.judges.prompt` once per chunk and sample through the one
  client (`trajfm.judges.client`), reads each reply tolerantly (`trajfm.judges.reply`: what had to be normalised
  is recorded in `extra["reply_repairs"]`), checks every quote against what the model was shown
  (`trajfm.judges.evidence.verify_diagnosis`), votes across samples (a mode is detected when more than half of
  the samples detect it; confidence = share of samples agreeing with the verdict) and merges chunks (a mode is
  detected when any chunk detects it). A mode the reply left out is not reported (`detected=None`).
- An unusable reply gets a repair turn (`trajfm.judges.attempts`): the conversation with the model's own reply
  and a message naming what was wrong, at most `repair_turns` times (0 = off). A reply the repair did not fix
  raises `ParseError(raw=..., retryable=False)` naming the repair's error; with repair turns off it stays
  retryable (the runner's identical retries, the old behaviour, for comparison).
- It never sleeps or retries a failed call: a failed call raises `BackendError` (with `retry_after` for 429,
  `retryable=False` for 401/403/404 and other client errors); the runner (`trajfm.judges.runner`) waits and
  retries and records.
- Structured output (`trajfm.judges.negotiate`): `structured_output="auto"` (default) sends a strict JSON schema
  as `response_format`; when the endpoint refuses it (HTTP 400, 422 or 500 naming response_format), the same call
  is sent at once with `json_object` plus the schema (llama.cpp's extension), then with no response_format (JSON
  in text); what worked is kept for the run and recorded in `manifest_info()`. "json_schema" never switches (a
  refusal is final); "off" never sends a schema.
- Cut-off replies and long prompts (`trajfm.judges.cutoff`): a reply with `finish_reason: "length"` is followed
  by a changed request (the compact form, and a larger budget up to `max_tokens_ceiling`, default twice
  `max_tokens`; 0 = never larger), recorded as the repair code `truncated`; a prompt the server says overflows
  its context window makes the next attempt re-render the trace in smaller chunks (a budget sized from the
  server's numbers), recorded per trace in the manifest.
- `plan(traces, taxonomy)` is the `--dry-run`: calls and estimated tokens (characters / 4), without any call.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from trajfm.errors import BackendError, JudgeError, ParseError
from trajfm.judges.attempts import AttemptPolicy, PolicyChain, RepairTurn, converse
from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode
from trajfm.judges.client import (
    KEY_ENVS,
    MODEL_ENV,
    URL_ENVS,
    ChatClient,
    ChatReply,
    ChatRequest,
    EndpointCheck,
    RequestRejected,
    public_url,
    resolve_endpoint,
)
from trajfm.judges.combine import merge_chunks, vote_samples
from trajfm.judges.cutoff import CutOffRepair, UnlessCutOff, is_context_overflow, smaller_budget
from trajfm.judges.evidence import verify_diagnosis
from trajfm.judges.negotiate import NegotiationPolicy, StructuredOutput
from trajfm.judges.prompt import PROMPT_VERSION, build_messages, reply_json_schema, system_message
from trajfm.judges.render import (
    DEFAULT_BUDGET_CHARS,
    DEFAULT_MIN_STEP_CHARS,
    RENDER_VERSION,
    RenderedChunk,
    Rendering,
    estimate_tokens,
    render_trace,
)
from trajfm.judges.reply import JudgeReply, dropped_entries, parse_reply
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

__all__ = ["KEY_ENVS", "MODEL_ENV", "URL_ENVS", "LLMJudge", "make_llm_judge"]

STRUCTURED_MODES = ("auto", "json_schema", "off")


class LLMJudge(Judge):
    """Judge traces with an OpenAI-compatible chat model (see the module docstring)."""

    name = "llm"
    base_url: str  # always set (from the option or the environment)
    cacheable = True
    needs_endpoint = True
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
        repair_turns: int = 1,
        max_tokens_ceiling: int | None = None,
    ) -> None:
        model, url = resolve_endpoint(model, base_url)
        if structured_output not in STRUCTURED_MODES:
            raise JudgeError(
                f"structured_output must be one of {', '.join(STRUCTURED_MODES)}, not {structured_output!r}"
            )
        if samples < 1:
            raise JudgeError(f"--samples must be at least 1, got {samples}")
        if repair_turns < 0:
            raise JudgeError(f"repair_turns must be 0 (off) or more, got {repair_turns}")
        self.repair_turns = int(repair_turns)
        self.model: str | None = model
        self.base_url = url.rstrip("/")
        self.samples = samples
        # One sample: deterministic decoding. Several: they must differ to be worth voting over.
        self.temperature = temperature if temperature is not None else (0.0 if samples == 1 else 0.7)
        self.max_tokens = max_tokens
        self.seed = seed
        self.structured_output = structured_output
        # What the endpoint accepts, negotiated once for the run (trajfm.judges.negotiate).
        self.negotiation = StructuredOutput(structured_output)
        # Cut-off replies get a compact request, with up to this many tokens (trajfm.judges.cutoff).
        self.max_tokens_ceiling = 2 * max_tokens if max_tokens_ceiling is None else max_tokens_ceiling
        self._cutoff = CutOffRepair(self.max_tokens_ceiling if self.max_tokens_ceiling > max_tokens else None)
        # Traces whose prompt overflowed the server's context window: their smaller rendering budget.
        self._budget_for: dict[str, int] = {}
        self.redact = redact
        self.budget_chars = budget_chars
        self.min_step_chars = min_step_chars
        self.timeout_s = timeout_s
        # The one client (key handling, errors, max_tokens parameter name): see trajfm.judges.client.
        self.client = ChatClient(url, model, timeout_s=timeout_s, pool=max(1, concurrency) * samples)
        # Traces whose rendering had to be shortened or split, by trace id (for the manifest: never cut silently).
        self._shortened: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return (
            f"LLMJudge(model={self.model!r}, base_url={public_url(self.base_url)!r}, samples={self.samples})"
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
            "repair_turns": self.repair_turns,
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
            "base_url": public_url(self.base_url),
            "api_key_from": self.client.key_env,  # the variable's name only
            "prompt_version": PROMPT_VERSION,
            "render_version": RENDER_VERSION,
            "parameters": {
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "samples": self.samples,
                "seed": self.seed,
                "timeout_s": self.timeout_s,
                "repair_turns": self.repair_turns,
                "max_tokens_param": self.client.max_tokens_param,
            },
            "rendering": {
                "budget_chars": self.budget_chars,
                "min_step_chars": self.min_step_chars,
                "redact": self.redact,
            },
            "rendering_outcome": self.rendering_outcome(),
            "structured_output": self.negotiation.manifest(),
            "cut_off_replies": self._cutoff.cut_offs,
            "max_tokens_ceiling": self.max_tokens_ceiling,
            "context_overflow_rerendered": dict(sorted(self._budget_for.items())),
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
        """Render a trace that is being judged (or looked up in the cache) and remember any shortening. A trace
        whose prompt overflowed the server's context window is rendered within its smaller budget."""
        budget = self._budget_for.get(trace.trace_id)
        rendering = (
            self.render(trace)
            if budget is None
            else render_trace(
                trace, budget_chars=budget, min_step_chars=self.min_step_chars, redact_secrets=self.redact
            )
        )
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

    def check_endpoint(self) -> EndpointCheck:
        """One cheap request (GET /models): is the key accepted, is the model served? (`--dry-run`.)"""
        return self.client.check()

    # --- calling ---------------------------------------------------------------------------------------------
    def prepare(self, *, concurrency: int) -> None:
        """Size the connection pool to the runner's concurrency (times samples: they run in parallel)."""
        self.client.pool = max(1, concurrency) * self.samples

    async def aclose(self) -> None:
        await self.client.aclose()

    def policy(self, taxonomy: Taxonomy) -> AttemptPolicy:
        """What to send after an unusable reply or a refused request: the structured-output negotiation, the
        cut-off repair, then repair turns (`repair_turns`, 0 = off) for other unusable replies."""
        return PolicyChain(
            [
                NegotiationPolicy(self.negotiation, reply_json_schema(taxonomy)),
                self._cutoff,
                UnlessCutOff(RepairTurn(self.repair_turns)),
            ]
        )

    def _request(self, messages: list[dict[str, str]], taxonomy: Taxonomy, sample: int) -> ChatRequest:
        params: dict[str, Any] = {"temperature": self.temperature}
        if self.seed is not None or self.samples > 1:
            params["seed"] = (self.seed or 0) + sample
        response_format = self.negotiation.response_format(reply_json_schema(taxonomy))
        if response_format is not None:
            params["response_format"] = response_format
        return ChatRequest(messages, self.max_tokens, params)

    def _reader(self, taxonomy: Taxonomy, valid: set[int]) -> Any:
        def read(reply: ChatReply) -> JudgeReply:
            # A reply came back: the endpoint takes the mode sent.
            self.negotiation.accepted(self.negotiation.mode)
            if reply.finish_reason == "length":
                raise ParseError(
                    f"the reply was cut off at the token limit (finish_reason length, max_tokens={self.max_tokens}, "
                    f"up to {self.max_tokens_ceiling} on a repair); keep the "
                    "rationales to a few words so the whole JSON object fits (or raise the judge's max_tokens "
                    "option)",
                    raw=reply.text,
                )
            return parse_reply(reply.text, taxonomy, valid)

        return read

    async def adiagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        started = time.perf_counter()
        rendering = self._render_judged(trace)
        valid = trace.step_indices()
        jobs = [(c, k) for c in rendering.chunks for k in range(self.samples)]
        read = self._reader(taxonomy, valid)
        policy = self.policy(taxonomy)
        outcomes = await asyncio.gather(
            *(converse(self.client, self._request(build_messages(c, taxonomy), taxonomy, k), read, policy)
              for c, k in jobs),
            return_exceptions=True,
        )  # fmt: skip
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            for f in failures:
                if not isinstance(f, BackendError | ParseError):
                    raise f
            overflow = next((f for f in failures if _overflowed(f)), None)
            # A backend failure outranks a parse failure (it decides the wait); tell the runner how many calls.
            first = overflow or next((f for f in failures if isinstance(f, BackendError)), failures[0])
            if overflow is not None:
                assert isinstance(overflow, RequestRejected)  # what _overflowed checks
                first = self._rerender_after_overflow(trace, rendering, taxonomy, overflow)
            done = [o for o in outcomes if not isinstance(o, BaseException)]
            first.calls = sum(getattr(f, "calls", 1) for f in failures) + sum(x.calls for _, x in done)  # type: ignore[union-attr,attr-defined]
            if len(jobs) > 1 and isinstance(first, ParseError):
                ci = outcomes.index(first) // self.samples
                if rendering.chunks[ci].parts > 1:
                    first.args = (f"part {ci + 1} of {rendering.chunks[ci].parts}: {first.args[0]}",)
            raise first
        results = [o for o in outcomes if not isinstance(o, BaseException)]
        chunk_diags: list[Diagnosis] = []
        dropped: set[int] = set()
        dropped_titles: list[str] = []
        repairs: set[str] = set()
        for ci, chunk in enumerate(rendering.chunks):
            sample_diags = []
            for k in range(self.samples):
                reply, exchange = results[ci * self.samples + k]
                dropped.update(reply.dropped_steps)
                dropped_titles.extend(reply.dropped_novel_titles)
                repairs.update(reply.repairs)
                repairs.update(exchange.codes)
                sample_diags.append(self._to_diagnosis(trace, taxonomy, reply, chunk))
            chunk_diags.append(vote_samples(sample_diags, taxonomy))
        d = merge_chunks(chunk_diags, taxonomy)
        dropped_titles.extend(d.extra.get("novel_left_out", []))
        if len(jobs) > 1:  # voting and merging picked quotes and steps: check the result against every chunk
            verify_diagnosis(d, trace, rendering.chunks)
        exchanges = [x for _, x in results]
        d.tokens_in = sum(x.tokens_in for x in exchanges)
        d.tokens_out = sum(x.tokens_out for x in exchanges)
        d.calls = sum(x.calls for x in exchanges)
        d.latency_s = time.perf_counter() - started
        d.extra["render"] = rendering.info()
        d.extra["samples"] = self.samples
        d.extra["structured_output"] = self.negotiation.mode
        d.extra["reply_repairs"] = sorted(repairs) + dropped_entries(dropped, dropped_titles)
        d.extra["evidence_checked"] = "rendering"
        if any(x.tokens_estimated for x in exchanges):
            d.extra["tokens_estimated"] = "characters / 4 (the endpoint reported no usage)"
        if dropped:
            d.extra["dropped_steps"] = sorted(dropped)
        return d

    def _to_diagnosis(
        self, trace: Trace, taxonomy: Taxonomy, reply: JudgeReply, chunk: RenderedChunk
    ) -> Diagnosis:
        modes = []
        for m in taxonomy.modes:
            v = reply.failure_modes.get(m.id)
            if v is None:  # the reply left this mode out: not reported, never silently "not detected"
                modes.append(
                    ModeFinding(m.id, None, rationale="the judge's reply left this mode out", confidence=0.0)
                )
                continue
            modes.append(
                ModeFinding(
                    mode_id=m.id,
                    detected=v.detected,
                    steps=list(v.steps) if v.detected else [],
                    evidence=v.evidence if v.detected else "",
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
        verify_diagnosis(d, trace, [chunk])  # against what this call showed the model (after redaction)
        if reply.dropped_novel:
            d.extra["novel_dropped"] = reply.dropped_novel
        return d

    def _rerender_after_overflow(
        self, trace: Trace, rendering: Rendering, taxonomy: Taxonomy, exc: RequestRejected
    ) -> BackendError:
        """The prompt did not fit the server's context window: set a smaller rendering budget for this trace
        (the next attempt re-renders it in smaller chunks) and return the error the runner sees (retryable
        unless the trace cannot be made to fit)."""
        budget = self._budget_for.get(trace.trace_id, self.budget_chars)
        biggest = max(rendering.chunks, key=lambda c: len(c.text))
        prompt_chars = sum(len(m["content"]) for m in build_messages(biggest, taxonomy))
        smaller = smaller_budget(
            min(budget, len(biggest.text)), prompt_chars, exc.body, reply_tokens=self.max_tokens,
            min_chars=self.min_step_chars, fixed_chars=prompt_chars - len(biggest.text),
        )  # fmt: skip
        gist = " ".join(exc.body.split())[:160]
        if smaller is None:
            return BackendError(
                f"the prompt does not fit the endpoint's context window even in the smallest chunks ({gist}); "
                "start the server with a larger context (llama.cpp: --n_ctx) or lower --judge-option "
                "max_tokens",
                retryable=False,
            )
        self._budget_for[trace.trace_id] = smaller
        return BackendError(
            f"the prompt overflowed the endpoint's context window ({gist}); the next attempt re-renders the trace "
            f"in chunks of at most {smaller} characters"
        )

    def prompt_text(self, taxonomy: Taxonomy) -> str:
        """The instructions every call sends (for `trajfm.judges.quality`: replies that copy its wording)."""
        return system_message(taxonomy)


def _overflowed(exc: BaseException) -> bool:
    return isinstance(exc, RequestRejected) and is_context_overflow(exc.status, exc.body)


def make_llm_judge(**options: Any) -> LLMJudge:
    """Registry factory: `get_judge("llm", model=..., base_url=..., samples=..., ...)`. Options given as None
    count as not given; an option this judge does not know is a JudgeError naming it."""
    from trajfm.judges.options import check_options

    given = {k: v for k, v in options.items() if v is not None}
    return LLMJudge(**check_options(LLMJudge.__init__, given, "llm"))
