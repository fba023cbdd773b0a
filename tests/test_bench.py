"""trajfm bench: metric functions on hand-made cases, label readers and naive baselines on the real datasets,
and each benchmark end to end on a small slice (skipped when ../shared/datasets is absent)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from trajfm.bench import baselines as bl
from trajfm.bench import metrics as m
from trajfm.bench.core import LabelNormaliser, label_key, read_json_lenient
from trajfm.errors import TraceLoadError, UsageError

# ---- metrics on hand-made cases --------------------------------------------------------------------------------


def test_accuracy_counts_none_as_wrong() -> None:
    assert m.accuracy(["a", None, "c"], ["a", "b", "x"]) == pytest.approx(1 / 3)
    assert math.isnan(m.accuracy([], []))
    with pytest.raises(ValueError):
        m.accuracy([1], [1, 2])


def test_step_tolerance() -> None:
    pred, gold = [3, 5, None, 0], [3, 6, 2, 4]
    assert m.step_accuracy_within(pred, gold, 0) == 0.25
    assert m.step_accuracy_within(pred, gold, 1) == 0.5
    assert m.step_accuracy_within(pred, gold, 3) == 0.5
    assert m.step_accuracy_within(pred, gold, 4) == 0.75


def test_multilabel_f1_matches_hand_computation() -> None:
    gold = [{"a", "b"}, {"a"}, {"c"}]
    pred = [{"a"}, {"a", "c"}, set()]
    # a: tp2 fp0 fn0 -> f1 1, support 2; b: fn1 -> 0, support 1; c: fp1 fn1 -> 0, support 1
    assert m.multilabel_f1(pred, gold, "weighted") == pytest.approx(2 / 4)
    assert m.multilabel_f1(pred, gold, "macro") == pytest.approx(1 / 3)
    # pooled: tp2 fp1 fn2 -> p 2/3 r 1/2
    assert m.multilabel_f1(pred, gold, "micro") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_multilabel_f1_agrees_with_sklearn() -> None:
    sklearn = pytest.importorskip("sklearn.metrics")
    import numpy as np

    labels = ["a", "b", "c", "d"]
    gold = [{"a", "b"}, {"c"}, {"a", "d"}, {"b"}, set()]
    pred = [{"a"}, {"c", "d"}, {"a", "b", "c", "d"}, set(), {"a"}]
    y = np.array([[lab in g for lab in labels] for g in gold])
    p = np.array([[lab in s for lab in labels] for s in pred])
    for avg in ("weighted", "micro", "macro"):
        want = sklearn.f1_score(y, p, average=avg, zero_division=0)
        assert m.multilabel_f1(pred, gold, avg, labels=labels) == pytest.approx(want), avg


def test_location_recall_and_precision() -> None:
    gold = [{"s1", "s2"}, {"s3"}, set()]
    pred = [{"s1", "s9", "s8", "s7"}, set(), {"s5"}]
    # recall over traces with gold: (1/2 + 0) / 2; precision over traces with predictions: (1/4 + 0) / 2
    assert m.set_recall_mean(pred, gold) == pytest.approx(0.25)
    assert m.set_precision_mean(pred, gold) == pytest.approx(0.125)
    assert m.set_prf_micro(pred, gold) == pytest.approx(m.prf(1, 4, 2))
    assert m.harmonic(0.25, 0.125) == pytest.approx(2 * 0.25 * 0.125 / 0.375)


def test_cohen_kappa_known_values() -> None:
    assert m.cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    # po = 0.5, pa = pb = 0.5 -> pe = 0.5 -> kappa 0
    assert m.cohen_kappa([True, True, False, False], [True, False, True, False]) == 0.0
    # po = 3/4; pa = 3/4, pb = 1/2 -> pe = 3/8 + 1/8 = 1/2 -> kappa 1/2
    assert m.cohen_kappa([True, True, True, False], [True, True, False, False]) == pytest.approx(0.5)
    assert math.isnan(m.cohen_kappa([False, False], [False, False]))


# ---- label handling ----------------------------------------------------------------------------------------------


def test_label_key_ignores_spelling_variants() -> None:
    assert label_key("Context Handling Failures") == label_key(" context-handling failure")
    assert label_key("Tool Selection") == label_key("Tool Selection Errors")
    assert label_key("Under-specified User Intent") == label_key("Underspecified User Intent")
    assert label_key("Goal Deviation") != label_key("Task Orchestration")


def test_normaliser_records_unknown_names() -> None:
    norm = LabelNormaliser({"Goal Deviation": "goal"}, {"Drift": "goal"})
    assert norm("goal deviation") == "goal"
    assert norm("drift") == "goal"
    assert norm("Something Else") is None
    assert norm.unknown == {"Something Else": 1}


def test_lenient_json_accepts_trailing_comma(tmp_path: Path) -> None:
    f = tmp_path / "labels.json"
    f.write_text('{"errors": [{"category": "A", "location": "x"},\n    ],\n}')
    assert read_json_lenient(f) == {"errors": [{"category": "A", "location": "x"}]}
    bad = tmp_path / "bad.json"
    bad.write_text('{"errors": [')
    with pytest.raises(TraceLoadError, match="bad.json"):
        read_json_lenient(bad)


def test_taxonomies_have_the_published_label_sets() -> None:
    from trajfm.taxonomy import load_taxonomy

    trail = load_taxonomy("trail")
    assert len(trail.modes) == 20
    assert {"Formatting Errors", "Resource Abuse", "Rate Limiting", "Language-only"} <= {
        x.name for x in trail.modes
    }
    agentrx = load_taxonomy("agentrx")
    assert len(agentrx.modes) == 9
    assert "Invention of New Information" in {x.name for x in agentrx.modes}


def test_agentrx_old_category_name_maps_to_plan_adherence() -> None:
    from trajfm.bench.agentrx import category_normaliser

    norm = category_normaliser()
    assert norm("Instruction Adherence Failure") == "plan_adherence_failure"
    assert norm("Intent–Plan Misalignment") == norm("Intent Plan Misalignment") == "intent_plan_misalignment"


def test_mast_old_mode_names_map_by_name() -> None:
    from trajfm.bench.mast import mode_of

    assert mode_of("2.2 Step repetition\n\nUnnecessary ...") == ("1.3", True)
    assert mode_of("4.3 Lack of critical verification\n") == ("3.2", True)
    assert mode_of("3.3 Incorrect Verification") == ("3.3", True)
    assert mode_of("2.1 Unbatched repetitive execution") == (None, True)
    assert mode_of("9.9 Never heard of it") == (None, False)


# ---- naive baselines on hand-made runs ---------------------------------------------------------------------------


def test_blame_before_first_error() -> None:
    speakers = ["planner", "coder", "terminal", "coder", "terminal"]
    contents = ["plan", "run this", "exitcode: 1 (execution failed)\nTraceback ...", "fix", "ok"]
    assert bl.blame_before_first_error(speakers, contents) == ("coder", 1)
    # no error signal: the "always step 1" guess
    assert bl.blame_before_first_error(speakers, ["a", "b", "c", "d", "e"]) == ("coder", 1)
    # an error in the first step blames the first step
    assert bl.blame_before_first_error(["a", "b"], ["Error: bad input", "x"]) == ("a", 0)


def test_expected_random_baselines() -> None:
    assert bl.expected_random_agent(["a", "b", "a", "c"], "B") == pytest.approx(1 / 3)
    assert bl.expected_random_agent(["a"], "z") == 0.0
    assert bl.expected_random_step(10, 0) == pytest.approx(0.1)
    assert bl.expected_random_step(10, 0, tol=1) == pytest.approx(0.2)  # steps 0 and 1
    assert bl.expected_random_step(10, 5, tol=1, first=1) == pytest.approx(0.3)  # steps 4..6 of 1..10


def test_whowhen_scoring_and_baselines_on_handmade_logs(tmp_path: Path) -> None:
    from trajfm.bench import whowhen

    logs = {
        "1.json": (["A", "terminal", "B"], ["code", "exitcode: 1\nError", "TERMINATE"], "A", 0),
        "2.json": (
            ["A", "B", "terminal", "B"],
            ["plan", "code", "Traceback (most recent call last)", "x"],
            "B",
            1,
        ),
    }
    for name, (speakers, contents, agent, step) in logs.items():
        history = [{"name": s, "role": "user", "content": c} for s, c in zip(speakers, contents, strict=True)]
        doc = {"history": history, "mistake_agent": agent, "mistake_step": str(step), "question": "q"}
        (tmp_path / name).write_text(json.dumps(doc))
    runs = whowhen.read_runs(tmp_path)
    assert [r.mistake_step for r in runs] == [0, 1]
    base = whowhen.naive_baselines(runs)
    assert base["speaker before first error signal"]["agent_acc"] == 1.0
    assert base["speaker before first error signal"]["step_acc"] == 1.0
    assert base["always step 1"]["step_acc"] == 0.5
    got = whowhen.score(runs, [("a", 1), (None, None)])
    assert got == {"agent_acc": 0.5, "step_acc": 0.0, "step_acc_pm1": 0.5, "step_acc_pm3": 0.5}


def test_unknown_dataset_is_a_usage_error(tmp_path: Path) -> None:
    from trajfm.bench import run_bench

    with pytest.raises(UsageError, match="unknown dataset"):
        run_bench("nope", tmp_path)


# ---- real datasets: label readers and baselines ------------------------------------------------------------------


@pytest.mark.datasets
def test_whowhen_labels_and_published_naive_figures(datasets_dir: Path) -> None:
    from trajfm.bench import whowhen

    runs = whowhen.read_runs(datasets_dir / "who_and_when" / "Algorithm-Generated")
    assert len(runs) == 126
    base = whowhen.naive_baselines(runs)
    # Each baseline is what its rule gives on these labels, computed here directly from them.
    at_step_1 = sum(1 for r in runs if r.speakers and r.mistake_step == min(1, len(r.speakers) - 1)) / len(
        runs
    )
    assert base["always step 1"]["step_acc"] == pytest.approx(at_step_1)
    # Picking a speaker of the log at random: on average 1 / (distinct speakers) when the blamed one spoke.
    expected = [
        (1 / len({s.strip().lower() for s in r.speakers if s}))
        if r.mistake_agent.strip().lower() in {s.strip().lower() for s in r.speakers if s}
        else 0.0
        for r in runs
    ]
    assert base["random (expected)"]["agent_acc"] == pytest.approx(sum(expected) / len(runs))
    # A guess is a guess: the error-signal rule beats random at naming the agent on these logs.
    assert base["speaker before first error signal"]["agent_acc"] > base["random (expected)"]["agent_acc"]


@pytest.mark.datasets
def test_trail_labels_reproduce_readme_naive_figures(datasets_dir: Path) -> None:
    from trajfm.bench import trail

    parts = trail.find_parts(datasets_dir / "trail")
    assert [p[0] for p in parts] == ["GAIA"]
    _, traces_dir, labels_dir = parts[0]
    gold, notes = trail.read_part(traces_dir, labels_dir, trail.category_normaliser())
    assert len(gold) == 113
    assert any("no raw trace" in n for n in notes)
    assert not any("not in taxonomy" in n for n in notes)  # every spelling variant normalised
    baselines = trail.naive_baselines(gold)
    base = baselines["every LLM span, every category"]
    # Flagging every LLM span maximises the official location "accuracy" (a recall) and pays in precision.
    assert base["location_acc"] >= max(b.get("location_acc", 0.0) for b in baselines.values())
    assert base["location_precision"] < base["location_acc"]


@pytest.mark.datasets
def test_agentrx_labels(datasets_dir: Path) -> None:
    from trajfm.bench import agentrx

    runs = agentrx.read_tau(datasets_dir / "agentrx")
    assert len(runs) == 29
    assert all(r.root_category is not None for r in runs)
    assert {r.root_agent for r in runs} <= {"Assistant", "User"}
    assert all(1 <= r.root_step <= len(r.contents) for r in runs)


@pytest.mark.datasets
def test_mast_majority_labels(datasets_dir: Path) -> None:
    from trajfm.bench import mast

    records, notes = mast.read_records(datasets_dir / "mast_mad_human")
    assert len(records) == 19 and not notes
    assert records[15].gold["3.3"] is True and records[18].gold["3.3"] is False
    assert "1.4" not in records[0].gold  # the first taxonomy version has no Loss of Conversation History


# ---- each benchmark end to end on a small slice of the real data -----------------------------------------------


def _check_result(res, n: int) -> None:  # noqa: ANN001 - BenchResult
    assert res.n_traces == n
    assert res.judge_status.get("ok", 0) == n
    assert set(res.metrics) == set(res.metric_names)
    assert res.baselines, "naive baselines are printed beside every score"
    assert len(res.per_trace) == n


@pytest.mark.datasets
def test_bench_whowhen_slice_via_cli(datasets_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trajfm.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["bench", "whowhen", str(datasets_dir / "who_and_when"), "--limit", "8", "--out", str(out)],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "speaker before first error signal" in result.output and "GPT-4o all-at-once" in result.output
    doc = json.loads((out / "bench.json").read_text())
    part = doc["parts"][0]
    assert doc["dataset"] == "whowhen" and part["part"] == "Algorithm-Generated" and part["n_traces"] == 8
    # The reported accuracy is the one the per-trace predictions give.
    rows = part["per_trace"]
    hits = sum(1 for r in rows if r["pred_agent"] and r["pred_agent"].lower() == r["gold_agent"].lower())
    assert part["metrics"]["agent_acc"] == pytest.approx(hits / 8)
    steps = sum(1 for r in rows if r["pred_step"] == r["gold_step"])
    assert part["metrics"]["step_acc"] == pytest.approx(steps / 8)


@pytest.mark.datasets
def test_bench_whowhen_rules_judge_beats_random_and_says_its_protocol(datasets_dir: Path) -> None:
    """The shipped judge (weights fitted on these logs among others: in-sample) beats the random baseline on
    Algorithm-Generated, and the result says which protocol produced it. The left-out figures are in the README."""
    from trajfm.bench import run_bench

    (res,) = run_bench("whowhen", datasets_dir / "who_and_when" / "Algorithm-Generated")
    _check_result(res, 126)
    rand = res.baselines["random (expected)"]
    assert res.metrics["agent_acc"] > rand["agent_acc"] + 0.1
    assert res.metrics["step_acc"] > rand["step_acc"] + 0.1
    assert res.notes[0].startswith("protocol shipped") and "in-sample" in res.notes[0]


@pytest.mark.datasets
def test_bench_lodo_protocol_fits_without_the_scored_dataset(datasets_dir: Path, tmp_path: Path) -> None:
    from trajfm.bench import run_bench

    (res, _outcomes) = run_bench(
        "agentrx", datasets_dir / "agentrx", out=tmp_path, protocol="lodo", fit_root=datasets_dir, limit=5
    )
    weights = json.loads((tmp_path / "root_cause_lodo.json").read_text())
    assert "agentrx" not in weights["fitted_on"] and set(weights["fitted_on"]) <= {"whowhen", "trail"}
    assert weights["fitted_on"]
    assert res.notes[0].startswith("protocol lodo") and "not on agentrx" in res.notes[0]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["options"]["protocol"] == "lodo"
    assert bench["options"]["judge_options"]["root_cause_model"].endswith("root_cause_lodo.json")


@pytest.mark.datasets
def test_lodo_calibration_leaves_out_the_scored_dataset(datasets_dir: Path) -> None:
    from trajfm.bench.calibrate import CALIBRATION_DATASETS, measure

    counts_all, used_all = measure(datasets_dir)
    counts, used = measure(datasets_dir, exclude="mast")
    assert {d for names in used_all.values() for d in names} == set(CALIBRATION_DATASETS)
    assert used_all == {"spans": ["trail"], "messages": ["mast"]}  # TRAIL holds span trees, MAST message logs
    assert used == {"spans": ["trail"]}
    assert counts == {"spans": counts_all["spans"]}  # the MAST findings were counted in one and not the other


@pytest.mark.datasets
def test_bench_agentrx_slice(datasets_dir: Path) -> None:
    from trajfm.bench import run_bench

    (res, outcomes) = run_bench("agentrx", datasets_dir / "agentrx", limit=5)
    _check_result(res, 5)
    assert res.part == "tau-bench retail"
    # every run of the full file, its reward against the judge's own reading, beside constant verdicts
    assert outcomes.part == "tau-bench retail outcomes" and outcomes.n_traces == outcomes.n_scored == 5
    assert set(outcomes.baselines) == {"always succeeded", "always failed"}
    readings = [r["judge_completed"] for r in outcomes.per_trace]
    gold = [r["succeeded"] for r in outcomes.per_trace]
    assert outcomes.metrics["outcome_acc"] == sum(a == b for a, b in zip(readings, gold, strict=True)) / 5
    assert any("Magentic-One part" in n for n in res.notes)
    cats = {r["pred_category"] for r in res.per_trace} - {None}
    from trajfm.taxonomy import load_taxonomy

    assert cats <= set(load_taxonomy("agentrx").ids)


@pytest.mark.datasets
def test_bench_trail_slice(datasets_dir: Path, tmp_path: Path) -> None:
    from trajfm.bench import run_bench

    (res,) = run_bench("trail", datasets_dir / "trail", limit=4, out=tmp_path)
    _check_result(res, 4)
    # Published figures are printed beside ours under the same metric names.
    assert res.published and all(set(p) <= set(res.metric_names) for p in res.published.values())
    for key in ("location_precision", "location_f1", "category_f1_micro", "category_f1_macro"):
        assert key in res.metrics
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["parts"][0]["per_trace"][0]["gold_locations"]


@pytest.mark.datasets
def test_bench_mast_slice_warns_labels_unreliable(datasets_dir: Path) -> None:
    from trajfm.bench import run_bench

    (res,) = run_bench("mast", datasets_dir / "mast_mad_human", limit=3)
    _check_result(res, 3)
    assert res.warnings and "unreliable" in res.warnings[0]
    # all three records in the slice load, so no "could not be loaded" note (it once went negative with --limit)
    assert not any("could not be loaded" in n for n in res.notes), res.notes
    assert {row["mode"] for row in res.extra_tables["per_mode"]} <= {
        f"{a}.{b}" for a in (1, 2, 3) for b in range(1, 7)
    }


@pytest.mark.slow
def test_bench_assetops_on_a_small_generated_corpus(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trajfm.bench import run_bench
    from trajfm.cli import app

    corpus = tmp_path / "corpus"
    made = CliRunner().invoke(app, ["synth", "--out", str(corpus), "--limit", "30"])
    assert made.exit_code == 0, made.output
    (res,) = run_bench("assetops", corpus)
    _check_result(res, 30)
    rows = {r["label"]: r for r in res.extra_tables["per_behaviour"]}
    assert "clean_success" in rows
    # Every planted behaviour of the sidecar is scored, and the judge beats "every mode always" on precision.
    assert res.metrics["mode_precision_micro"] > res.baselines["every mode always"]["mode_precision_micro"]


def test_whowhen_hand_crafted_magentic_form(tmp_path: Path) -> None:
    """The Hand-Crafted part (Magentic-One logs: the agent is the role, no name) is read and scored end to end;
    it is not in ../shared/datasets, so this hand-made log stands in for it."""
    from trajfm.bench import run_bench

    part = tmp_path / "Hand-Crafted"
    part.mkdir()
    history = [
        {"role": "human", "content": "How many studio albums did the band release before 2010?"},
        {"role": "Orchestrator (thought)", "content": "Plan: ask WebSurfer to search the discography."},
        {"role": "Orchestrator (-> WebSurfer)", "content": "Search for the band's discography."},
        {"role": "WebSurfer", "content": "Error: the page could not be loaded (HTTP 404)."},
        {"role": "Orchestrator (thought)", "content": "The answer is 3."},
    ]
    doc = {"history": history, "question": "q", "mistake_agent": "Orchestrator", "mistake_step": "2",
           "mistake_reason": "asked for the wrong page", "is_correct": False}  # fmt: skip
    (part / "1.json").write_text(json.dumps(doc))
    (res,) = run_bench("whowhen", tmp_path, out=tmp_path / "run")
    assert res.part == "Hand-Crafted" and res.n_traces == 1
    assert res.baselines["speaker before first error signal"] == {
        "agent_acc": 1.0, "step_acc": 1.0, "step_acc_pm1": 1.0, "step_acc_pm3": 1.0
    }  # fmt: skip
    # The rules judge blames the message whose request the failing page load answered.
    assert res.per_trace[0]["pred_step"] == 2
    assert res.metrics["agent_acc"] == 1.0
    assert (tmp_path / "run" / "bench.md").read_text().startswith("**whowhen · Hand-Crafted**")


def test_cli_reports_bad_options_without_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trajfm.cli import app

    runner = CliRunner()
    bad_option = runner.invoke(app, ["bench", "whowhen", str(tmp_path), "--out", str(tmp_path / "r"),
                                     "--judge-option", "model"])  # fmt: skip
    assert bad_option.exit_code == 2 and "KEY=VALUE" in bad_option.output
    missing = runner.invoke(app, ["bench", "trail", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert missing.exit_code == 2 and "no TRAIL data" in missing.output
    assert "Traceback" not in missing.output


def _magentic_part(root: Path, run_id: int, messages: list[dict], failures: list[dict], root_failure: object) -> None:
    """Write one Magentic-One run and its AgentRx label in the part's documented layout under ROOT."""
    (root / "magentic_dataset").mkdir()
    (root / "ground_truth").mkdir()
    (root / "magentic_dataset" / f"{run_id}.json").write_text(json.dumps(messages))
    labels = [{"trajectory_id": run_id, "failures": failures, "root_cause": {"failure_id": root_failure}}]
    (root / "ground_truth" / "magentic_one_ground_truth.json").write_text(json.dumps(labels))


