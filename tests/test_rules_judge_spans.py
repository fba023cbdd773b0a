"""The rules judge on span trees (OpenTelemetry / OpenInference layout): failed model calls, answers without
evidence, claimed lookups, announced calls never made, and findings located on the model call that issued a tool
call rather than on the tool span. Hand-built span trees, one model call per span as the otel loader emits them."""

from __future__ import annotations

import json

import pytest

from trajfm.judges.detectors import run_detectors
from trajfm.judges.evidence import verify_evidence
from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Step, Trace

# Every detector, including those the shipped calibration switches off: these tests check what each one does.
ALL = RulesJudge(all_detectors=True)

TRAIL = load_taxonomy("trail")
MAST = load_taxonomy("mast")


class Spans:
    """Builds a span tree in time order: an agent span, step spans under it, model and tool spans under steps."""

    def __init__(self, agent: str = "CodeAgent") -> None:
        self.steps: list[Step] = []
        self.agent = agent
        self.root = self._add("span", "", meta={"span_kind": "AGENT", "name": f"{agent}.run"})

    def _add(self, kind: str, content: str, parent: str | None = None, **kw: object) -> str:
        n = len(self.steps)
        self.steps.append(
            Step(position=n, index=n, kind=kind, content=content, step_id=f"s{n}", parent_id=parent,
                 agent=self.agent, **kw)  # type: ignore[arg-type]
        )  # fmt: skip
        return f"s{n}"

    def step(self, error: str | None = None) -> str:
        content = f"[status error] {error}" if error else ""
        return self._add("span", content, self.root, is_error=bool(error), meta={"span_kind": "CHAIN"})

    def model(
        self, parent: str, output: str, newest_input: str = "", tool: str | None = None, arguments: str | None = None
    ) -> str:
        meta: dict[str, object] = {"span_kind": "LLM", "model": "m"}
        if arguments is not None:
            meta["call_arguments"] = arguments  # as the otel loader keeps a tool call's own input
        return self._add("span", output, parent, tool_input=newest_input, tool_name=tool, meta=meta)

    def tool(self, parent: str, name: str, args: str, output: str, error: bool = False) -> str:
        meta = {"span_kind": "TOOL"}
        return self._add("span", output, parent, tool_name=name, tool_input=args, is_error=error, meta=meta)

    def trace(self, answer: str = "42") -> Trace:
        return Trace(trace_id="t", source_path="t.json", source_format="otel", steps=self.steps,
                     task="How many papers?", final_answer=answer)  # fmt: skip


def index_of(trace: Trace, step_id: str) -> int:
    return next(s.index for s in trace.steps if s.step_id == step_id)


def findings(trace: Trace, kind: str) -> list:
    return [f for f in run_detectors(trace) if f.kind == kind]


def test_form_error_points_at_the_model_call_that_wrote_it_and_the_one_shown_the_error() -> None:
    b = Spans("ToolCallingAgent")
    s1 = b.step("AgentExecutionError: Error when executing tool page_down with arguments {'': ''}: "
                "TypeError: PageDownTool.forward() got an unexpected keyword argument ''")  # fmt: skip
    caller = b.model(s1, 'page_down({"": ""})', "Observation: page 1", tool="page_down")
    b.tool(s1, "page_down", '{"": ""}', "TypeError: got an unexpected keyword argument ''", error=True)
    s2 = b.step()
    shown = b.model(
        s2, "page_down({})", "Error:\nError when executing tool page_down with arguments", tool="page_down"
    )
    b.tool(s2, "page_down", "{}", "Viewport position: page 2")
    s3 = b.step()
    b.model(s3, "final_answer(42)", "Observation: Viewport position: page 2", tool="final_answer")
    t = b.trace()
    found = findings(t, "invalid_action")
    marked = {i for f in found for i in f.steps}
    assert {index_of(t, caller), index_of(t, shown)} <= marked
    # no finding stays on a tool span: the model wrote the call
    tool_spans = {s.index for s in t.steps if s.meta.get("span_kind") == "TOOL"}
    assert not any(set(f.steps) & tool_spans for f in run_detectors(t))
    d = ALL.diagnose(t, TRAIL)
    assert "formatting_errors" in {m.mode_id for m in d.detected}
    assert all(verify_evidence(m.evidence, t) for m in d.detected)


