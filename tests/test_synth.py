"""The bundled synthetic corpus: determinism, layout, labels that point at visible evidence, real-file structure.

Label checks read the trace files themselves (the raw MetaAgent JSON), never the generator's internals: a label
passes only if the content at its step indices shows the behaviour.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.synth import DEFAULT_SEED, generate_corpus, trace_file
from trajfm.synth.domain import ASSETS, MODELS

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "traces" / "assetops"
TOOLS = ("IoTAgent", "FMSRAgent", "TSFMAgent", "WOAgent", "jsonreader", "Finish")
ACTION_RE = re.compile(r"^Tool Name: (\S+) , Tool Parameter: Action Input (\d+): ?(.*)$", re.S)
ARTEFACT_MARKERS = (
    "## Step",
    "Thought:",
    "<|eot_id|>",
    "Action Input",
    "<|start_header_id|>",
    "Final Answer:",
    "\\boxed",
)
LAYOUT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d/[a-z-]+/[a-z0-9.-]+/\d{4}$")


# ---- helpers that read content ----------------------------------------------------------------------------------


def corpus_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def read_trace(root: Path, trace_path: str) -> dict[str, Any]:
    """The MetaAgent JSON of a sidecar trace_path, from the plain file or its `.gz` (gzip.open checks the CRC)."""
    path = trace_file(root, trace_path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            return json.loads(fh.read())
    return json.loads(path.read_bytes())


def read_labels(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]


def norm_action(action: str) -> str:
    """The action without the step counter the MetaAgent inserts (so a repeated call compares equal)."""
    return re.sub(r"Action Input \d+:", "Action Input:", action)


def payload(obs: str) -> dict[str, Any] | None:
    if not obs.startswith('"'):
        return None
    inner = json.loads(obs)
    return json.loads(inner) if isinstance(inner, str) and inner.startswith("{") else None


def tool_of(action: str) -> str | None:
    m = ACTION_RE.match(action)
    return m.group(1) if m and m.group(1) in TOOLS else None


def step(doc: dict[str, Any], i: int) -> dict[str, Any]:
    return doc["trajectory"][i - 1]


NO_DATA = re.compile(r"0 observations|no records|not available|result set is empty|no result|could not", re.I)
CLAIM = re.compile(r"success|accomplished|complete|done|retrieved", re.I)
NOT_FOUND = re.compile(
    r"^(?P<a>.+?) was not found at|named (?P<b>.+?) exists at|Lookup failed: (?P<c>.+?) is not "
    r"registered"
)


def fmt_followed(task: str, answer: str) -> bool | None:
    """Whether the answer follows the format the task asks for; None when the task asks for none."""
    body = answer.removeprefix("answer=")
    t = task.lower()
    if "json" in t:
        try:
            return isinstance(json.loads(body), dict)
        except json.JSONDecodeError:
            return False
    if "table" in t:
        return "|---|" in body
    if "bullet" in t or "numbered list" in t:
        return sum(1 for line in body.splitlines() if line.startswith(("- ", "* "))) >= 1
    if "fahrenheit" in t:
        return "\N{DEGREE SIGN}C" not in body  # ignoring it means reporting Celsius
    return None


def check_behaviour(doc: dict[str, Any], label: dict[str, Any], b: dict[str, Any]) -> None:  # noqa: C901
    """Assert that the content at `b["steps"]` shows behaviour `b["id"]`."""
    steps = b["steps"]
    traj = doc["trajectory"]
    assert all(1 <= i <= len(traj) for i in steps), (b, len(traj))
    bid = b["id"]
    if bid == "step_repetition":
        actions = [norm_action(step(doc, i)["action"]) for i in steps]
        assert len(steps) >= 2 and len(set(actions)) == 1 and tool_of(step(doc, steps[0])["action"])
    elif bid == "ineffective_error_recovery":
        first = step(doc, steps[0])
        assert first["observation"].startswith("Error encountered")
        assert len(steps) >= 2
        for i in steps[1:]:
            assert norm_action(step(doc, i)["action"]) == norm_action(first["action"])
            assert step(doc, i)["observation"] == first["observation"]
    elif bid == "overstated_completion":
        evidence = [step(doc, i)["observation"] for i in steps[:-1]]
        assert any(
            o.startswith("Error encountered") or NO_DATA.search((payload(o) or {}).get("answer", ""))
            for o in evidence
        ), evidence
        assert tool_of(step(doc, steps[-1])["action"]) == "Finish"
        assert CLAIM.search(doc["final_answer"])
    elif bid == "invalid_action_format":
        for i in steps:
            assert tool_of(step(doc, i)["action"]) is None
            assert doc["trajectroy_log"][i - 1]["state"] == "Invalid Action Decoding"
    elif bid == "hallucinated_entity":
        s = step(doc, steps[0])
        p = payload(s["observation"])
        assert p is not None
        m = NOT_FOUND.search(p["answer"])
        assert m, p["answer"]
        entity = m.group("a") or m.group("b") or m.group("c")
        assert entity in s["action"] and entity not in doc["task"]
    elif bid == "premature_termination":
        assert steps == [len(traj)] and tool_of(traj[-1]["action"]) == "Finish"
        called = {tool_of(s["action"]) for s in traj}
        assert set(label["required_tools"]) - called, (label["required_tools"], called)
    elif bid == "ignored_termination":
        finished = tool_of(traj[-1]["action"]) == "Finish"
        tail = list(range(steps[0], len(traj) + (0 if finished else 1)))
        assert steps == tail, (steps, len(traj))
        if not finished:
            assert len(traj) == doc["overall_metric"]["max_steps"] and doc["final_answer"] == ""
        before = [payload(step(doc, i)["observation"]) for i in range(1, steps[0])]
        assert any(p and p["review"]["status"] == "Accomplished" for p in before)
    elif bid == "no_clarification":
        s = step(doc, steps[0])
        assert not any(a.name in doc["task"] or a.equipment_id in doc["task"] for a in ASSETS)
        used = [a for a in ASSETS if a.name in s["action"] or a.equipment_id in s["action"]]
        assert used and any(a.name in s["thought"] for a in used), s
    elif bid == "action_reasoning_mismatch":
        s = step(doc, steps[0])
        acted = tool_of(s["action"])
        named = [t for t in TOOLS if re.search(rf"\b{t}\b", s["thought"])]
        assert acted and named and acted not in named, (acted, named, s["thought"])
    elif bid == "output_format_ignored":
        assert tool_of(step(doc, steps[-1])["action"]) == "Finish"
        assert fmt_followed(doc["task"], doc["final_answer"]) is False
    elif bid == "unverified_subagent_failure":
        first = step(doc, steps[0])
        p = payload(first["observation"])
        assert p is not None and p["review"]["status"] == "Not Accomplished"
        later = traj[steps[0] :]
        assert later and all(norm_action(s["action"]) != norm_action(first["action"]) for s in later)
    elif bid == "leftover_artefacts":
        assert tool_of(step(doc, steps[-1])["action"]) == "Finish"
        assert any(m in doc["final_answer"] for m in ARTEFACT_MARKERS)
    else:
        raise AssertionError(f"unknown behaviour {bid}")


# ---- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed corpus when present, else a fresh full generation with the default seed."""
    if (COMMITTED / "labels.jsonl").is_file():
        return COMMITTED
    out = tmp_path_factory.mktemp("synth_full")
    generate_corpus(out, DEFAULT_SEED)
    return out


