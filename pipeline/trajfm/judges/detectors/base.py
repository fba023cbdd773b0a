"""What every rules detector reads (`TraceView`) and emits (`Finding`).

Contract:
- A detector is a function `detect(view: TraceView) -> list[Finding]`; it is pure, deterministic and never reads
  anything but the view (no clock, no randomness, no network), so the rules judge gives the same verdict for the
  same trace every time.
- `Finding.steps` are step indices *as the source numbers them* (`Step.index`); `Finding.evidence` is a verbatim
  slice of a step's content, a step's tool input, the task or the final answer (never paraphrased), so
  `trajfm.judges.evidence.verify` accepts it.
- `Finding.kind` is one of the kinds in `trajfm.judges.detectors.mapping.FINDING_KINDS`; the mapping, not the
  detector, decides which taxonomy modes and novel family a kind stands for.

The view is built once per trace and shared by all detectors: it pairs each action with the thought before it
and the observation after it, independent of the agent framework. A ReAct log (thought/action/observation), a
tool-calling chat (tool_call/tool_result), a multi-agent chat log (message) and a span tree (span) all become the
same `Act` records; detectors never look at `Trace.source_format`. In a span tree one call is one act: the model
span that wrote it (the choice; `args` its own arguments, meta `call_arguments`) answered by the tool span of the
same parent that ran it (`result`); a tool span no model span wrote is an act of its own, its result itself. What one framework alone says (its review
status words, its nouns) reaches them only as `TraceView.vocab`, the format's data file (`judges/formats/`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.formats import FormatVocabulary, vocabulary
from trajfm.traces.model import Step, Trace

# Step kinds written by the agent itself versus kinds that carry what the environment returned.
AGENT_KINDS: Final = frozenset({"thought", "action", "tool_call", "answer"})
ACTION_KINDS: Final = frozenset({"action", "tool_call"})
RESULT_KINDS: Final = frozenset({"observation", "tool_result"})

# Long observations (sub-agent JSON, file dumps) are only scanned up to this many characters: the signals the
# detectors look for (an error prefix, a review status, "does not exist") sit near the top, and scanning whole
# 100 KB dumps would cost more than every other detector together.
SCAN_CHARS: Final = 3000


@dataclass(slots=True)
class Finding:
    """One typed observation a detector made about a trace."""

    kind: str
    steps: list[int]
    evidence: str
    detail: str
    position: int = 0  # reading-order position of the first step involved (orders findings, picks root cause)
    agent: str | None = None
    tool: str | None = None
    error: str | None = None  # the error or status text involved, if any (feeds novel-mode descriptions)
    confidence: float | None = None  # overrides the kind's default confidence when set

    @classmethod
    def at(cls, kind: str, step: Step, evidence: str, detail: str, **extra: Any) -> Finding:
        """A finding placed at `step`: its step number (unless `steps=` names the steps), its reading-order
        position and its agent; `extra` sets the other fields (tool, error, confidence)."""
        steps = extra.pop("steps", None)
        return cls(kind, [step.index] if steps is None else steps, evidence, detail, position=step.position,
                   agent=step.agent, **extra)  # fmt: skip


class Act:
    """One action of an agent: a tool call with the reasoning before it and the result after it.

    A plain class with its own `__init__` (the fields and defaults a dataclass would give): compiled, it is built
    without the interpreted `__init__` a dataclass generates (`build_view` makes one per action of every trace)."""

    __slots__ = ("step", "tool", "args", "signature", "tokens", "thought", "result", "group", "next", "is_finish")  # fmt: skip

    step: Step
    tool: str  # normalised tool name ("" when the action names none)
    args: str  # the tool input as written
    signature: str  # normalised tool + args, for duplicate detection (set for main-level actions only)
    tokens: frozenset[str]  # tokens of the signature (main-level actions only)
    thought: Step | None
    result: Step | None
    group: tuple[str, int]  # (parent_id, depth): actions are only compared within one group
    next: Act | None  # the next action in the same group
    # The tool ends the run in this trace's format (its vocabulary file's finish tools over the common list);
    # set by `build_view`.
    is_finish: bool

    def __init__(
        self,
        step: Step,
        tool: str,
        args: str,
        signature: str,
        tokens: frozenset[str],
        thought: Step | None = None,
        result: Step | None = None,
        group: tuple[str, int] = ("", 0),
        next: Act | None = None,  # noqa: A002 (the field's name)
        is_finish: bool = False,
    ) -> None:
        self.step = step
        self.tool = tool
        self.args = args
        self.signature = signature
        self.tokens = tokens
        self.thought = thought
        self.result = result
        self.group = group
        self.next = next
        self.is_finish = is_finish

    def __repr__(self) -> str:
        return f"Act(step={self.step.index}, tool={self.tool!r}, args={self.args!r})"

    @property
    def index(self) -> int:
        return self.step.index


class TraceView:
    """A framework-independent reading of one trace, computed once and shared by every detector.

    A plain class with its own `__init__` (the fields and defaults a dataclass would give; a container left out
    is a new empty one): compiled, it is built without the interpreted `__init__` a dataclass generates."""

    __slots__ = ("trace", "acts", "thoughts", "results", "messages", "final_answer", "task", "tools", "main_acts",
                 "result_heads", "memo", "vocab", "kinds", "lows")  # fmt: skip

    trace: Trace
    acts: list[Act]
    thoughts: list[Step]
    results: list[Step]
    messages: list[Step]
    final_answer: str
    task: str
    tools: set[str]
    main_acts: list[Act]  # actions of the top agent level (see build_view)
    result_heads: dict[int, str]  # position -> first SCAN_CHARS of a result
    memo: dict[tuple[str, int], object]  # (check, position) -> result, per trace
    vocab: FormatVocabulary  # the trace format's data file
    # The step kinds the trace has: a detector that reads only spans or messages returns at once without them.
    kinds: frozenset[str]
    lows: dict[int, str]  # position -> the lower-cased head (`low`), per trace

    def __init__(
        self,
        trace: Trace,
        acts: list[Act],
        thoughts: list[Step],
        results: list[Step],
        messages: list[Step],
        final_answer: str,
        task: str,
        tools: set[str] | None = None,
        main_acts: list[Act] | None = None,
        result_heads: dict[int, str] | None = None,
        memo: dict[tuple[str, int], object] | None = None,
        vocab: FormatVocabulary | None = None,
        kinds: frozenset[str] = frozenset(),
        lows: dict[int, str] | None = None,
    ) -> None:
        self.trace = trace
        self.acts = acts
        self.thoughts = thoughts
        self.results = results
        self.messages = messages
        self.final_answer = final_answer
        self.task = task
        self.tools = set() if tools is None else tools
        self.main_acts = [] if main_acts is None else main_acts
        self.result_heads = {} if result_heads is None else result_heads
        self.memo = {} if memo is None else memo
        self.vocab = FormatVocabulary() if vocab is None else vocab
        # a view built by hand without them: read them from the trace
        self.kinds = kinds if kinds else frozenset([s.kind for s in trace.steps])
        self.lows = {} if lows is None else lows

    def __repr__(self) -> str:
        return f"TraceView(trace={self.trace.trace_id!r}, acts={len(self.acts)})"

    def head(self, step: Step) -> str:
        """The scanned part of a step's content (long results are cut to SCAN_CHARS)."""
        h = self.result_heads.get(step.position)
        if h is None:
            h = step.content[:SCAN_CHARS]
        return h

    def low(self, step: Step) -> str:
        """The scanned head of a step, lower-cased (memoised: several detectors search the same steps)."""
        v = self.lows.get(step.position)
        if v is None:
            h = self.result_heads.get(step.position)
            v = self.lows[step.position] = (step.content[:SCAN_CHARS] if h is None else h).lower()
        return v

    def acts_in_group(self, group: tuple[str, int]) -> list[Act]:
        return [a for a in self.acts if a.group == group]

    def later_acts(self, act: Act) -> list[Act]:
        """All actions after `act` in the same group (same agent level), in order."""
        out = []
        a = act.next
        while a is not None:
            out.append(a)
            a = a.next
        return out

    def last_index(self) -> int | None:
        return self.trace.steps[-1].index if self.trace.steps else None


