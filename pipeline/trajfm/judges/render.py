"""Rendering a trace as text for an LLM judge, within a character budget, and redacting secrets.

Contract:
- `render_trace(trace, budget_chars=...)` returns a `Rendering`: one or more `RenderedChunk`s whose text shows the
  task, then each step under a `STEP <index>` header where <index> is `Step.index` (the source's own numbering),
  with THOUGHT / ACTION / OBSERVATION (or the step's kind) labels, sub-agent steps indented by depth, then the
  final answer. The text of each step is the source text, verbatim, so the judge's quotes can be verified.
- Nothing is cut silently. When the whole trace exceeds the budget, the longest steps first lose their middle,
  replaced by a visible marker `[... N characters omitted by trajfm ...]` (never below `min_step_chars` per
  step). If the trace still does not fit, it is split into chunks of whole step groups, each judged separately
  and merged by the LLM judge. Both are recorded in `Rendering.info()` (per trace) for the manifest.
- `redact(text)` replaces API keys, bearer tokens, passwords and e-mail addresses with `[REDACTED-<KIND>]`
  before text leaves the machine; `Rendering.redactions` counts what was replaced.

Tokens are estimated as characters / 4 throughout (`estimate_tokens`): a rough rule of thumb for English and
JSON with BPE tokenizers, good enough for a dry-run budget, not a bill.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trajfm.traces.model import Step, Trace

RENDER_VERSION = "r1"
DEFAULT_BUDGET_CHARS = 60_000
DEFAULT_MIN_STEP_CHARS = 400
INDENT = "    "

# --- redaction -------------------------------------------------------------------------------------------------
# Order matters: specific key shapes first, then generic "password=..." assignments, then e-mail addresses.
_REDACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "PRIVATE-KEY",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ),
    ("API-KEY", re.compile(r"\b(?:sk|pk|rk)-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_\-]{16,}")),
    ("API-KEY", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}")),
    ("API-KEY", re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}")),
    ("API-KEY", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("API-KEY", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("TOKEN", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    ("TOKEN", re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9_\-.=+/]{12,}")),
    (
        "SECRET",
        re.compile(
            r"(?i)(\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token)"
            r"\s*[:=]\s*[\"']?)[^\s\"',;]{4,}"
        ),
    ),
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")),
)


def redact(text: str, counts: dict[str, int] | None = None) -> str:
    """Replace secrets and e-mail addresses in `text`; add the number replaced per kind to `counts`."""
    for kind, pattern in _REDACTIONS:

        def _sub(m: re.Match[str], kind: str = kind) -> str:
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            # Keep a captured prefix ("Bearer ", "password=") so the reader still sees what was there.
            prefix = m.group(1) if m.re.groups else ""
            return f"{prefix}[REDACTED-{kind}]"

        text = pattern.sub(_sub, text)
    return text


def estimate_tokens(chars: int) -> int:
    """Tokens estimated as characters / 4 (rounded up)."""
    return (chars + 3) // 4


# --- rendering -------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RenderedChunk:
    """The rendered text of a trace, or of one part of it."""

    text: str
    part: int  # 1-based
    parts: int
    first_step: int | None
    last_step: int | None
    has_final_answer: bool
    # (step index, rendered text) of each part of the chunk: the task (None), each step group, the final answer
    # (at the last step). Quote verification maps a quote back to its step with it.
    sections: list[tuple[int | None, str]] = field(default_factory=list)


@dataclass(slots=True)
class Rendering:
    """How a trace was rendered: its chunks and what had to be shortened to fit the budget."""

    chunks: list[RenderedChunk]
    budget_chars: int
    full_chars: int  # the rendering without any shortening
    elided_steps: int = 0
    elided_chars: int = 0
    redactions: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(c.text for c in self.chunks)

    @property
    def truncated(self) -> bool:
        return self.elided_steps > 0

    @property
    def chunked(self) -> bool:
        return len(self.chunks) > 1

    def info(self) -> dict[str, Any]:
        """What the manifest and `Diagnosis.extra["render"]` record for this trace."""
        return {
            "render_version": RENDER_VERSION,
            "budget_chars": self.budget_chars,
            "full_chars": self.full_chars,
            "rendered_chars": sum(len(c.text) for c in self.chunks),
            "chunks": len(self.chunks),
            "elided_steps": self.elided_steps,
            "elided_chars": self.elided_chars,
            "redactions": dict(self.redactions),
        }


def _label(step: Step, multi_agent: bool) -> str:
    kind = step.kind.upper().replace("_", " ")
    bits = []
    if step.depth > 0:
        bits.append(f"sub-agent {step.agent}" if step.agent else "sub-agent")
    elif step.agent and multi_agent:
        bits.append(f"agent {step.agent}")
    if step.tool_name and step.kind in ("action", "tool_call"):
        bits.append(f"tool {step.tool_name}")
    if step.is_error:
        bits.append("error")
    return f"{kind} ({', '.join(bits)})" if bits else kind


def _elide(text: str, cap: int) -> tuple[str, int]:
    """Keep the head and tail of `text` within about `cap` characters; return (text, characters removed)."""
    if len(text) <= cap:
        return text, 0
    head = cap * 2 // 3
    tail = cap - head
    removed = len(text) - head - tail
    return (
        f"{text[:head]} [... {removed} characters omitted by trajfm ...] {text[len(text) - tail :]}",
        removed,
    )


def _step_lines(step: Step, body: str, multi_agent: bool) -> list[str]:
    pad = INDENT * step.depth
    lines = body.splitlines() or [""]
    out = [f"{pad}{_label(step, multi_agent)}: {lines[0]}"]
    out.extend(f"{pad}  {line}" for line in lines[1:])
    return out


def _groups(trace: Trace) -> list[list[Step]]:
    """Steps grouped by consecutive top-level index (a ReAct step with its thought, action, observation, and
    the sub-agent steps nested under it)."""
    groups: list[list[Step]] = []
    current: int | None = None
    for s in trace.steps:
        if not groups or (s.depth == 0 and s.index != current):
            groups.append([])
            current = s.index
        groups[-1].append(s)
    return groups


def _render_group(group: list[Step], bodies: dict[int, str], multi_agent: bool) -> str:
    lines = [f"STEP {group[0].index}"]
    prev_index = group[0].index
    for s in group:
        if s.depth == 0 and s.index != prev_index:  # defensive: never hide a change of index
            lines.append(f"STEP {s.index}")
            prev_index = s.index
        lines.extend(_step_lines(s, bodies[s.position], multi_agent))
    return "\n".join(lines)


def _head(task: str) -> str:
    return f"TASK:\n{task}"


def _tail(final_answer: str | None) -> str:
    return (
        f"FINAL ANSWER:\n{final_answer if final_answer is not None else '(none: the trace ends without one)'}"
    )


def _caps_to_fit(lengths: list[int], room: int, floor: int) -> int | None:
    """The largest per-step cap so that sum(min(len, cap)) <= room, or None when even `floor` is too much."""
    if sum(lengths) <= room:
        return max(lengths, default=0)
    if sum(min(n, floor) for n in lengths) > room:
        return None
    lo, hi = floor, max(lengths)
    while lo < hi:  # binary search on the cap: total length is monotone in it
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= room:
            lo = mid
        else:
            hi = mid - 1
    return lo


def render_trace(
    trace: Trace,
    *,
    budget_chars: int = DEFAULT_BUDGET_CHARS,
    min_step_chars: int = DEFAULT_MIN_STEP_CHARS,
    redact_secrets: bool = False,
) -> Rendering:
    """Render `trace` for a judge within `budget_chars` per chunk (see the module docstring)."""
    counts: dict[str, int] = {}
    clean: Callable[[str], str] = (lambda t: redact(t, counts)) if redact_secrets else (lambda t: t)
    multi = bool(trace.multi_agent) or len(trace.agents) > 1
    task = clean(trace.task)
    final = clean(trace.final_answer) if trace.final_answer is not None else None
    # A step's body is its content plus its tool input when the content does not already show it.
    bodies = {
        s.position: clean(
            s.content
            + (f"\ntool input: {s.tool_input}" if s.tool_input and s.tool_input not in s.content else "")
        )
        for s in trace.steps
    }
    groups = _groups(trace)
    head, tail = _head(task), _tail(final)
    full = [_render_group(g, bodies, multi) for g in groups]
    full_text = "\n\n".join([head, *full, tail])
    rendering = Rendering(chunks=[], budget_chars=budget_chars, full_chars=len(full_text), redactions=counts)
    last_index = groups[-1][0].index if groups else None

    def sections(group_ids: list[int], texts: list[str], with_tail: bool) -> list[tuple[int | None, str]]:
        out: list[tuple[int | None, str]] = [(None, head)]
        out += [(groups[gi][0].index, texts[gi]) for gi in group_ids]
        if with_tail:
            out.append((last_index, tail))
        return out

    every = list(range(len(groups)))
    if len(full_text) <= budget_chars:
        first, last = (groups[0][0].index, groups[-1][0].index) if groups else (None, None)
        rendering.chunks = [RenderedChunk(full_text, 1, 1, first, last, True, sections(every, full, True))]
        return rendering

    # Shorten the longest step bodies first, down to min_step_chars each.
    structure = len(full_text) - sum(len(b) for b in bodies.values())
    room = budget_chars - structure - 200 * len(bodies)  # 200: room for the omission markers
    lengths = [len(bodies[s.position]) for s in trace.steps]
    cap = _caps_to_fit(lengths, room, min_step_chars)
    if cap is None:
        cap = min_step_chars  # still too long: elide to the floor, then chunk below
    short: dict[int, str] = {}
    for s in trace.steps:
        short[s.position], removed = _elide(bodies[s.position], cap)
        if removed:
            rendering.elided_steps += 1
            rendering.elided_chars += removed
    rendered_groups = [_render_group(g, short, multi) for g in groups]
    text = "\n\n".join([head, *rendered_groups, tail])
    if len(text) <= budget_chars:
        first, last = (groups[0][0].index, groups[-1][0].index) if groups else (None, None)
        rendering.chunks = [
            RenderedChunk(text, 1, 1, first, last, True, sections(every, rendered_groups, True))
        ]
        return rendering

    # Chunk: consecutive step groups, each chunk repeating the task; the final answer goes with the last one.
    window: list[int] = []
    windows: list[list[int]] = []
    size = len(head) + len(tail) + 200
    for gi, g_text in enumerate(rendered_groups):
        if window and size + len(g_text) > budget_chars:
            windows.append(window)
            window, size = [], len(head) + len(tail) + 200
        window.append(gi)
        size += len(g_text) + 2
    windows.append(window)
    n = len(windows)
    for k, w in enumerate(windows, start=1):
        first, last = groups[w[0]][0].index, groups[w[-1]][0].index
        note = (
            f"(PART {k} OF {n} of this trace: steps {first} to {last}. The other parts are judged separately; "
            "judge only what this part shows.)"
        )
        parts = [head, note, *(rendered_groups[gi] for gi in w)]
        if k == n:
            parts.append(tail)
        rendering.chunks.append(
            RenderedChunk("\n\n".join(parts), k, n, first, last, k == n, sections(w, rendered_groups, k == n))
        )
    return rendering
