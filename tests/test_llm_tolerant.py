"""The LLM judge against replies written the way real models write them: normalisation, repair turns, quotes
checked as a person would, and what is recorded (issue 12)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from trajfm.judges.cache import JudgeCache
from trajfm.judges.evidence import QuoteIndex, quote_in_text
from trajfm.judges.llm import LLMJudge
from trajfm.judges.render import render_trace
from trajfm.judges.reply import parse_reply
from trajfm.judges.runner import RunStats, run_judge
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import EndpointConfig, LocalEndpoint, synthetic_traces
from trajfm.testing.deviations import UNUSABLE_KINDS, USABLE_KINDS
from trajfm.traces.model import Step, Trace

TAX = load_taxonomy("mast")
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "progress": False}


def _verdicts(d: Any) -> dict[str, tuple[bool | None, list[int]]]:
    return {m.mode_id: (m.detected, m.steps) for m in d.modes}


def _clean_run(traces: list[Trace]) -> dict[str, Any]:
    with LocalEndpoint() as ep:
        out = run_judge(LLMJudge("trajfm-test", base_url=ep.url), traces, TAX, **FAST)
    return {d.trace_id: d for d in out}


@pytest.fixture(scope="module")
def traces_and_clean() -> tuple[list[Trace], dict[str, Any]]:
    traces = synthetic_traces(12, seed=11)
    return traces, _clean_run(traces)


@pytest.mark.parametrize("kind", USABLE_KINDS)
def test_each_usable_deviation_is_read_in_one_call_with_the_clean_reply_s_content(
    kind: str, traces_and_clean: tuple[list[Trace], dict[str, Any]]
) -> None:
    traces, clean = traces_and_clean
    with LocalEndpoint(EndpointConfig(deviation_rate=1.0, deviations=(kind,))) as ep:
        out = run_judge(LLMJudge("trajfm-test", base_url=ep.url), traces, TAX, **FAST)
        assert all(r.deviation == kind for r in ep.requests)
    assert all(d.status == "ok" and d.calls == 1 for d in out)
    for d in out:
        ref = clean[d.trace_id]
        got, want = _verdicts(d), _verdicts(ref)
        for mode_id, (det, steps) in want.items():
            if kind == "omitted" and not det:  # left out (a reply with no detection keeps its first mode)
                assert got[mode_id] in ((None, []), (False, [])), (d.trace_id, mode_id)
            elif kind == "no_step" and det and got[mode_id][1] == []:
                assert got[mode_id][0] is True  # kept detected, without steps
            else:
                assert got[mode_id] == (det, steps), (kind, d.trace_id, mode_id)
        if kind != "no_step":
            assert [m.evidence_verified for m in d.detected] == [True] * len(d.detected), (kind, d.trace_id)
    if kind == "omitted":
        assert sum(m.detected is None for d in out for m in d.modes) > len(out) * 10
    codes = {c for d in out for c in d.extra["reply_repairs"]}
    expected = {
        "id_with_name": "id_with_name", "id_prefixed": "id_prefixed", "name_only": "id_by_name",
        "bare_booleans": "bare_boolean", "omitted": "modes_not_reported", "no_step": "detected_without_step",
        "step_strings": "steps_as_text", "prose_fenced": "prose_around_json",
    }  # fmt: skip
    if kind in expected:
        assert expected[kind] in codes
    assert "repair_turn" not in codes


@pytest.mark.parametrize("kind", UNUSABLE_KINDS)
def test_an_unusable_reply_gets_one_repair_turn_naming_the_problem(kind: str) -> None:
    traces = synthetic_traces(6, seed=3)
    sent: list[dict[str, Any]] = []
    with LocalEndpoint(EndpointConfig(deviation_rate=1.0, deviations=(kind,))) as ep:
        orig = ep.handle

        def spy(raw: bytes, auth: str | None) -> Any:
            sent.append(json.loads(raw))
            return orig(raw, auth)

        ep.handle = spy  # type: ignore[method-assign]
        out = run_judge(
            LLMJudge("trajfm-test", base_url=ep.url, structured_output="off"), traces, TAX, **FAST
        )
        repairs = [r for r in ep.requests if r.repair_turn]
    assert all(d.status == "ok" and d.calls == 2 for d in out)
    assert all("repair_turn" in d.extra["reply_repairs"] for d in out)
    assert len(repairs) == len(traces)
    turn = next(b for b in sent if len(b["messages"]) == 4)
    assert [m["role"] for m in turn["messages"]] == ["system", "user", "assistant", "user"]
    assert "could not be used" in turn["messages"][3]["content"]
    assert ("no JSON object" if kind == "no_json" else 'no "failure_modes"') in turn["messages"][3]["content"]


def test_with_repair_turns_off_an_unusable_reply_is_retried_identically_and_fails() -> None:
    traces = synthetic_traces(3, seed=3)
    with LocalEndpoint(EndpointConfig(deviation_rate=1.0, deviations=("no_json",))) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url, repair_turns=0)
        out = run_judge(judge, traces, TAX, max_retries=2, **FAST)
        assert not any(r.repair_turn for r in ep.requests)
    assert all(d.status == "parse_error" and d.calls == 3 for d in out)


def test_an_unfixable_reply_ends_as_parse_error_with_raw_reply_and_the_repair_s_error(tmp_path: Path) -> None:
    traces = synthetic_traces(8, seed=2)
    bad = "I am sorry, I cannot produce JSON for this."
    broken = {traces[1].task.splitlines()[0], traces[5].task.splitlines()[0]}

    def reply(req: dict[str, Any]) -> str:
        from trajfm.testing import deterministic_reply

        user = req["messages"][1]["content"]
        if any(b in user for b in broken):
            return bad  # the first reply and the repair turn alike
        return deterministic_reply(req["messages"][0]["content"], user)

    cache = JudgeCache(tmp_path / "cache.sqlite")
    with LocalEndpoint(EndpointConfig(reply_fn=reply)) as ep:
        judge = LLMJudge("trajfm-test", base_url=ep.url)
        out = run_judge(judge, traces, TAX, cache=cache, max_retries=4, **FAST)
        failed = [d for d in out if d.status != "ok"]
        assert {d.trace_id for d in failed} == {traces[1].trace_id, traces[5].trace_id}
        for d in failed:
            assert d.status == "parse_error" and d.raw_reply == bad
            assert "after 1 repair turn" in (d.error or "") and "no JSON object" in (d.error or "")
            assert d.calls == 2  # the first reply and one repair turn; not retried blindly after that
            assert d.extra["reply_repairs"] == ["repair_turn"] and d.extra["attempts"] == 1
        first = len(ep.requests)
        stats = RunStats()
        run_judge(judge, traces, TAX, cache=cache, stats=stats, **FAST)
        assert stats.cached == 6 and stats.calls == 4 and len(ep.requests) - first == 4


def test_quotes_with_rendering_labels_whitespace_and_curly_quotes_verify_and_map_to_their_step() -> None:
    steps = [
        Step(0, 1, "thought", "I will read the sensor list first."),
        Step(1, 1, "action", 'sensors(site="MAIN")', tool_name="IoTAgent", agent="MetaAgent"),
        Step(2, 2, "observation", "Error: the site 'MAIN' has\nno chillers", agent="IoTAgent", is_error=True),
    ]
    trace = Trace("q", "q", "test", steps=steps, task="List chillers.", final_answer=None, multi_agent=True)
    rendering = render_trace(trace)
    index = QuoteIndex(trace, rendering.chunks)
    text = rendering.chunks[0].text
    label_line = next(line for line in text.splitlines() if line.startswith("OBSERVATION"))
    assert label_line.startswith("OBSERVATION (agent IoTAgent, error): ")
    for quote in (
        label_line + " no chillers",
        "OBSERVATION (agent IoTAgent, error): Error: the site \u2018MAIN\u2019 has   no chillers",
        "STEP 2 OBSERVATION (agent IoTAgent, error): Error: the site",
    ):
        check = index.check(quote)
        assert check.verified and check.step == 2, quote
    assert index.check("I will read the sensor list").step == 1
    assert not index.check("the site has no boilers").verified  # a paraphrase stays unverified
    assert not quote_in_text("OBSERVATION (agent IoTAgent, error):", text)  # a label alone proves nothing


def test_redacted_quotes_verify_against_what_the_judge_was_shown() -> None:
    secret = "sk-live-abcdefghijklmnop0123456789"
    steps = [
        Step(0, 1, "action", f"login(key='{secret}')", tool_name="Auth"),
        Step(1, 1, "observation", "Error: invalid key for admin@example.com"),
    ]
    trace = Trace("r", "r", "test", steps=steps, task="Log in.", final_answer=None)
    with LocalEndpoint() as ep:
        [d] = run_judge(LLMJudge("trajfm-test", base_url=ep.url, redact=True), [trace], TAX, **FAST)
    redacted = [m for m in d.detected if "[REDACTED-" in m.evidence]
    assert redacted, [x.evidence for x in d.detected]
    assert secret not in json.dumps([m.evidence for m in d.modes]) and "admin@example.com" not in d.summary
    for m in redacted:
        assert m.evidence_verified and d.extra["evidence_steps"][m.mode_id] == 1
    assert d.extra["evidence_checked"] == "rendering"


def test_extract_records_repairs_not_reported_modes_and_evidence_steps(tmp_path: Path) -> None:
    from trajfm.extract import run_extract

    with LocalEndpoint(EndpointConfig(deviation_rate=1.0, deviations=("omitted",))) as ep:
        res = run_extract(
            ["traces/assetops"], tmp_path / "run", judge="llm", model="trajfm-test", base_url=ep.url, limit=12
        )
    diag = res.run.read_table("diagnoses")
    modes = res.run.read_table("modes")
    assert all("modes_not_reported" in r for r in diag["reply_repairs"].to_list())
    assert modes["detected"].null_count() > 0  # left out: null, not false
    assert not modes.filter(pl.col("detected").is_null())["evidence_verified"].any()
    hit = modes.filter(pl.col("detected") == True)  # noqa: E712
    assert hit.height and hit["evidence_step"].null_count() == 0 and hit["evidence_verified"].all()


def test_parse_reply_maps_every_way_of_writing_a_mode_id() -> None:
    base = {"detected": False, "steps": [], "evidence": "", "rationale": ""}
    yes = {"detected": True, "steps": ["Step 2"], "evidence": "x", "rationale": ""}
    reply = {
        "summary": "s",
        "task_completed": "false",
        "failure_modes": {
            "1.1 Disobey Task Specification": base,
            "FM-1.2": False,
            "[1.3]": yes,
            "Step Repetition": yes,  # the same mode by name, agreeing
            "Loss of Conversation History": True,  # by name, as a bare boolean
            "9.9 Not A Mode": base,
        },
        "root_cause": {"step": "Step 2", "agent": None},
    }
    r = parse_reply("Sure:\n```json\n" + json.dumps(reply) + "\n```", TAX, {1, 2})
    assert r.failure_modes["1.1"].detected is False and r.failure_modes["1.2"].detected is False
    assert r.failure_modes["1.3"].steps == [2] and r.root_cause.step == 2 and r.task_completed is False
    assert r.failure_modes["1.4"].detected is True and r.failure_modes["1.4"].steps == []
    assert "1.5" in r.not_reported
    assert {"id_with_name", "id_prefixed", "id_by_name", "bare_boolean", "unknown_mode_dropped",
            "json_fenced", "prose_around_json", "steps_as_text", "modes_not_reported"} <= set(r.repairs)  # fmt: skip


def test_what_was_dropped_from_a_reply_is_in_the_diagnoses_table(tmp_path: Path) -> None:
    """Steps not in the trace, novel modes beyond the two asked for, and text over the cap are thrown away;
    diagnoses.parquet says so (issue 16), not only the cache."""
    from trajfm.extract import MAX_TEXT_CHARS, run_extract
    from trajfm.testing import deterministic_reply

    def reply_fn(body: dict[str, Any]) -> str:
        system = next(m["content"] for m in body["messages"] if m["role"] == "system")
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        reply = json.loads(deterministic_reply(system, user))
        step = int(re.search(r"^STEP (\d+)$", user, re.M).group(1))  # type: ignore[union-attr]
        first = next(iter(reply["failure_modes"].values()))
        first.update(detected=True, steps=[step, 999], evidence="", rationale="x" * (MAX_TEXT_CHARS + 500))
        reply["novel_failure_modes"] = [
            {"title": f"Novel {k}", "description": "d", "steps": [step], "evidence": ""} for k in range(4)
        ]
        return json.dumps(reply)

    with LocalEndpoint(EndpointConfig(reply_fn=reply_fn)) as ep:
        res = run_extract(
            ["traces/assetops"], tmp_path / "run", judge="llm", model="trajfm-test", base_url=ep.url, limit=2
        )
    diag = pl.read_parquet(res.run.root / "diagnoses.parquet")
    first_mode = TAX.ids[0]
    for repairs in diag["reply_repairs"].to_list():
        assert {"steps_dropped", "novel_capped"} <= set(repairs)
        assert "dropped:steps 999 (not in the trace)" in repairs
        assert "dropped:novel mode 'Novel 2' (beyond the 2 asked for)" in repairs
        assert "dropped:novel mode 'Novel 3' (beyond the 2 asked for)" in repairs
        assert f"dropped:500 characters of the rationale of {first_mode} (text cap)" in repairs
    novel = pl.read_parquet(res.run.root / "novel_modes.parquet")
    assert sorted(set(novel["title"].to_list())) == ["Novel 0", "Novel 1"]
