"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, benchmarks and users checking their setup.

Contract:
- `POST /v1/chat/completions` answers in the OpenAI chat-completion format; `GET /v1/models` lists the models.
  `GET /_trajfm/requests` returns the request log as JSON (so a test in another process can count calls).
- Replies come from, in order: the `script` (a list of reply texts or `Fault`s consumed one per request), then
  `reply_fn(request_body)` when given, else the deterministic judge reply: built from the trace fenced in the
  prompt (repeated actions -> 1.3, an error observation -> 3.2 plus a novel "Ineffective Error Recovery", no
  final answer -> 3.1), with step numbers and verbatim quotes taken from the trace, so a full corpus run yields
  sensible, verifiable content. It understands the prompt of `trajfm.judges.prompt` (mode lines `[id] ...`,
  the fence `<<<TRACE tag>>>`).
- Latency: every reply waits `latency_ms`. Faults: with probability `fault_rate` a request gets one of
  FAULT_KINDS (request n always gets the n-th draw of the seeded generator); otherwise `decide(record)`, when
  given, may force one: "429" (Retry-After / retry-after-ms headers), "500",
  "hang" (no reply for `hang_s`), "malformed" (broken JSON content), "truncated" (content cut off,
  finish_reason "length"), "wrong_keys" (valid JSON, wrong keys), "bad_envelope" (HTTP body cut mid-JSON).
  STREAM_FAULTS (scripted or forced, never drawn by `fault_rate` unless listed in `faults`): "drip" (a 200 whose
  body arrives one byte every `drip_every_s`), "huge" (a body of `huge_bytes` declared in Content-Length),
  "huge_stream" (the same amount chunked, no length declared). `models_fault` sends one of them to GET /models.
- Deviations: with `deviation_rate`, that share of traces is answered the way real models answer without
  structured output (`trajfm.testing.deviations`: ids with names or prefixes, bare booleans, omitted modes,
  detections without steps, "Step 3", prose around fenced JSON, quotes with rendering labels, and replies no
  reader can use); repair turns are answered cleanly. `RequestRecord.deviation` says which.
- `api_key`: when set, a request without `Authorization: Bearer <api_key>` gets 401. The key is never logged.
- `structured_output=False` makes the server refuse `response_format` json_schema with HTTP 400, like servers
  that do not support it; `max_tokens_param="max_completion_tokens"` makes it refuse `max_tokens`, like newer
  OpenAI models.