def test_agentrx_magentic_part_from_handmade_files(tmp_path: Path) -> None:
    """The Magentic-One part of AgentRx (absent from ../shared/datasets) is read from its documented layout."""
    from trajfm.bench import run_bench

    messages = [
        {"role": "human", "content": "Find the opening hours of the museum."},
        {"role": "Orchestrator (thought)", "content": "Ask WebSurfer to open the museum site."},
        {"role": "WebSurfer", "content": "I typed the address into the browser."},
        {"role": "WebSurfer", "content": "Error: the page returned HTTP 404 not found."},
        {"role": "Orchestrator (thought)", "content": "The museum is open 9 to 5."},
    ]
    failures = [
        {"failure_id": 1, "step_number": 3, "failure_category": "Invalid Invocation", "failed_agent": "WebSurfer"},
        {"failure_id": 2, "step_number": 5, "failure_category": "Invention of New Information",
         "failed_agent": "Orchestrator"}]  # fmt: skip
    _magentic_part(tmp_path, 7, messages, failures, "2")  # the root cause's id as a string, as the data has it
    (res,) = run_bench("agentrx", tmp_path)
    assert res.part == "Magentic-One" and res.n_traces == 1
    row = res.per_trace[0]
    assert (row["gold_step"], row["gold_agent"], row["gold_category"]) == (
        5, "Orchestrator", "invention_of_new_information"
    )  # fmt: skip
    assert row["status"] == "ok"  # loaded through the Magentic-One loader and judged
    # Speakers for the baselines come from the loaded trace: 5 steps, uniform guess.
    assert res.baselines["random (expected)"]["step_acc"] == pytest.approx(1 / 5)


