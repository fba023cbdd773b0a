"""AutoGen AgentChat / Magentic-One console logs: the text `Console` prints, saved to a file.

Shape: blocks headed `---------- TextMessage (user) ----------` (AgentChat 0.4+: message type and source) or
`---------- user ----------` (source only, older 0.4 releases and Magentic-One). Tool calls print as
`[FunctionCall(id='...', arguments='{...}', name='...')]`, their results as
`[FunctionExecutionResult(content='...', name='...', call_id='...', is_error=False)]`. The console may end with
run statistics (`Number of messages:`, `Finish reason:`, `Total prompt tokens:`, `Duration:`).

Contract: one step per block (one per call for tool-call and tool-result blocks), `Step.index` = the block's
0-based number, agent = the block's source. Role: source `user` -> user; a ToolCallRequestEvent -> agent, kind
tool_call (tool_name, tool_input = the arguments); a ToolCallExecutionEvent -> tool, kind tool_result
(`is_error=True` sets is_error; the content is unwrapped); a ThoughtEvent -> agent thought; other blocks -> agent
message. Text before the first header is kept as a system step. `[Prompt tokens: ...]` lines are dropped from
contents (kept in meta). Task = the first user message; final answer = the last agent message; outcome = the
console's `Finish reason` when printed; framework = "AutoGen". Linear in the text length.
"""

from __future__ import annotations

import re
from typing import Any

from trajfm.traces._common import Source, StepBuilder, finish_trace, new_trace, unwrap_tool_result
from trajfm.traces.format import Format
from trajfm.traces.model import Trace

FORMAT = "autogen"

_HEADER = re.compile(r"^-{10} (?P<head>\S(?:.{0,120}?\S)?) -{10}\s*$")
_TYPED = re.compile(r"^(?P<type>[A-Z]\w*(?:Message|Event)) \((?P<source>[^()]{1,100})\)$")
_CALL = re.compile(
    r"FunctionCall\(id=(?P<q1>['\"])(?P<id>.*?)(?P=q1), arguments=(?P<q2>['\"])(?P<args>(?:\\.|(?!(?P=q2))[^\\])*)(?P=q2), "
    r"name=(?P<q3>['\"])(?P<name>.*?)(?P=q3)\)",
    re.DOTALL,
)
_RESULT = re.compile(
    r"FunctionExecutionResult\(content=(?P<q>['\"])(?P<content>(?:\\.|(?!(?P=q))[^\\])*)(?P=q),"
    r"(?: name=(?P<q2>['\"])(?P<name>.*?)(?P=q2),)? call_id=(?P<q3>['\"])(?P<id>.*?)(?P=q3), "
    r"is_error=(?P<err>True|False)\)",
    re.DOTALL,
)
_TOKENS = re.compile(r"^\[Prompt tokens: \d+, Completion tokens: \d+\]\s*$")
_STATS = ("Number of messages:", "Finish reason:", "Total prompt tokens:", "Total completion tokens:", "Duration:")
_MAX_LINE = 300


def _headers(text: str, stop_at: int | None = None) -> int:
    n = 0
    for line in text.split("\n"):
        if line.startswith("-" * 10) and len(line) <= _MAX_LINE and _HEADER.match(line):
            n += 1
            if stop_at is not None and n >= stop_at:
                break
    return n


def score_text(text: str) -> float:
    n = _headers(text, stop_at=3)
    return 0.9 if n >= 2 else (0.5 if n == 1 else 0.0)


def _unescape(s: str) -> str:
    # Python repr escapes inside the quoted strings the console prints.
    return s.replace("\\n", "\n").replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")


