"""The rules judge's outcome contract (issue 13): root cause exactly when a failure is known or detected,
the source's own outcome recorded beside the verdict, unchecked modes written as null, and the root-cause
step scorer (features, model file, fitting) behaving as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajfm.errors import UsageError
from trajfm.judges.detectors import FINDING_KINDS, build_view
from trajfm.judges.rootcause.features import FEATURES, candidates, step_features, step_role
from trajfm.judges.rootcause.fit import Example, fit
from trajfm.judges.rootcause.model import RootCauseModel, load_model
from trajfm.judges.rules import USER_REQUEST_CONFIDENCE, RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Step, Trace

MAST = load_taxonomy("mast")


def chat(messages: list[tuple[str, str]], **trace_fields: object) -> Trace:
    steps = [
        Step(position=i, index=i, kind="message", content=c, agent=a) for i, (a, c) in enumerate(messages)
    ]
    return Trace(trace_id="c", source_path="c.json", source_format="test", steps=steps, **trace_fields)  # type: ignore[arg-type]


CLEAN_CHAT = [
    ("human", "What is the tallest mountain in the Alps?"),
    ("Planner", "I will ask the researcher to look it up."),
    ("Researcher", "Mont Blanc is the tallest mountain in the Alps, at 4,806 metres."),
    ("Planner", "The answer is Mont Blanc."),
]


def test_known_failed_trace_always_gets_a_root_cause_with_confidence() -> None:
    d = RulesJudge().diagnose(chat(CLEAN_CHAT, is_correct=False), MAST)
    assert d.source_outcome == "failed" and d.task_completed is False
    assert d.root_cause_step in {s.index for s in chat(CLEAN_CHAT).steps}
    assert d.root_cause_agent in {"Planner", "Researcher", "human"}
    assert d.root_cause_confidence is not None and 0.0 < d.root_cause_confidence <= 1.0
    assert d.extra["completion_basis"] == "source"


def test_a_reward_below_one_marks_the_run_failed_and_a_reward_of_one_succeeded() -> None:
    failed = RulesJudge().diagnose(chat(CLEAN_CHAT, reward=0.0), MAST)
    assert (failed.source_outcome, failed.task_completed) == ("failed", False)
    assert failed.root_cause_step is not None
    done = RulesJudge().diagnose(chat(CLEAN_CHAT, reward=1.0), MAST)
    assert (done.source_outcome, done.task_completed) == ("succeeded", True)


def test_the_judges_own_reading_is_kept_beside_the_source_outcome() -> None:
    # The reward decides task_completed; the rules' own reading (here: a clean chat without a final-answer field,
    # so nothing says the task was done) stays in extra, for measuring the judge on traces without an outcome.
    failed = RulesJudge().diagnose(chat(CLEAN_CHAT, reward=0.0), MAST)
    assert failed.task_completed is False and failed.extra["judge_task_completed"] is None
    answered = chat(CLEAN_CHAT, reward=0.0, final_answer="The answer is Mont Blanc.")
    d = RulesJudge().diagnose(answered, MAST)
    assert d.task_completed is False and d.extra["judge_task_completed"] is True
    own = RulesJudge().diagnose(chat(CLEAN_CHAT, final_answer="The answer is Mont Blanc."), MAST)
    assert own.extra["completion_basis"] == "judge" and own.extra["judge_task_completed"] is own.task_completed


def test_outcome_scores_count_missing_readings_as_wrong() -> None:
    from trajfm.bench.agentrx import outcome_scores

    gold = [True, True, False, False]  # succeeded?
    got = outcome_scores(gold, [True, False, False, None])
    assert got["outcome_acc"] == 0.5
    assert got["failed_precision"] == 0.5 and got["failed_recall"] == 0.5
    assert outcome_scores(gold, [True] * 4) == {"outcome_acc": 0.5, "failed_precision": 0.0, "failed_recall": 0.0}


def test_completed_trace_without_a_detected_failure_has_no_root_cause() -> None:
    d = RulesJudge().diagnose(chat(CLEAN_CHAT, is_correct=True), MAST)
    decisive = [f for f in d.extra["findings"] if FINDING_KINDS[f["kind"]].decisive]
    assert d.task_completed is True and not decisive
    assert (d.root_cause_step, d.root_cause_agent, d.root_cause_confidence) == (None, None, None)


def test_unknown_outcome_and_no_failure_names_no_root_cause() -> None:
    d = RulesJudge().diagnose(chat(CLEAN_CHAT), MAST)
    assert d.source_outcome is None
    assert d.root_cause_step is None


def test_review_status_outcome_comes_from_the_format_vocabulary_file() -> None:
    from trajfm.judges.formats import source_outcome

    t = chat(CLEAN_CHAT, review_status="Not Accomplished")
    assert source_outcome(t) is None  # format "test" has no vocabulary file: the status means nothing
    t.source_format = "assetops"
    assert source_outcome(t) == "failed"
    t.review_status = "Accomplished"
    assert source_outcome(t) == "succeeded"


def test_modes_without_a_rule_are_null_never_false() -> None:
    d = RulesJudge().diagnose(chat(CLEAN_CHAT, is_correct=False), MAST)
    checked = {m for spec in FINDING_KINDS.values() for m in spec.modes.get("mast", ())}
    for m in d.modes:
        if m.mode_id in checked:
            assert m.detected is not None, m.mode_id
        else:
            assert m.detected is None and m.rationale.startswith("not checked"), m.mode_id
    assert any(m.detected is None for m in d.modes)  # MAST has modes no rule checks


def test_multi_agent_chat_root_cause_follows_the_error_not_the_orchestrator() -> None:
    """A Magentic-One-shaped chat (orchestrator, web surfer, coder, terminal): the coder's code fails in the
    terminal; the blame must not collapse onto the orchestrator or the opening step."""
    msgs = [
        ("human", "Find the population of the largest city in Norway and report it rounded to thousands."),
        ("Orchestrator", "Plan: WebSurfer finds the figure, Coder rounds it."),
        ("Orchestrator", "WebSurfer, please search for the population of Oslo."),
        ("WebSurfer", "I searched the web. Oslo has a population of 717,710 according to the city's site."),
        ("Orchestrator", "Coder, please round 717,710 to thousands."),
        ("Coder", "```python\nprint(round(717710, -3) / 0)\n```"),
        (
            "Terminal",
            'Traceback (most recent call last):\n  File "x.py", line 1\nZeroDivisionError: division by zero',
        ),
        ("Orchestrator", "The task could not be completed."),
    ]
    d = RulesJudge().diagnose(chat(msgs, is_correct=False), MAST)
    assert d.root_cause_step not in (0, 1)
    assert d.root_cause_agent not in ("Orchestrator", "human")
    assert d.root_cause_agent == "Coder" and d.root_cause_step == 5


def test_an_error_is_blamed_on_the_code_a_coordinator_passed_on_not_on_the_coordinator() -> None:
    """The coordinator asks the terminal to run the coder's script ("please run the script" between the code and
    its output): the first error's producer is the message that holds the code. Without code in the two messages
    before, the nearest other speaker's message stays the producer."""
    from trajfm.judges.detectors.origin import first_error_origin

    forwarded = [
        ("human", "How many rows of sales.csv have a negative amount?"),
        ("Orchestrator", "Coder, please write a script that counts them."),
        ("Coder", "```python\nimport pandas as pd\nprint((pd.read_csv('sales.csv')['amount'] < 0).sum())\n```"),
        ("Orchestrator", "ComputerTerminal, please run the script."),
        ("ComputerTerminal", "The script exited with code 1.\nTraceback (most recent call last):\nKeyError: 'amount'"),
    ]
    origin = first_error_origin(build_view(chat(forwarded)))
    assert origin is not None and (origin.index, origin.agent) == (2, "Coder")
    asked = [
        ("human", "Open the quarterly report."),
        ("Planner", "FileReader, open reports/q3.pdf."),
        ("FileReader", "Error: reports/q3.pdf does not exist."),
    ]
    origin = first_error_origin(build_view(chat(asked)))
    assert origin is not None and (origin.index, origin.agent) == (1, "Planner")