# ---- determinism ------------------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    generate_corpus(tmp_path / "a", 11, limit=40)
    generate_corpus(tmp_path / "b", 11, limit=40)
    a, b = corpus_files(tmp_path / "a"), corpus_files(tmp_path / "b")
    assert len(a) == 41 and a == b


def test_different_seed_changes_wording(tmp_path: Path) -> None:
    generate_corpus(tmp_path / "a", 11, limit=40)
    generate_corpus(tmp_path / "b", 12, limit=40)

    def texts(root: Path) -> tuple[set[str], set[str]]:
        thoughts, tasks = set(), set()
        for rel, data in corpus_files(root).items():
            if rel == "labels.jsonl":
                continue
            doc = json.loads(gzip.decompress(data))
            tasks.add(doc["task"])
            thoughts.update(s["thought"] for s in doc["trajectory"])
        return thoughts, tasks

    (ta, qa), (tb, qb) = texts(tmp_path / "a"), texts(tmp_path / "b")
    assert len(ta & tb) / len(ta | tb) < 0.5
    assert len(qa & qb) / len(qa | qb) < 0.5


def test_subset_files_equal_full_corpus_files(tmp_path: Path, corpus: Path) -> None:
    generate_corpus(tmp_path, DEFAULT_SEED, limit=25)
    sub = corpus_files(tmp_path)
    sub.pop("labels.jsonl")
    assert len(sub) == 25
    for rel, data in sub.items():
        assert (corpus / rel).read_bytes() == data, rel