def test_agentrx_magentic_runs_without_an_outcome_are_judged_as_the_failed_runs_they_are(tmp_path: Path) -> None:
    """AgentRx labels failed runs only. A Magentic-One log records no outcome, so the bench marks it failed (as the
    tau-bench rewards of 0 do): the judge then names a root cause although no detector fires on this quiet log."""
    from trajfm.bench import run_bench

    messages = [
        {"role": "human", "content": "Which river runs through the old town?"},
        {"role": "Orchestrator (thought)", "content": "Ask WebSurfer to look it up."},
        {"role": "Orchestrator (-> WebSurfer)", "content": "Please search for the river of the old town."},
        {"role": "WebSurfer", "content": "I typed 'old town river' into the search bar. The page lists a canal."},
        {"role": "Orchestrator (thought)", "content": "The answer is the canal."},
    ]
    failures = [{"failure_id": 1, "step_number": 4, "failure_category": "Misinterpretation of Tool Output",
                 "failed_agent": "WebSurfer"}]  # fmt: skip
    _magentic_part(tmp_path, 3, messages, failures, 1)
    (res,) = run_bench("agentrx", tmp_path)
    row = res.per_trace[0]
    assert row["status"] == "ok"
    assert row["pred_step"] in range(1, 6) and row["pred_agent"] in ("Orchestrator", "WebSurfer", "human")
    assert any("judged as the failed runs" in n for n in res.notes)