def test_a_rejected_call_in_an_executors_output_is_blamed_once_on_the_code_that_ran() -> None:
    """A chat log whose executor output is an observation step no action owns, delivered twice (once as the
    execution output, once relayed to the agent under another header): one call was rejected, so there is one
    finding, on the agent message whose code ran, not two on the executor's outputs."""
    msgs = [
        ("user", "message", "Send my playlists to Ana."),
        ("Planner", "message", "```python\nsend(app='music', text='playlists', token='x1')\n```"),
        ("environment", "observation", "Execution output\nTypeError: send() got an unexpected keyword argument 'token'"),
        ("environment", "observation", "Relayed to Planner\nTypeError: send() got an unexpected keyword argument 'token'"),
        ("Planner", "message", "The token goes inside the text. I will try again."),
    ]
    steps = [
        Step(position=i, index=i, kind=k, content=c, agent=a, role="tool" if k == "observation" else "agent")
        for i, (a, k, c) in enumerate(msgs)
    ]
    trace = Trace(trace_id="x", source_path="x.json", source_format="test", steps=steps, is_correct=False)
    d = RulesJudge(all_detectors=True).diagnose(trace, MAST)
    rejected = [f for f in d.extra["findings"] if f["kind"] == "invalid_action"]
    assert [f["steps"] for f in rejected] == [[1]]
    assert (d.root_cause_step, d.root_cause_agent) == (1, "Planner")
    from trajfm.judges.detectors.origin import first_error_origin

    origin = first_error_origin(build_view(trace))  # the first error's producer, a root-cause feature
    assert origin is not None and (origin.index, origin.agent) == (1, "Planner")


@pytest.mark.parametrize(
    ("ending", "limit"),
    [
        ("Max rounds (20) reached.", True),
        ("Max time (1500s) reached.", True),
        ("The job's time limit was exceeded.", True),
        ("The maximum time for a single page load is 30 s; the page loaded in 2 s.", False),
    ],
)
def test_a_coordinator_that_reports_its_round_or_time_limit_ends_on_the_limit(ending: str, limit: bool) -> None:
    msgs = [
        ("human", "Which year did the east wing of the museum open?"),
        ("Orchestrator", "WebSurfer, please find the year the east wing opened."),
        ("WebSurfer", "I scrolled down the museum's history page; it lists the west wing only."),
        ("Orchestrator", ending),
    ]
    kinds = [f["kind"] for f in RulesJudge().diagnose(chat(msgs), MAST).extra["findings"]]
    assert ("max_steps_reached" in kinds) is limit


def test_an_error_label_inside_code_or_a_list_item_is_not_an_error_signal() -> None:
    """A chat message holding code that prints "Error: ..." or a list of search results naming "KeyError:" shows
    no error; the terminal's "Error: ..." line that follows does."""
    from trajfm.judges.detectors.origin import first_error_origin

    code = '```python\nif not rows:\n    print("Error: no rows")\nelse:\n    print(len(rows))\n```'
    clean = [
        ("human", "Count the rows."),
        ("Planner", "Coder, please count the rows."),
        ("Coder", code),
        ("Terminal", "12"),
        ("Researcher", "Search results:\n1. Python docs - KeyError: raised for a missing key\n2. dict.get()"),
        ("Planner", "There are 12 rows."),
    ]
    assert first_error_origin(build_view(chat(clean))) is None
    failing = [*clean[:3], ("Terminal", "Error: no rows")]
    origin = first_error_origin(build_view(chat(failing)))
    assert origin is not None and origin.agent == "Coder"


def test_a_coordinators_same_run_request_after_a_code_fix_is_not_an_identical_retry() -> None:
    """"Please run the code." said again after the coder changed the code runs new code: not a retry of the
    failing one. The coder sending the same code again after the error is."""

    def kinds(fixed_code: str) -> list[str]:
        msgs = [
            ("human", "Sum column B of data.csv."),
            ("Coder", "```python\nprint(read_csv('data.csv')['B'].sum())\n```"),
            ("Orchestrator", "ComputerTerminal, please run the code."),
            ("ComputerTerminal", "exitcode: 1 (execution failed)\nFileNotFoundError: data.csv"),
            ("Coder", fixed_code),
            ("Orchestrator", "ComputerTerminal, please run the code."),
            ("ComputerTerminal", "exitcode: 0 (execution succeeded)\n42"),
        ]
        return [f["kind"] for f in RulesJudge().diagnose(chat(msgs), MAST).extra["findings"]]

    assert "error_retried_identically" not in kinds("```python\nprint(read_csv('data/data.csv')['B'].sum())\n```")
    assert "error_retried_identically" in kinds("```python\nprint(read_csv('data.csv')['B'].sum())\n```")