def changes_state(view: TraceView, a: Act) -> bool:
    """Is this a call of a state-changing tool (its name starts with one of the vocabulary's
    `state_changing_verbs`: update_order, edit_file, send_email), not a finish pseudo-tool?"""
    words = tx.name_words(a.tool)
    return bool(words) and words[0] in view.vocab.state_changing_verbs and not a.is_finish


CODE_LOOKBACK: Final = 2  # messages by other speakers looked through for the code a message answers


def previous_speaker(steps: list[Step], k: int) -> Step | None:
    """The chat message before position `k`, by another speaker than `steps[k]`'s, whose code or request the
    message answers: the nearest one, unless it holds no code block and the one before it (of the last
    `CODE_LOOKBACK` by other speakers) does. A coordinator's "please run the script" between the code and the
    terminal's output passes the code on; the code's author wrote what ran."""
    speaker = steps[k].agent
    nearest: Step | None = None
    seen = 0
    for j in range(k - 1, -1, -1):
        prev = steps[j]
        if prev.kind == "message" and prev.agent != speaker:
            if prev.content.find("```", 0, 4000) != -1:
                return prev
            if nearest is None:
                nearest = prev
            seen += 1
            if seen >= CODE_LOOKBACK:
                break
    return nearest


_NO_TOKENS: Final[frozenset[str]] = frozenset()


