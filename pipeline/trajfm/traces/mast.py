"""MAST records and raw text logs of multi-agent systems (ChatDev, MetaGPT, AG2, AppWorld, HyperAgent, Magentic-One,
OpenManus), split into turns where the text shows who speaks.

Accepted shapes: a MAST record {trace: str, mas_name, benchmark_name, trace_id, ...}, a list of records (one trace
per record, trace id `<file>#<record number>`, 0-based), or raw text (a .txt/.log file, or any file with
`--format mast`). A record's text that is itself JSON (AG2, HyperAgent, MetaGPT exports) is decoded: a message
list becomes one step per message; a list of log lines or a `content` log is split like raw text.

Splitting: each line is matched against a few anchored speaker patterns (ChatDev "[ts INFO] Role: **",
loguru "ts | LEVEL | module:fn:line - Name(Role): ", MetaGPT "FROM: X TO:", AppWorld "Response from X Agent",
Magentic-One "---------- X ----------", AG2 "X (to Y):", HyperAgent "X's Response:", "User:"/"Assistant:").
The bare "Name:" patterns ("SimpleCoder:", "Assistant:") count only in a log with fewer than two framed speaker
lines: inside a ChatDev or Magentic-One log, "PowerPoint: ..." or a team list's "Assistant: A helpful ..." is text.
A matching line starts a new turn (kind "message", agent = speaker); other lines continue the current turn; text
before the first speaker line is a preamble step without agent. Fewer than two speaker lines -> one step holding
the whole text. No text is dropped: the steps' contents joined by newlines give back the log. `Step.index` is
the 0-based turn number. Work is linear in the text length (one anchored match per line per pattern).
Roles: a User/Human speaker -> user, a System speaker or a framework section header -> system, program output
("Code Execution Output") -> environment, the preamble before the first speaker -> system, other speakers ->
agent. Annotations (the human labels) are not copied into the trace.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from trajfm.traces._common import Source, StepBuilder, finish_trace, new_trace
from trajfm.traces.fields import opt_str, require_dict, to_text
from trajfm.traces.format import Format, key_fit
from trajfm.traces.model import Trace

FORMAT = "mast"

_TS = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}"
# (pattern, kind, bare: a "Name:" line with no framing of its own); the optional group "who" is the speaker.
# Tried in order: the first that matches wins.
_SPEAKERS: list[tuple[str, str, bool]] = [
    (rf"\[{_TS} INFO\] (?P<who>[A-Za-z][A-Za-z ]{{0,40}}): \*\*", "message", False),  # ChatDev role line
    (rf"\[{_TS} INFO\] \*\*\[(?P<who>[^\]]{{1,60}})\]\*\*", "system", False),  # ChatDev section header
    (rf"{_TS}\.\d+ \| *[A-Z]+ *\| [\w.]+:\w+:\d+ - (?:\w+)\((?P<who>\w+)\): ", "message", False),  # MetaGPT loguru
    (rf"{_TS}\.\d+ \| *[A-Z]+ *\| (?:[\w]+\.)*(?P<who>\w+):\w+:\d+ - ", "message", False),  # loguru module
    (rf"\[{_TS}\] FROM: (?P<who>\S+) TO:", "message", False),  # MetaGPT message log
    (r"(?P<who>[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+):(?:\s|$)", "message", True),  # "SimpleCoder:"
    (r"\s*Response from (?P<who>.{1,60}? Agent)\s*$", "message", False),  # AppWorld
    (r"\s*(?:Message to .{1,60} Agent|Code Execution Output)\s*$", "observation", False),  # AppWorld input/output
    (r"-{5,} (?P<who>\S.{0,60}?) -{5,}\s*$", "message", False),  # Magentic-One console
    (r"(?P<who>\w[\w .-]{0,60}) \(to \w[\w .-]{0,60}\):\s*$", "message", False),  # AG2 console
    (r"\S+ - INFO - (?P<who>[\w -]{1,60})'s Response:", "message", False),  # HyperAgent
    (r"(?P<who>User|Assistant|System|Human|AI|USER|ASSISTANT|SYSTEM)\s*:(?:\s|$)", "message", True),
]
# Bare "Name:" patterns carry no framing of their own: in a log whose turns a framed pattern (timestamps, dashes,
# "Response from") already marks, a line such as "PowerPoint: ..." or "Assistant: A helpful assistant" is text
# inside a turn (a quoted team list, a document), not a new speaker. They count only without a framed pattern.
_BARE = frozenset(i for i, (_, _, bare) in enumerate(_SPEAKERS) if bare)
MIN_FRAMED = 2  # framed speaker lines needed before the bare ones stop counting
# One anchored alternation, so each line costs one match call in C; group p<i> tells which pattern matched.
_SPEAKER_RE = re.compile(
    "|".join(f"(?P<p{i}>{pat.replace('(?P<who>', f'(?P<w{i}>')})" for i, (pat, _, _) in enumerate(_SPEAKERS))
)
_KINDS = [kind for _, kind, _ in _SPEAKERS]
_MAX_LINE_FOR_MATCH = 400  # speaker lines are short; skipping long lines keeps matching cheap on dumps


_RECORD_KEYS = ("mas_name", "benchmark_name", "trace_id")
_MARKERS = ("mas_name", "benchmark_name", "annotations", "mast_annotation", "trace_id")


def score(doc: Any) -> float:
    """A MAST record: `trace` as text plus MAST's own keys (a bare {trace: text} is too weak to claim)."""
    if not isinstance(doc, dict):
        return 0.0
    text = doc.get("trace")
    if not isinstance(text, str) or not any(k in doc for k in _MARKERS):
        return 0.0
    return round(0.5 + 0.25 * key_fit(doc, _RECORD_KEYS) + (0.25 if text.strip() else 0.0), 4)