def test_step_roles_and_candidates_are_framework_neutral() -> None:
    assert step_role(Step(0, 0, "tool_result", "x")) == "tool"
    assert step_role(Step(0, 0, "tool_call", "x")) == "agent"
    assert step_role(Step(0, 0, "message", "hi", agent="user")) == "user"
    assert step_role(Step(0, 0, "span", "x", meta={"span_kind": "LLM"})) == "agent"
    assert step_role(Step(0, 0, "span", "x", tool_name="search")) == "tool"
    t = chat(CLEAN_CHAT)
    t.steps.append(Step(position=4, index=3, kind="message", content="again", agent="Planner"))
    assert [s.position for s in candidates(t)] == [0, 1, 2, 3]
    table = step_features(build_view(t), [], None)
    assert len(table.rows) == 4 and all(len(r) == len(FEATURES) for r in table.rows)


def test_model_file_errors_and_pick() -> None:
    with pytest.raises(UsageError, match="unknown features"):
        RootCauseModel.from_dict({"weights": {"no_such_feature": 1.0}})
    with pytest.raises(UsageError, match="does not exist"):
        load_model("/nonexistent/weights.json")
    m = RootCauseModel.from_dict({"weights": {"last_agent_step": 2.0}})
    rows = [[0.0] * len(FEATURES) for _ in range(3)]
    rows[2][FEATURES.index("last_agent_step")] = 1.0
    assert m.pick_rows(rows) == 2
    shipped = load_model()
    assert shipped.fitted_on  # the shipped weights say what they were fitted on
    assert any(w != 0 for w in shipped.weights)


def test_fit_learns_a_feature_that_marks_the_gold_step_and_weighs_datasets_equally() -> None:
    k = FEATURES.index("error_next")
    j = FEATURES.index("second_agent_step")

    def example(dataset: str, gold_feature: int, n: int = 5) -> Example:
        rows = [[0.0] * len(FEATURES) for _ in range(n)]
        rows[3][gold_feature] = 1.0
        rows[0][j if gold_feature != j else k] = 1.0
        return Example(dataset=dataset, rows=rows, gold=[3])

    m = fit([example("a", k) for _ in range(20)] + [example("b", k)])
    assert m.weights[k] > 0.5 and m.fitted_on == ("a", "b")
    assert m.pick_rows(example("c", k).rows) == 3


def test_rules_judge_takes_a_root_cause_model_option(tmp_path: Path) -> None:
    from trajfm.judges.registry import get_judge

    f = tmp_path / "w.json"
    f.write_text(json.dumps({"version": 1, "fitted_on": ["x"], "weights": {"last_agent_step": 5.0}}))
    judge = get_judge("rules", root_cause_model=str(f))
    d = judge.diagnose(chat(CLEAN_CHAT, is_correct=False), MAST)
    # the file's only weight is on the last agent step (the human's opening message is a user's, not an agent's)
    assert (d.root_cause_step, d.root_cause_agent) == (3, "Planner")


def _calibration_file(
    tmp_path: Path, kinds: dict[str, tuple[int, int]], spans: dict[str, tuple[int, int]] | None = None
) -> str:
    """A calibration file: `kinds` measured on message logs, `spans` (default: the same) on span trees."""
    from trajfm.judges.calibration import measured

    f = tmp_path / f"cal{len(list(tmp_path.glob('cal*.json')))}.json"  # a new path: loads are cached per path
    per_shape = {"messages": kinds, "spans": kinds if spans is None else spans}
    doc = measured(per_shape, {"messages": ["x"], "spans": ["y"]})
    f.write_text(json.dumps(doc))
    return str(f)


REPEATING = [
    ("human", "Count the files in the folder."),
    ("Agent", "I will list the folder contents now to count them."),
    ("Agent", "I will list the folder contents now to count them."),
    ("Agent", "I will list the folder contents now to count them."),
    ("Agent", "There are 3 files."),
]


def test_calibration_sets_confidence_and_switches_off_imprecise_kinds(tmp_path: Path) -> None:
    base = RulesJudge(calibration=_calibration_file(tmp_path, {}))
    found = [f["kind"] for f in base.diagnose(chat(REPEATING), MAST).extra["findings"]]
    assert "repeated_thought" in found
    precise = RulesJudge(calibration=_calibration_file(tmp_path, {"repeated_thought": (38, 37)}))
    d = precise.diagnose(chat(REPEATING), MAST)
    m13 = next(m for m in d.modes if m.mode_id == "1.3")
    assert m13.detected is True and m13.confidence == round(38 / 40, 3)  # (agreed + 1) / (findings + 2)
    imprecise = RulesJudge(calibration=_calibration_file(tmp_path, {"repeated_thought": (30, 3)}))
    assert "repeated_thought" in imprecise.off_by_shape["messages"]
    d = imprecise.diagnose(chat(REPEATING), MAST)
    assert "repeated_thought" not in [f["kind"] for f in d.extra["findings"]]
    # the detector that emits only that kind is not even run (run_detectors skip_kinds)
    assert "repeated_thought" not in {f["kind"] for f in d.extra["findings_off_by_default"]}
    switched_on = RulesJudge(
        calibration=_calibration_file(tmp_path, {"repeated_thought": (30, 3)}), all_detectors=True
    )
    assert "repeated_thought" in [
        f["kind"] for f in switched_on.diagnose(chat(REPEATING), MAST).extra["findings"]
    ]


def test_a_mode_checked_only_by_an_off_kind_is_not_checked(tmp_path: Path) -> None:
    from trajfm.judges.detectors import FINDING_KINDS

    kinds_of: dict[str, list[str]] = {}
    for kind, spec in FINDING_KINDS.items():
        for m in spec.modes.get("mast", ()):
            kinds_of.setdefault(m, []).append(kind)
    mode, kinds = next((m, ks) for m, ks in sorted(kinds_of.items()) if len(ks) == 1)
    judge = RulesJudge(calibration=_calibration_file(tmp_path, {kinds[0]: (20, 1)}))
    verdict = next(m for m in judge.diagnose(chat(CLEAN_CHAT), MAST).modes if m.mode_id == mode)
    assert (
        verdict.detected is None and "off by default" in verdict.rationale and kinds[0] in verdict.rationale
    )