def _tool_and_args(step: Step) -> tuple[str, str]:
    """Tool name and arguments of an action step, from the structured fields or, failing that, the content."""
    if step.tool_name:
        return step.tool_name.strip(), (step.tool_input or "").strip()
    return tx.parse_action_text(step.content)


def _signature_of(call: str) -> tuple[str, frozenset[str]]:
    """The normalised "tool args" of a call and its tokens (`Act.signature`, `Act.tokens`)."""
    signature = tx.normalise(call)
    return signature, frozenset(tx.tokens(signature))


# Calls repeat across the traces of one agent (the same tool asked the same thing).
_signature_cached: Final = functools.lru_cache(maxsize=4096)(_signature_of)


def _signature(call: str) -> tuple[str, frozenset[str]]:
    """`_signature_of`, cached for calls up to `tx.CACHED_CHARS` characters (as `tx.cached_for_short_text`, written
    out: a module function is called directly, the closure that returns through Python's call protocol)."""
    return _signature_cached(call) if len(call) <= tx.CACHED_CHARS else _signature_of(call)


def _add_act(
    step: Step,
    group: tuple[str, int],
    thought: Step | None,
    result: Step | None,
    finish_tools: frozenset[str],
    acts: list[Act],
    tools: set[str],
    open_last: dict[tuple[str, int], Act],
) -> Act:
    """`build_view`'s record of one action (a module function: a compiled closure is called through Python's call
    protocol, and this runs for every action of every trace)."""
    if step.tool_name:  # `_tool_and_args` written out (a call per action costs more than its tests)
        tool, args = step.tool_name.strip(), (step.tool_input or "").strip()
    else:
        tool, args = tx.parse_action_text(step.content)
    # positionally: step, tool, args, signature, tokens, thought, result, group, next, is_finish
    act = Act(step, tool, args, "", _NO_TOKENS, thought, result, group, None, tool.strip().lower() in finish_tools)
    if tool:
        tools.add(tool)
    prev = open_last.get(group)
    if prev is not None:
        prev.next = act
    open_last[group] = act
    acts.append(act)
    return act


def is_model_span(step: Step) -> bool:
    """A span of a model call (OpenInference span kind LLM, or a span that names its model)."""
    return step.kind == "span" and (step.meta.get("span_kind") == "LLM" or bool(step.meta.get("model")))


def calling_model_spans(trace_steps: list[Step]) -> dict[int, int]:
    """Step index of each tool span -> step index of the model call that issued it: the nearest earlier model
    span under the same parent (the framework step that ran both), else the nearest earlier model span of the same
    agent. Empty when the trace has no model spans."""
    out: dict[int, int] = {}
    last_by_parent: dict[str | None, Step] = {}
    last_by_agent: dict[str | None, Step] = {}
    for s in trace_steps:
        if is_model_span(s):
            last_by_parent[s.parent_id] = s
            last_by_agent[s.agent] = s
        elif s.kind == "span" and s.tool_name:
            caller = last_by_parent.get(s.parent_id) or last_by_agent.get(s.agent)
            if caller is not None:
                out[s.index] = caller.index
    return out


def view_callers(view: TraceView) -> dict[int, int]:
    """`calling_model_spans` of the view's trace, computed once per trace."""
    key = ("calling_model_spans", -1)
    cached = view.memo.get(key)
    if cached is None:
        cached = view.memo[key] = calling_model_spans(view.trace.steps)
    return cached  # type: ignore[return-value]