def test_an_error_that_is_not_about_form_is_not_an_invalid_action() -> None:
    b = Spans()
    s1 = b.step("AgentExecutionError: Error when executing tool web_search: HTTP 503 service unavailable")
    b.model(s1, "Code:\n```py\nweb_search('x')\n```", "task")
    t = b.trace()
    assert findings(t, "invalid_action") == []


def test_answer_before_any_tool_result_is_unsupported_and_maps_to_trail_and_mast() -> None:
    b = Spans()
    s1 = b.step()
    answer = b.model(
        s1, "Thought: the count is 42.\nCode:\n```py\nfinal_answer(42)\n```", "[PLAN]: search first"
    )
    b.tool(s1, "final_answer", '{"args": [42]}', "")
    t = b.trace()
    found = findings(t, "unsupported_answer")
    assert [f.steps for f in found] == [[index_of(t, answer)]]
    trail = {m.mode_id for m in ALL.diagnose(t, TRAIL).detected}
    assert {"language_only", "goal_deviation", "tool_selection_errors"} <= trail
    assert "3.2" in {m.mode_id for m in ALL.diagnose(t, MAST).detected}


def test_a_plan_that_mentions_the_final_answer_in_prose_is_not_a_finish_call() -> None:
    """ "answer", "done" and "submit" are finish names and English words: "derive the final answer (the total)" in a
    plan is prose, "final_answer(42)" in code is the call."""
    b = Spans()
    s1 = b.step()
    b.model(s1, "1. Count the papers.\n2. Derive the final answer (i.e., the total count) and submit (once checked).")
    t = b.trace()
    assert findings(t, "unsupported_answer") == []


def test_answer_after_a_tool_result_is_supported_unless_it_says_it_assumed() -> None:
    b = Spans()
    s1 = b.step()
    b.model(s1, "Code:\n```py\nprint(web_search('papers 2020'))\n```", "task")
    b.tool(s1, "web_search", '{"query": "papers 2020"}', "Nature published 1002 articles in 2020.")
    s2 = b.step()
    b.model(s2, "Thought: the search says 1002.\nCode:\n```py\nfinal_answer(1002)\n```", "Observation: 1002")
    assert findings(b.trace(), "unsupported_answer") == []
    b2 = Spans()
    s1 = b2.step()
    b2.model(s1, "Code:\n```py\nprint(web_search('papers 2020'))\n```", "task")
    b2.tool(s1, "web_search", '{"query": "papers 2020"}', "No results.")
    s2 = b2.step()
    hedged = b2.model(
        s2, "Thought: assuming about 1000 papers.\nCode:\n```py\nfinal_answer(1000)\n```", "obs"
    )
    t = b2.trace()
    found = findings(t, "unsupported_answer")
    assert [f.steps for f in found] == [[index_of(t, hedged)]] and "assum" in found[0].evidence.lower()
    # a result was seen, so claiming a lookup is not a fabricated one
    assert findings(t, "claimed_unseen_result") == []


def test_claiming_a_lookup_with_nothing_retrieved_is_tool_related() -> None:
    b = Spans()
    s1 = b.step()
    b.model(
        s1,
        "Thought: According to the USGS record the count is 3.\nCode:\n```py\nfinal_answer(3)\n```",
        "plan",
    )
    t = b.trace()
    assert len(findings(t, "claimed_unseen_result")) == 1
    assert "tool_related" in {m.mode_id for m in ALL.diagnose(t, TRAIL).detected}


def test_announced_call_that_is_only_printed_is_a_lost_hand_off() -> None:
    b = Spans()
    s1 = b.step()
    printed = b.model(
        s1,
        "Thought: I will ask our search_agent team member to find it.\nCode:\n```py\nprint('find it')\n```",
        "t",
    )
    s2 = b.step()
    b.model(
        s2,
        "Thought: I will ask our search_agent to find it.\nCode:\n```py\nsearch_agent(task='find it')\n```",
        "t",
    )
    t = b.trace()
    found = findings(t, "announced_call_missing")
    assert [f.steps for f in found] == [[index_of(t, printed)]]
    trail = {m.mode_id for m in ALL.diagnose(t, TRAIL).detected}
    assert {"task_orchestration", "tool_selection_errors"} <= trail