def test_agentrx_magentic_labels_from_a_repository_checkout_with_an_unusable_label(tmp_path: Path) -> None:
    """A checkout of the AgentRx repository keeps its files under data/. A label whose root cause names no failure
    leaves out that run only, with a note naming it; a label naming the agent by its role form ("Orchestrator
    (-> WebSurfer)") is the same agent as the loaded speaker "Orchestrator"."""
    from trajfm.bench import run_bench

    data = tmp_path / "data"
    (data / "magentic_dataset").mkdir(parents=True)
    (data / "ground_truth").mkdir()
    messages = [
        {"role": "human", "content": "Which river runs through the old town?"},
        {"role": "Orchestrator (thought)", "content": "Ask WebSurfer to look it up."},
        {"role": "Orchestrator (-> WebSurfer)", "content": "Please search for the river of the old town."},
        {"role": "WebSurfer", "content": "Error: the page returned HTTP 404 not found."},
        {"role": "Orchestrator (thought)", "content": "The answer is the canal."},
    ]
    for run_id in ("a1", "b2"):
        (data / "magentic_dataset" / f"{run_id}.json").write_text(json.dumps(messages))
    labels = [
        {"trajectory_id": "a1", "root_cause": {"failure_id": 1},
         "failures": [{"failure_id": 1, "step_number": 3, "failure_category": "Invalid Invocation",
                       "failed_agent": "Orchestrator (-> WebSurfer)"}]},
        {"trajectory_id": "b2", "root_cause": {"failure_id": 9},
         "failures": [{"failure_id": 1, "step_number": 4, "failure_category": "Invalid Invocation",
                       "failed_agent": "WebSurfer"}]},
    ]  # fmt: skip
    (data / "ground_truth" / "magentic_one_ground_truth.json").write_text(json.dumps(labels))
    (res,) = run_bench("agentrx", tmp_path)
    assert res.part == "Magentic-One" and res.n_traces == 1
    assert [row["trajectory_id"] for row in res.per_trace] == ["a1"]
    left_out = [n for n in res.notes if "left out" in n]
    assert len(left_out) == 1 and "trajectory b2" in left_out[0] and "'9' names no failure" in left_out[0]
    # The baseline "first step of the labelled agent" finds the Orchestrator's first message (step 2) although the
    # label spells the agent in its role form.
    assert bl.first_step_of(["human", "Orchestrator", "Orchestrator", "WebSurfer"], "Orchestrator (-> WebSurfer)") == (
        "Orchestrator",
        1,
    )
    # The judge blames the Orchestrator's request that the failing page load answered (step 3), which is the
    # labelled root cause; its agent matches the label's role form.
    row = res.per_trace[0]
    assert (row["pred_step"], row["pred_agent"], row["gold_agent"]) == (3, "Orchestrator", "Orchestrator (-> WebSurfer)")
    assert res.metrics["agent_acc"] == 1.0 and res.metrics["step_acc"] == 1.0


