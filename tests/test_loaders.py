"""Trace loaders on project-made fixtures (tests/fixtures/traces) and on hostile input."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trajfm.errors import TraceLoadError, UsageError
from trajfm.traces import FORMATS, Trace, detect_format, load_traces
from trajfm.traces._common import Source
from trajfm.traces.assetops import parse_action, path_info
from trajfm.traces.fields import opt_int
from trajfm.traces.load import decode_json, load_file
from trajfm.traces.mast import split_turns
from trajfm.traces.model import traces_to_frames

FIX = Path(__file__).resolve().parent / "fixtures" / "traces"


def _one(path: Path, **kw: Any) -> Trace:
    result = load_traces([path], **kw)
    assert not result.failures, result.failures
    assert len(result.traces) == 1, [t.trace_id for t in result.traces]
    return result.traces[0]


def assert_valid(trace: Trace) -> None:
    """The model's invariants: positions 0..n-1, unique step ids, typed fields; convertible to tables."""
    assert isinstance(trace, Trace)
    assert trace.steps, "a loaded trace has steps"
    assert [s.position for s in trace.steps] == list(range(len(trace.steps)))
    ids = [s.step_id for s in trace.steps]
    assert len(ids) == len(set(ids))
    for s in trace.steps:
        assert isinstance(s.index, int) and not isinstance(s.index, bool)
        assert isinstance(s.content, str)
        assert s.tool_input is None or isinstance(s.tool_input, str)
        assert s.tool_name is None or isinstance(s.tool_name, str)
        assert s.agent is None or isinstance(s.agent, str)
        assert isinstance(s.is_error, bool)
    assert isinstance(trace.task, str)
    traces_df, steps_df = traces_to_frames([trace])
    assert traces_df.height == 1 and steps_df.height == len(trace.steps)


# ---- AssetOpsBench -------------------------------------------------------------------------------------------


def test_assetops_react_keeps_path_metadata_tools_and_nested_steps() -> None:
    t = _one(FIX / "assetops" / "2025-01-02T03_04_05" / "acme-ai" / "tiny-planner-7b" / "0042")
    assert_valid(t)
    assert (t.source_format, t.agent_model, t.vendor, t.run_id, t.utterance_id) == (
        "assetops", "tiny-planner-7b", "acme-ai", "2025-01-02T03_04_05", "0042",
    )  # fmt: skip
    assert t.review_status == "Partially Accomplished"
    assert t.multi_agent is True  # IoTAgent and FMSRAgent
    assert t.final_answer == "Discharge pressure and vibration sensors."
    top = [s for s in t.steps if s.depth == 0]
    assert [(s.index, s.kind) for s in top[:3]] == [(1, "thought"), (1, "action"), (1, "observation")]
    action1 = top[1]
    assert (action1.tool_name, action1.tool_input) == ("IoTAgent", "request=list sensors of pump P-7")
    obs1 = next(s for s in top if s.step_id == "1.observation")
    assert obs1.meta["review_status"] == "Partially Accomplished"
    assert obs1.content.startswith("{\n")  # the doubly-encoded JSON string is decoded once to readable JSON
    nested = [s for s in t.steps if s.depth == 1]
    assert (
        len(nested) == 8
    )  # 3 sub-steps: thought/action/observation, thought/action/observation, thought/action
    assert {s.index for s in nested} == {1} and {s.parent_id for s in nested} == {"1.observation"}
    assert {s.agent for s in nested} == {"IoTAgent"}
    # nested steps sit between the action and the observation they produce
    assert action1.position < nested[0].position and nested[-1].position < obs1.position
    assert any(s.is_error and s.content.startswith("Error encountered") for s in nested)
    bad_format = next(s for s in top if s.index == 3 and s.kind == "action")
    assert bad_format.tool_name is None and bad_format.meta["action_format"] == "unparsed"
    assert next(s for s in top if s.index == 3 and s.kind == "observation").is_error
    assert t.step_indices() == {1, 2, 3, 4}