def test_traces_without_model_spans_get_none_of_these_findings() -> None:
    steps = [
        Step(
            position=0, index=1, kind="thought", content="I assume the answer is 42, according to the docs."
        ),
        Step(position=1, index=1, kind="action", content="Finish[42]", tool_name="Finish", tool_input="42"),
    ]
    t = Trace(
        trace_id="r", source_path="r.json", source_format="test", steps=steps, task="q", final_answer="42"
    )
    kinds = {f.kind for f in run_detectors(t)}
    assert not kinds & {"unsupported_answer", "claimed_unseen_result", "announced_call_missing"}


def test_three_searches_in_a_row_without_reading_are_search_churn() -> None:
    b = Spans("ToolCallingAgent")
    calls = []
    for q in ("pie menus 2015", "pie menus dblp 2015", "pie vs linear menus paper"):
        s = b.step()
        calls.append(b.model(s, f"web_search({q!r})", "Observation: results", tool="web_search"))
        b.tool(s, "web_search", f'{{"query": "{q}"}}', f"1. A page about {q}")
    t = b.trace()
    found = findings(t, "search_churn")
    # the third search onwards, located on the model call that issued it
    assert [f.steps for f in found] == [[index_of(t, calls[2])]]
    assert "poor_information_retrieval" in {m.mode_id for m in ALL.diagnose(t, TRAIL).detected}
    b2 = Spans("ToolCallingAgent")
    for i, (tool, q) in enumerate([("web_search", "a"), ("visit_page", "http://x"), ("web_search", "b")]):
        s = b2.step()
        b2.model(s, f"{tool}({q!r})", "obs", tool=tool)
        b2.tool(s, tool, f'{{"q": "{q}"}}', f"result {i}")
    assert findings(b2.trace(), "search_churn") == []


def test_failure_answer_when_the_task_rules_it_out_is_an_ignored_instruction() -> None:
    task = "Failure or 'I cannot answer' or 'None found' will not be tolerated. How many papers?"
    steps = [
        Step(position=0, index=1, kind="action", content="Finish[x]", tool_name="Finish", tool_input="x")
    ]
    t = Trace(trace_id="f", source_path="f.json", source_format="test", steps=steps, task=task,
              final_answer="Unable to determine the number of papers.")  # fmt: skip
    assert [f.kind for f in run_detectors(t)].count("output_format_ignored") == 1
    assert "instruction_non_compliance" in {m.mode_id for m in ALL.diagnose(t, TRAIL).detected}
    t.task = "How many papers?"  # without the rule, an honest report of failure owes no form
    assert "output_format_ignored" not in [f.kind for f in run_detectors(t)]


def test_unsupported_answer_ignores_an_instruction_to_verify_only_when_the_task_gives_one() -> None:
    b = Spans()
    s1 = b.step()
    b.model(s1, "Thought: it is 42.\nCode:\n```py\nfinal_answer(42)\n```", "plan")
    t = b.trace()
    assert findings(t, "verification_instruction_ignored") == []
    t.task = (
        "Run verification steps if needed, you must make sure you find the correct answer. How many papers?"
    )
    found = findings(t, "verification_instruction_ignored")
    assert len(found) == 1 and found[0].evidence.lower() in t.task.lower()
    assert "instruction_non_compliance" in {m.mode_id for m in ALL.diagnose(t, TRAIL).detected}


def _model_call_span(span_id: str, second: int, prompt: str, tool: str, arguments: str) -> dict:
    """An OpenInference LLM span (TRAIL's shape) whose reply is a tool call."""
    prefix = "llm.output_messages.0.message.tool_calls.0.tool_call.function"
    return {
        "timestamp": f"2025-03-01T10:00:{second:02d}.000000Z", "trace_id": "t-plan", "span_id": span_id,
        "parent_span_id": "root", "span_name": "LiteLLMModel.__call__", "status_code": "Ok",
        "span_attributes": {
            "openinference.span.kind": "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": prompt,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "",
            f"{prefix}.name": tool,
            f"{prefix}.arguments": arguments,
        },
        "child_spans": [],
    }  # fmt: skip


