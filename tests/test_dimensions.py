"""The six scorecard dimensions: the study's scoring rule, what the rules judge fills, the LLM judge's reply
shape, and how samples and chunks combine."""

from __future__ import annotations

import json

import polars as pl
import pytest

from trajfm.extract import diagnosis_frames
from trajfm.judges.combine import merge_chunk_dimensions, vote_dimensions
from trajfm.judges.dimensions import DIMENSION_KEYS, rules_dimensions, trace_score
from trajfm.judges.prompt import PROMPT_VERSION, reply_json_schema, system_message
from trajfm.judges.reply import parse_reply
from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Step, Trace

MAST = load_taxonomy("mast")
ALL_TRUE = {k: True for k in DIMENSION_KEYS} | {"dim_hallucination": False}


def test_trace_score_follows_the_studys_rule() -> None:
    assert trace_score(ALL_TRUE) == (1.0, True)
    # one positive of five missed: 0.8, not a pass
    assert trace_score(ALL_TRUE | {"dim_sequence": False}) == (pytest.approx(0.8), False)
    # hallucination costs 0.2 and fails the trace even with every positive met
    assert trace_score(ALL_TRUE | {"dim_hallucination": True}) == (pytest.approx(0.8), False)
    # floored at 0
    worst = {k: False for k in DIMENSION_KEYS} | {"dim_hallucination": True}
    assert trace_score(worst) == (0.0, False)
    # not assessed dimensions are left out of the share; nothing assessed: no score
    assert trace_score(ALL_TRUE | {"dim_clarity": None, "dim_sequence": False}) == (
        pytest.approx(0.75),
        False,
    )
    assert trace_score(dict.fromkeys(DIMENSION_KEYS)) == (None, None)


def test_rules_dimensions_from_finding_kinds() -> None:
    clean = rules_dimensions([], task_completed=True, has_tool_calls=True)
    assert clean == ALL_TRUE | {"dim_clarity": None}
    hallucinated = rules_dimensions(["hallucinated_entity"], task_completed=False, has_tool_calls=True)
    assert hallucinated["dim_hallucination"] is True and hallucinated["dim_data_retrieval"] is False
    assert hallucinated["dim_sequence"] is True and hallucinated["dim_task_completion"] is False
    looped = rules_dimensions(["repeated_action"], task_completed=True, has_tool_calls=True)
    assert looped["dim_sequence"] is False and looped["dim_result_verification"] is True
    # No tool call: nothing to say about retrieval or the sequence of calls.
    chat = rules_dimensions([], task_completed=None, has_tool_calls=False)
    assert chat["dim_data_retrieval"] is None and chat["dim_sequence"] is None and chat["dim_clarity"] is None


def _trace(obs: str, answer: str) -> Trace:
    steps = [
        Step(position=0, index=1, kind="thought", content="I will look up the sensors.", agent="A"),
        Step(
            position=1,
            index=1,
            kind="action",
            content="IoT[sensors of Chiller 6]",
            agent="A",
            tool_name="IoT",
            tool_input="sensors of Chiller 6",
        ),  # fmt: skip
        Step(position=2, index=1, kind="observation", content=obs, agent="A"),
    ]
    return Trace(trace_id="t", source_path="t", source_format="test", steps=steps, task="List sensors.",
                 final_answer=answer)  # fmt: skip


def test_rules_judge_fills_the_dimensions_it_can_measure_and_extract_writes_them() -> None:
    d = RulesJudge().diagnose(_trace("Supply Temperature, Tonnage", "Supply Temperature and Tonnage."), MAST)
    assert d.dimensions["dim_task_completion"] is True and d.dimensions["dim_clarity"] is None
    assert d.dimensions["dim_hallucination"] is False
    diag, _, _ = diagnosis_frames([d], MAST)
    assert diag.select(list(DIMENSION_KEYS)).row(0, named=True) == d.dimensions
    failed = d.__class__(trace_id="x", judge="rules", status="parse_error", dimensions=dict(ALL_TRUE))
    diag, _, _ = diagnosis_frames([failed], MAST)
    assert diag.select(list(DIMENSION_KEYS)).null_count().row(0) == (1,) * 6  # a failed call assesses nothing
    assert diag.schema["dim_sequence"] == pl.Boolean


def test_llm_prompt_asks_for_the_dimensions_and_the_reply_carries_them() -> None:
    assert PROMPT_VERSION == "trajfm-p2"
    text = system_message(MAST)
    for key in DIMENSION_KEYS:
        assert f'"{key.removeprefix("dim_")}"' in text
    schema = reply_json_schema(MAST)
    assert "dimensions" in schema["required"]
    assert set(schema["properties"]["dimensions"]["required"]) == {
        k.removeprefix("dim_") for k in DIMENSION_KEYS
    }
    reply = {
        "summary": "s",
        "task_completed": False,
        "failure_modes": {
            m.id: {"detected": False, "steps": [], "evidence": "", "rationale": ""} for m in MAST.modes
        },
        "novel_failure_modes": [],
        "root_cause": {"step": None, "agent": None},
        "dimensions": {
            "task_completion": False,
            "data_retrieval": True,
            "result_verification": False,
            "sequence": True,
            "clarity": None,
            "hallucination": True,
        },  # fmt: skip
    }
    parsed = parse_reply(json.dumps(reply), MAST, {1, 2})
    assert parsed.dimensions.as_columns() == {
        "dim_task_completion": False,
        "dim_data_retrieval": True,
        "dim_result_verification": False,
        "dim_sequence": True,
        "dim_clarity": None,
        "dim_hallucination": True,
    }
    # A reply without the dimensions (an older prompt's cached reply) parses with every dimension not assessed.
    del reply["dimensions"]
    assert set(parse_reply(json.dumps(reply), MAST, {1}).dimensions.as_columns().values()) == {None}


def test_samples_vote_and_chunks_merge_dimensions() -> None:
    a = ALL_TRUE | {"dim_clarity": None}
    b = ALL_TRUE | {"dim_sequence": False, "dim_clarity": None}
    c = ALL_TRUE | {"dim_sequence": False, "dim_clarity": True}
    voted = vote_dimensions([a, b, c])
    assert voted["dim_sequence"] is False and voted["dim_task_completion"] is True
    assert voted["dim_clarity"] is True  # the only sample that assessed it
    assert vote_dimensions([a, b])["dim_sequence"] is None  # a tie is no verdict
    merged = merge_chunk_dimensions([b | {"dim_task_completion": False}, a | {"dim_hallucination": True}])
    assert merged["dim_sequence"] is False  # a flaw any part saw counts
    assert merged["dim_hallucination"] is True
    assert merged["dim_task_completion"] is True  # the last part holds the final answer


def test_llm_judge_returns_the_dimensions_from_its_reply() -> None:
    from trajfm.judges.llm import LLMJudge
    from trajfm.judges.runner import run_judge
    from trajfm.testing import synthetic_traces
    from trajfm.testing.endpoint import LocalEndpoint

    traces = synthetic_traces(6, seed=3)
    with LocalEndpoint() as ep:
        out = run_judge(LLMJudge("trajfm-test", base_url=ep.url), traces, MAST, concurrency=2, progress=False)
    assert [d.status for d in out] == ["ok"] * 6
    for d in out:
        # the local endpoint answers every dimension but clarity, from the same signals as its modes
        assert d.dimensions["dim_clarity"] is None
        assert d.dimensions["dim_task_completion"] is d.task_completed
        assert all(d.dimensions[k] is not None for k in DIMENSION_KEYS if k != "dim_clarity")
    assert d.prompt_version == PROMPT_VERSION
