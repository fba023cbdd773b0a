"""Model turns in span trees: the model call behind a failed step, the model call that was shown the failure,
and answers a model gave without any evidence.

Span trees (OpenTelemetry / OpenInference) record each model call as its own span (`kind == "span"` with a model
name or span kind LLM in `meta`), nested under the framework's step span, with the tool spans the step ran beside
it. An error is then visible in three places: the step span's status, the tool span, and the input of the next
model call (the framework hands the error back to the model). This module reads model calls only; other layouts
(ReAct logs, chat logs) have no model-call steps and get no findings here.

- `invalid_action` (`detect_failed_model_turns`): a step span failed with an error that rejects the form of what
  the model wrote (an unexpected or missing argument, code that could not be parsed or run by the interpreter).
  The finding points at the model call nested under the failed step (it wrote the call) and at the next model
  call of the same agent whose input reports an error (where the failure shows up in the model's own context and
  where a reader of the trace meets it).
- `unsupported_answer` (`detect_unsupported_answers`): a model call issues the final answer (a finish tool, or
  code that calls one) although no tool, other agent or earlier run of its own code (a step output holding words
  the code did not write: `_informative_step_outputs`) had returned anything before it in the run, or while its
  own reasoning says the answer rests on assumptions, typical values or general knowledge. When the task tells
  the agent to verify its answer or to use its tools, such an answer also ignores that instruction
  (`verification_instruction_ignored`); when its reasoning says it looked something up although nothing had
  been retrieved, it claims a result that never existed (`claimed_unseen_result`).
- `announced_call_missing` (`detect_announced_calls_not_made`): a code-writing model call announces a call to a
  named tool or agent and its code never makes it.
"""

from __future__ import annotations

import re
from typing import Final

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.base import Finding, TraceView, call_writer, is_model_span, view_callers
from trajfm.judges.detectors.call_errors import REJECTED_CALL
from trajfm.traces.model import Step

INPUT_HEAD_CHARS: Final = 600