def test_a_model_calls_prompt_is_not_read_as_its_call_input(tmp_path) -> None:
    """A model span keeps its newest prompt as tool_input; a prompt opening with a bracket ("[PLAN]: ...") is not
    call input that fails to parse. The call's own arguments are what `invalid_action` checks."""
    from trajfm.traces import load_traces

    doc = {
        "trace_id": "t-plan",
        "spans": [
            {
                "timestamp": "2025-03-01T10:00:00.000000Z", "trace_id": "t-plan", "span_id": "root",
                "parent_span_id": None, "span_name": "ToolCallingAgent.run", "status_code": "Ok",
                "span_attributes": {"openinference.span.kind": "AGENT", "input.value": '{"task": "Find it"}'},
                "child_spans": [
                    _model_call_span("ok", 1, "[PLAN]: 1. search the web. 2. read the page.", "web_search",
                                     '{"query": "museum opening hours"}'),
                    _model_call_span("bad", 2, "[FACTS]: none yet", "web_search", '{"query": "museum'),
                ],
            }
        ],
    }  # fmt: skip
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    trace = load_traces([path]).traces[0]
    by_id = {s.step_id: s for s in trace.steps}
    assert by_id["ok"].meta["call_arguments"] == '{"query": "museum opening hours"}'
    assert by_id["ok"].tool_input.startswith("[PLAN]")  # the prompt stays where the loader's contract puts it
    flagged = {s for f in findings(trace, "invalid_action") for s in f.steps}
    assert flagged == {by_id["bad"].index}


def _searches(queries: list[str], *, tool_spans: bool) -> Trace:
    """A tool-calling agent's searches, each written by a model span whose prompt is the same plan; with
    `tool_spans`, each call is also run by a tool span (input = the call's arguments)."""
    b = Spans(agent="ToolCallingAgent")
    for q in queries:
        s = b.step()
        args = json.dumps({"query": q})
        b.model(s, f"web_search({args})", "[PLAN]: 1. search the web. 2. read a page.", tool="web_search", arguments=args)
        if tool_spans:
            b.tool(s, "web_search", args, f"Results for {q}: a page about {q}.")
    return b.trace()


@pytest.mark.parametrize("tool_spans", [True, False])
def test_calls_with_the_same_prompt_but_different_queries_are_not_repeats(tool_spans: bool) -> None:
    """A model span's act holds its prompt; two calls written from the same plan are compared by what they sent
    (the tool span's input, or the model span's own call arguments where no tool span runs the tool)."""
    t = _searches(["oldest bridge in the city", "river ferry timetable 1920"], tool_spans=tool_spans)
    assert findings(t, "repeated_action") == []


@pytest.mark.parametrize("tool_spans", [True, False])
def test_the_same_query_twice_is_one_repeat_not_two(tool_spans: bool) -> None:
    """The model span that wrote a call and the tool span that ran it are one call: the same query sent twice is
    one repeated action of two calls, placed on the model calls that wrote them."""
    t = _searches(["oldest bridge in the city", "oldest bridge in the city"], tool_spans=tool_spans)
    found = findings(t, "repeated_action")
    models = [s.index for s in t.steps if s.meta.get("span_kind") == "LLM"]
    assert len(found) == 1 and found[0].steps == models
    assert "2 times" in found[0].detail


def test_a_recorded_python_call_is_reduced_to_its_arguments(tmp_path) -> None:
    """A tool span's input recorded as a wrapped Python call ({"args": [], "kwargs": {...}} plus the wrapper's own
    flags) is the call's arguments only: the flags, the same for every call, would make different calls look
    alike."""
    from trajfm.traces import load_traces

    def tool_span(span_id: str, value: str) -> dict:
        return {
            "timestamp": "2025-03-01T10:00:01.000000Z", "trace_id": "t", "span_id": span_id, "parent_span_id": "root",
            "span_name": "SearchTool", "status_code": "Ok",
            "span_attributes": {"openinference.span.kind": "TOOL", "tool.name": "web_search", "input.value": value,
                                "output.value": "results"},
            "child_spans": [],
        }  # fmt: skip

    wrapped = json.dumps({"args": [], "sanitize_inputs_outputs": True, "kwargs": {"query": "ferry"}})
    positional = json.dumps({"args": ["ferry"], "kwargs": {}})
    other = json.dumps({"args": [], "kwargs": {"query": "ferry"}, "context": {"user": "x"}})  # not only flags
    doc = {"trace_id": "t", "spans": [{
        "timestamp": "2025-03-01T10:00:00.000000Z", "trace_id": "t", "span_id": "root", "parent_span_id": None,
        "span_name": "Agent.run", "status_code": "Ok", "span_attributes": {"openinference.span.kind": "AGENT"},
        "child_spans": [tool_span("w", wrapped), tool_span("p", positional), tool_span("o", other)],
    }]}  # fmt: skip
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    by_id = {s.step_id: s for s in load_traces([path]).traces[0].steps}
    assert json.loads(by_id["w"].tool_input) == {"query": "ferry"}
    assert json.loads(by_id["p"].tool_input) == {"args": ["ferry"], "kwargs": {}}
    assert by_id["o"].tool_input == other