def test_shipped_calibration_is_measured_data() -> None:
    from trajfm.judges.calibration import DEFAULT_CALIBRATION

    doc = json.loads(DEFAULT_CALIBRATION.read_text())
    assert set(doc["shapes"]) == {"spans", "messages"}
    assert doc["shapes"]["spans"]["measured_on"] == ["trail"]  # TRAIL's traces are span trees
    assert doc["shapes"]["messages"]["measured_on"] == ["mast"]  # the MAST subset's are message logs
    for table in doc["shapes"].values():
        for row in table["kinds"].values():
            assert 0 <= row["agreed"] <= row["findings"]


def test_a_malformed_calibration_file_is_a_clear_error(tmp_path: Path) -> None:
    from trajfm.errors import UsageError

    for doc, says in (
        ({"version": 2, "shapes": [1, 2]}, '"shapes" must map'),
        ({"version": 2, "shapes": {"span": {"kinds": {}}}}, "unknown trace shape(s) ['span']"),
    ):
        path = tmp_path / f"bad{len(says)}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(UsageError) as err:
            RulesJudge(calibration=str(path))
        assert says in str(err.value) and str(path) in str(err.value)


def test_precision_measured_on_one_trace_shape_decides_only_for_that_shape(tmp_path: Path) -> None:
    """A kind measured imprecise on span trees is off there and stays on for message logs, where nothing measured
    it; the same kind measured imprecise on message logs is off for them."""
    from trajfm.judges.calibration import Calibration, trace_shape

    only_spans = RulesJudge(calibration=_calibration_file(tmp_path, {}, spans={"repeated_thought": (30, 3)}))
    assert "repeated_thought" in only_spans.off_by_shape["spans"]
    assert "repeated_thought" not in only_spans.off_by_shape["messages"]
    assert trace_shape(chat(REPEATING)) == "messages"
    found = [f["kind"] for f in only_spans.diagnose(chat(REPEATING), MAST).extra["findings"]]
    assert "repeated_thought" in found
    # A version-1 file (one table) applies to every shape.
    one_table = {"repeated_thought": {"findings": 30, "agreed": 3}}
    v1 = Calibration.from_dict({"version": 1, "measured_on": ["x"], "kinds": one_table})
    assert all("repeated_thought" in off for off in v1.off_by_shape().values())


def tool_chat(calls: list[tuple[str, str, str]], answer: str) -> Trace:
    """A tool-calling chat: the user's request, then per call (tool, arguments, result), then the answer."""
    steps = [
        Step(position=0, index=0, kind="message", content="Please check my connection speed.", agent="user")
    ]
    for tool, args, result in calls:
        n = len(steps)
        steps.append(
            Step(n, n, "tool_call", f"{tool}({args})", agent="assistant", tool_name=tool, tool_input=args)
        )
        steps.append(Step(n + 1, n + 1, "tool_result", result, agent="tool", tool_name=tool))
    n = len(steps)
    steps.append(Step(n, n, "message", answer, agent="assistant"))
    return Trace(
        trace_id="tc", source_path="tc.json", source_format="test", steps=steps, task=steps[0].content,
        final_answer=answer,
    )  # fmt: skip


def test_a_run_that_ends_on_a_failing_result_is_a_failure() -> None:
    t = tool_chat([("run_speed_test", "{}", "Speed test failed: No Connection")], "Your speed is fine.")
    d = RulesJudge().diagnose(t, MAST)
    kinds = [f["kind"] for f in d.extra["findings"]]
    assert "ended_on_failure" in kinds and d.task_completed is False
    assert d.root_cause_step is not None
    recovered = tool_chat(
        [("run_speed_test", "{}", "Speed test failed: No Connection"), ("run_speed_test", "{}", "42 Mbit/s")],
        "Your speed is 42 Mbit/s.",
    )
    assert "ended_on_failure" not in [
        f["kind"] for f in RulesJudge().diagnose(recovered, MAST).extra["findings"]
    ]


def test_empty_results_are_structural_and_a_zero_count_is_data() -> None:
    from trajfm.judges.detectors.completion import structurally_empty

    assert (
        structurally_empty("[]")
        and structurally_empty("null")
        and structurally_empty('{"items": [], "n": 0}')
    )
    assert structurally_empty('{"status": "not_found"}')
    assert not structurally_empty('{"name": "Ann", "total_items": 0}')
    assert not structurally_empty('{"rows": [1, 2]}') and not structurally_empty("0 errors")
    zero = tool_chat(
        [("lookup_account", '{"id": "a1"}', '{"name": "Ann", "total_items": 0}')], "Ann has no items."
    )
    kinds = [f["kind"] for f in RulesJudge().diagnose(zero, MAST).extra["findings"]]
    assert "ended_on_failure" not in kinds
    empty = tool_chat([("lookup_account", '{"id": "a1"}', "[]")], "Ann has 3 items.")
    assert "ended_on_failure" in [f["kind"] for f in RulesJudge().diagnose(empty, MAST).extra["findings"]]


def test_a_hand_off_to_a_person_is_an_outcome_failure() -> None:
    t = tool_chat([("escalate_to_operator", '{"reason": "refund"}', "ok")], "Someone will contact you.")
    d = RulesJudge().diagnose(t, MAST)
    assert "handed_to_human" in [f["kind"] for f in d.extra["findings"]]
    assert d.task_completed is False
    said = tool_chat([], "I am transferring you to a human agent who can help with this.")
    assert "handed_to_human" in [f["kind"] for f in RulesJudge().diagnose(said, MAST).extra["findings"]]