# Errors that say the model's output itself was wrong in form: the call's arguments, or the code the framework
# could not parse or the interpreter refused (a forbidden import, assigning to a tool's name).
_FORM_ERROR: Final = tx.Pattern(
    r"code (?:execution|parsing) failed|error in code parsing|interpretererror|syntaxerror|"
    r"(?:could|can)(?:not| not) be parsed|parsing error|agentparsingerror",
    needles=("code", "pars", "interpreter", "syntax"),
)
# The start of an error handed back to the model as its newest input ("Error:", "Error when executing tool ...").
_INPUT_ERROR: Final = tx.Pattern(
    r"(?:^|\n)\s*error\s*:|error when executing|code execution failed|error in code parsing|"
    r"(?:^|\n)\s*traceback|\b[a-z]+error: ",
    needles=("error", "traceback", "failed"),
)
# A finish call written as code by a code-writing agent ("final_answer(x)"); tool-calling agents name it in
# `tool_name` instead. The parenthesis follows the name directly: several finish names are English words, and
# prose puts a space before a parenthesis ("derive the final answer (the total count)").
_FINISH_IN_CODE: Final = re.compile(
    r"\b(?:" + "|".join(re.escape(t) for t in sorted(tx.FINISH_TOOLS) if t.isidentifier()) + r")\("
)
# Reasoning that says the answer is not grounded in anything the run retrieved.
_HEDGE: Final = tx.Pattern(
    r"\b(?:assum(?:e|ed|ing|ption)s?|typically|commonly (?:used|known|cited)|generally (?:known|accepted)|"
    r"well[- ]known|known to be|based on (?:my|general|common|prior|background) (?:knowledge|understanding)|"
    r"based on (?:what is|what's) (?:typically|commonly|generally)|from (?:memory|general knowledge)|"
    r"i recall|to the best of my knowledge|hypothetical(?:ly)?|placeholder|for (?:the sake of|illustration)|"
    r"(?:rough|best) (?:estimate|guess)|without (?:access|being able) to|simulat(?:e|ed|ing) (?:the|a|an|using|calling)|"
    r"in a real (?:scenario|setting|run)|i know (?:that|from|of))\b",
    needles=(
        "assum",
        "typically",
        "commonly",
        "generally",
        "known",
        "based on",
        "memory",
        "recall",
        "hypothetical",
        "placeholder",
        "for the sake",
        "for illustration",
        "estimate",
        "guess",
        "without",
        "simulat",
        "in a real",
        "i know",
    ),
)
# Reasoning that says something was looked up, checked or found: with nothing retrieved, a fabricated result.
_CLAIMS_RETRIEVAL: Final = tx.Pattern(
    r"\baccording to\b|\b(?:i|we) (?:have |had )?(?:found|verified|confirmed|checked|searched|looked up|retrieved|"
    r"located|obtained)\b|\bsearch(?:es)? (?:shows?|showed|returned|indicated?s?|confirm(?:s|ed)?)\b|"
    r"\bsources? (?:indicates?|states?|shows?|confirms?|reports?)\b|"
    r"\b(?:the|our) (?:search|investigation|research|lookup) (?:shows|found|revealed|indicates|confirmed)\b|"
    r"\bafter (?:a |an )?(?:search|searching|checking|reviewing|verifying|consulting)\b|"
    r"\b(?:has|have) been (?:verified|confirmed)\b|\bverified (?:that|from|via|with)\b",
    needles=(
        "accord",
        "found",
        "verif",
        "confirm",
        "check",
        "search",
        "look",
        "retriev",
        "locat",
        "obtain",
        "source",
        "research",
        "after",
    ),
)
# The task tells the agent to verify its answer or to use its tools: an answer without evidence ignores that.
_ASKS_VERIFICATION: Final = tx.Pattern(
    r"\b(?:run|perform|do|include) (?:the )?verification(?: steps?)?\b|\bverify (?:the|your|that|each|all)\b|"
    r"\bmust make sure\b|\bdouble[- ]check\b|\buse (?:the |your )?(?:provided|available|given) tools\b|"
    r"\bmust use (?:the |your )?tools?\b",
    needles=("verif", "make sure", "double", "tools"),
)
# "I will ask our search_agent ...", "Now I'll call inspect_file_as_text ...": the reasoning names the call it is
# about to make (a snake_case tool or agent name).
_ANNOUNCES_CALL: Final = re.compile(
    r"\b(?:I will|I'll|I need to|let me|we will|now)\s+(?:ask|use|call|query|send|delegate|hand)\w*\b"
    r"[^.\n]{0,60}?\b(?P<name>[a-z][a-z0-9]*_[a-z0-9_]+)\b",
    re.I,
)


def _is_agent_span(step: Step) -> bool:
    return step.kind == "span" and step.meta.get("span_kind") == "AGENT"


def _input_error(step: Step) -> re.Match[str] | None:
    head = (step.tool_input or "")[:INPUT_HEAD_CHARS]
    return _INPUT_ERROR.search(head, head.lower())


