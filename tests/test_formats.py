"""Trace formats: a golden test per loader on project-made fixtures in the public formats' shapes, detection by
score (misreads refused, ambiguity reported), step roles, tool-result unwrapping, identity from what the format
carries, the loading-quality figures, a mixed folder, and what the rules judge makes of roles and unwrapping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from trajfm import plugins
from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces import FORMATS, ROLES, Format, Trace, load_traces
from trajfm.traces._common import unwrap_tool_result
from trajfm.traces.assetops import path_info
from trajfm.traces.detect import detect_doc
from trajfm.traces.model import traces_from_frames, traces_to_frames
from trajfm.traces.quality import summarize, summarize_table

FIX = Path(__file__).resolve().parent / "fixtures" / "traces"

# One fixture per format: what the mixed folder and the misread matrix use.
REPRESENTATIVE = {
    "assetops": "assetops/2025-01-02T03_04_05/acme-ai/tiny-planner-7b/0042",
    "assetops-run": "assetops-run/run_301.json",
    "assetops-plan": "assetops-plan/plan_result.json",
    "assetops-tools": "assetops-tools/agents_result.json",
    "sweagent": "sweagent/tiny__parser-1.traj",
    "whowhen": "whowhen/ag2_log.json",
    "agentrx": "agentrx/tau_runs.json",
    "tau2": "tau2/results.json",
    "openhands": "openhands/events.json",
    "otel": "otel/trail_tree.json",
    "langsmith": "langsmith/run_tree.json",
    "langfuse": "langfuse/export.json",
    "autogen": "autogen/weather_console.log",
    "mast": "mast/records.json",
    "chat": "chat/single.json.gz",
}


def _load(rel: str, **kw: Any) -> list[Trace]:
    result = load_traces([FIX / rel], **kw)
    assert not result.failures, result.failures
    return result.traces


def _steps(t: Trace) -> list[tuple[int, str, str, str | None, str | None, bool]]:
    return [(s.index, s.kind, s.role, s.tool_name, s.tool_input, s.is_error) for s in t.steps]


def test_every_format_is_registered_once_with_its_docs() -> None:
    assert set(REPRESENTATIVE) == set(FORMATS)
    # The built-ins come through the plugin table (the trajfm.formats entry-point path), named as their class.
    assert list(plugins.BUILTIN["formats"]) == list(FORMATS)
    rows = {r.name: r for r in plugins.status(("formats",))}
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, Format) and fmt.name == name
        assert rows[name].ok and rows[name].source == plugins.BUILTIN_SOURCE
        assert fmt.description and fmt.origin and "\n" not in fmt.description


# ---- golden tests, one per loader ----------------------------------------------------------------------------


def test_tau2_one_trace_per_simulation_policy_user_tools_outcome() -> None:
    a, b = _load("tau2/results.json")
    assert (a.trace_id, b.trace_id) == ("results.json#sim-a", "results.json#sim-b")
    assert len(a.steps) == 9 and len(b.steps) == 6
    assert (a.steps[0].kind, a.steps[0].role) == ("system", "system")  # the policy
    assert a.steps[0].content.startswith("# Travel desk policy")
    assert [s.role for s in a.steps[1:]] == ["agent", "user", "user", "user", "agent", "tool", "agent", "user"]
    user_call = a.steps[3]  # the simulated user's own tool call stays a user step
    assert (user_call.kind, user_call.role, user_call.tool_name, user_call.tool_input) == (
        "tool_call", "user", "check_wallet", '{"code":"BK7"}',
    )  # fmt: skip
    agent_call = a.steps[5]
    assert (agent_call.role, agent_call.tool_name, agent_call.tool_input) == ("agent", "find_trips", '{"city":"Lyon"}')
    assert [s.index for s in a.steps] == [0, 0, 1, 2, 3, 4, 5, 6, 7]  # turn_idx
    # The task is what the agent was asked, not the simulator's persona instructions (kept apart in meta).
    assert a.task.startswith("I need the earliest trip to Lyon")
    assert "Refuse to pay a fee" in a.meta["user_instructions"] and "Refuse" not in a.task
    assert a.final_answer == "The earliest trip is LY1 at 08:00. Shall I book it?"
    assert (a.outcome, a.reward, a.is_correct) == ("termination_reason=user_stop; reward=1", 1.0, True)
    assert (a.agent_model, a.meta["user_model"], a.framework) == ("tiny-agent-2", "sim-user-1", "tau2-bench")
    assert (a.scenario, a.utterance_id, a.run_id) == ("travel", "t1", "2026-03-04T10:11:12.000001")
    err = b.steps[4]
    assert (err.kind, err.role, err.is_error, err.content) == ("tool_result", "tool", True, '{"error": "unknown city"}')
    assert (b.outcome, b.is_correct) == ("termination_reason=max_steps; reward=0", False)


def test_sweagent_trajectory_form() -> None:
    (t,) = _load("sweagent/tiny__parser-1.traj")
    assert t.source_format == "sweagent" and len(t.steps) == 14
    assert [(s.kind, s.role) for s in t.steps[:2]] == [("system", "system"), ("message", "user")]
    acts = [s for s in t.steps if s.kind == "action"]
    assert [(s.index, s.tool_name) for s in acts] == [(1, "find_file"), (2, "python"), (3, "edit"), (4, "submit")]
    assert acts[1].tool_input == "python reproduce.py"
    assert {s.role for s in t.steps if s.kind == "observation"} == {"tool"}
    assert [s.index for s in t.steps if s.is_error] == [2]  # the traceback
    assert t.task == "The tiny parser returns None for valid input."
    assert t.final_answer is not None and t.final_answer.startswith("diff --git a/tiny/parser.py")
    assert t.outcome == "exit_status=submitted; submitted"
    assert (t.agent_model, t.framework, t.utterance_id) == ("tiny-coder-3", "SWE-agent", "tiny__parser-1")


def test_sweagent_history_only_form() -> None:
    (t,) = _load("sweagent/tiny__add-2.traj")
    assert _steps(t) == [
        (0, "system", "system", None, None, False),
        (0, "message", "user", None, None, False),
        (1, "action", "agent", "bash", '{"command": "cat add.py"}', False),
        (1, "observation", "tool", None, None, False),
        (2, "action", "agent", "bash", '{"command": "sed -i s/abs(a)/a/ add.py"}', False),
        (2, "observation", "tool", None, None, True),
    ]
    assert t.task == "Make add() handle negative numbers." and t.final_answer is None
    assert t.outcome == "exit_status=exit_cost; no submission"
    assert (t.agent_model, t.framework) == ("tiny-coder-4", "SWE-agent 1.1.0")
    assert t.load_warnings == ["no final answer"]


def test_openhands_event_list() -> None:
    (t,) = _load("openhands/events.json")
    assert _steps(t) == [
        (0, "system", "system", None, None, False),
        (1, "message", "user", None, None, False),
        (3, "action", "agent", "execute_bash", "wc -l notes.md", False),
        (4, "observation", "tool", None, None, True),  # exit code 1
        (5, "action", "agent", "execute_bash", "ls", False),
        (6, "observation", "tool", None, None, False),
        (7, "answer", "agent", "finish", None, False),
    ]
    assert t.task == "Count the lines of notes.md" and t.final_answer == "notes.md has 12 lines."
    assert t.framework == "OpenHands" and t.agent_model is None and t.outcome is None


def test_openhands_output_jsonl_records_show_the_iteration_limit() -> None:
    limit, done = _load("openhands/output.jsonl")
    assert (limit.trace_id, done.trace_id) == ("output.jsonl#0", "output.jsonl#1")
    assert [s.role for s in limit.steps] == ["user", "agent", "tool", "agent", "tool", "environment"]
    last = limit.steps[-1]
    assert last.is_error and "maximum iteration" in last.content
    assert limit.outcome is not None and limit.outcome.startswith("error=Agent reached maximum iteration")
    assert limit.outcome.endswith("resolved=false") and limit.is_correct is False
    assert (limit.agent_model, limit.framework, limit.utterance_id) == (
        "tiny-openhands-llm", "OpenHands CodeActAgent", "tiny__calc-7",
    )  # fmt: skip
    assert limit.task.startswith("Fix the division bug") and limit.final_answer is None
    # the old [action, observation] pair form
    assert _steps(done) == [
        (1, "action", "agent", "edit", "/workspace/calc.py", False),
        (2, "observation", "tool", None, None, False),
        (3, "answer", "agent", "finish", None, False),
    ]
    assert (done.final_answer, done.outcome, done.is_correct) == ("Added the docstring to divide().", "resolved=true", True)


def test_assetops_run_json_unwraps_mcp_results() -> None:
    (t,) = _load("assetops-run/run_301.json")
    assert len(t.steps) == 7
    assert [(s.index, s.kind, s.role) for s in t.steps] == [
        (1, "thought", "agent"), (1, "action", "agent"), (1, "observation", "tool"),
        (2, "thought", "agent"), (2, "action", "agent"), (2, "observation", "tool"), (3, "message", "agent"),
    ]  # fmt: skip
    calls = [(s.tool_name, s.tool_input) for s in t.steps if s.kind == "action"]
    assert calls == [("list_sensors", '{"asset":"CH-2"}'), ("latest_reading", '{"asset":"CH-2","sensor":"T1"}')]
    err = t.steps[5]
    assert err.is_error and err.content == '{"error": "sensor history unavailable"}'
    assert err.meta["raw_content"].startswith('[{"type":"text"')  # the raw envelope is kept
    assert not t.steps[2].is_error and t.steps[2].content == '{"sensors": ["T1", "T2"]}'
    assert t.task.startswith("What is the latest reading") and t.final_answer == "The latest T1 reading on CH-2 is 6.5 C."
    assert (t.agent_model, t.framework, t.run_id, t.utterance_id) == (
        "tiny-granite-8b", "AssetOpsBench react-mcp", "run-2026-05-01-a", "301",
    )  # fmt: skip
    assert t.outcome is None


def test_assetops_plan_execute() -> None:
    (t,) = _load("assetops-plan/plan_result.json")
    assert _steps(t) == [
        (1, "action", "agent", "get_readings", '{"asset":"P-3","sensor":"vibration"}', False),
        (1, "observation", "tool", None, None, False),
        (2, "action", "agent", "detect_anomaly", '{"values":[9.1,9.4]}', False),
        (2, "observation", "tool", None, None, True),
        (3, "action", "agent", "create_work_order", '{"asset":"P-3"}', False),
        (3, "observation", "tool", None, None, False),
    ]
    assert t.steps[1].content == '{"values": [9.1, 9.4]}'  # MCP envelope in a JSON string, decoded
    assert t.steps[3].content == "[error] model not loaded" and t.steps[0].meta["server"] == "iot"
    assert t.final_answer == "Work order WO-17 was created for pump P-3."
    assert (t.outcome, t.agent_model, t.framework) == ("success=true", "tiny-planner-70b", "AssetOpsBench plan-execute")


def test_assetops_agent_as_tool() -> None:
    (t,) = _load("assetops-tools/agents_result.json")
    assert [(s.index, s.kind, s.role) for s in t.steps] == [
        (0, "system", "system"), (1, "message", "user"), (2, "message", "agent"), (2, "action", "agent"),
        (2, "observation", "tool"), (3, "message", "agent"),
    ]  # fmt: skip
    call = t.steps[3]
    assert (call.tool_name, call.tool_input) == ("fmsr_agent", '{"question":"failure modes for S4 on M-1"}')
    assert t.steps[4].content == '{"answer": "bearing wear, misalignment"}' and not any(s.is_error for s in t.steps)
    assert (t.outcome, t.agent_model) == ("success=false", "tiny-agents-13b")  # model from runner_meta.model_id
    assert t.task.startswith("Which failure modes") and t.final_answer == "S4 can detect bearing wear and misalignment."


def test_otlp_genai_spans_unwrap_the_mcp_error() -> None:
    (t,) = _load("otel/otlp_genai.json")
    assert [(s.role, s.tool_name, s.is_error) for s in t.steps] == [
        ("agent", None, False), ("agent", None, False), ("tool", "service_log", True), ("agent", None, False),
    ]  # fmt: skip
    tool = t.steps[2]
    assert tool.tool_input == '{"asset": "C-9"}' and tool.content == '{"error": "asset C-9 not in registry"}'
    assert {s.agent for s in t.steps} == {"maintenance"}  # gen_ai.agent.name
    assert t.task == "Is compressor C-9 due for service?" and t.final_answer == "C-9 is due for service next week."
    assert t.agent_model == "tiny-mcp-llm"


def test_concatenated_json_objects_are_read_as_one_span_export() -> None:
    (t,) = _load("otel/console_spans.log")
    assert t.source_format == "otel" and len(t.steps) == 3
    assert [(s.role, s.tool_name, s.is_error) for s in t.steps] == [
        ("agent", None, False), ("tool", "calculator", True), ("agent", None, False),
    ]  # fmt: skip
    assert t.steps[1].tool_input == '{"expression": "2/0"}' and "division by zero" in t.steps[1].content
    assert (t.task, t.final_answer, t.agent_model) == ("What is 2+2?", "4", "tiny-console-llm")


def test_langsmith_run_tree() -> None:
    (t,) = _load("langsmith/run_tree.json")
    assert [s.step_id for s in t.steps] == ["r-root", "r-llm1", "r-tool1", "r-tool2", "r-llm2"]
    assert [(s.role, s.tool_name, s.is_error, s.depth) for s in t.steps] == [
        ("agent", None, False, 0), ("agent", "country_lookup", False, 1), ("tool", "country_lookup", True, 1),
        ("tool", "country_lookup", False, 1), ("agent", None, False, 1),
    ]  # fmt: skip
    assert t.steps[2].tool_input == "{'code': 'FR'}" and "TimeoutError" in t.steps[2].content
    assert t.steps[3].content == "France"
    assert t.task == "What is the capital of the country with code FR?"
    assert t.final_answer == "The capital of France is Paris."
    assert (t.agent_model, t.framework, t.run_id) == ("tiny-lc-model", "LangSmith", "proj-7")


def test_langfuse_export() -> None:
    (t,) = _load("langfuse/export.json")
    assert [(s.role, s.tool_name, s.is_error) for s in t.steps] == [
        ("agent", None, False), ("tool", "order_status", True), ("agent", None, False),
    ]  # fmt: skip
    assert t.steps[1].tool_input == '{"order":55}' and "503" in t.steps[1].content
    assert t.task == "Where is order 55?" and t.final_answer == "Order 55 ships tomorrow."
    assert (t.agent_model, t.framework, t.run_id) == ("tiny-lf-model", "Langfuse", "sess-9")


def test_autogen_console_log() -> None:
    (t,) = _load("autogen/weather_console.log")
    assert _steps(t) == [
        (0, "message", "user", None, None, False),
        (1, "tool_call", "agent", "get_weather", '{"city": "Oslo"}', False),
        (2, "tool_result", "tool", "get_weather", None, True),
        (3, "message", "agent", None, None, False),
        (4, "message", "agent", None, None, False),
    ]
    assert [s.agent for s in t.steps] == ["user", "weather_agent", "weather_agent", "weather_agent", "critic"]
    assert t.steps[2].content == "Error: weather service unreachable"
    assert "Prompt tokens" not in t.steps[3].content and t.steps[4].content == "APPROVE"  # stats lines dropped
    assert t.task == "What is the weather in Oslo?" and t.final_answer == "APPROVE"
    assert t.outcome == "finish_reason=Text 'APPROVE' mentioned" and t.framework == "AutoGen" and t.multi_agent


def test_magentic_one_console_logs_are_autogen() -> None:
    (t,) = _load("autogen/magentic_one.txt")
    assert [(s.agent, s.role) for s in t.steps] == [
        ("user", "user"), ("MagenticOneOrchestrator", "agent"), ("MagenticOneOrchestrator", "agent"),
        ("WebSurfer", "agent"), ("MagenticOneOrchestrator", "agent"),
    ]  # fmt: skip
    assert t.task == "Find the opening hours of the city library." and t.multi_agent


def test_roles_of_the_existing_loaders() -> None:
    (react,) = _load(REPRESENTATIVE["assetops"])
    assert {s.kind: s.role for s in react.steps} == {"thought": "agent", "action": "agent", "observation": "tool"}
    (ag2,) = _load("whowhen/ag2_log.json")
    roles = {s.role for s in ag2.steps}
    assert "agent" in roles and roles <= set(ROLES)
    assert all(s.role == "tool" for s in ag2.steps if s.content.startswith("exitcode:"))
    tau = _load("agentrx/tau_runs.json")[0]
    by_role = {s.meta.get("role"): s.role for s in tau.steps}
    assert by_role == {"system": "system", "user": "user", "assistant": "agent", "tool": "tool"}
    magentic = _load("agentrx/magentic_run.json")[0]
    assert {s.role for s in magentic.steps if (s.agent or "").lower() in ("human", "user")} == {"user"}
    chatdev = _load("mast/records.json")[0]
    assert [s.role for s in chatdev.steps] == ["system", "agent", "agent", "system"]
    for rel in REPRESENTATIVE.values():
        for t in load_traces([FIX / rel]).traces:
            assert all(s.role in ROLES for s in t.steps), rel


# ---- identity ------------------------------------------------------------------------------------------------


def test_a_folder_name_is_never_taken_for_a_model() -> None:
    assert path_info("/x/runs/2025-07-29T13_59_38/meta-llama/llama-4-maverick/1001")["model"] == "llama-4-maverick"
    assert path_info("/x/sample_trajectories/mistral-large/0001")["model"] == "mistral-large"
    # not the documented <model>/<numeric id> layout, or not a plausible model name: null
    assert path_info("/x/trajectories/alice/django__django-1234.traj")["model"] is None
    assert path_info("/home/me/traces/0001")["model"] is None
    assert path_info("/home/me/project/0001")["model"] is None  # a word without digits or dashes


def test_a_swe_agent_file_in_a_model_like_folder_is_not_assetops(tmp_path: Path) -> None:
    folder = tmp_path / "gpt4-runs" / "mistral-large"
    folder.mkdir(parents=True)
    shutil.copy(FIX / "sweagent" / "tiny__parser-1.traj", folder / "0001")
    (t,) = load_traces([folder]).traces
    assert t.source_format == "sweagent" and t.agent_model == "tiny-coder-3" and t.vendor is None


# ---- detection and misreads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("src", sorted(REPRESENTATIVE))
def test_each_fixture_is_detected_as_its_format(src: str) -> None:
    result = load_traces([FIX / REPRESENTATIVE[src]])
    assert result.traces and not result.failures
    assert {t.source_format for t in result.traces} == {src}
    assert all(t.format_fit is not None and t.format_fit >= 0.6 for t in result.traces)


@pytest.mark.parametrize("forced", sorted(REPRESENTATIVE))
def test_every_other_format_forced_into_a_loader_is_reported_as_misread(forced: str) -> None:
    for src, rel in REPRESENTATIVE.items():
        if src == forced:
            continue
        result = load_traces([FIX / rel], format=forced)
        assert not result.traces, f"{src} forced into {forced} was loaded"
        assert result.failures and all(f.reason.startswith("misread:") for f in result.failures), (src, forced)
        assert f"--format {src}" in result.failures[0].reason, result.failures[0].reason


def test_forcing_the_right_format_still_loads() -> None:
    for src, rel in REPRESENTATIVE.items():
        assert load_traces([FIX / rel], format=src).traces, src


def test_a_close_second_or_a_weak_fit_is_reported() -> None:
    # Steps with thought/action/observation but none of AssetOpsBench's or SWE-agent's own keys: a weak fit.
    doc = {"trajectory": [{"thought": "t", "action": "a", "observation": "o"}]}
    det = detect_doc(doc)
    assert det.name is not None and det.note is not None and "--format" in det.note
    # A clean AssetOpsBench file is a clear fit.
    clean = json.loads((FIX / REPRESENTATIVE["assetops"]).read_text())
    assert detect_doc(clean).note is None


def test_assetops_files_forced_as_whowhen_are_refused() -> None:
    # The bundled corpus forced into Who&When used to load as three-step traces without a word.
    result = load_traces([FIX / "assetops" / "2025-01-02T03_04_05"], format="whowhen")
    assert not result.traces and result.failures[0].reason.startswith("misread:")
    assert "--format assetops" in result.failures[0].reason


# ---- tool results --------------------------------------------------------------------------------------------


def test_unwrap_tool_result() -> None:
    env = json.dumps([{"type": "text", "text": json.dumps({"error": "Sensor X not found"})}])
    r = unwrap_tool_result(env)
    assert (r.text, r.is_error, r.raw) == ('{"error": "Sensor X not found"}', True, env)
    ok = unwrap_tool_result([{"type": "text", "text": '{"result": []}'}])
    assert ok.text == '{"result": []}' and not ok.is_error
    assert unwrap_tool_result({"content": [{"type": "text", "text": "boom"}], "isError": True}).is_error
    assert unwrap_tool_result(json.dumps(json.dumps({"status": "failure"}))).is_error  # JSON string of JSON
    plain = unwrap_tool_result("Found 3 rows")
    assert (plain.text, plain.is_error, plain.raw) == ("Found 3 rows", False, None)
    assert not unwrap_tool_result('{"error": null, "value": 3}').is_error


def test_quotes_of_the_raw_result_still_verify() -> None:
    (t,) = _load("assetops-run/run_301.json")
    assert '[{"type":"text","text":"{\\"error\\": \\"sensor history unavailable\\"}"}]' in t.text()


# ---- loading quality -----------------------------------------------------------------------------------------


def test_loading_quality_columns_and_summary() -> None:
    traces = _load("sweagent")
    traces_df, steps_df = traces_to_frames(traces)
    row = traces_df.filter(traces_df["trace_id"] == "sweagent/tiny__add-2.traj").row(0, named=True)
    assert (row["empty_steps"], row["n_tool_calls"], row["has_final_answer"]) == (0, 2, False)
    assert row["load_warnings"] == ["no final answer"] and row["format_fit"] >= 0.6
    assert row["outcome"] == "exit_status=exit_cost; no submission" and row["framework"] == "SWE-agent 1.1.0"
    assert set(steps_df["role"].to_list()) == {"system", "user", "agent", "tool"}
    q = summarize(traces)["sweagent"]
    assert (q["traces"], q["with_final_answer"], q["with_warnings"], q["tool_calls"]) == (2, 1, 1, 6)


def test_loading_quality_from_the_table_equals_the_one_from_the_traces(tmp_path: Path) -> None:
    # The Ray engine counts it from the written traces table; every format, warnings and examples included.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for fmt, rel in REPRESENTATIVE.items():
        shutil.copy(FIX / rel, mixed / f"{fmt}__{Path(rel).name}")
    empty = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]}
    (mixed / "empty_reply.json").write_text(json.dumps(empty))  # flagged: most steps empty, no final answer
    traces = load_traces([mixed]).traces
    from_traces = summarize(traces)
    assert len(from_traces) == len(REPRESENTATIVE) and from_traces["chat"]["examples"]
    assert summarize_table(traces_to_frames(traces)[0]) == from_traces
    # The tables hold the traces whole: read back, they give the same tables.
    traces_df, steps_df = traces_to_frames(traces)
    again = traces_to_frames(traces_from_frames(traces_df, steps_df))
    assert again[0].equals(traces_df) and again[1].equals(steps_df)


def test_most_steps_empty_and_no_agent_step_are_flagged(tmp_path: Path) -> None:
    doc = {"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": ""},
                        {"role": "user", "content": " "}]}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(doc))
    (t,) = load_traces([tmp_path / "c.json"]).traces
    assert "most steps empty (2 of 3)" in t.load_warnings and "no agent step" in t.load_warnings


# ---- a mixed folder ------------------------------------------------------------------------------------------


def test_mixed_folder_loads_each_format_once_and_lists_non_traces(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    expected: dict[str, str] = {}
    for fmt, rel in REPRESENTATIVE.items():
        src = FIX / rel
        name = f"{fmt}__{src.name}"
        shutil.copy(src, mixed / name)
        expected[name] = fmt
    (mixed / "README").write_text("# Runs of 2026-05\nThese folders hold the agent runs; labels are in labels.json.\n")
    (mixed / "README.md").write_text("# notes\n")
    (mixed / "labels.json").write_text(json.dumps([{"trace_id": "x", "mistake_step": 3, "root_cause": "agent"}]))
    (mixed / "notes.txt").write_text("Remember to rerun the failed ones on Monday.\nAsk about the GPU quota.\n")
    result = load_traces([mixed])
    assert not result.failures, result.failures
    by_file: dict[str, set[str]] = {}
    for t in result.traces:
        by_file.setdefault(Path(t.source_path).name, set()).add(t.source_format)
    assert by_file == {name: {fmt} for name, fmt in expected.items()}
    ids = [t.trace_id for t in result.traces]
    assert len(ids) == len(set(ids))  # each trace once
    skipped = {Path(s.path).name: s.note for s in result.skipped}
    assert set(skipped) == {"README", "README.md", "labels.json", "notes.txt"}
    assert "notes" in skipped["notes.txt"] and "label" in skipped["labels.json"]


# ---- what the judges get from roles and unwrapping -----------------------------------------------------------

MAST = load_taxonomy("mast")


def _detected(trace: Trace) -> list[str]:
    return [m.mode_id for m in RulesJudge().diagnose(trace, MAST).modes if m.detected]


def _tau2_with_user_question_and_tool_docs(tmp_path: Path) -> Trace:
    doc = json.loads((FIX / "tau2" / "results.json").read_text())
    doc["simulations"] = doc["simulations"][:1]
    doc["info"]["environment_info"]["policy"] = (
        "Tools: find_trips(city) returns the trips to a city. If the city is unknown it returns Error: unknown "
        "city. book(trip) fails with Error: trip full when no seat is left. Never call book twice for a trip."
    )
    doc["simulations"][0]["messages"][1]["content"] = (
        "which flight do you want? I got an error: the website said my booking BK7 does not exist. I cannot find it."
    )
    path = tmp_path / "tau2_run.json"
    path.write_text(json.dumps(doc))
    (t,) = load_traces([path]).traces
    return t


def test_a_simulated_users_question_and_tool_docs_trigger_no_agent_failure(tmp_path: Path) -> None:
    t = _tau2_with_user_question_and_tool_docs(tmp_path)
    assert [s.role for s in t.steps[:3]] == ["system", "agent", "user"]
    assert _detected(t) == []
    # Control: the same words read as the agent's own (what a loader without roles produced) do trigger a mode.
    for s in t.steps:
        if s.role in ("user", "system"):
            s.kind, s.role, s.agent = "message", "agent", "assistant"
    assert _detected(t) != []


def test_an_mcp_wrapped_tool_error_triggers_a_failure_mode() -> None:
    (t,) = _load("assetops-run/run_301.json")
    assert "3.2" in _detected(t)  # the agent answers as if the failed call had worked
    # Control: without unwrapping (the raw envelope, no error flag) the same run looks clean.
    for s in t.steps:
        if "raw_content" in s.meta:
            s.content, s.is_error = s.meta["raw_content"], False
    assert _detected(t) == []


def test_traces_help_names_every_format() -> None:
    from typer.testing import CliRunner

    from trajfm.cli import app

    res = CliRunner().invoke(app, ["traces", "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for name in FORMATS:
        assert name in text, name


def test_readme_format_table_lists_every_format_with_its_origin() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in readme.splitlines() if line.startswith("| `")}
    for name, fmt in FORMATS.items():
        assert name in rows, f"README's format table has no row for {name}"
        assert fmt.origin in rows[name]


def test_a_forced_format_still_skips_label_files(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    shutil.copytree(FIX / "whowhen", folder)
    (folder / "labels.jsonl").write_text(json.dumps({"trace_id": "ag2_log.json", "mistake_step": 2}) + "\n")
    result = load_traces([folder], format="whowhen")
    assert not result.failures and len(result.traces) == 2
    assert [Path(s.path).name for s in result.skipped] == ["labels.jsonl"]