def test_agent_names_compare_without_a_role_annotation() -> None:
    assert bl.agent_key(" Orchestrator (-> WebSurfer) ") == bl.agent_key("orchestrator") == "orchestrator"
    assert bl.agent_key("Orchestrator (thought)") == "orchestrator"
    assert bl.agent_key("Verification_Expert") == "verification_expert"
    assert bl.agent_key("WebSurfer") != bl.agent_key("Orchestrator")
    assert bl.expected_random_agent(["Orchestrator", "WebSurfer"], "Orchestrator (-> WebSurfer)") == 0.5


def test_trail_parts_found_in_a_repository_checkout(tmp_path: Path) -> None:
    """TRAIL's repository keeps data/ and the label folders under benchmarking/; the trail folder itself is also
    accepted, and a folder holding neither gets the error naming the layout."""
    from trajfm.bench import trail as tr

    bench_dir = tmp_path / "trail-benchmark" / "benchmarking"
    (bench_dir / "data" / "SWE Bench").mkdir(parents=True)
    (bench_dir / "processed_annotations_swe_bench").mkdir()
    for root in (tmp_path / "trail-benchmark", bench_dir):
        assert tr.find_parts(root) == [
            ("SWE Bench", bench_dir / "data" / "SWE Bench", bench_dir / "processed_annotations_swe_bench")
        ]
    with pytest.raises(UsageError, match="no TRAIL data"):
        tr.find_parts(tmp_path)