def detect_failed_model_turns(view: TraceView) -> list[Finding]:
    steps = view.trace.steps
    if "span" not in view.kinds or not any(is_model_span(s) for s in steps):
        return []
    out: list[Finding] = []
    seen: set[int] = set()
    for k, step in enumerate(steps):
        if not (step.kind == "span" and step.is_error and not step.tool_name and not is_model_span(step)):
            continue
        if _is_agent_span(step):
            continue  # an agent run that failed is the sum of its steps, judged step by step
        head = view.head(step)[:INPUT_HEAD_CHARS]
        low = head.lower()
        m = REJECTED_CALL.search(head, low) or _FORM_ERROR.search(head, low)
        if m is None:
            continue
        nested = [s for s in steps[k + 1 :] if s.parent_id == step.step_id and is_model_span(s)]
        if not nested:
            continue
        caller = nested[-1]
        receiver = next(
            (
                s
                for s in steps[k + 1 :]
                if is_model_span(s)
                and s is not caller
                and s.agent == caller.agent
                and s.position > caller.position
            ),
            None,
        )
        marked = [caller]
        if receiver is not None and _input_error(receiver) is not None:
            marked.append(receiver)
        marked = [s for s in marked if s.position not in seen]
        if not marked:
            continue
        seen.update(s.position for s in marked)
        evidence = tx.quote_match(step.content, m)
        shown = f"; step {marked[-1].index} received the error" if len(marked) > 1 else ""
        out.append(
            Finding.at(
                "invalid_action",
                caller,
                evidence,
                f"step {caller.index}: the model's output was rejected for its form when step {step.index} ran "
                f'it ("{tx.short(evidence, 90)}"){shown}',
                steps=[s.index for s in marked],
                tool=caller.tool_name,
                error=tx.short(evidence, 100),
            )
        )
    return out


def _issues_finish(step: Step) -> bool:
    if step.tool_name and tx.is_finish_tool(step.tool_name):
        return True
    return bool(_FINISH_IN_CODE.search(step.content[:20000]))


NEW_WORDS: Final = 3  # words an execution output must hold that its code did not write, to count as a result
_WORDS: Final = re.compile(r"[a-z0-9_]+")


def _informative_step_outputs(steps: list[Step]) -> dict[str, int]:
    """{step span id: position of its last model call} for the framework steps of a code-writing agent (spans
    directly under an agent run, neither a model call nor a tool) whose output holds at least `NEW_WORDS` words
    that the step's own model calls did not write and that are not the framework's wording around every output (a
    word in more than half of the steps' outputs). Such output came back from running the code: a file read, a
    computed value. Output that only echoes the code's own strings ("print(task)") is not something returned."""
    agent_ids = {s.step_id for s in steps if _is_agent_span(s)}
    runs = [
        s for s in steps
        if s.kind == "span" and s.parent_id in agent_ids and not s.tool_name and not s.is_error
        and not is_model_span(s) and s.content.strip()
    ]  # fmt: skip
    if not runs:
        return {}
    words_of = {s.step_id: set(_WORDS.findall(s.content[:20000].lower())) for s in runs}
    frequency: dict[str, int] = {}
    for words in words_of.values():
        for w in words:
            frequency[w] = frequency.get(w, 0) + 1
    framework = {w for w, n in frequency.items() if n * 2 > len(runs)} if len(runs) >= 2 else set()
    written: dict[str, set[str]] = {}
    last_call: dict[str, int] = {}
    for s in steps:
        if s.parent_id in words_of and is_model_span(s):
            written.setdefault(s.parent_id, set()).update(_WORDS.findall(s.content[:20000].lower()))
            last_call[s.parent_id] = max(last_call.get(s.parent_id, -1), s.position)
    out: dict[str, int] = {}
    for sid, words in words_of.items():
        if sid in last_call and len(words - written.get(sid, set()) - framework) >= NEW_WORDS:
            out[sid] = last_call[sid]
    return out