def _code_run(first_code: str, first_output: str) -> Trace:
    """A code-writing agent: one step runs `first_code` and prints `first_output`, the next answers. Every step's
    output carries the framework's own wording around it, as smolagents writes it."""
    b = Spans()
    s1 = b.step()
    b.steps[-1].content = first_output  # a step span's content is its output, as the otel loader reads it
    b.model(s1, f"Thought: look first.\nCode:\n```py\n{first_code}\n```", "Task: fix the parser")
    s2 = b.step()
    b.steps[-1].content = "Execution logs:\nLast output from code snippet:\nthe slice [1:] drops the first field"
    b.model(s2, "Thought: done.\nCode:\n```py\nfinal_answer('the slice [1:] drops the first field')\n```", "Observation")
    b.tool(s2, "final_answer", '{"answer": "the slice"}', "")
    return b.trace(answer="the slice [1:] drops the first field")


def test_a_code_agents_own_execution_output_is_something_returned() -> None:
    """A code-writing agent's observations are its steps' output, not tool spans: a file it read before answering
    is evidence. Output that only echoes the code's own strings ("print(task)") is not."""
    read = _code_run(
        "print(open('src/parser.py').read())",
        "Execution logs:\ndef parse(text):\n    return text.split(',')[1:]\nLast output from code snippet:\nNone",
    )
    assert findings(read, "unsupported_answer") == []
    echoed = _code_run(
        'task = "Please find the census figures for 2011."\nprint(task)',
        "Execution logs:\nPlease find the census figures for 2011.\nLast output from code snippet:\nNone",
    )
    assert [f.kind for f in findings(echoed, "unsupported_answer")] == ["unsupported_answer"]


def test_the_first_errors_producer_in_a_span_tree_is_the_model_call_that_wrote_the_failing_call() -> None:
    """A framework step span reports the error of the call its model span wrote: the error's producer (a
    root-cause feature) is that model span, not the step span or the tool span. A call that a later call of the
    same tool got past is not the first error, whichever span reports it."""
    from trajfm.judges.detectors import build_view
    from trajfm.judges.detectors.origin import first_error_origin

    def run(retried: bool) -> tuple[Trace, str]:
        b = Spans("ToolCallingAgent")
        s1 = b.step("AgentExecutionError: Error when executing tool web_search: Exception: No results found")
        first = b.model(s1, 'web_search({"query": "x y z"})', "Plan: search", tool="web_search",
                        arguments='{"query": "x y z"}')  # fmt: skip
        b.tool(s1, "web_search", '{"query": "x y z"}', "Exception: No results found", error=True)
        if retried:
            s2 = b.step()
            b.model(s2, 'web_search({"query": "x"})', "Error: no results", tool="web_search",
                            arguments='{"query": "x"}')  # fmt: skip
            b.tool(s2, "web_search", '{"query": "x"}', "1. A page about x")
        s3 = b.step("AgentExecutionError: Code execution failed: NameError: name 'y' is not defined")
        code = b.model(s3, "print(y)", "Observation: 1. A page about x")
        return b.trace(), first if not retried else code

    for retried in (False, True):
        trace, expected = run(retried)
        origin = first_error_origin(build_view(trace))
        assert origin is not None and origin.step_id == expected, (retried, origin)


def test_a_call_in_a_span_tree_is_one_act_written_by_the_model_and_answered_by_the_tool() -> None:
    """The model span that wrote a call and the tool span that ran it are one call: one act, at the model span
    (the choice), with the call's own arguments (not the model's prompt) and the tool span's output as its result.
    A tool span no model span wrote stays an act of its own."""
    from trajfm.judges.detectors import build_view

    b = Spans("ToolCallingAgent")
    s1 = b.step()
    written = b.model(s1, 'web_search({"query": "x"})', "Task: find x", tool="web_search",
                      arguments='{"query": "x"}')  # fmt: skip
    ran = b.tool(s1, "web_search", '{"query": "x"}', "1. A page about x")
    s2 = b.step()
    alone = b.tool(s2, "visit_page", '{"url": "https://example.org/x"}', "Page text about x")
    trace = b.trace()
    acts = build_view(trace).acts
    assert [(a.step.step_id, a.tool, a.args, a.result.step_id if a.result else None) for a in acts] == [
        (written, "web_search", '{"query": "x"}', ran),
        (alone, "visit_page", '{"url": "https://example.org/x"}', alone),
    ]