def test_a_known_failure_no_mode_explains_is_filed_by_who_acted_at_the_root_cause() -> None:
    """With no detected mode, the root cause's mode comes from the taxonomy's `root_cause_fallback` data by who acted
    at the root-cause step, marked as resting on structure, not evidence; nothing is added to the detected modes."""
    from trajfm.bench.agentrx import root_cause_category
    from trajfm.judges.rootcause.model import RootCauseModel
    from trajfm.judges.rules import root_cause_mode

    agentrx = load_taxonomy("agentrx")
    d = RulesJudge().diagnose(chat(CLEAN_CHAT, is_correct=False), agentrx)
    assert not d.detected and d.root_cause_step is not None
    filed = d.extra["root_cause_mode"]
    assert filed["basis"] == "structure" and filed["signal"] in ("user", "agent")
    assert filed["mode"] == agentrx.root_cause_fallback[filed["signal"]]  # type: ignore[index]
    assert root_cause_category(d) == filed["mode"]
    # a model that blames the person the agent serves files the run under the user-side mode
    user_first = RootCauseModel.from_dict({"weights": {"role_user": 5.0}})
    judge = RulesJudge()
    judge.root_cause = user_first
    d = judge.diagnose(chat(CLEAN_CHAT, is_correct=False), agentrx)
    assert d.root_cause_agent == "human"
    assert d.extra["root_cause_mode"] == {
        "mode": "underspecified_user_intent", "basis": "structure", "signal": "user"
    }  # fmt: skip
    # a detected mode at the root-cause step explains it; no root cause, no mode
    from trajfm.judges.base import ModeFinding

    found = [ModeFinding("invalid_invocation", True, steps=[2], confidence=0.9)]
    assert root_cause_mode(found, 2, "agent", agentrx) == {"mode": "invalid_invocation", "basis": "finding"}
    assert root_cause_mode([], None, "agent", agentrx) is None
    # a run not known to have failed, with no finding, has neither a root cause nor a filed mode
    clean = RulesJudge().diagnose(chat(CLEAN_CHAT, is_correct=True), agentrx)
    assert clean.extra["root_cause_mode"] is None


def test_taxonomy_root_cause_fallback_is_validated() -> None:
    from trajfm.taxonomy import parse_taxonomy

    base = {"name": "t", "categories": {"A": "a"}, "modes": [{"id": "x", "name": "X", "category": "A",
                                                               "definition": "d"}]}  # fmt: skip
    tax = parse_taxonomy(json.dumps({**base, "root_cause_fallback": {"agent": "x"}}), "test")
    assert tax.root_cause_fallback == {"agent": "x"}
    assert parse_taxonomy(json.dumps(base), "test").root_cause_fallback is None
    with pytest.raises(UsageError, match="names mode"):
        parse_taxonomy(json.dumps({**base, "root_cause_fallback": {"agent": "nope"}}), "test")
    with pytest.raises(UsageError, match="names signal"):
        parse_taxonomy(json.dumps({**base, "root_cause_fallback": {"planner": "x"}}), "test")
    for name in ("mast", "trail", "agentrx"):
        assert load_taxonomy(name).root_cause_fallback  # the built-in taxonomies ship one


def _service_chat(turns: list[tuple[str, str, str | None]], **trace_fields: object) -> Trace:
    """A customer-service style run: (role, content, tool) per step; role user, agent, call or result."""
    kinds = {"user": "message", "agent": "message", "call": "tool_call", "result": "tool_result"}
    roles = {"user": "user", "agent": "agent", "call": "agent", "result": "tool"}
    steps = [
        Step(
            position=i,
            index=i + 1,
            kind=kinds[r],  # type: ignore[arg-type]
            content=c,
            agent="customer" if r == "user" else "helper",
            role=roles[r],
            tool_name=tool,
            tool_input=c if r == "call" else None,
        )
        for i, (r, c, tool) in enumerate(turns)
    ]
    answer = turns[-1][1] if turns[-1][0] == "agent" else None
    return Trace(  # type: ignore[arg-type]
        trace_id="s", source_path="s.json", source_format="test", steps=steps, final_answer=answer, **trace_fields
    )


CLEAN_SERVICE = [
    ("user", "Hi, I would like to send back one of the lamps from my last purchase.", None),
    ("agent", "Sure. Which lamp would you like to send back?", None),
    ("user", "The black desk lamp, please.", None),
    ("call", '{"item": "black desk lamp"}', "return_item"),
    ("result", '{"status": "return requested", "item": "black desk lamp"}', "return_item"),
    ("agent", "Your return of the black desk lamp is requested.", None),
]


def test_a_refusal_the_agent_reasons_about_or_tells_after_a_lookup_is_not_ignored() -> None:
    """After a refused call the agent may look things up before it tells the user, or reason in a think tool:
    either way it did not move on as if the call had worked. Telling nobody before the next call that changes
    something is still an ignored error."""

    def kinds(middle: list[tuple[str, str, str | None]]) -> list[str]:
        turns = [
            ("user", "Please swap the blue kettle in order 17 for the red one.", None),
            ("call", '{"order": 17, "item": "blue kettle", "new": "red kettle"}', "exchange_items"),
            ("result", "Error: new item red kettle not found or available", "exchange_items"),
            *middle,
            ("call", '{"order": 17, "item": "blue kettle"}', "return_items"),
            ("result", '{"order": 17, "returned": ["blue kettle"]}', "return_items"),
            ("agent", "The blue kettle from order 17 is on its way back for a refund.", None),
        ]
        return [f["kind"] for f in RulesJudge().diagnose(_service_chat(turns), MAST).extra["findings"]]

    lookup = [
        ("call", '{"product": "kettle"}', "get_product_details"),
        ("result", '{"red kettle": {"available": false}}', "get_product_details"),
    ]
    told = [("agent", "The red kettle is not available right now. Shall I return the blue one instead?", None),
            ("user", "Yes, please return it.", None)]  # fmt: skip
    thought = [("call", "The red kettle is not available, so the exchange cannot go through; a return can.", "think"),
               ("result", "", "think")]  # fmt: skip
    assert "error_ignored" not in kinds([*lookup, *told])
    assert "error_ignored" not in kinds(thought)
    assert "error_ignored" in kinds(lookup)
    from trajfm.judges.formats import vocabulary

    assert "think" in vocabulary(None).reasoning_tools  # the words are vocabulary data


