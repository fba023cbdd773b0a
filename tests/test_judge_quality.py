"""Degenerate judge replies are flagged (`judge_quality`), kept out of findings, and counted (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from trajfm.extract import run_extract
from trajfm.judges.base import Diagnosis, ModeFinding, NovelMode
from trajfm.judges.prompt import system_message
from trajfm.judges.quality import assess, is_set_aside, placeholders, quality_label, set_aside_counts
from trajfm.taxonomy import load_taxonomy
from trajfm.testing import EndpointConfig, LocalEndpoint

TAX = load_taxonomy("mast")
PROMPT = system_message(TAX)
TRACE_TEXT = (
    "Find the supply temperature.\nread sensor CH6\nError: sensor CH6 not found\nretry read sensor CH6"
)
FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def _diag(modes: dict[str, tuple[str, str]], novel: list[NovelMode] | None = None) -> Diagnosis:
    """A diagnosis detecting `modes` (id -> (evidence, rationale)); every other mode not detected."""
    return Diagnosis(
        trace_id="t",
        judge="llm",
        modes=[
            ModeFinding(
                m.id,
                m.id in modes,
                [1] if m.id in modes else [],
                evidence=modes.get(m.id, ("", ""))[0],
                rationale=modes.get(m.id, ("", ""))[1],
            )
            for m in TAX.modes
        ],
        novel=novel or [],
    )


def test_prompt_placeholders_are_read_from_the_prompt_itself() -> None:
    found = placeholders(PROMPT)
    assert {"quote", "one sentence", "a verbatim quote"} <= found
    assert all('"' not in p for p in found)


def test_a_real_looking_reply_is_ok() -> None:
    d = _diag(
        {
            "1.3": ("retry read sensor CH6", "The same read is repeated."),
            "3.2": ("Error: sensor CH6 not found", "The error is not handled."),
        }
    )
    assert assess(d, TAX, trace_text=TRACE_TEXT, prompt_text=PROMPT) == []


def test_every_mode_detected_is_set_aside() -> None:
    quotes = ["read sensor CH6", "Error: sensor CH6 not found", "retry read sensor CH6", "supply temperature"]
    d = _diag({m.id: (quotes[k % 4], "Shows here.") for k, m in enumerate(TAX.modes)})
    assert assess(d, TAX, trace_text=TRACE_TEXT, prompt_text=PROMPT) == ["all_modes_detected"]
    # one mode short of all: not this reason (and no quote is in more than half of the detections)
    d.modes[0].detected = False
    assert assess(d, TAX, trace_text=TRACE_TEXT, prompt_text=PROMPT) == []


def test_one_quote_repeated_everywhere_is_set_aside() -> None:
    same = {i: ("Error: sensor CH6 not found", f"Reason {i}.") for i in ("1.1", "1.3", "2.2", "3.2")}
    assert assess(_diag(same), TAX, trace_text=TRACE_TEXT) == ["repeated_quote"]
    # the same quote for two modes is ordinary (one error line can show two failures)
    two = dict(list(same.items())[:2]) | {"3.3": ("retry read sensor CH6", "Other.")}
    assert assess(_diag(two), TAX, trace_text=TRACE_TEXT) == []
    # three of seven detections sharing a quote is not "everywhere"
    seven = dict(list(same.items())[:3]) | {
        i: (q, "x")
        for i, q in zip(
            ("3.3", "2.1", "2.3", "1.2"), ("read sensor", "retry", "supply", "Find the"), strict=True
        )
    }
    assert assess(_diag(seven), TAX, trace_text=TRACE_TEXT) == []


@pytest.mark.parametrize(
    "modes, novel",
    [
        ({"1.3": ("a verbatim quote", "The read is repeated.")}, None),
        ({"1.3": ("retry read sensor CH6", "one sentence")}, None),
        ({"1.3": ('"Quote."', "Repeated.")}, None),  # wrapping quotes and punctuation do not hide it
        ({}, [NovelMode("a short general name for the failure pattern, a few words, reusable for other traces", "d", [1], "")]),
        # evidence copied from the instructions (not a placeholder value) and absent from the trace
        ({"3.2": ("the steps where it happened", "x")}, None),
    ],
)  # fmt: skip
def test_prompt_wording_is_set_aside(
    modes: dict[str, tuple[str, str]], novel: list[NovelMode] | None
) -> None:
    prompt = PROMPT + "\nIt records the steps where it happened."
    assert assess(_diag(modes, novel), TAX, trace_text=TRACE_TEXT, prompt_text=prompt) == ["prompt_wording"]


def test_prompt_words_that_the_trace_really_contains_are_not_flagged() -> None:
    trace = TRACE_TEXT + "\nthe final answer fully accomplishes the task"
    d = _diag({"3.3": ("the final answer fully accomplishes the task", "Claimed without checking.")})
    assert assess(d, TAX, trace_text=trace, prompt_text=PROMPT) == []
    # an undetected mode's empty or short rationale is never looked at
    d = _diag({})
    d.modes[0].rationale = "one sentence"
    assert assess(d, TAX, trace_text=TRACE_TEXT, prompt_text=PROMPT) == []


def test_failed_diagnoses_are_not_assessed_and_labels_count() -> None:
    d = _diag({m.id: ("a verbatim quote", "one sentence") for m in TAX.modes})
    assert assess(d, TAX, prompt_text=PROMPT) == ["all_modes_detected", "repeated_quote", "prompt_wording"]
    d.status = "parse_error"
    assert assess(d, TAX, prompt_text=PROMPT) == []
    labels = ["ok", None, "all_modes_detected,repeated_quote", "repeated_quote"]
    assert [is_set_aside(x) for x in labels] == [False, False, True, True]
    assert set_aside_counts(labels) == {"all_modes_detected": 1, "repeated_quote": 2}
    assert quality_label([]) == "ok"


@pytest.mark.parametrize("style", ["small_model", "all_modes", "repeated_quote", "placeholder"])
def test_extract_flags_degenerate_replies_and_keeps_them_out_of_findings(tmp_path: Path, style: str) -> None:
    expected = {
        "small_model": "all_modes_detected,repeated_quote,prompt_wording",
        "all_modes": "all_modes_detected",
        "repeated_quote": "repeated_quote",
        "placeholder": "prompt_wording",
    }[style]
    with LocalEndpoint(EndpointConfig(reply_style=style)) as ep:
        result = run_extract(
            [FIXTURES / "assetops"],
            tmp_path / "run",
            judge="llm",
            model="trajfm-test",
            base_url=ep.url,
            limit=2,
        )
    diag = pl.read_parquet(tmp_path / "run" / "diagnoses.parquet")
    assert diag["status"].to_list() == ["ok", "ok"]
    assert diag["judge_quality"].to_list() == [expected, expected]
    modes = pl.read_parquet(tmp_path / "run" / "modes.parquet")
    assert modes.height == 0  # nothing from a set-aside reply counts as a finding
    assert result.detected == 0 and result.n_set_aside == 2
    assert result.set_aside == {r: 2 for r in expected.split(",")}
    counts = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["extract"]["counts"]
    assert counts["replies_set_aside"] == 2 and counts["set_aside_reasons"] == result.set_aside
    # Quotes of set-aside replies count for nothing, so they are not counted as unverified either.
    assert result.unverified == 0 and counts["evidence_unverified"] == 0


def test_extract_keeps_good_replies_ok(tmp_path: Path) -> None:
    with LocalEndpoint() as ep:
        result = run_extract(
            [FIXTURES / "assetops"],
            tmp_path / "run",
            judge="llm",
            model="trajfm-test",
            base_url=ep.url,
            limit=3,
        )
    diag = pl.read_parquet(tmp_path / "run" / "diagnoses.parquet")
    assert set(diag["judge_quality"].to_list()) == {"ok"}
    assert result.n_set_aside == 0 and result.set_aside == {}


def test_rules_judge_rows_get_a_quality_too(tmp_path: Path) -> None:
    run_extract([FIXTURES / "assetops"], tmp_path / "run", limit=3)
    diag = pl.read_parquet(tmp_path / "run" / "diagnoses.parquet")
    assert diag.filter(pl.col("status") == "ok")["judge_quality"].to_list() == ["ok"] * diag.height


def test_the_report_leaves_set_aside_replies_out_of_rates_and_says_how_many_and_why(tmp_path: Path) -> None:
    from trajfm.report import build_report
    from trajfm.testing.endpoint import degenerate_reply, deterministic_reply

    seen: list[str] = []

    def reply(req: dict) -> str:  # the first trace asked about gets a degenerate reply, the others a real one
        system, user = req["messages"][0]["content"], req["messages"][1]["content"]
        seen.append(user)
        return (
            degenerate_reply(system, user, "small_model")
            if user == seen[0]
            else deterministic_reply(system, user)
        )

    with LocalEndpoint(EndpointConfig(reply_fn=reply)) as ep:
        run_extract(
            [FIXTURES / "assetops"], tmp_path / "run", judge="llm", model="trajfm-test", base_url=ep.url,
            limit=3, concurrency=1,
        )  # fmt: skip
    build_report(tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["judge_quality"]["n"] == 1 and summary["judge_quality"]["of"] == 3
    assert [r["code"] for r in summary["judge_quality"]["reasons"]] == [
        "all_modes_detected",
        "repeated_quote",
        "prompt_wording",
    ]
    assert summary["overview"]["n_diagnosed"] == 2  # rates are over the two usable replies
    assert summary["overview"]["statuses"] == {"ok": 3}
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="judge-set-aside"' in html and "1 of 3 judge replies set aside" in html
    assert "1 of 3 judge replies set aside" in (tmp_path / "run" / "summary.md").read_text()


def test_the_report_says_so_when_every_reply_was_set_aside(tmp_path: Path) -> None:
    from trajfm.report import build_report

    with LocalEndpoint(EndpointConfig(reply_style="small_model")) as ep:
        run_extract(
            [FIXTURES / "assetops"], tmp_path / "run", judge="llm", model="trajfm-test", base_url=ep.url, limit=2
        )
    build_report(tmp_path / "run")
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="empty-state"' in html and html.count('id="judge-set-aside"') == 1
    assert "2 of 2 judge replies set aside" in html and "every ok reply set aside as degenerate" in html
    assert "2 of 2 judge replies set aside" in (tmp_path / "run" / "summary.md").read_text()