- Imitating real servers (issue 17): `refuse_formats` lists `response_format` types refused with
  `refusal_status` in the style of a server that answers that way (400: an OpenAI-style invalid_request_error;
  422: a FastAPI validation error naming body.response_format.type; 500: llama-cpp-python's "Input should be
  'text' or 'json_object'" wrapped in an internal error). `honour_max_tokens=True` cuts any reply longer than
  the request's max_tokens (characters / 4) and answers `finish_reason: "length"`; `rationale_padding=N` makes
  every rationale N characters longer (a rambling model) unless the last user message asks for the compact form
  (`trajfm.judges.cutoff.COMPACT_MARKER`). `context_tokens=N` refuses a prompt of N tokens or more (characters /
  4) with llama-cpp-python's HTTP 400 "maximum context length" message. `reply_style` other than "judge" sends a
  degenerate reply (DEGENERATE_STYLES: every mode detected with distinct quotes, one quote repeated, the
  prompt's placeholder wording, or all three at once like a small model under a schema constraint).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trajfm.testing.deviations import DEVIATION_KINDS, UNUSABLE_KINDS, deviate, pick

FAULT_KINDS = ("429", "500", "hang", "malformed", "truncated", "wrong_keys", "bad_envelope")
STREAM_FAULTS = ("drip", "huge", "huge_stream")  # a reply too slow or too large to take whole
REFUSAL_STATUSES = (400, 422, 500)
DEGENERATE_STYLES = ("all_modes", "repeated_quote", "placeholder", "small_model")
COMPACT_MARKER = "compact form"  # the words trajfm.judges.cutoff.compact_message always contains
DEFAULT_MODEL = "trajfm-test"

_MODE_LINE = re.compile(r"^\[([^\]\s]+)\] ", re.M)
_FENCE = re.compile(r"<<<TRACE (\w+)>>>\n([\s\S]*?)\n<<<END TRACE \1>>>")
_STEP = re.compile(r"^STEP (-?\d+)$")
_LINE = re.compile(r"^(\s*)([A-Z][A-Z ]*?)(?: \(([^)]*)\))?: (.*)$")
_ERRORISH = re.compile(r"error|exception|failed|not found|does not exist|invalid", re.I)


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted fault for one request (one of FAULT_KINDS)."""

    kind: str

    def __post_init__(self) -> None:
        _known_faults([self.kind])


def _known_faults(kinds: list[str] | tuple[str, ...], *, what: str = "fault") -> None:
    wrong = [k for k in kinds if k not in FAULT_KINDS + STREAM_FAULTS]
    if wrong:
        raise ValueError(
            f"unknown {what} {', '.join(map(repr, wrong))}; known: {', '.join(FAULT_KINDS + STREAM_FAULTS)}"
        )


@dataclass(frozen=True, slots=True)
class _Stream:
    """A reply the handler streams itself (one of STREAM_FAULTS) instead of sending a body at once."""

    kind: str


@dataclass(slots=True)
class RequestRecord:
    """One request as the server saw it (no headers, no key)."""

    n: int
    started: float
    path: str
    model: str | None = None
    task: str | None = None  # first line of the trace's task, to tell traces apart
    fence_tag: str | None = None
    structured: bool = False
    response_format: str | None = None  # the response_format type sent, if any
    max_tokens: int | None = None
    compact: bool = False  # the last user message asked for the compact form
    turns: int = 0  # messages in the request
    finish_reason: str | None = None
    fault: str | None = None
    deviation: str | None = None
    repair_turn: bool = False  # the request carries an earlier assistant reply
    status: int = 200
    authorized: bool = True


@dataclass
class EndpointConfig:
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    retry_after_s: float = 0.2
    hang_s: float = 30.0
    drip_every_s: float = 2.0
    huge_bytes: int = 50_000_000
    models_fault: str | None = None  # one of STREAM_FAULTS for GET /models
    seed: int = 0
    structured_output: bool = True
    # "max_completion_tokens": refuse requests that send "max_tokens", like newer OpenAI models do.
    max_tokens_param: str = "max_tokens"
    api_key: str | None = None
    refuse_formats: tuple[str, ...] = ()
    refusal_status: int = 400
    honour_max_tokens: bool = False
    rationale_padding: int = 0
    context_tokens: int | None = None
    reply_style: str = "judge"
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    # Replies written the way real models write them (trajfm.testing.deviations): this share of traces (chosen
    # by fence tag and seed, so a trace deviates the same way on every identical retry) gets one of
    # `deviations`; a repair turn (a request carrying the judge's own earlier reply) is answered cleanly.
    deviation_rate: float = 0.0
    deviations: tuple[str, ...] = DEVIATION_KINDS
    # A further share of traces answered with a reply no reader can use (UNUSABLE_KINDS), drawn before the
    # deviations above, so a mix can hold many readable deviations and a few unusable replies.
    unusable_rate: float = 0.0
    script: list[str | Fault] = field(default_factory=list)
    reply_fn: Callable[[dict[str, Any]], str] | None = None
    decide: Callable[[RequestRecord], str | None] | None = None

    def __post_init__(self) -> None:
        wrong = [d for d in self.deviations if d not in DEVIATION_KINDS]
        if wrong:
            raise ValueError(f"unknown deviations {wrong}; known: {', '.join(DEVIATION_KINDS)}")
        _known_faults(self.faults, what="fault kinds")
        if self.models_fault is not None and self.models_fault not in STREAM_FAULTS:
            raise ValueError(
                f"models_fault must be one of {', '.join(STREAM_FAULTS)}, got {self.models_fault!r}"
            )
        for name in ("deviation_rate", "unusable_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {getattr(self, name)}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, got {self.fault_rate}")
        if self.refusal_status not in REFUSAL_STATUSES:
            raise ValueError(f"refusal_status must be one of {REFUSAL_STATUSES}, got {self.refusal_status}")
        if self.reply_style not in ("judge", *DEGENERATE_STYLES):
            raise ValueError(f"reply_style must be judge or one of {', '.join(DEGENERATE_STYLES)}")


# --- the deterministic judge reply -----------------------------------------------------------------------------
@dataclass(slots=True)
class _Line:
    step: int
    label: str
    meta: str
    text: str
    more: list[str] = field(default_factory=list)  # the step's continuation lines


def _parse_fenced_trace(body: str) -> tuple[str, list[_Line], str | None]:
    """(task, labelled lines with their step, final answer or None) from the rendered trace."""
    task_lines: list[str] = []
    final_lines: list[str] = []
    lines: list[_Line] = []
    section = "head"
    step: int | None = None
    for raw in body.splitlines():
        if raw == "TASK:":
            section = "task"
            continue
        if raw == "FINAL ANSWER:":
            section = "final"
            continue
        m = _STEP.match(raw)
        if m and section != "final":
            section, step = "steps", int(m.group(1))
            continue
        if section == "task":
            task_lines.append(raw)
        elif section == "final":
            final_lines.append(raw)
        elif section == "steps" and step is not None:
            lm = _LINE.match(raw)
            if lm:
                lines.append(_Line(step, lm.group(2), lm.group(3) or "", lm.group(4)))
            elif lines and raw.strip():
                lines[-1].more.append(raw.strip())
    final = "\n".join(final_lines).strip()
    return "\n".join(task_lines).strip(), lines, (None if not final or final.startswith("(none:") else final)


def _quote(line: _Line) -> str:
    """A verbatim piece of one rendered line of the step (the first with some substance, e.g. not a lone "{"):
    never across an omission marker."""
    for text in (line.text, *line.more):
        text = text.split(" [... ", 1)[0][:80].strip()
        if len(text) >= 8:
            return text
    return line.text[:80].strip()


def _agent(meta: str) -> str | None:
    m = re.search(r"(?:sub-agent|agent) ([^,]+)", meta)
    return m.group(1).strip() if m else None


def deterministic_reply(system: str, user: str, labels: dict[str, str] | None = None) -> str:
    """A valid judge reply for the trace fenced in `user`, labelled against the mode ids listed in `system`.
    `labels`, when given, receives the rendering label of the line each detected mode's quote comes from."""
    ids = _MODE_LINE.findall(system)
    fence = _FENCE.search(user)
    task, lines, final = _parse_fenced_trace(fence.group(2) if fence else "")
    steps = sorted({ln.step for ln in lines})
    modes: dict[str, dict[str, Any]] = {
        i: {"detected": False, "steps": [], "evidence": "", "rationale": "No sign of it in the trace."}
        for i in ids
    }
    novel: list[dict[str, Any]] = []
    found: list[tuple[int, str | None]] = []  # (step, agent) of each detection

    def detect(mode_id: str, at: list[int], line: _Line, why: str) -> None:
        quote = _quote(line)
        target = mode_id if mode_id in modes else (ids[0] if ids else None)
        if target is None or not quote or modes[target]["detected"]:
            return
        modes[target] = {"detected": True, "steps": at, "evidence": quote, "rationale": why}
        found.append((at[0], _agent(line.meta)))
        if labels is not None:
            labels[target] = f"{line.label} ({line.meta})" if line.meta else line.label

    seen: dict[str, int] = {}
    for ln in lines:
        if ln.label == "ACTION" and ln.text.strip():
            if ln.text in seen and seen[ln.text] != ln.step:
                detect("1.3", [seen[ln.text], ln.step], ln, "The same action is taken again.")
                break
            seen.setdefault(ln.text, ln.step)
    errors = [
        ln for ln in lines if ln.label == "OBSERVATION" and ("error" in ln.meta or _ERRORISH.search(ln.text))
    ]
    if errors:
        e = errors[0]
        quote = _quote(e)
        detect("3.2", [e.step], e, "A tool reported a failure and nothing checked the result.")
        if quote:
            novel.append(
                {
                    "title": "Ineffective Error Recovery",
                    "description": f"After the failure observed at step {e.step}, the agent carries on without "
                    "repairing the call or reporting the problem.",
                    "steps": [e.step],
                    "evidence": quote,
                }
            )
    if final is None and lines:
        last = lines[-1]
        detect("3.1", [last.step], last, "The run ends without a final answer.")
    found.sort(key=lambda f: f[0])
    completed = final is not None and not errors and not found
    reply = {
        "summary": f"The agent worked on '{task.splitlines()[0][:60] if task else 'the task'}' over {len(steps)} "
        f"steps and {'completed it' if completed else 'did not fully complete it'}.",
        "task_completed": completed,
        "failure_modes": modes,
        "novel_failure_modes": novel,
        "root_cause": {"step": found[0][0] if found else None, "agent": found[0][1] if found else None},
        # The scorecard dimensions, from the same signals (clarity is not judged: null).
        "dimensions": {
            "task_completion": completed,
            "data_retrieval": not errors,
            "result_verification": not errors,
            "sequence": not any(m == "1.3" for m in (f for f in modes if modes[f]["detected"])),
            "clarity": None,
            "hallucination": False,
        },
    }
    return json.dumps(reply)


def degenerate_reply(system: str, user: str, style: str) -> str:
    """A reply that parses and validates but is no diagnosis (see DEGENERATE_STYLES), for the trace in `user`."""
    ids = _MODE_LINE.findall(system)
    fence = _FENCE.search(user)
    _, lines, _ = _parse_fenced_trace(fence.group(2) if fence else "")
    quotes = list(dict.fromkeys(_quote(ln) for ln in lines if len(_quote(ln)) >= 8)) or ["(no text)"]
    step = lines[0].step if lines else 0
    off = {"detected": False, "steps": [], "evidence": "", "rationale": ""}
    modes: dict[str, dict[str, Any]] = {i: dict(off) for i in ids}
    if style == "all_modes":  # every mode, each with a real quote (cycled), a plausible rationale
        for k, i in enumerate(ids):
            ln = lines[k % len(lines)] if lines else None
            modes[i] = {"detected": True, "steps": [ln.step if ln else step],
                        "evidence": quotes[k % len(quotes)], "rationale": "It shows in this step."}  # fmt: skip
    elif style == "repeated_quote":  # a few modes, one real quote for all of them
        for i in ids[:4]:
            modes[i] = {
                "detected": True,
                "steps": [step],
                "evidence": quotes[0],
                "rationale": "See the quote.",
            }
    elif style == "placeholder":  # the prompt's own template words as evidence and rationale
        for i in ids[:2]:
            modes[i] = {
                "detected": True,
                "steps": [step],
                "evidence": "a verbatim quote",
                "rationale": "one sentence",
            }
    else:  # small_model: all of the above at once, as Gemma 3 270M replied under a schema constraint
        for i in ids:
            modes[i] = {
                "detected": True,
                "steps": [step],
                "evidence": "a verbatim quote",
                "rationale": "one sentence",
            }
    return json.dumps(
        {
            "summary": "one sentence",
            "task_completed": False,
            "failure_modes": modes,
            "novel_failure_modes": [],
            "root_cause": {"step": step if lines else None, "agent": None},
        }
    )


def _refusal(status: int, kind: str) -> str:
    """The body a server of that kind sends when it refuses a response_format type."""
    if status == 422:  # FastAPI / pydantic validation, as vLLM-style and other Python servers answer
        return json.dumps({"detail": [{"type": "literal_error", "loc": ["body", "response_format", "type"],
                                       "msg": "Input should be 'text' or 'json_object'", "input": kind}]})  # fmt: skip
    if status == 500:  # llama-cpp-python: the validation error escapes as an internal server error
        msg = (f"1 validation error for ChatCompletionRequestResponseFormat\ntype\n  Input should be 'text' or "
               f"'json_object' [type=literal_error, input_value='{kind}', input_type=str]")  # fmt: skip
        return json.dumps(
            {"error": {"message": msg, "type": "internal_server_error", "param": None, "code": None}}
        )
    return json.dumps({"error": {"message": f"response_format of type {kind} is not supported by this server",
                                 "type": "invalid_request_error", "param": "response_format", "code": None}})  # fmt: skip


def _pad_rationales(content: str, padding: int) -> str:
    try:
        reply = json.loads(content)
        for verdict in reply["failure_modes"].values():
            verdict["rationale"] = (verdict.get("rationale") or "") + " and furthermore" * (padding // 16 + 1)
    except (ValueError, KeyError, TypeError, AttributeError):
        return content
    return json.dumps(reply)


# --- the server ------------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hanging requests must not hold up stop()
    request_queue_size = 256  # the default 5 refuses connections when a client opens its pool at once
    endpoint: LocalEndpoint


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: do not wait for delayed ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the request log is structured, not stderr
        return

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(length if length is not None else len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing left to tell it

    def _stream(self, kind: str) -> None:
        """Send one of STREAM_FAULTS: a byte at a time, or more bytes than any reply should have."""
        ep = self.server.endpoint
        size = ep.config.huge_bytes
        chunk = b" " * 1_000_000
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if kind == "huge_stream":
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size if kind == "huge" else 1_000))
            self.end_headers()
            if kind == "drip":
                for _ in range(1_000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    if ep._stop.wait(ep.config.drip_every_s):
                        return
                return
            for sent in range(0, size, len(chunk)):
                part = chunk[: min(len(chunk), size - sent)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if kind == "huge_stream" else part)
                if ep._stop.is_set():
                    return
            if kind == "huge_stream":
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client refused it (its cap or its deadline): that is what a test wants to see

    def do_GET(self) -> None:
        ep = self.server.endpoint
        if self.path.rstrip("/") == "/v1/models":
            if ep.config.models_fault is not None:
                self._stream(ep.config.models_fault)
                return
            if (
                ep.config.api_key is not None
                and self.headers.get("Authorization") != f"Bearer {ep.config.api_key}"
            ):
                self._send(401, json.dumps({"error": {"message": "invalid api key"}}).encode())
                return
            data = [{"id": m, "object": "model", "owned_by": "trajfm"} for m in ep.config.models]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        elif self.path.rstrip("/") == "/_trajfm/requests":
            self._send(200, json.dumps([asdict(r) for r in ep.requests]).encode())
        else:
            self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())

    def do_POST(self) -> None:
        ep = self.server.endpoint
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())
            return
        try:
            status, body, headers, length_override = ep.handle(raw, self.headers.get("Authorization"))
        except Exception as exc:  # a bug in the reply builder: say so to the client instead of dropping it
            msg = f"test endpoint failed: {type(exc).__name__}: {exc}"
            status, body, headers, length_override = (
                500,
                json.dumps({"error": {"message": msg}}).encode(),
                {},
                None,
            )
        if isinstance(body, _Stream):
            self._stream(body.kind)
        else:
            self._send(status, body, headers, length_override)


class LocalEndpoint:
    """The server: `with LocalEndpoint(EndpointConfig(latency_ms=200)) as ep: ... ep.url ...`."""

    def __init__(
        self, config: EndpointConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the test endpoint only listens on the loopback interface")
        self.config = config or EndpointConfig()
        self._server = _Server((host, port), _Handler)
        self._server.endpoint = self
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.requests: list[RequestRecord] = []

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give a client (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalEndpoint:
        # A short poll interval so stop() returns quickly (shutdown waits for the serve loop's next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="trajfm-test-endpoint",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._stop.set()  # wakes hanging requests
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one request ------------------------------------------------------------------------------------------
    def handle(
        self, raw: bytes, authorization: str | None
    ) -> tuple[int, bytes | _Stream, dict[str, str], int | None]:
        cfg = self.config
        with self._lock:
            rec = RequestRecord(n=len(self.requests), started=time.time(), path="/v1/chat/completions")
            self.requests.append(rec)
            scripted = cfg.script.pop(0) if cfg.script else None
            random_fault = self._rng.random() < cfg.fault_rate
            random_kind = self._rng.choice(cfg.faults) if cfg.faults else None
        try:
            req = json.loads(raw or b"{}")
            messages = req["messages"]
            system = next((m["content"] for m in messages if m.get("role") == "system"), "")
            users = [m["content"] for m in messages if m.get("role") == "user"]
            # The trace is in the first user message; a repair turn adds later ones after the judge's reply.
            user = next((u for u in users if "<<<TRACE " in u), users[-1] if users else "")
        except (ValueError, KeyError, TypeError, StopIteration) as exc:
            rec.status = 400
            return 400, json.dumps({"error": {"message": f"bad request: {exc!r}"}}).encode(), {}, None
        rec.model = req.get("model")
        fence = _FENCE.search(user)
        rec.fence_tag = fence.group(1) if fence else None
        if fence:
            task, _, _ = _parse_fenced_trace(fence.group(2))
            rec.task = task.splitlines()[0] if task else ""
        fmt = req.get("response_format")
        rec.response_format = fmt.get("type") if isinstance(fmt, dict) else None
        rec.structured = rec.response_format == "json_schema"
        rec.max_tokens = req.get("max_tokens", req.get("max_completion_tokens"))
        rec.turns = len(messages)
        rec.compact = bool(users) and COMPACT_MARKER in users[-1]
        if cfg.api_key is not None and authorization != f"Bearer {cfg.api_key}":
            rec.authorized, rec.status = False, 401
            return 401, json.dumps({"error": {"message": "invalid api key"}}).encode(), {}, None
        if rec.structured and not cfg.structured_output:
            rec.status = 400
            msg = "response_format of type json_schema is not supported by this server"
            return 400, json.dumps({"error": {"message": msg}}).encode(), {}, None
        if rec.response_format is not None and rec.response_format in cfg.refuse_formats:
            rec.status = cfg.refusal_status
            return rec.status, _refusal(rec.status, rec.response_format).encode(), {}, None
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4
        if cfg.context_tokens is not None and prompt_tokens >= cfg.context_tokens:
            rec.status = 400
            msg = (f"This model's maximum context length is {cfg.context_tokens} tokens. However, you requested "
                   f"{prompt_tokens + (rec.max_tokens or 0)} tokens ({prompt_tokens} in the messages, "
                   f"{rec.max_tokens} in the completion). Please reduce the length of the messages or completion.")  # fmt: skip
            body = {"error": {"message": msg, "type": "invalid_request_error", "param": "messages",
                              "code": "context_length_exceeded"}}  # fmt: skip
            return 400, json.dumps(body).encode(), {}, None
        if cfg.max_tokens_param == "max_completion_tokens" and "max_tokens" in req:
            rec.status = 400
            msg = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'."
            return 400, json.dumps({"error": {"message": msg}}).encode(), {}, None
        if rec.model not in cfg.models:
            rec.status = 404
            return (
                404,
                json.dumps({"error": {"message": f"model {rec.model!r} not found"}}).encode(),
                {},
                None,
            )

        fault: str | None = None
        if isinstance(scripted, Fault):
            fault = scripted.kind
        elif scripted is None:
            # The random draw wins, so request n always gets draw n (a seed fixes the fault sequence).
            fault = random_kind if random_fault else None
            if fault is None and cfg.decide is not None:
                fault = cfg.decide(rec)
        rec.fault = fault
        if cfg.latency_ms > 0:
            self._stop.wait(cfg.latency_ms / 1000.0)
        if fault in STREAM_FAULTS:
            return 200, _Stream(fault), {}, None
        if fault == "hang":
            self._stop.wait(cfg.hang_s)
            rec.status = 504
            return 504, json.dumps({"error": {"message": "hung request finally answered"}}).encode(), {}, None
        if fault == "429":
            rec.status = 429
            headers = {
                "Retry-After": str(max(1, round(cfg.retry_after_s))),
                "retry-after-ms": str(int(cfg.retry_after_s * 1000)),
            }
            return (
                429,
                json.dumps({"error": {"message": "rate limit reached (injected)"}}).encode(),
                headers,
                None,
            )
        if fault == "500":
            rec.status = 500
            return (
                500,
                json.dumps({"error": {"message": "internal server error (injected)"}}).encode(),
                {},
                None,
            )

        if isinstance(scripted, str):
            content = scripted
        elif cfg.reply_fn is not None:
            content = cfg.reply_fn(req)
        elif cfg.reply_style != "judge":
            content = degenerate_reply(system, user, cfg.reply_style)
        else:
            labels: dict[str, str] = {}
            content = deterministic_reply(system, user, labels)
            rec.repair_turn = any(m.get("role") == "assistant" for m in messages)
            if rec.fence_tag and not rec.repair_turn:
                rec.deviation = pick(
                    rec.fence_tag, cfg.unusable_rate, UNUSABLE_KINDS, cfg.seed + 7919
                ) or pick(rec.fence_tag, cfg.deviation_rate, cfg.deviations, cfg.seed)
                if rec.deviation:
                    content = deviate(content, rec.deviation, system, labels)
        if cfg.rationale_padding and not rec.compact:
            content = _pad_rationales(content, cfg.rationale_padding)
        finish = "stop"
        if cfg.honour_max_tokens and rec.max_tokens and len(content) > rec.max_tokens * 4:
            content, finish = content[: rec.max_tokens * 4], "length"
        if fault == "malformed":
            content = '{"summary": "The agent tried", "task_completed": tru, "failure_modes": {"1.1": {"detec'
        elif fault == "truncated":
            content, finish = content[: max(1, len(content) * 3 // 5)], "length"
        elif fault == "wrong_keys":
            content = json.dumps(
                {"result": "failed", "modes": ids_or_empty(system), "explanation": "wrong shape"}
            )
        rec.finish_reason = finish
        envelope = {
            "id": f"chatcmpl-trajfm-{rec.n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": rec.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": (len(system) + len(user) + 3) // 4,
                "completion_tokens": (len(content) + 3) // 4,
                "total_tokens": (len(system) + len(user) + len(content) + 6) // 4,
            },
        }
        encoded = json.dumps(envelope).encode()
        if fault == "bad_envelope":
            encoded = encoded[: len(encoded) // 2]
        return 200, encoded, {}, None


def ids_or_empty(system: str) -> list[str]:
    return _MODE_LINE.findall(system)


def serve(
    config: EndpointConfig, *, port: int = 8000, on_ready: Callable[[LocalEndpoint], None] | None = None
) -> None:
    """Run the endpoint in the foreground until interrupted (the `trajfm serve-test-endpoint` command)."""
    ep = LocalEndpoint(config, port=port)
    if on_ready is not None:
        on_ready(ep)
    try:
        ep.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the user stops it
    finally:
        ep._stop.set()
        ep._server.server_close()