def test_failed_run_with_nothing_against_the_agent_blames_the_request_it_carried_out() -> None:
    d = RulesJudge().diagnose(_service_chat(CLEAN_SERVICE, is_correct=False), MAST)
    assert d.task_completed is False
    assert (d.root_cause_step, d.root_cause_agent) == (3, "customer")  # the request the return call carried out
    # the rule's precision measured on the shipped model's fitting sets, not a constant
    measured = load_model().user_request_confidence()
    assert measured is not None and d.root_cause_confidence == measured
    assert d.extra["root_cause_mode"]["signal"] == "user"
    assert "root cause placed at step 3, at the user's request" in d.summary


def test_user_request_confidence_is_measured_or_an_even_chance(tmp_path: Path) -> None:
    """The confidence of a user-request root cause is the rule's smoothed precision from the model file; a file
    that measured it on too few failures (or not at all) leaves the unmeasured default."""
    shipped = load_model().to_dict()
    for n, (row, expected) in enumerate((
        ({"fired": 8, "agreed": 1}, round(2 / 10, 3)),
        ({"fired": 6, "agreed": 6}, round(7 / 8, 3)),
        ({"fired": 4, "agreed": 4}, None),  # under MIN_MEASURED firings: not measured
        (None, None),
    )):
        doc = {k: v for k, v in shipped.items() if k != "user_request"}
        if row is not None:
            doc["user_request"] = row
        assert RootCauseModel.from_dict(doc).user_request_confidence() == expected
        path = tmp_path / f"model{n}.json"  # one file per case: models are cached per path
        path.write_text(json.dumps(doc), encoding="utf-8")
        d = RulesJudge(root_cause_model=str(path)).diagnose(_service_chat(CLEAN_SERVICE, is_correct=False), MAST)
        assert d.root_cause_step == 3
        assert d.root_cause_confidence == (USER_REQUEST_CONFIDENCE if expected is None else expected)


def test_user_request_is_not_blamed_when_the_agent_erred_or_the_user_spoke_once() -> None:
    erred = [*CLEAN_SERVICE[:4], ("result", "Error: item not found in any order", "return_item"), CLEAN_SERVICE[5]]
    d = RulesJudge().diagnose(_service_chat(erred, is_correct=False), MAST)
    assert d.root_cause_agent == "helper"
    once = [("user", "Send back the black desk lamp from my last purchase.", None), *CLEAN_SERVICE[3:]]
    d = RulesJudge().diagnose(_service_chat(once, is_correct=False), MAST)
    assert d.root_cause_agent == "helper"
    assert f"root cause placed at step {d.root_cause_step}, where the step scorer" in d.summary
    # the same clean run not known to have failed names no root cause at all
    d = RulesJudge().diagnose(_service_chat(CLEAN_SERVICE, is_correct=True), MAST)
    assert d.root_cause_step is None


def test_user_request_rule_on_a_loaded_tau_bench_run(tmp_path: Path) -> None:
    """Through the tau-bench loader: the reward says failed, the agent's calls all went through, and the
    customer changed the request mid-conversation; the customer's request before the write call is blamed."""
    from trajfm.bench.core import load_dataset_traces

    def call(cid: str, name: str, args: str) -> dict[str, object]:
        return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}

    traj = [
        {"role": "system", "content": "# Shop policy"},
        {"role": "user", "content": "Hi, I want to send back the lamp from order #12."},
        {"role": "assistant", "content": None, "tool_calls": [call("c1", "get_order_details", '{"order_id": "#12"}')]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_order_details", "content": '{"items": ["lamp", "mug"]}'},
        {"role": "assistant", "content": "Order #12 holds a lamp and a mug. Which items should be returned?"},
        {"role": "user", "content": "Actually, send back the mug as well as the lamp."},
        {"role": "assistant", "content": None, "tool_calls": [call("c2", "return_items", '{"items": ["lamp", "mug"]}')]},
        {"role": "tool", "tool_call_id": "c2", "name": "return_items", "content": '{"status": "return requested"}'},
        {"role": "assistant", "content": "The return of the lamp and the mug is requested."},
    ]
    for i, msg in enumerate(traj, start=1):
        msg["index"] = i
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([{"task_id": 1, "reward": 0.0, "trial": 0, "traj": traj}]), encoding="utf-8")
    (trace,) = load_dataset_traces([path])
    d = RulesJudge().diagnose(trace, load_taxonomy("agentrx"))
    assert d.source_outcome == "failed" and d.task_completed is False
    user_turns = [s for s in trace.steps if s.role == "user"]
    assert d.root_cause_step == user_turns[-1].index  # the change of request the return call carried out
    assert d.root_cause_agent == user_turns[-1].agent


@pytest.mark.parametrize(
    ("result", "says_error"),
    [
        ('{"status": "ok", "error": null, "items": 2}', False),  # an empty error field is no error
        ('{"result": 3, "exception": ""}', False),
        ("Command finished with no error.", False),
        ('{"error": "order not found"}', True),
        ("Traceback (most recent call last):\n  File x.py\nValueError: bad", True),
        ("Error: permission denied", True),
    ],
)
def test_error_word_feature_reads_empty_error_fields_as_no_error(result: str, says_error: bool) -> None:
    """The root-cause feature "error_word_next" (an error word in the step after a candidate) does not fire on a
    result whose error field is empty, a shape many tool APIs return on success."""
    turns = [
        ("user", "Please look up my parcel.", None),
        ("call", '{"parcel": "p1"}', "lookup"),
        ("result", result, "lookup"),
        ("agent", "Here is what I found.", None),
    ]
    trace = _service_chat(turns)
    table = step_features(build_view(trace), [], None)
    call = next(i for i, s in enumerate(table.steps) if s.kind == "tool_call")
    assert table.rows[call][FEATURES.index("error_word_next")] == float(says_error)


@pytest.mark.parametrize(
    ("result", "empty"),
    [
        ("None", True),
        ("Output:\n[]", True),
        ("Execution logs:\n\nLast output:\nNone", True),  # nothing printed, nothing returned
        # data printed, then the None a print call returns, as code-running agents show after every snippet
        ("Execution logs:\nFound 3 files: a.py, b.py, c.py\nLast output:\nNone", False),
        ("row 1\nnull\nrow 3", False),
    ],
)
def test_a_line_holding_none_is_empty_only_when_nothing_else_came_back(result: str, empty: bool) -> None:
    from trajfm.judges.detectors.completion import result_empty

    trace = _service_chat(
        [
            ("user", "Which files mention the parser?", None),
            ("call", "print(search('parser'))", "run_code"),
            ("result", result, "run_code"),
            ("agent", "Done.", None),
        ]
    )
    view = build_view(trace)
    (act,) = [a for a in view.acts if a.tool == "run_code"]
    assert result_empty(view, act) is empty


