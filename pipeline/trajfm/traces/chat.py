"""Generic OpenAI-style chat transcripts, the lingua franca of agent logs.

Accepted shapes: {messages: [...], ...} (one trace; `id`/`model` read when present), a list of messages (one
trace), and JSONL of either: one {messages} object per line (one trace per line, trace id `<file>#<line number>`,
0-based) or one message per line (one trace per file; the loader gathers the lines into a list).

Contract: one step per message, `Step.index` = 0-based position in the message list. system/developer ->
kind system, assistant with `tool_calls` -> tool_call (first call's name and arguments as tool_name/tool_input),
tool/function -> tool_result (content starting with "Error" sets is_error), others -> message; agent = the
message's `name`, else its role. Task = the first user message; final answer = the last assistant text.
"""

from __future__ import annotations

from typing import Any

from trajfm.traces._common import Source, StepBuilder, finish_trace, opt_str, require_list
from trajfm.traces.agentrx import add_chat_message
from trajfm.traces.model import Trace

FORMAT = "chat"


def is_message(item: Any) -> bool:
    return isinstance(item, dict) and "role" in item and ("content" in item or "tool_calls" in item)


def sniff(doc: Any) -> bool:
    if isinstance(doc, dict):
        msgs = doc.get("messages")
        return isinstance(msgs, list) and (not msgs or is_message(msgs[0]))
    return isinstance(doc, list) and bool(doc) and all(is_message(m) for m in doc[:20])


def parse(doc: Any, source: Source) -> list[Trace]:
    header: dict[str, Any] = {}
    if isinstance(doc, dict):
        header = doc
        messages = require_list(doc.get("messages"), "'messages'", source)
    else:
        messages = require_list(doc, "a chat transcript (list of messages)", source)
    builder = StepBuilder()
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise source.error(f"message {i} should be an object with role and content")
        add_chat_message(builder, msg, index=i, step_id=str(i))
    task = next((s.content for s in builder.steps if (s.meta.get("role") or "").lower() == "user"), "")
    final = next(
        (
            s.content
            for s in reversed(builder.steps)
            if s.kind == "message" and (s.meta.get("role") or "").lower() == "assistant" and s.content
        ),
        None,
    )
    agents = {s.agent for s in builder.steps if s.agent and s.kind in ("message", "tool_call")}
    meta: dict[str, Any] = {}
    native = opt_str(header.get("id"))
    if native:
        meta["native_id"] = native
    trace = Trace(
        trace_id=source.trace_id(),
        source_path=source.path,
        source_format=FORMAT,
        task=task,
        final_answer=final,
        agent_model=opt_str(header.get("model")),
        utterance_id=native,
        multi_agent=len(agents - {"user", "assistant"}) > 1,
        meta=meta,
    )
    return [finish_trace(trace, builder.steps, source)]