@pytest.mark.slow
def test_committed_corpus_matches_regeneration(tmp_path: Path) -> None:
    if not (COMMITTED / "labels.jsonl").is_file():
        pytest.skip("traces/assetops is not generated in this checkout")
    generate_corpus(tmp_path, DEFAULT_SEED)
    assert corpus_files(tmp_path) == corpus_files(COMMITTED)


def test_gz_files_hold_exactly_the_plain_bytes(tmp_path: Path) -> None:
    generate_corpus(tmp_path / "gz", 11, limit=12)
    generate_corpus(tmp_path / "plain", 11, limit=12, compress=False)
    gz, plain = corpus_files(tmp_path / "gz"), corpus_files(tmp_path / "plain")
    assert gz.pop("labels.jsonl") == plain.pop("labels.jsonl")
    assert len(plain) == 12 and not any(rel.endswith(".gz") for rel in plain)
    assert sorted(gz) == sorted(rel + ".gz" for rel in plain)
    for rel, data in plain.items():
        packed = gz[rel + ".gz"]
        assert gzip.decompress(packed) == data, rel
        assert len(packed) < len(data) / 3, rel
        # deflate, no FNAME/FCOMMENT/FEXTRA flags, mtime 0: nothing in the header depends on when or where
        assert packed[:4] == b"\x1f\x8b\x08\x00" and packed[4:8] == b"\x00\x00\x00\x00", rel


def test_gz_and_plain_corpora_load_to_the_same_traces(tmp_path: Path) -> None:
    from trajfm.traces.load import load_traces

    generate_corpus(tmp_path / "gz" / "assetops", 11, limit=12)
    generate_corpus(tmp_path / "plain" / "assetops", 11, limit=12, compress=False)

    def loaded(root: Path) -> list[tuple[Any, ...]]:
        result = load_traces([root])
        assert not result.failures, result.failures
        return sorted(
            (t.trace_id, t.utterance_id, t.agent_model, t.vendor, t.run_id, t.final_answer,
             [(s.index, s.kind, s.content) for s in t.steps])
            for t in result.traces
        )  # fmt: skip

    gz, plain = loaded(tmp_path / "gz" / "assetops"), loaded(tmp_path / "plain" / "assetops")
    assert len(gz) == 12 and gz == plain
    assert all(not row[0].endswith(".gz") and len(row[1]) == 4 for row in gz)