def detect_unsupported_answers(view: TraceView) -> list[Finding]:
    steps = view.trace.steps
    if "span" not in view.kinds or not any(is_model_span(s) for s in steps):
        return []
    out: list[Finding] = []
    evidence_seen = False  # has any tool, other agent or code run returned something before this point?
    agents_seen: set[str | None] = set()
    informative: dict[str, int] | None = None  # read from the step outputs only when an answer needs it
    for step in steps:
        if step.kind == "span" and step.tool_name and not is_model_span(step):
            if not tx.is_finish_tool(step.tool_name) and step.content.strip():
                evidence_seen = True
            continue
        if _is_agent_span(step):
            agents_seen.add(step.agent)
            if len(agents_seen) > 1:
                evidence_seen = True  # a second agent ran: its answer is evidence the first one can use
            continue
        if not is_model_span(step) or not _issues_finish(step):
            continue
        if not evidence_seen:
            if informative is None:
                informative = _informative_step_outputs(steps)
            # an earlier step's code ran and returned something (not this answer's own step)
            evidence_seen = any(last < step.position and sid != step.parent_id for sid, last in informative.items())
        text = step.content[:20000]
        hedge = _HEDGE.search(text, text.lower())
        if evidence_seen and hedge is None:
            continue
        if hedge is not None:
            evidence = tx.quote_match(text, hedge)
            why = f'its reasoning rests on assumptions ("{tx.short(evidence, 80)}")'
        else:
            evidence = tx.quote(text, max_len=160)
            why = "no tool, other agent or run of its own code had returned anything before it"
        if not evidence_seen and hedge is not None:
            why += ", and no tool, other agent or run of its own code had returned anything before it"
        out.append(
            Finding.at(
                "unsupported_answer",
                step,
                evidence,
                f"step {step.index}: the model gave the final answer although {why}",
                tool=step.tool_name,
            )
        )
        asked = _ASKS_VERIFICATION.search(view.task)
        if asked is not None:
            quoted = tx.quote_match(view.task, asked)
            out.append(
                Finding.at(
                    "verification_instruction_ignored",
                    step,
                    quoted,
                    f'step {step.index}: the task says "{tx.short(quoted, 80)}" and the model answered without '
                    "evidence",
                    tool=step.tool_name,
                )
            )
        claim = None if evidence_seen else _CLAIMS_RETRIEVAL.search(text, text.lower())
        if claim is not None:
            quoted = tx.quote_match(text, claim)
            out.append(
                Finding.at(
                    "claimed_unseen_result",
                    step,
                    quoted,
                    f'step {step.index}: the model says it looked something up ("{tx.short(quoted, 80)}") but no '
                    "tool or other agent had returned anything before it",
                    tool=step.tool_name,
                )
            )
    return out


def detect_announced_calls_not_made(view: TraceView) -> list[Finding]:
    """A code-writing model call whose reasoning announces a call to a named tool or agent ("I will ask our
    search_agent ...") and whose output never calls it: the hand-off was written down (printed, commented out)
    instead of made."""
    out: list[Finding] = []
    if "span" not in view.kinds:
        return out  # no model call to read
    for step in view.trace.steps:
        if not is_model_span(step) or step.tool_name:
            continue  # a tool-calling model names its call in tool_name; actions.py compares those
        text = step.content[:20000]
        m = _ANNOUNCES_CALL.search(text)
        if m is None:
            continue
        name = m.group("name")
        if tx.is_finish_tool(name) or re.search(rf"\b{re.escape(name)}\s*\(", text[m.end() :]):
            continue
        quoted = tx.quote_match(text, m)
        out.append(
            Finding.at(
                "announced_call_missing",
                step,
                quoted,
                f'step {step.index}: the model announced a call to {name} ("{tx.short(quoted, 80)}") and did not make it',
                tool=name,
            )
        )
    return out


def relocate_to_callers(view: TraceView, findings: list[Finding]) -> list[Finding]:
    """In span trees, point findings at the model call that issued a tool call rather than at the tool span: the
    model wrote the call (its arguments, its repetition, what it did with the error), the tool only ran it. The
    writer is `base.call_writer`'s, the one the blame of errors uses."""
    if "span" not in view.kinds or not view_callers(view):
        return findings  # no tool or model spans: nothing to relocate
    tool_spans = {s.index: s for s in view.trace.steps if s.kind == "span" and s.tool_name and not is_model_span(s)}
    writers: dict[int, int] = {}
    for f in findings:
        for i in f.steps:
            if i in tool_spans and i not in writers:
                w = call_writer(view, tool_spans[i])
                writers[i] = i if w is None else w.index
        f.steps = list(dict.fromkeys(writers.get(i, i) for i in f.steps))
    return findings
