"""Generic OpenAI-style chat transcripts, the lingua franca of agent logs.

Accepted shapes: {messages: [...], ...} (one trace; `id`/`model` read when present), a list of messages (one
trace), and JSONL of either: one {messages} object per line (one trace per line, trace id `<file>#<line number>`,
0-based) or one message per line (one trace per file; the loader gathers the lines into a list).

Contract: one step per message, `Step.index` = 0-based position in the message list. system/developer ->
kind system, assistant with `tool_calls` -> tool_call (first call's name and arguments as tool_name/tool_input),
tool/function -> tool_result (content starting with "Error" sets is_error), others -> message; agent = the
message's `name`, else its role; role: system/developer -> system, user/human -> user, tool/function -> tool,
the rest -> agent. Task = the first user message; final answer = the last assistant text.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import Source, StepBuilder, numbered, one_trace
from trajfm.traces.agentrx import add_chat_message
from trajfm.traces.fields import opt_str, require_list
from trajfm.traces.format import Format, item_fit
from trajfm.traces.model import Trace

FORMAT = "chat"


def is_message(item: Any) -> bool:
    return isinstance(item, dict) and "role" in item and ("content" in item or "tool_calls" in item)


_CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer", "human", "ai"})


def score(doc: Any) -> float:
    """{messages: [...]} or a list of messages; lower when the roles are not chat roles (an agent-named log)."""
    if isinstance(doc, dict):
        msgs = doc.get("messages")
        if not isinstance(msgs, list):
            return 0.0
        if not msgs:
            return 0.3  # an empty transcript: chat's error to report
        # Chat is the generic fallback: capped at 0.75 so a format that knows more of the document wins clearly.
        fit = item_fit(msgs, ("role", "content"), content=("content", "tool_calls"))
        return round(0.6 * fit + 0.15 * _chat_roles(msgs), 4)
    if isinstance(doc, list) and doc and all(is_message(m) for m in doc[:20]):
        return round(0.55 + 0.2 * _chat_roles(doc), 4)
    return 0.0


def _chat_roles(msgs: list[Any]) -> float:
    sample = [m for m in msgs[:20] if isinstance(m, dict)]
    if not sample:
        return 0.0
    return sum(1 for m in sample if str(m.get("role", "")).lower() in _CHAT_ROLES) / len(sample)


def parse(doc: Any, source: Source) -> list[Trace]:
    header: dict[str, Any] = {}
    if isinstance(doc, dict):
        header = doc
        messages = require_list(doc.get("messages"), "'messages'", source)
    else:
        messages = require_list(doc, "a chat transcript (list of messages)", source)
    builder = StepBuilder()
    for i, _, msg in numbered(messages, source, "message {n} should be an object with role and content", start=0):
        add_chat_message(builder, msg, index=i, step_id=str(i))
    said = [(s, (s.meta.get("role") or "").lower()) for s in builder.steps]  # by the message's own chat role
    task = next((s.content for s, role in said if role == "user"), "")
    final = next(
        (s.content for s, role in reversed(said) if s.kind == "message" and role == "assistant" and s.content), None
    )
    agents = {s.agent for s in builder.steps if s.agent and s.kind in ("message", "tool_call")}
    native = opt_str(header.get("id"))
    return one_trace(source, FORMAT, builder.steps, task=task, final_answer=final, utterance_id=native,
                     agent_model=opt_str(header.get("model")), multi_agent=len(agents - {"user", "assistant"}) > 1,
                     meta={"native_id": native} if native else {})  # fmt: skip


class ChatFormat(Format, scorer=score, parser=parse, part=is_message):
    name = FORMAT
    description = "OpenAI-style chat messages ({role, content, tool_calls}), one trace per file or per line"
    origin = "any chat-completions log: `{messages: [...]}`, a list of messages, or JSONL of either; JSON, JSONL"