def test_the_same_failed_call_sent_again_in_a_span_tree_is_an_identical_retry_not_moving_on() -> None:
    """Three model spans send page_down with the same bad argument and each tool span fails: the agent repeated the
    identical call. It did not "move on to page_down without fixing the call" after each failure."""
    b = Spans("ToolCallingAgent")
    for _ in range(3):
        s = b.step("AgentExecutionError: Error when executing tool page_down: TypeError: unexpected keyword argument ''")
        b.model(s, 'page_down({"": ""})', "Observation: ...", tool="page_down", arguments='{"": ""}')
        b.tool(s, "page_down", '{"": ""}', "TypeError: PageDownTool.forward() got an unexpected keyword argument ''",
               error=True)  # fmt: skip
    trace = b.trace()
    kinds = [f.kind for f in run_detectors(trace) if f.kind.startswith("error_")]
    assert kinds == ["error_retried_identically"]


def test_a_call_sent_twice_repeats_also_when_other_tool_spans_of_that_tool_have_no_model_span() -> None:
    """Two model spans send the same search and their tool spans answer the same: a repeated action. A third
    search run by a tool span no model span wrote (code the agent ran) does not hide the two calls."""
    b = Spans("ToolCallingAgent")
    for _ in range(2):
        s = b.step()
        b.model(s, 'web_search({"query": "museum hours"})', "Plan", tool="web_search",
                arguments='{"query": "museum hours"}')  # fmt: skip
        b.tool(s, "web_search", '{"query": "museum hours"}', "1. Museum: open 9-17")
    s3 = b.step()
    b.tool(s3, "web_search", '{"query": "museum address"}', "1. Museum: Main Street 1")
    trace = b.trace()
    assert [f.kind for f in run_detectors(trace) if f.kind == "repeated_action"] == ["repeated_action"]


def test_a_rejected_call_and_the_first_error_are_blamed_on_the_same_model_span() -> None:
    """A code agent's model span writes code (no tool name of its own) that calls a tool, and the tool span rejects
    the call's form. Both the rejected call (`invalid_action`) and the first error's producer point at that model
    span, the one of the same step, not at an earlier turn's model span that happened to call the same tool."""
    from trajfm.judges.detectors import build_view
    from trajfm.judges.detectors.origin import first_error_origin

    b = Spans("CodeAgent")
    s1 = b.step()
    earlier = b.model(s1, 'page_down({})', "Plan: read on", tool="page_down", arguments="{}")
    b.tool(s1, "page_down", "{}", "Viewport position: page 2")
    s2 = b.step()
    writer = b.model(s2, "Code:\n```py\npage_down(page='next')\n```", "Observation: Viewport position: page 2")
    b.tool(s2, "page_down", '{"page": "next"}', "TypeError: page_down() got an unexpected keyword argument 'page'",
           error=True)  # fmt: skip
    t = b.trace()
    blamed = {i for f in findings(t, "invalid_action") for i in f.steps}
    assert index_of(t, writer) in blamed and index_of(t, earlier) not in blamed
    origin = first_error_origin(build_view(t))
    assert origin is not None and origin.step_id == writer


def test_a_model_span_without_a_model_name_is_still_the_writer_of_a_rejected_output() -> None:
    """An instrumentation that marks a model call by its span kind alone (LLM, no model name) still names the
    writer: a step span that could not parse its model output blames the model span nested under it."""
    b = Spans("CodeAgent")
    s1 = b.step()
    earlier = b.model(s1, 'web_search({"query": "x"})', "Plan", tool="web_search", arguments='{"query": "x"}')
    b.tool(s1, "web_search", '{"query": "x"}', "1. A page about x")
    s2 = b.step("AgentParsingError: Error in code parsing: the code could not be parsed")
    nameless = b._add("span", "Thoughts: done\nCode: final_answer(42", s2, meta={"span_kind": "LLM"})
    t = b.trace()
    blamed = {i for f in findings(t, "invalid_action") for i in f.steps}
    assert index_of(t, nameless) in blamed and index_of(t, earlier) not in blamed