def test_assetops_sample_layout_and_missing_final_answer() -> None:
    t = _one(FIX / "assetops" / "samples" / "mini-model" / "0007")
    assert (t.agent_model, t.vendor, t.run_id, t.utterance_id) == ("mini-model", None, None, "0007")
    assert t.final_answer is None and t.review_status is None and t.multi_agent is False
    assert [s.kind for s in t.steps] == ["thought", "action", "observation", "thought"]


def test_assetops_plan_execute_form() -> None:
    t = _one(FIX / "assetops" / "plan_execute.json")
    assert_valid(t)
    assert t.utterance_id == "512" and t.agent_model is None and t.multi_agent is True
    assert [(s.index, s.kind, s.tool_name or s.agent) for s in t.steps] == [
        (1, "action", "IoTAgent"), (1, "observation", "IoTAgent"), (2, "action", "TSFMAgent"),
        (2, "observation", "TSFMAgent"),
    ]  # fmt: skip
    assert t.steps[-1].is_error


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            "Tool Name: IoTAgent , Tool Parameter: Action Input 1: request=list sites",
            ("IoTAgent", "request=list sites"),
        ),
        ("Tool Name: sites , Tool Parameter: Action Input 12: {}", ("sites", "{}")),
        ("Tool Name: Finish , Tool Parameter: Action Input 3: answer=a, b", ("Finish", "answer=a, b")),
        ("Tool Name: jsonreader[file=x] , Tool Parameter: ", ("jsonreader[file=x]", None)),
        ("FMSRAgent[cavitation]", (None, None)),
    ],
)
def test_parse_action(action: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_action(action) == expected


def test_path_info_layouts() -> None:
    assert path_info("/x/trajectories/2025-07-29T13_59_38/meta-llama/llama-4/1001") == {
        "utterance_id": "1001", "model": "llama-4", "vendor": "meta-llama", "run_id": "2025-07-29T13_59_38",
    }  # fmt: skip
    assert path_info("/x/sample_trajectories/mistral-large/0001")["vendor"] is None
    assert path_info("/x/runs/ibm/granite-8b/0005")["vendor"] == "ibm"  # a known vendor folder, no run folder


# ---- Who&When / AgentRx --------------------------------------------------------------------------------------


def test_whowhen_steps_are_zero_based_history_positions() -> None:
    t = _one(FIX / "whowhen" / "ag2_log.json")
    assert_valid(t)
    assert [s.index for s in t.steps] == [0, 1, 2, 3]
    assert t.steps[1].agent == "Astronomy_Expert" and t.steps[1].meta["role"] == "user"
    assert t.is_correct is False and t.task.startswith("How many moons")
    assert "mistake_step" not in json.dumps(t.meta)  # labels never leak into the trace a judge reads


def test_whowhen_code_executor_failures_are_errors() -> None:
    from trajfm.traces.whowhen import is_execution_error

    assert is_execution_error("exitcode: 1 (execution failed)\nCode output: boom")
    assert is_execution_error("  exitcode: 124 (execution failed)")
    assert not is_execution_error("exitcode: 0 (execution succeeded)")
    assert not is_execution_error("the exitcode: 1 was expected")
    t = _one(FIX / "whowhen" / "ag2_log.json")
    assert [s.is_error for s in t.steps] == [False, False, False, False]


def test_whowhen_magentic_role_form() -> None:
    t = _one(FIX / "whowhen" / "magentic_role.json")
    assert [s.agent for s in t.steps] == ["human", "Orchestrator", "Orchestrator", "WebSurfer"]
    assert t.steps[1].meta["role"] == "Orchestrator (thought)"
    assert t.is_correct is False  # "False" as a string


def test_agentrx_tau_records_are_one_trace_each_with_one_based_steps() -> None:
    result = load_traces([FIX / "agentrx" / "tau_runs.json"])
    assert not result.failures
    a, b = result.traces
    assert (a.trace_id, b.trace_id) == ("tau_runs.json#0", "tau_runs.json#1")
    assert a.meta["task_id"] == 7 and a.meta["record"] == 0 and b.utterance_id == "8"
    assert [s.index for s in a.steps] == [1, 2, 3, 4, 5]
    assert [s.kind for s in a.steps] == ["system", "message", "tool_call", "tool_result", "message"]
    call = a.steps[2]
    assert call.tool_name == "get_order_details" and json.loads(call.tool_input or "") == {"order_id": "#7"}
    assert (a.reward, a.is_correct, b.reward, b.is_correct) == (1.0, True, 0.0, False)
    assert b.steps[3].is_error and not a.steps[3].is_error
    assert a.task == "You are Ana; cancel order #7." and a.final_answer == "Your order is cancelled."


def test_agentrx_magentic_list() -> None:
    t = _one(FIX / "agentrx" / "magentic_run.json")
    assert t.source_format == "agentrx" and [s.index for s in t.steps] == [1, 2, 3, 4]
    assert t.steps[3].agent == "Orchestrator" and t.task.startswith("What is the tallest")


# ---- OpenTelemetry -------------------------------------------------------------------------------------------


def test_trail_tree_one_step_per_span_in_time_order() -> None:
    t = _one(FIX / "otel" / "trail_tree.json")
    assert_valid(t)
    assert [s.step_id for s in t.steps] == ["s-root", "s-llm", "s-tool", "s-err"]
    assert [s.index for s in t.steps] == [0, 1, 2, 3]
    assert [s.depth for s in t.steps] == [0, 1, 1, 1] and t.steps[1].parent_id == "s-root"
    llm, tool, err = t.steps[1:]
    assert llm.content == "Thought: compute it with python." and llm.meta["model"] == "tiny-llm"
    assert llm.tool_input == "What is 6 times 7?" and llm.meta["input_messages"] == 1
    assert (tool.tool_name, tool.tool_input, tool.content) == ("python_interpreter", "print(6*7)", "42")
    assert err.is_error and "rate limited (429)" in err.content
    assert t.task == "What is 6 times 7?" and t.final_answer == "42" and t.agent_model == "tiny-llm"
    assert all(s.agent == "CodeAgent" for s in t.steps)
    assert t.steps[1].end_time - t.steps[1].start_time == pytest.approx(2.5)


def test_flat_span_jsonl_groups_by_trace_id() -> None:
    result = load_traces([FIX / "otel" / "flat_spans.jsonl"])
    assert not result.failures
    by_id = {t.trace_id: t for t in result.traces}
    assert set(by_id) == {"flat_spans.jsonl#A", "flat_spans.jsonl#B"}
    a = by_id["flat_spans.jsonl#A"]
    assert [s.step_id for s in a.steps] == ["a1", "a3", "a2"]  # start-time order, not file order
    assert a.steps[1].is_error and "file not found" in a.steps[1].content
    assert a.steps[2].content == "Summary: fine"  # output.value JSON message reduced to its content
    assert a.steps[0].start_time == pytest.approx(1_700_000_000.0)


def test_otlp_export() -> None:
    t = _one(FIX / "otel" / "otlp_export.json")
    assert [s.step_id for s in t.steps] == ["p1", "p2"]
    assert t.agent_model == "tiny-llm" and t.steps[1].tool_name == "lookup" and t.steps[1].is_error


# ---- MAST / chat ---------------------------------------------------------------------------------------------


def test_mast_records_split_on_speakers_and_keep_full_text() -> None:
    result = load_traces([FIX / "mast" / "records.json"])
    assert not result.failures and len(result.traces) == 3
    chatdev, ag2, plain = result.traces
    raw = json.loads((FIX / "mast" / "records.json").read_text())
    assert "\n".join(s.content for s in chatdev.steps) == raw[0]["trace"]
    assert [s.agent for s in chatdev.steps] == [None, "Chief Executive Officer", "Programmer", None]
    assert chatdev.steps[-1].kind == "system" and chatdev.steps[-1].meta["header"] == "Seminar Conclusion"
    assert chatdev.task == "Build a todo app" and chatdev.meta["mas_name"] == "ChatDev"
    assert [s.agent for s in ag2.steps] == ["assistant", "mathproxyagent"] and ag2.task == "What is 2+2?"
    assert len(plain.steps) == 1 and plain.steps[0].content == raw[2]["trace"]
    assert "annotations" not in json.dumps(chatdev.meta)


def test_raw_text_log_file() -> None:
    t = _one(FIX / "autogen" / "magentic_run.log")
    # A Magentic-One console log: the AutoGen console loader recognises its headers better than the generic split.
    assert t.source_format == "autogen"
    assert [s.agent for s in t.steps] == ["user", "MagenticOneOrchestrator", "WebSurfer"]
    assert t.task.endswith("How tall is Oslo Plaza?")
    ag2 = _one(FIX / "mast" / "ag2_console.log")
    assert ag2.source_format == "mast" and [s.agent for s in ag2.steps] == ["user_proxy", "assistant"]
    assert [s.role for s in ag2.steps] == ["agent", "agent"]


def test_split_turns_is_one_turn_without_speakers() -> None:
    assert split_turns("just text\nmore") == [(None, "message", "just text\nmore", None)]


def test_bare_name_lines_inside_a_framed_log_are_text_not_speakers() -> None:
    # A Magentic-One console log quotes its team list ("Assistant: A helpful ...", "FileSurfer: An agent ...") and
    # a ChatDev turn holds "PowerPoint: ..." in a document: once framed speaker lines mark the turns, such bare
    # "Name:" lines continue the turn they are in.
    log = "\n".join([
        "---------- user ----------", "Find the file.",
        "---------- MagenticOneOrchestrator ----------", "Our team is:",
        "Assistant: A helpful and general-purpose AI assistant.", "FileSurfer: An agent that can handle local files.",
        "---------- FileSurfer ----------", "Slides: 3", "PowerPoint: the deck is open",
    ])  # fmt: skip
    turns = split_turns(log)
    assert [who for who, _, _, _ in turns] == ["user", "MagenticOneOrchestrator", "FileSurfer"]
    assert "Assistant: A helpful" in turns[1][2] and "PowerPoint:" in turns[2][2]
    # Without framed speaker lines, the bare ones are the turns (a MetaGPT-style "SimpleCoder:" log).
    plain = split_turns("SimpleCoder: here is the code\nx = 1\nSimpleTester: tests pass")
    assert [who for who, _, _, _ in plain] == ["SimpleCoder", "SimpleTester"]


def test_chat_jsonl_per_line_per_file_and_gzip() -> None:
    result = load_traces([FIX / "chat"])
    assert not result.failures
    ids = sorted(t.trace_id for t in result.traces)
    assert ids == [
        "chat/conversations.jsonl#0", "chat/conversations.jsonl#1", "chat/messages_per_line.jsonl",
        "chat/single.json.gz",
    ]  # fmt: skip
    conv = next(t for t in result.traces if t.trace_id.endswith("#1"))
    assert conv.agent_model == "tiny-chat" and conv.task == "Two?" and conv.final_answer == "2"
    assert [s.kind for s in conv.steps] == ["system", "message", "tool_call", "tool_result", "message"]
    per_line = next(t for t in result.traces if "per_line" in t.trace_id)
    assert per_line.steps[1].content == "Hello"  # content parts joined
    gz = next(t for t in result.traces if t.trace_id.endswith(".gz"))
    assert [s.content for s in gz.steps] == ["Ping", "Pong"]


# ---- detection, folders, ids ---------------------------------------------------------------------------------


def test_every_fixture_is_detected_as_its_folder_format() -> None:
    result = load_traces([FIX])
    assert not result.failures
    for t in result.traces:
        folder = t.trace_id.split("/")[1]
        assert t.source_format == folder, t.trace_id
        assert_valid(t)
    assert {Path(s.path).name for s in result.skipped} == {
        "README.md", "ground_truth.json", "labels_spans.json", "scenarios.jsonl", "metadata.json", "labels.jsonl",
    }  # fmt: skip
    notes = {Path(s.path).name: s.note for s in result.skipped}
    assert "label file" in notes["labels_spans.json"] and "label file" in notes["ground_truth.json"]
    assert notes["labels.jsonl"] == "JSON lines of failure labels (a label file), not a trace"


def test_trace_ids_are_stable_and_unique_across_roots(tmp_path: Path) -> None:
    first = [t.trace_id for t in load_traces([FIX]).traces]
    assert first == [t.trace_id for t in load_traces([FIX]).traces]
    assert len(first) == len(set(first))
    # the same folder named twice: ids stay unique
    twice = [t.trace_id for t in load_traces([FIX / "whowhen", FIX / "whowhen"]).traces]
    assert len(twice) == 4 and len(set(twice)) == 4


def test_forced_format_and_unknown_format_name(tmp_path: Path) -> None:
    assert detect_format(json.loads((FIX / "whowhen" / "ag2_log.json").read_text())) == "whowhen"
    forced = load_traces([FIX / "whowhen" / "ag2_log.json"], format="chat")
    reason = forced.failures[0].reason
    assert not forced.traces and reason.startswith("misread: this does not look like a chat trace")
    assert "it fits whowhen best" in reason
    log = tmp_path / "session.out"
    log.write_text("User: hi\nAssistant: hello\n")
    assert load_traces([log]).failures[0].reason.startswith("unknown format: not JSON")
    assert load_traces([log], format="mast").traces[0].steps[1].agent == "Assistant"
    with pytest.raises(UsageError, match="unknown trace format"):
        load_traces([log], format="nope")


def _broken_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    shutil.copytree(FIX / "whowhen", folder / "good")
    shutil.copy(FIX / "agentrx" / "tau_runs.json", folder / "good" / "tau_runs.json")
    bad = folder / "bad"
    bad.mkdir()
    whole = (FIX / "whowhen" / "ag2_log.json").read_bytes()
    (bad / "truncated.json").write_bytes(whole[: len(whole) // 2])
    (bad / "malformed.json").write_text('{"history": [1, 2,, 3]}')
    (bad / "cut_in_string.json").write_text('{"history": [{"content": "a long message that was cut')
    (bad / "junk.dat").write_bytes(bytes(range(256)) * 4)
    (bad / "empty.json").write_bytes(b"")
    (bad / "unknown.json").write_text('{"foo": 1, "bar": [1, 2]}')
    (bad / "empty_traj").write_text(json.dumps({"type": "mpe-agent", "task": "x", "trajectory": []}))
    (bad / "wrong_type.json").write_text(json.dumps({"question": "q", "history": "not a list"}))
    (bad / "notgzip.json.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with gzip.open(bad / "cut.json.gz", "wb") as fh:
        fh.write(whole)
    data = (bad / "cut.json.gz").read_bytes()
    (bad / "cut.json.gz").write_bytes(data[: len(data) // 2])
    lines = folder / "good" / "lines.jsonl"
    lines.write_text(
        json.dumps({"messages": [{"role": "user", "content": "a"}]}) + "\n{not json\n"
        + json.dumps({"messages": [{"role": "user", "content": "b"}]}) + "\n"
    )  # fmt: skip
    return folder


def test_mixed_folder_loads_good_and_lists_broken(tmp_path: Path) -> None:
    folder = _broken_folder(tmp_path)
    result = load_traces([folder])
    assert len(result.traces) == 2 + 2 + 2  # two Who&When logs, two tau records, two good JSONL lines
    reasons = {Path(f.path).name: f.reason for f in result.failures}
    assert set(reasons) == {
        "truncated.json", "cut_in_string.json", "malformed.json", "junk.dat", "empty.json", "unknown.json", "empty_traj",
        "wrong_type.json", "notgzip.json.gz", "cut.json.gz", "lines.jsonl",
    }  # fmt: skip
    assert reasons["truncated.json"].startswith("truncated JSON")
    assert reasons["cut_in_string.json"].startswith("truncated JSON")
    assert reasons["malformed.json"].startswith("malformed JSON at line 1")
    assert reasons["junk.dat"].startswith("binary data")
    assert reasons["empty.json"] == "empty file"
    assert reasons["unknown.json"].startswith("unknown format (an object with keys: foo, bar)")
    assert "--format" in reasons["unknown.json"]
    assert reasons["empty_traj"].startswith("empty trajectory")
    assert "'history' should be a JSON list" in reasons["wrong_type.json"]
    assert reasons["notgzip.json.gz"].startswith("cannot read file")
    assert reasons["cut.json.gz"].startswith("cannot read file")
    line_failure = next(f for f in result.failures if f.path.endswith("lines.jsonl"))
    assert line_failure.record == 1 and line_failure.reason.startswith("line 2:")
    with pytest.raises(TraceLoadError, match="--strict"):
        load_traces([folder], strict=True)


def test_missing_path_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    result = load_traces([tmp_path / "nope", FIX / "whowhen"])
    assert len(result.traces) == 2
    assert result.failures[0].reason == "no such file or folder"


def test_lenient_json_trailing_comma_and_nan() -> None:
    assert decode_json(b'{"a": [1, 2,], "b": "x,]",}') == {"a": [1, 2], "b": "x,]"}
    assert decode_json(b'{"a": NaN}')["a"] != decode_json(b'{"a": NaN}')["a"]


# ---- hostile input: every loader returns valid traces or raises TraceLoadError --------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
_trace_keys = st.sampled_from(
    ["trajectory", "trajectroy_log", "history", "traj", "messages", "spans", "child_spans", "trace", "role",
     "content", "name", "thought", "action", "observation", "span_id", "parent_span_id", "trace_id",
     "span_attributes", "step_trajectory_json", "task_description", "tool_calls", "timestamp", "duration",
     "status_code", "type", "reviews", "question", "mistake_step", "reward", "task_number", "attributes"]
)  # fmt: skip
_trace_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.just("mpe-agent"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_trace_keys, inner, max_size=6),
    max_leaves=30,
)


def _check_parse(module: Any, doc: Any) -> None:
    try:
        traces = module.load(doc, Source("hostile.json", "hostile.json"))
    except TraceLoadError:
        return
    for t in traces:
        assert_valid(t)


@pytest.mark.parametrize("fmt", list(FORMATS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.one_of(_json_values, _trace_like))
def test_hostile_documents_never_crash_a_loader(fmt: str, doc: Any) -> None:
    _check_parse(FORMATS[fmt], doc)


def test_out_of_range_integers_are_absent_not_overflowing() -> None:
    assert opt_int(3) == 3 and opt_int(4.0) == 4 and opt_int(" 12 ") == 12
    for bad in (9.2e18, 3.4e38, -(2**63), 2**64, "x", 1.5, True, None):
        assert opt_int(bad) is None, bad


def _fixture_docs() -> list[tuple[str, Any]]:
    out = []
    for path in sorted(FIX.rglob("*")):
        if path.is_file() and path.parent.name != "nontraces" and path.suffix in ("", ".json", ".traj"):
            out.append((path.relative_to(FIX).parts[0], json.loads(path.read_text())))
    return out


def _mutate(doc: Any, path: list[int], replacement: Any) -> Any:
    """Replace the subtree reached by following `path` (indices taken modulo each container's size)."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return replacement
    if isinstance(doc, dict):
        key = list(doc)[path[0] % len(doc)]
        return {**doc, key: _mutate(doc[key], path[1:], replacement)}
    i = path[0] % len(doc)
    return [*doc[:i], _mutate(doc[i], path[1:], replacement), *doc[i + 1 :]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=6),
    replacement=_json_values,
)
# Found by CI: a step number of 9.2e18 or 3.4e38 overflowed the Int64 step-index column.
@example(which=7525546, path=[7, 0, 0, 0], replacement=9.2e18)
@example(which=7525546, path=[7, 0, 0, 0], replacement=3.4e38)
def test_wrong_types_inside_real_shapes(which: int, path: list[int], replacement: Any) -> None:
    docs = _fixture_docs()
    fmt, doc = docs[which % len(docs)]
    _check_parse(FORMATS[fmt], _mutate(doc, path, replacement))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.binary(max_size=400),
    fmt=st.sampled_from([None, *FORMATS]),
    name=st.sampled_from(["x.json", "x", "x.jsonl", "x.log", "x.json.gz"]),
)
def test_random_bytes_never_raise(tmp_path: Path, data: bytes, fmt: str | None, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    outcome = load_file(path, name, forced=fmt)
    assert outcome.traces or outcome.failures or outcome.skipped
    for t in outcome.traces:
        assert_valid(t)
    for f in outcome.failures:
        assert f.reason and f.path == str(path)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(which=st.integers(min_value=0), cut=st.floats(min_value=0.0, max_value=1.0))
def test_truncated_fixture_files_fail_cleanly(tmp_path: Path, which: int, cut: float) -> None:
    files = sorted(p for p in FIX.rglob("*") if p.is_file() and p.parent.name != "nontraces")
    src = files[which % len(files)]
    data = src.read_bytes()
    path = tmp_path / src.name
    path.write_bytes(data[: int(len(data) * cut)])
    outcome = load_file(path, src.name)
    for t in outcome.traces:
        assert_valid(t)
    if cut < 0.5 and src.suffix not in (".log", ".txt", ".jsonl"):  # text logs have no end marker
        assert outcome.failures, f"{src.name} cut at {cut:.2f} should not load"


def test_thousands_of_files_with_a_few_bad(tmp_path: Path) -> None:
    good = json.loads((FIX / "whowhen" / "ag2_log.json").read_text())
    folder = tmp_path / "many"
    for shard in range(10):
        d = folder / f"shard{shard}"
        d.mkdir(parents=True)
        for i in range(200):
            (d / f"{i:04d}.json").write_text(json.dumps({**good, "question_ID": f"{shard}-{i}"}))
    bad = [folder / "shard3" / "0007.json", folder / "shard8" / "0150.json", folder / "shard9" / "0199.json"]
    bad[0].write_text("{")
    bad[1].write_bytes(b"\x00" * 64)
    bad[2].write_text(json.dumps({**good, "history": []}))
    result = load_traces([folder])
    assert len(result.traces) == 2000 - 3
    assert sorted(f.path for f in result.failures) == sorted(str(p) for p in bad)
    assert len({t.trace_id for t in result.traces}) == 2000 - 3


def test_progress_bar_on_a_terminal_gives_the_same_result() -> None:
    from io import StringIO

    from rich.console import Console

    from trajfm.traces.summary import load_with_progress

    buf = StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    shown = load_with_progress([str(FIX)], None, console=console, min_files=1)
    plain = load_traces([FIX])
    assert [t.trace_id for t in shown.traces] == [t.trace_id for t in plain.traces]
    assert "loading traces" in buf.getvalue()


@pytest.mark.parametrize("fmt", [None, "agentrx"])
def test_one_bad_record_in_a_list_file_fails_alone(tmp_path: Path, fmt: str | None) -> None:
    records = json.loads((FIX / "agentrx" / "tau_runs.json").read_text())
    records[1]["traj"] = "not a list"
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(records))
    result = load_traces([path], format=fmt)
    assert [t.trace_id for t in result.traces] == ["runs.json#0"]
    [failure] = result.failures
    assert failure.record == 1 and "'traj' should be a JSON list" in failure.reason


def test_jsonl_of_agent_role_messages_is_one_agentrx_trace(tmp_path: Path) -> None:
    messages = json.loads((FIX / "agentrx" / "magentic_run.json").read_text())
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(json.dumps(m) for m in messages))
    t = _one(path)
    assert t.source_format == "agentrx" and [s.index for s in t.steps] == [1, 2, 3, 4]


def test_a_loader_bug_is_reported_per_file_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from trajfm.traces import whowhen

    def broken(doc: Any, source: Source) -> list[Trace]:
        raise KeyError("boom")

    monkeypatch.setattr(whowhen.WhoWhenFormat, "load", staticmethod(broken))
    monkeypatch.delenv("TRAJFM_DEBUG", raising=False)
    result = load_traces([FIX / "whowhen", FIX / "chat"])
    assert len(result.traces) == 4  # the chat files still load
    assert len(result.failures) == 2
    assert all(f.reason.startswith("internal error in the loader (KeyError") for f in result.failures)
    monkeypatch.setenv("TRAJFM_DEBUG", "1")
    with pytest.raises(KeyError):
        load_traces([FIX / "whowhen"])