def call_writer(view: TraceView, span: Step) -> Step | None:
    """The model span that wrote the call a tool span ran: the model span whose action took this span as its
    result (`build_view` pairs them by parent and tool name), else `calling_model_spans`'s pairing (the nearest
    earlier model span of the same parent, else of the same agent); None for a span no model span precedes. The
    one rule the blame of a rejected call (`call_errors`) and of the first error (`origin`) share."""
    key = ("call_owners", -1)
    cached = view.memo.get(key)
    if cached is None:  # result position -> the step of the first act it answers, once per trace
        first: dict[int, Step] = {}
        for a in view.acts:
            if a.result is not None and a.result is not a.step:
                first.setdefault(a.result.position, a.step)
        cached = view.memo[key] = first
    owners: dict[int, Step] = cached  # type: ignore[assignment]
    owner = owners.get(span.position)
    if owner is not None:
        return owner
    caller = view_callers(view).get(span.index)
    if caller is None:
        return None
    return next((s for s in view.trace.steps if s.index == caller), None)


def build_view(trace: Trace) -> TraceView:
    """Pair actions with their reasoning and results. Linear in the number of steps."""
    acts: list[Act] = []
    thoughts: list[Step] = []
    results: list[Step] = []
    messages: list[Step] = []
    tools: set[str] = set()
    heads: dict[int, str] = {}
    # The last thought seen per (parent, depth, agent): the reasoning an action at that level acts on.
    last_thought: dict[tuple[str, int, str | None], Step] = {}
    open_acts: dict[tuple[str, int], Act] = {}  # the action in each group still waiting for its result
    open_last: dict[tuple[str, int], Act] = {}  # the latest action in each group
    # span trees: the model span's call still waiting for the tool span that runs it, by (parent, tool name)
    calls: dict[tuple[str | None, str], Act] = {}

    vocab = vocabulary(trace.source_format)
    finish_tools = vocab.finish_tools
    for step in trace.steps:
        group = (step.parent_id or "", step.depth)
        kind = step.kind
        if kind == "thought":
            thoughts.append(step)
            last_thought[(group[0], group[1], step.agent)] = step
            continue
        if kind in ACTION_KINDS:
            thought = last_thought.pop((group[0], group[1], step.agent), None)
            open_acts[group] = _add_act(step, group, thought, None, finish_tools, acts, tools, open_last)
            continue
        if kind in RESULT_KINDS:
            results.append(step)
            closed = open_acts.pop(group, None)
            if closed is not None and closed.result is None:
                closed.result = step
        elif kind == "span" and step.tool_name:
            if is_model_span(step):
                # A model span that wrote a call: the call's act, until the tool span that runs it brings its result.
                # Its `tool_input` is the model's prompt (the otel loader's contract), its call's own input is meta
                # `call_arguments`.
                act = _add_act(step, ("", 0), None, step, finish_tools, acts, tools, open_last)
                own = step.meta.get("call_arguments")
                if isinstance(own, str):
                    act.args = own.strip()
                calls[(step.parent_id, step.tool_name.strip().lower())] = act
            else:
                caller = calls.pop((step.parent_id, step.tool_name.strip().lower()), None)
                if caller is not None and caller.result is caller.step:
                    # the tool span that ran it: one call, one act (written by the model span, answered by the tool)
                    caller.result = step
                    results.append(step)
                else:  # a tool span no model span of its parent wrote: it carries the call and its result
                    _add_act(step, ("", 0), None, step, finish_tools, acts, tools, open_last)
        elif kind in ("message", "span", "system"):
            messages.append(step)
        else:
            continue
        if len(step.content) > SCAN_CHARS:
            heads[step.position] = step.content[:SCAN_CHARS]
    # Nested sub-agent steps (depth > 0 under a result) are the sub-agent's own business; the detectors judge the
    # agent level that owns the task, the shallowest one. Span trees nest by call structure, not by agent, so
    # their tool spans all count.
    if acts:
        top = min([a.group[1] for a in acts])
        main = [a for a in acts if a.group[1] == top or a.step.kind == "span"]
    else:
        main = []
    for a in main:  # only the compared actions need their normalised signature
        a.signature, a.tokens = _signature(f"{a.tool} {a.args}")
    return TraceView(
        trace=trace,
        main_acts=main,
        acts=acts,
        thoughts=thoughts,
        results=results,
        messages=messages,
        final_answer=trace.final_answer or "",
        task=trace.task or "",
        tools=tools,
        result_heads=heads,
        vocab=vocab,
        kinds=frozenset([s.kind for s in trace.steps]),
    )