def _whowhen_log(agent: str, step: int) -> dict:
    history = [
        {"role": "human", "content": "How many moons does the planet have?"},
        {"role": "Orchestrator (-> WebSurfer)", "content": "Search for the planet's moons."},
        {"role": "WebSurfer", "content": "Error: the page could not be loaded (HTTP 404)."},
        {"role": "Orchestrator (thought)", "content": "The answer is 3."},
    ]
    return {"history": history, "mistake_agent": agent, "mistake_step": str(step), "question": "q"}


def test_whowhen_bad_log_is_left_out_and_both_parts_are_scored(tmp_path: Path) -> None:
    """One file that is not a labelled log (no mistake_step; bad JSON) leaves out that file only, with a note
    naming it; with both parts present, no result says the Hand-Crafted part is missing. A part whose every file is
    bad is an error naming the file."""
    from trajfm.bench import run_bench
    from trajfm.bench import whowhen as ww

    for part in ("Algorithm-Generated", "Hand-Crafted"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "1.json").write_text(json.dumps(_whowhen_log("Orchestrator", 1)))
    (tmp_path / "Hand-Crafted" / "2.json").write_text(json.dumps({"history": []}))
    (tmp_path / "Hand-Crafted" / "3.json").write_text("{not json")
    results = run_bench("whowhen", tmp_path)
    assert [(r.part, r.n_traces) for r in results] == [("Algorithm-Generated", 1), ("Hand-Crafted", 1)]
    assert not any("was not measured" in n for r in results for n in r.notes)
    (left_out,) = [n for n in results[1].notes if "left out" in n]
    assert left_out.startswith("2 file(s) left out") and "2.json" in left_out and "3.json" in left_out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "9.json").write_text(json.dumps({"history": [], "mistake_agent": "x", "mistake_step": "three"}))
    with pytest.raises(UsageError, match="9.json: not a labelled Who&When log"):
        ww.read_runs(bad)


