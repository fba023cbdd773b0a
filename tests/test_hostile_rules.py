"""The rules judge stays bounded: repeated reasoning is found without comparing all pairs, and a per-trace time
limit turns a trace that takes too long into a failed row instead of a stalled run."""

from __future__ import annotations

import time
import types

import pytest

from trajfm.errors import JudgeError
from trajfm.judges import rules
from trajfm.judges.detectors import repetition
from trajfm.judges.runner import run_judge
from trajfm.judges.timelimit import TraceTimeLimit, time_limit
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Step, Trace


def _view(contents: list[tuple[str, str]]) -> types.SimpleNamespace:
    steps = [
        Step(position=i, index=i, kind="message", content=c, step_id=str(i), agent=a)
        for i, (a, c) in enumerate(contents)
    ]
    return types.SimpleNamespace(acts=[], messages=steps, thoughts=[])


PLAN = "I will first read the sensor table, then compare the readings with last week's and report the drift"


def test_exact_and_near_restatements_are_found_per_speaker() -> None:
    view = _view(
        [
            ("planner", PLAN),
            ("coder", "Here is the code that loads the table and prints the weekly averages for you."),
            ("planner", PLAN.upper() + "."),  # same after normalising: exact
            ("coder", PLAN),  # another speaker: not a repeat of the planner
            ("planner", PLAN.replace("report", "then report")),  # one token more: near (Jaccard 0.95)
        ]
    )
    found = [(f.steps, f.confidence) for f in repetition.detect_repeated_thoughts(view)]
    assert found == [([0, 2], 0.8), ([0, 4], 0.6)]


def test_unrelated_messages_are_not_repeats() -> None:
    view = _view(
        [
            ("a", f"message number {i} talks about topic {i * 7} and nothing else at all here")
            for i in range(50)
        ]
    )
    assert repetition.detect_repeated_thoughts(view) == []


def test_candidates_per_message_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Count the Jaccard comparisons: with every message sharing its rarest tokens, an all-pairs scan would make
    # n*(n-1)/2 of them; the prefix index makes at most 2*MAX_CANDIDATES per message.
    calls = {"n": 0}
    real = repetition.tx.jaccard

    def counting(a: frozenset[str], b: frozenset[str]) -> float:
        calls["n"] += 1
        return real(a, b)

    monkeypatch.setattr(repetition.tx, "jaccard", counting)
    n = 600
    view = _view(
        [
            ("a", f"shared words alpha beta gamma delta epsilon zeta eta theta iota {i} {i + 1} {i + 2}")
            for i in range(n)
        ]
    )
    repetition.detect_repeated_thoughts(view)
    assert 0 < calls["n"] <= 2 * repetition.MAX_CANDIDATES * n < n * (n - 1) // 2


def test_time_limit_interrupts_a_long_block_in_the_main_thread() -> None:
    started = time.monotonic()
    with pytest.raises(TraceTimeLimit, match="time limit of 0.2 s"), time_limit(0.2, "the test block"):
        while True:
            pass
    assert time.monotonic() - started < 5


def _trace(tid: str) -> Trace:
    steps = [Step(position=0, index=0, kind="user", content="do it", step_id="0", agent="user"),
             Step(position=1, index=1, kind="message", content="done", step_id="1", agent="assistant")]  # fmt: skip
    return Trace(trace_id=tid, source_path=tid, source_format="chat", steps=steps)


def test_a_trace_over_the_limit_fails_alone_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    real = rules.run_detectors

    def slow_on_one(trace: Trace, **kw: object) -> object:
        while trace.trace_id == "slow":
            pass
        return real(trace, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(rules, "run_detectors", slow_on_one)
    judge = rules.make_rules_judge(time_limit_s=0.3)
    out = run_judge(judge, [_trace("a"), _trace("slow"), _trace("b")], load_taxonomy("mast"), progress=False)
    assert [d.status for d in out] == ["ok", "backend_error", "ok"]
    assert "time limit of 0.3 s" in (out[1].error or "") and "slow" in (out[1].error or "")


def test_time_limit_option_is_validated() -> None:
    with pytest.raises(JudgeError, match="time_limit_s='abc'"):
        rules.make_rules_judge(time_limit_s="abc")
    assert rules.make_rules_judge(time_limit_s=0).time_limit_s is None
    assert rules.make_rules_judge().time_limit_s == rules.DEFAULT_TIME_LIMIT_S


def test_tool_system_and_user_text_is_not_repeated_reasoning() -> None:
    out = "exitcode: 0 (execution succeeded)\nCode output: nothing was printed by the script at all"
    steps = [
        Step(position=i, index=i, kind="message", content=c, step_id=str(i), agent=a, role=r)
        for i, (a, r, c) in enumerate(
            [("runner", "tool", out), ("boss", "system", PLAN), ("runner", "tool", out), ("boss", "system", PLAN)]
        )
    ]
    view = types.SimpleNamespace(acts=[], messages=steps, thoughts=[])
    assert repetition.detect_repeated_thoughts(view) == []


def test_a_template_shared_by_speakers_is_not_a_restatement_but_the_words_inside_it_are() -> None:
    banner = "[Team log] You are one of several cooperating roles working on the customer's request.\n"
    turns = [
        ("planner", banner + "We should start by collecting the requirements for the new report from the team."),
        ("coder", banner + "I have written the function that builds the weekly report table from the raw rows."),
        ("planner", banner + "Next we should review the table layout together before sending it to the client."),
        ("coder", banner + "The layout review is done; I moved the totals column to the right-hand side."),
    ]
    assert repetition.detect_repeated_thoughts(_view(turns)) == []  # only the banner repeats
    again = [*turns, ("planner", banner + turns[2][1].split("\n", 1)[1])]
    assert [f.steps for f in repetition.detect_repeated_thoughts(_view(again))] == [[2, 4]]