@pytest.mark.parametrize(
    ("result", "ends_on_failure"),
    [
        ("Failure modes for pump P-101: seal leak, bearing wear", False),  # domain data about failures
        ("failed logins: 3 in the last hour", False),
        ("Access denied rate: 0.1% over the last month", False),
        ("Upload failed due to size limit", True),
        ("Permission denied", True),
        ("Connection failure\nretry later", True),
    ],
)
def test_failure_words_end_a_run_only_as_verdicts(result: str, ends_on_failure: bool) -> None:
    """A last result that talks about failures (a failure-mode table, a count of failed logins) is data; one that
    says the call failed ends the run on a failure."""
    t = tool_chat([("lookup", '{"id": "P-101"}', result)], "Here is what the lookup returned.")
    kinds = [f["kind"] for f in RulesJudge().diagnose(t, MAST).extra["findings"]]
    assert ("ended_on_failure" in kinds) is ends_on_failure


def _call_failed(tool: str, result: str, answer: str) -> bool:
    """Did the rules judge read a one-call chat's result as a failed call (an error finding, or ending on one)?"""
    t = tool_chat([(tool, '{"q": "x"}', result)], answer)
    kinds = {f["kind"] for f in RulesJudge().diagnose(t, MAST).extra["findings"]}
    return bool(kinds & {"ended_on_failure", "error_ignored", "error_unresolved"})


@pytest.mark.parametrize(
    ("result", "answer", "failed"),
    [
        # data that mentions errors: a log the agent read, search results about error pages
        ("ERROR 2024-01-02 10:41:07 pump 3 tripped\nINFO 2024-01-02 10:45:00 restarted", "Pump 3 tripped once.", False),
        ("1. HTTP 404 Not Found - a reference page\n2. Handling 404 errors in web apps", "Two pages cover it.", False),
        # an empty result the answer passes on as the answer
        ('{"tickets": [], "total": 0}', "There are no open tickets.", False),
        # the same shapes as failures of the call
        ("ERROR: connection refused by 10.0.0.4", "Done.", True),
        ("HTTP 404 Not Found", "Done.", True),
        ("Traceback (most recent call last):\n  File 'a.py'\nKeyError: 'x'", "Done.", True),
        ('{"tickets": [], "total": 0}', "Here are your three open tickets: T1, T2 and T3.", True),
    ],
)
def test_results_that_talk_about_errors_are_not_failed_calls(result: str, answer: str, failed: bool) -> None:
    """Ordinary data must not read as a failed call: an error-level log line with its timestamp, a list of
    search results about HTTP errors, an empty list the final answer reports as empty. The same words as the
    result's own verdict still do."""
    assert _call_failed("lookup", result, answer) is failed


_SOURCE = """def connect(host):
    try:
        return open_socket(host)
    except OSError as exc:
        logger.error("Failed to connect to %s: %s", host, exc)
        raise ConnectionError(f"Error occurred while connecting to {host}") from exc
"""


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        # source code the agent read: the error phrases are string literals of the code
        (_SOURCE, False),
        # a traceback quotes the failing line of code, and its last line is the verdict
        ('Traceback (most recent call last):\n  File "net.py", line 6\n    raise RuntimeError("failed to connect")\n'
         "RuntimeError: failed to connect", True),
        ('print("Error occurred")  # a demo\nError occurred while reading config.toml', True),
        # a condition in documentation, and a document with a heading
        ("If the request timed out, raise the timeout in settings.toml.", False),
        ("## Troubleshooting\nConnection refused means the server is down.", False),
        ("The request timed out after 30 s.", True),
        # a tally printed by the agent's code, and an error message with a code
        ("ok        120\nerror       3\nfailed      2\nName: status, dtype: int64", False),
        ("Error 503: service unavailable", True),
        # a list of records, each with its own status, and one response with a failed status
        ('[{"name": "build", "status": "failed"}, {"name": "test", "status": "ok"}]', False),
        ('{"status": "failed", "reason": "quota exceeded"}', True),
        # search results that name an exception, and the exception itself
        ("1. KeyError - Python docs\n2. How to handle KeyError: use dict.get()", False),
        ("KeyError: 'sku'", True),
        # a discussion that refers to the exit code already seen, and a run that reports its own
        ("Could you share the code that results in the exit code 1 and the odd output?", False),
        ("Process finished with exit code 1", True),
    ],
)
def test_error_phrases_in_code_documents_and_tallies_are_content(result: str, failed: bool) -> None:
    """An error phrase is the result's verdict only where the result says it: not inside a string literal of
    code the agent read, a condition or a document's section, a row of counts, one record of a list, or a list
    item of search results. The same phrases standing as the result's own message still fail the call."""
    assert _call_failed("run", result, "Here is what I found.") is failed


def test_an_exceptions_repr_is_an_error_and_the_same_words_in_source_code_are_not() -> None:
    from trajfm.judges.detectors.errors import error_in

    def reads_as_error(result: str) -> bool:
        t = tool_chat([("run", "{}", result), ("run", "{}", "ok")], "Done.")
        view = build_view(t)
        return error_in(view, t.steps[2]) is not None

    assert reads_as_error("ConnectionError('failed to connect to db.internal:5432')")
    assert not reads_as_error("    raise ConnectionError('failed to connect to db.internal:5432')")


def test_a_bug_reproduced_on_purpose_is_not_a_failed_call() -> None:
    """A coding agent runs a script to reproduce the reported bug, sees its traceback and edits the code: the
    traceback is the bug found, not an error the agent ignored. The same traceback from a run not announced as a
    reproduction, and a reproduction script that could not even start, are still failed calls."""

    def kinds(command: str, result: str) -> list[str]:
        calls = [
            ("bash", command, result),
            ("edit_file", "parser.py: return tokens", "File edited."),
            ("read_file", "parser.py", "def parse(s):\n    return s.split()"),
        ]
        answer = "parse() now returns its tokens."
        return [f["kind"] for f in RulesJudge().diagnose(tool_chat(calls, answer), MAST).extra["findings"]]

    traceback = 'Traceback (most recent call last):\n  File "reproduce.py", line 2\nValueError: bad token'
    assert "error_ignored" not in kinds("python reproduce.py", traceback)
    assert "error_ignored" in kinds("python main.py --input a.txt", traceback)
    assert "error_ignored" in kinds("pytohn reproduce.py", "bash: pytohn: command not found\nexit code: 127")
    from trajfm.judges.formats import vocabulary

    assert "reproduce" in vocabulary(None).reproduction_words  # the words are vocabulary data