def test_trail_unreadable_trace_is_left_out_with_a_note(tmp_path: Path) -> None:
    """A labelled TRAIL trace whose raw file is not JSON (or holds no span tree) is left out of the part with a note
    naming it; the other traces of the part are still read."""
    from trajfm.bench import trail as tr

    traces_dir, labels_dir = tmp_path / "data" / "SWE Bench", tmp_path / "processed_annotations_swe_bench"
    traces_dir.mkdir(parents=True)
    labels_dir.mkdir()
    span = {"span_id": "s1", "span_attributes": {"openinference.span.kind": "LLM"}, "child_spans": []}
    (traces_dir / "good.json").write_text(json.dumps({"spans": [span]}))
    (traces_dir / "broken.json").write_text('{"spans": [')
    (traces_dir / "listed.json").write_text(json.dumps([span]))
    label = {"errors": [{"category": "Formatting Errors", "location": "s1"}]}
    for name in ("good", "broken", "listed"):
        (labels_dir / f"{name}.json").write_text(json.dumps(label))
    gold, notes = tr.read_part(traces_dir, labels_dir, tr.category_normaliser())
    assert [g.trace_file.name for g in gold] == ["good.json"]
    assert gold[0].errors == [("s1", "formatting_errors")] and gold[0].llm_spans == {"s1"}
    (note,) = [n for n in notes if "left out" in n]
    assert note.startswith("2 labelled traces could not be read") and "broken.json" in note and "listed.json" in note