def parse(doc: Any, source: Source) -> list[Trace]:
    if not isinstance(doc, str):
        raise source.error("an AutoGen console log is text, not JSON")
    lines = doc.split("\n")
    blocks: list[tuple[str | None, str | None, list[str]]] = []  # (type, source, lines)
    preamble: list[str] = []
    for line in lines:
        m = _HEADER.match(line) if line.startswith("-" * 10) and len(line) <= _MAX_LINE else None
        if m is not None:
            head = m.group("head")
            typed = _TYPED.match(head)
            if typed:
                blocks.append((typed.group("type"), typed.group("source").strip(), []))
            else:
                blocks.append((None, head.strip(), []))
        elif blocks:
            blocks[-1][2].append(line)
        else:
            preamble.append(line)
    if not blocks:
        raise source.error("no `---------- source ----------` blocks found: not an AutoGen console log")
    builder = StepBuilder()
    if "\n".join(preamble).strip():
        builder.add(index=0, kind="system", content="\n".join(preamble).strip(), role="system", step_id="preamble")
    meta_trace: dict[str, Any] = {}
    stats: dict[str, str] = {}
    for n, (mtype, who, body_lines) in enumerate(blocks):
        kept: list[str] = []
        tokens: list[str] = []
        for line in body_lines:
            if _TOKENS.match(line):
                tokens.append(line.strip())
            elif n == len(blocks) - 1 and line.startswith(_STATS):
                key, _, value = line.partition(":")
                stats[key.strip()] = value.strip()
            else:
                kept.append(line)
        body = "\n".join(kept).strip()
        meta: dict[str, Any] = {"message_type": mtype} if mtype else {}
        if tokens:
            meta["tokens"] = tokens
        is_user = (who or "").lower() == "user"
        if mtype == "ToolCallRequestEvent" or (mtype is None and body.startswith("[FunctionCall(")):
            calls = list(_CALL.finditer(body))
            if calls:
                for k, c in enumerate(calls):
                    args = _unescape(c.group("args"))
                    builder.add(index=n, kind="tool_call", content=f"{c.group('name')}({args})", role="agent",
                                step_id=f"{n}.{k}", agent=who, tool_name=c.group("name"), tool_input=args,
                                meta={**meta, "tool_call_id": c.group("id")})  # fmt: skip
                continue
        if mtype == "ToolCallExecutionEvent" or (mtype is None and body.startswith("[FunctionExecutionResult(")):
            results = list(_RESULT.finditer(body))
            if results:
                for k, r in enumerate(results):
                    res = unwrap_tool_result(_unescape(r.group("content")))
                    builder.add(index=n, kind="tool_result", content=res.text, role="tool", step_id=f"{n}.{k}",
                                agent=who, tool_name=r.group("name"),
                                is_error=r.group("err") == "True" or res.is_error,
                                meta={**meta, **res.meta(), "tool_call_id": r.group("id")})  # fmt: skip
                continue
        if mtype == "UserInputRequestedEvent":
            continue
        kind = "thought" if mtype == "ThoughtEvent" else "message"
        builder.add(index=n, kind=kind, content=body, role="user" if is_user else "agent", step_id=str(n),
                    agent=who, meta=meta)  # fmt: skip
    if stats:
        meta_trace["console_stats"] = stats
    task = next((s.content for s in builder.steps if s.role == "user" and s.content), "")
    final = next(
        (s.content for s in reversed(builder.steps) if s.role == "agent" and s.kind == "message" and s.content), None
    )
    agents = {s.agent for s in builder.steps if s.role == "agent" and s.agent}
    trace = new_trace(
        source,
        FORMAT,
        task=task,
        final_answer=final,
        multi_agent=len(agents) > 1,
        outcome=f"finish_reason={stats['Finish reason']}" if stats.get("Finish reason") else None,
        framework="AutoGen",
        meta=meta_trace,
    )
    return [finish_trace(trace, builder.steps, source)]


class AutoGenFormat(Format, parser=parse):
    name = FORMAT
    description = "AutoGen AgentChat / Magentic-One console logs (`---------- TextMessage (agent) ----------` blocks)"
    origin = "microsoft/autogen `Console` output saved to a text file (`.txt`, `.log`)"

    def score(self, doc: Any) -> float:
        return 0.0  # a text format: JSON documents never fit

    def score_text(self, text: str) -> float:
        return score_text(text)