def test_a_count_read_off_a_result_list_is_supported_and_a_wrong_one_is_not() -> None:
    papers = '[{"title": "GNNs at scale"}, {"title": "Message passing revisited"}]'
    right = tool_chat([("search_papers", '{"q": "graph networks"}', papers)], "I found 2 papers: both from 2023.")
    wrong = tool_chat([("search_papers", '{"q": "graph networks"}', papers)], "I found 3 papers on the topic.")
    listing = tool_chat([("list_assets", '{"site": "A"}', "P-1\nP-2\nP-3")], "Site A has 3 pumps.")

    def kinds(t: Trace) -> list[str]:
        return [f["kind"] for f in RulesJudge().diagnose(t, MAST).extra["findings"]]

    assert "unsupported_count" not in kinds(right)
    assert "unsupported_count" in kinds(wrong)
    assert "unsupported_count" not in kinds(listing)


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        ('{"id": 42, "state": "failed", "reason": "out of memory"}', False),  # the job failed, the call did not
        ('{"job_id": "j7", "status": "error", "message": "disk quota exceeded"}', False),
        ('{"id": "T-9", "title": "Login fails with a timeout error", "status": "open"}', False),  # a ticket's words
        ('{"user_id": "u1", "error": "user not found"}', True),  # an error field beside the id: the call's
        ('{"status": "error", "message": "unknown job"}', True),  # the call's own status
        ('{"request_id": "r-1", "status": "error", "error": "invalid token"}', True),  # an id of the request
    ],
)
def test_a_records_failed_state_is_data_not_a_failed_call(result: str, failed: bool) -> None:
    assert _call_failed("get_job", result, "Here is the job's status.") is failed


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        # code the agent read or printed names exceptions without raising them
        ("def load(p):\n    try:\n        return open(p).read()\n    except FileNotFoundError:\n        return None", False),
        ("--- a/x.py\n+++ b/x.py\n+    except KeyError:\n+        pass", False),
        ('def get(k):\n    """Look k up.\n\n    :raises KeyError: if k is missing\n    """', False),
        ("error.log\ntraceback.py\napp.py", False),  # a directory listing
        # an exception the call raised
        ("Execution logs:\nZeroDivisionError: division by zero", True),
        ("requests.exceptions.HTTPError: 404 Client Error", True),
    ],
)
def test_exception_names_in_code_are_not_errors_of_the_call(result: str, failed: bool) -> None:
    assert _call_failed("run_code", result, "Here is what I found.") is failed


@pytest.mark.parametrize(
    ("answer", "pending"),
    [
        ("Order O-5 is placed. Once the parcel is ready in the shop, you can pick it up.", False),  # the user's step
        ("Order O-5 is placed. I will now close this request.", False),  # ending, not work
        ("Order O-5 is placed. Once the invoice is ready, I will email it.", True),
        ("I will now check the stock before placing the order.", True),
    ],
)
def test_announced_work_is_the_agents_own_not_the_users_or_the_goodbye(answer: str, pending: bool) -> None:
    t = tool_chat([("place_order", '{"item": "lamp"}', '{"order_id": "O-5", "status": "placed"}')], answer)
    found = RulesJudge().diagnose(t, MAST).extra["findings"]
    announced = [f for f in found if f["kind"] == "premature_termination" and "announces work" in f["detail"]]
    assert bool(announced) is pending


def test_polling_a_changing_status_is_waiting_not_repeating() -> None:
    def job(*states: str) -> Trace:
        calls = [("get_job_status", '{"job": 42}', f'{{"job": 42, "state": "{s}"}}') for s in states]
        return tool_chat([("start_export", '{"table": "sales"}', '{"job": 42}'), *calls], "Job 42 finished.")

    def kinds(t: Trace) -> list[str]:
        return [f["kind"] for f in RulesJudge().diagnose(t, MAST).extra["findings"]]

    assert "repeated_action" not in kinds(job("running", "running, 80%", "done"))
    assert "repeated_action" in kinds(job("running", "running"))  # the same answer twice: nothing new was learnt
    # the exemption is vocabulary data, not a rule about one tool
    from trajfm.judges.formats import vocabulary

    assert "status" in vocabulary(None).polling_words


def test_running_a_check_again_after_an_edit_is_verification_not_repetition() -> None:
    """The same test command before and after an edit, with a new result: the agent checked its change. The same
    read of a record after a change elsewhere, with the same answer: a repeated step."""

    def kinds(calls: list[tuple[str, str, str]], answer: str) -> list[str]:
        return [f["kind"] for f in RulesJudge().diagnose(tool_chat(calls, answer), MAST).extra["findings"]]

    fix = [
        ("run_tests", "pytest tests/test_math.py -q", "F.\nFAILED tests/test_math.py::test_add\n1 failed, 1 passed"),
        ("read_file", "math_utils.py", "def add(a, b):\n    return a + b + 1"),
        ("edit_file", "math_utils.py: return a + b", "File edited."),
        ("run_tests", "pytest tests/test_math.py -q", "..\n2 passed in 0.01s"),
    ]
    found = kinds(fix, "Fixed add() in math_utils.py (it added 1); both tests pass now.")
    assert "repeated_action" not in found and "continued_after_answer" not in found
    reread = [
        ("get_record", '{"id": "r1"}', '{"id": "r1", "state": "open"}'),
        ("update_record", '{"id": "r2", "state": "closed"}', '{"id": "r2", "state": "closed"}'),
        ("get_record", '{"id": "r1"}', '{"id": "r1", "state": "open"}'),
    ]
    assert "repeated_action" in kinds(reread, "Record r2 is closed; r1 is still open.")