def _tau_call(cid: str, name: str, args: str) -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def test_tau_bench_outcome_reading_on_a_results_folder(tmp_path: Path) -> None:
    """`trajfm bench tau` scores the judge's own outcome reading against each run's reward, on every results file
    under a folder; a file that is not runs is named in a note, and a folder without rewards is an error."""
    from trajfm.bench import run_bench

    booked = [
        {"role": "system", "content": "# Booking policy"},
        {"role": "user", "content": "Please book seat 4A on flight 12."},
        {"role": "assistant", "content": None, "tool_calls": [_tau_call("c1", "book_seat", '{"seat": "4A"}')]},
        {"role": "tool", "tool_call_id": "c1", "name": "book_seat", "content": '{"status": "booked", "seat": "4A"}'},
        {"role": "assistant", "content": "Seat 4A on flight 12 is booked for you."},
    ]
    refused = [
        {"role": "system", "content": "# Booking policy"},
        {"role": "user", "content": "Please book seat 9C on flight 30."},
        {"role": "assistant", "content": None, "tool_calls": [_tau_call("c1", "book_seat", '{"seat": "9C"}')]},
        {"role": "tool", "tool_call_id": "c1", "name": "book_seat", "content": "Error: seat 9C is not available"},
        {"role": "assistant", "content": "Sorry, I could not book seat 9C: it is not available."},
    ]
    runs = [
        {"task_id": 1, "reward": 1.0, "trial": 0, "info": {}, "traj": booked},
        {"task_id": 2, "reward": 0.0, "trial": 0, "info": {}, "traj": refused},
    ]
    (tmp_path / "airline").mkdir()
    (tmp_path / "airline" / "results.json").write_text(json.dumps(runs))
    (tmp_path / "airline" / "notes.json").write_text(json.dumps({"comment": "not a run"}))
    (res,) = run_bench("tau", tmp_path / "airline", out=tmp_path / "run")
    assert (res.dataset, res.n_traces) == ("tau", 2)
    readings = {row["trace_id"].rsplit("#", 1)[-1]: (row["succeeded"], row["judge_completed"]) for row in res.per_trace}
    assert sorted(readings.values(), key=lambda v: not v[0]) == [(True, True), (False, False)]
    assert res.metrics["outcome_acc"] == 1.0 and res.baselines["always failed"]["outcome_acc"] == 0.5
    assert any("notes.json" in n and "not read as runs" in n for n in res.notes)
    assert json.loads((tmp_path / "run" / "bench.json").read_text())
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.json").write_text(json.dumps([{"task_id": 1, "traj": booked}]))
    with pytest.raises(UsageError, match="carries a reward"):
        run_bench("tau", empty)