def speaker_role(speaker: str | None, kind: str) -> str:
    if kind == "system" or speaker is None:
        return "system"
    if kind == "observation":
        return "environment"
    low = speaker.lower()
    if low in ("user", "human"):
        return "user"
    if low == "system":
        return "system"
    return "agent"


def count_speakers(text: str, *, stop_at: int) -> int:
    """How many lines start a speaker's turn (counting stops at `stop_at`)."""
    n = 0
    for line in text.split("\n"):
        if line and len(line) <= _MAX_LINE_FOR_MATCH and _SPEAKER_RE.match(line):
            n += 1
            if n >= stop_at:
                break
    return n


def split_turns(text: str) -> list[tuple[str | None, str, str, str | None]]:
    """(speaker, kind, text, header) turns of a raw log; one turn with the whole text when no speakers are found.

    Framework section headers (ChatDev's "**[Seminar Conclusion]**") start a turn of kind "system" with no
    speaker; their name is returned as `header`.
    """
    lines = text.split("\n")
    matched: list[tuple[int, int, re.Match[str]]] = []  # (line number, pattern index, match)
    for n, line in enumerate(lines):
        if not line or len(line) > _MAX_LINE_FOR_MATCH:
            continue
        m = _SPEAKER_RE.match(line)
        if m is not None:
            matched.append((n, int((m.lastgroup or "p0")[1:]), m))
    if sum(1 for _, i, _ in matched if i not in _BARE) >= MIN_FRAMED:
        matched = [hit for hit in matched if hit[1] not in _BARE]
    starts: list[tuple[int, str | None, str, str | None]] = []
    for n, i, m in matched:
        line = lines[n]
        kind = _KINDS[i]
        who = m.groupdict().get(f"w{i}")
        who = who.strip() if who else None
        if kind == "system":
            starts.append((n, None, kind, who))
        elif kind == "observation":
            starts.append((n, "environment", kind, line.strip()))
        else:
            starts.append((n, who, kind, None))
    if len(starts) < 2:
        return [(None, "message", text, None)]
    turns: list[tuple[str | None, str, str, str | None]] = []
    if starts[0][0] > 0:
        turns.append((None, "message", "\n".join(lines[: starts[0][0]]), None))
    for k, (n, speaker, kind, header) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        turns.append((speaker, kind, "\n".join(lines[n:end]), header))
    return turns