def test_refuses_to_overwrite_foreign_folder(tmp_path: Path) -> None:
    from trajfm.synth import SynthError

    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(SynthError, match="not empty"):
        generate_corpus(tmp_path, 1, limit=3, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


# ---- layout and counts ------------------------------------------------------------------------------------------


def test_layout_counts_and_sidecar_contract(corpus: Path) -> None:
    labels = read_labels(corpus)
    assert len(labels) == 881
    assert Counter(r["model"] for r in labels) == {m: n for m, (_, n) in MODELS.items()}
    files = [rel for rel in corpus_files(corpus) if rel != "labels.jsonl"]
    # The corpus is gzipped (`<id>.gz`); trace_path stays the extensionless path of the real layout.
    assert all(rel.endswith(".gz") for rel in files)
    assert sorted(rel.removesuffix(".gz") for rel in files) == sorted(r["trace_path"] for r in labels)
    keys = [
        "trace_path",
        "model",
        "scenario",
        "multi_agent",
        "task_success",
        "behaviours",
        "decisive_step",
        "decisive_agent",
    ]
    for r in labels:
        assert list(r)[: len(keys)] == keys
        assert LAYOUT_RE.match(r["trace_path"]), r["trace_path"]
        assert r["trace_path"].split("/")[2] == r["model"]
        for b in r["behaviours"]:
            assert set(b) == {"id", "mast", "novel_family", "steps"}
        if r["behaviours"][0]["id"] == "clean_success":
            assert r["task_success"] and r["decisive_step"] is None and len(r["behaviours"]) == 1
        else:
            assert any(r["decisive_step"] in b["steps"] for b in r["behaviours"])


def test_rates_differ_by_model_and_multi_agent_fails_more(corpus: Path) -> None:
    labels = read_labels(corpus)
    single = [r["task_success"] for r in labels if not r["multi_agent"]]
    multi = [r["task_success"] for r in labels if r["multi_agent"]]
    s_rate, m_rate = sum(single) / len(single), sum(multi) / len(multi)
    assert 0.6 <= s_rate <= 0.75 and 0.4 <= m_rate <= 0.55 and s_rate - m_rate > 0.12
    by_model = {m: [r["task_success"] for r in labels if r["model"] == m] for m in MODELS}
    rates = sorted(sum(v) / len(v) for v in by_model.values())
    assert rates[-1] - rates[0] > 0.1
    novel = {b["novel_family"] for r in labels for b in r["behaviours"] if b["novel_family"]}
    assert len(novel) >= 5


def test_no_two_traces_read_alike(corpus: Path) -> None:
    seen: dict[str, str] = {}
    for r in read_labels(corpus):
        doc = read_trace(corpus, r["trace_path"])
        text = "\n".join(s["thought"] for s in doc["trajectory"]) + doc["final_answer"]
        assert text not in seen, (r["trace_path"], seen.get(text))
        seen[text] = r["trace_path"]


# ---- labels point at evidence ---------------------------------------------------------------------------------


def test_every_label_shows_in_content(corpus: Path) -> None:
    """Every planted behaviour in the corpus (not only a sample: it is fast) is visible at its step indices."""
    checked: Counter[str] = Counter()
    for r in read_labels(corpus):
        doc = read_trace(corpus, r["trace_path"])
        for b in r["behaviours"]:
            if b["id"] == "clean_success":
                continue
            try:
                check_behaviour(doc, r, b)
            except AssertionError as exc:
                raise AssertionError(f"{r['trace_path']}: {b['id']} at {b['steps']}: {exc}") from exc
            checked[b["id"]] += 1
    assert len(checked) == 12 and min(checked.values()) >= 20, checked


def test_unlabelled_traces_do_not_show_the_behaviours(corpus: Path) -> None:
    """Evidence appears only where a label says so: clean runs have no errors, repeats, artefacts or lapses."""
    recovered = 0
    for r in read_labels(corpus):
        doc = read_trace(corpus, r["trace_path"])
        ids = {b["id"] for b in r["behaviours"]}
        tagged = {i for b in r["behaviours"] for i in b["steps"]}
        actions = [norm_action(s["action"]) for s in doc["trajectory"]]
        if not ids & {"step_repetition", "ineffective_error_recovery"}:
            assert len(set(actions)) == len(actions), r["trace_path"]
            thoughts = [s["thought"] for s in doc["trajectory"]]
            assert len(set(thoughts)) == len(thoughts), r["trace_path"]
        for i, s in enumerate(doc["trajectory"], start=1):
            p = payload(s["observation"])
            if p and p["review"]["status"] != "Accomplished":
                assert i in tagged, (r["trace_path"], i)
            if s["observation"].startswith("Error encountered") and i not in tagged:
                # an unlabelled error must be a real recovery: same tool, a changed request, and it worked
                nxt = doc["trajectory"][i]
                assert tool_of(nxt["action"]) == tool_of(s["action"]), (r["trace_path"], i)
                assert norm_action(nxt["action"]) != norm_action(s["action"])
                assert not nxt["observation"].startswith("Error encountered")
                recovered += 1
            if tool_of(s["action"]) is None:
                assert "invalid_action_format" in ids, (r["trace_path"], i)
            named = {t for t in TOOLS if re.search(rf"\b{t}\b", s["thought"])}
            called = {tool_of(s["action"])} | {t for t in TOOLS if t.lower() in s["action"].lower()}
            if named - called and tool_of(s["action"]) != "Finish":
                assert "action_reasoning_mismatch" in ids, (r["trace_path"], i, s["thought"])
        if "leftover_artefacts" not in ids:
            assert not any(m in doc["final_answer"] for m in ARTEFACT_MARKERS), r["trace_path"]
        # A run that reports its own failure (error recovery gave up) owes no formatted result.
        if (
            not ids & {"output_format_ignored", "ineffective_error_recovery"}
            and doc["final_answer"]
            and not r["ambiguous"]
        ):
            assert fmt_followed(doc["task"], doc["final_answer"]) is not False, r["trace_path"]
        if ids == {"clean_success"}:
            assert tool_of(doc["trajectory"][-1]["action"]) == "Finish" and doc["final_answer"]
    assert recovered >= 30  # handled errors exist, so "an error happened" alone is not a failure signal


# ---- structure equals the real MetaAgent files -------------------------------------------------------------------


def _signature(value: Any, path: str, out: dict[str, set[str]]) -> None:
    """Path -> JSON types seen, list items collapsed to [], nested JSON-string runs expanded under <json>."""
    out.setdefault(path, set()).add(type(value).__name__)
    if isinstance(value, dict):
        for k, v in value.items():
            _signature(v, f"{path}.{k}", out)
    elif isinstance(value, list):
        for v in value:
            _signature(v, f"{path}[]", out)
    elif isinstance(value, str) and path.endswith(("step_trajectory_json", "step_metric_json")):
        _signature(json.loads(value), f"{path}<json>", out)


@pytest.mark.datasets
def test_structure_matches_real_assetopsbench_files(datasets_dir: Path, corpus: Path) -> None:
    root = datasets_dir / "assetopsbench"
    # The codabench runs and the two mistral samples share one MetaAgent version; the claude sample is a later
    # version with extra per-step keys and is not the form of the 881-trace corpus.
    real_files = sorted((root / "trajectories_codabench").rglob("*")) + sorted(
        (root / "sample_trajectories" / "mistral-large").glob("*")
    )
    real_files = [p for p in real_files if p.is_file()]
    assert len(real_files) == 8
    real: dict[str, set[str]] = {}
    real_orders = set()
    for p in real_files:
        doc = json.loads(p.read_text())
        real_orders.add(tuple(doc))
        _signature(doc, "$", real)
    ours: dict[str, set[str]] = {}
    for r in read_labels(corpus)[::7]:
        doc = read_trace(corpus, r["trace_path"])
        assert tuple(doc) in real_orders
        _signature(doc, "$", ours)
    assert set(ours) == set(real), set(ours) ^ set(real)
    for path, types in ours.items():
        assert types <= real[path], (path, types, real[path])


def test_loader_reads_the_corpus_with_label_indices(tmp_path: Path) -> None:
    from trajfm.traces.load import load_traces

    generate_corpus(tmp_path, DEFAULT_SEED, limit=60)
    labels = {r["trace_path"]: r for r in read_labels(tmp_path)}
    result = load_traces([str(tmp_path)])
    traces = [t for t in result.traces if t.source_format == "assetops"]
    assert len(traces) == 60
    failed = [f for f in result.failures if not f.path.endswith("labels.jsonl")]
    assert not failed, failed
    for t in traces:
        rel = Path(t.source_path).resolve().relative_to(tmp_path.resolve()).as_posix()
        assert rel.endswith(".gz") and t.trace_id == f"{tmp_path.name}/{rel.removesuffix('.gz')}"
        assert t.utterance_id == rel.removesuffix(".gz").rsplit("/", 1)[1]
        label = labels[rel.removesuffix(".gz")]
        assert t.agent_model == label["model"]
        top = {s.index for s in t.steps if s.depth == 0}
        assert all(i in top for b in label["behaviours"] for i in b["steps"])


def test_cli_writes_and_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["synth", "--out", str(tmp_path / "c"), "--seed", "5", "--limit", "14"])
    assert res.exit_code == 0, res.output
    assert "wrote 14 traces" in res.output
    res = runner.invoke(app, ["synth", "--stats", str(tmp_path / "c")])
    assert res.exit_code == 0 and "task success" in res.output and "single" in res.output
    res = runner.invoke(app, ["synth", "--out", str(tmp_path / "c"), "--limit", "3"])
    assert res.exit_code != 0 and "--overwrite" in res.output
    assert len(list((tmp_path / "c").rglob("*.gz"))) == 14
    res = runner.invoke(app, ["synth", "--out", str(tmp_path / "p"), "--limit", "3", "--no-compress"])
    assert res.exit_code == 0, res.output
    files = [p for p in (tmp_path / "p").rglob("*") if p.is_file() and p.name != "labels.jsonl"]
    assert len(files) == 3 and all(re.fullmatch(r"\d{4}", p.name) for p in files)
    assert json.loads(files[0].read_bytes())["type"] == "mpe-agent"