def parse(doc: Any, source: Source) -> list[Trace]:
    if isinstance(doc, str):
        return [_build(doc, {}, source)]
    if isinstance(doc, list):
        if not doc:
            raise source.error("empty list: no MAST records")
        return [_parse_record(rec, source.with_record(n)) for n, rec in enumerate(doc)]
    return [_parse_record(doc, source)]


def _parse_record(rec: Any, source: Source) -> Trace:
    rec = require_dict(rec, "a MAST record", source)
    text = rec.get("trace")
    if not isinstance(text, str):
        raise source.error("a MAST record needs 'trace' (the log text) as a string")
    return _build(text, rec, source)


def _build(text: str, rec: dict[str, Any], source: Source) -> Trace:
    if not text.strip():
        raise source.error("empty trajectory: the log text is empty")
    builder = StepBuilder()
    task = ""
    inner: Any = None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            inner = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            inner = None
    if isinstance(inner, dict):
        task = to_text(inner.get("problem_statement", inner.get("prompt", inner.get("task"))))
        traj = inner.get("trajectory")
        if isinstance(traj, list) and traj and all(isinstance(m, dict) for m in traj):
            for i, msg in enumerate(traj):
                agent = opt_str(msg.get("name")) or opt_str(msg.get("role"))
                role = speaker_role(agent, "message") if agent else "agent"
                builder.add(index=i, kind="message", content=to_text(msg.get("content")), role=role, step_id=str(i),
                            agent=agent, meta={"role": opt_str(msg.get("role"))} if msg.get("role") else {})  # fmt: skip
        else:
            if isinstance(traj, list):
                log = "\n".join(to_text(x) for x in traj)
            elif isinstance(inner.get("content"), str):
                log = inner["content"]
            else:
                log = text
            _add_turns(builder, log)
    else:
        _add_turns(builder, text)
        task = _task_from_log(text, builder)
    meta: dict[str, Any] = {}
    for key in ("mas_name", "benchmark_name", "round"):
        value = opt_str(rec.get(key))
        if value:
            meta[key] = value
    native = rec.get("trace_id")
    if native is not None and not isinstance(native, dict | list):
        meta["native_trace_id"] = native if isinstance(native, int | str) else str(native)
    agents = {s.agent for s in builder.steps if s.agent and s.agent != "environment"}
    trace = new_trace(
        source,
        FORMAT,
        task=task,
        scenario=opt_str(rec.get("benchmark_name")),
        multi_agent=len(agents) > 1,
        meta=meta,
    )
    return finish_trace(trace, builder.steps, source)


def _add_turns(builder: StepBuilder, log: str) -> None:
    turns = split_turns(log)
    for i, (speaker, kind, chunk, header) in enumerate(turns):
        # One turn holding the whole log (no speakers found): the system's own output, read as the agent's.
        role = "agent" if len(turns) == 1 else speaker_role(speaker, kind)
        builder.add(index=i, kind=kind, content=chunk, role=role, step_id=str(i), agent=speaker,
                    meta={"header": header} if header else {})  # fmt: skip


def _task_from_log(text: str, builder: StepBuilder) -> str:
    # ChatDev writes the task as a "**task_prompt**:" line; chat-style logs open with the user's turn.
    cut = text.find("**task_prompt**:")
    if cut >= 0:
        end = text.find("\n", cut)
        return text[cut + len("**task_prompt**:") : end if end >= 0 else len(text)].strip()
    for s in builder.steps:
        if (s.agent or "").lower() in ("user", "human"):
            return s.content
    return ""


class MastFormat(Format, scorer=score, parser=parse):
    name = FORMAT
    description = "raw text logs of multi-agent systems, split into turns on recognisable speaker patterns"
    origin = "MAST (ChatDev, MetaGPT, AG2, AppWorld, HyperAgent, Magentic-One, OpenManus) records; `.txt`, `.log`"
    has_final_answer = False
    has_task = False  # many raw logs never state the task in a recognisable way

    def score_text(self, text: str) -> float:
        # A log where speakers take turns fits; any other text can still be read whole when forced (--format mast)
        # but is too weak to be taken for a trace on its own (a notes.txt beside the traces).
        if not text.strip():
            return 0.0
        return 0.65 if count_speakers(text, stop_at=2) >= 2 else 0.35
