"""Stage 3: summary.json equals figures recomputed from the run tables; hostile trace text stays inert;
the report works without the cluster stage; long texts are cut visibly; the CLI writes all three files."""

from __future__ import annotations

import html as htmllib
import json
import math
import re
import sys
from collections import Counter
from itertools import combinations
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from trajfm.cli import app
from trajfm.errors import SchemaError
from trajfm.report import TextBudget, build_report

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "report"))
from make_run import HOSTILE, make_run  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run(tmp_path_factory.mktemp("run") / "run", n_traces=30)
    build_report(run)
    return run


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    if k == 0 or k == n:  # the bounds are exact there
        p = k / n
        c = (p + z * z / (2 * n)) / (1 + z * z / n)
        h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (0.0 if k == 0 else c - h), (1.0 if k == n else c + h)
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, c - h), min(1.0, c + h)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_summary_figures_equal_a_recomputation_from_the_tables(built: Path) -> None:
    s = json.loads((built / "summary.json").read_text())
    assert s["overview"]["n_traces"] == 30
    assert s["overview"]["n_diagnosed"] < 30  # the fixture has failed diagnoses
    # The fixture exercises every branch the recomputation checks: unchecked and partly checked modes, a merged
    # family, a non-empty fix-first list, traces with dimensions not assessed.
    checked = {m["mode_id"]: m["checked"] for m in s["taxonomy"]["modes"]}
    assert checked["1.4"] is False and checked["2.3"] is False and checked["2.1"] is True
    assert [f["cluster_id"] for f in s["novel"]["merged"][0]["families"]] == [0, 3]
    assert s["fix_first"] and {c["kind"] for c in s["fix_first"]} == {"mode", "family"}
    assert all(m["readiness"]["score"] is not None for m in s["models"] if m["n_diagnosed"])
    # every ambiguity signal flags some diagnosed trace, and both sides of the comparison have verdicts
    assert all(s["ambiguity"]["by_signal"].values()) and s["ambiguity"]["drop_points"] is not None
    check_summary_against_tables(built)


def check_summary_against_tables(built: Path) -> None:
    """Recompute the figures of RUN/summary.json from the run tables with polars and compare."""
    s = json.loads((built / "summary.json").read_text())
    traces = pl.read_parquet(built / "traces.parquet").with_columns(
        pl.col("agent_model").fill_null("unknown")
    )
    diag = pl.read_parquet(built / "diagnoses.parquet")
    modes = pl.read_parquet(built / "modes.parquet")
    novel = pl.read_parquet(built / "novel_modes.parquet")
    ok = set(diag.filter(pl.col("status") == "ok")["trace_id"])
    flags = modes.filter(pl.col("detected") & pl.col("trace_id").is_in(list(ok)))
    verdicts = modes.filter(pl.col("detected").is_not_null() & pl.col("trace_id").is_in(list(ok)))
    n = len(ok)

    ov = s["overview"]
    assert ov["n_traces"] == traces.height
    assert ov["n_diagnosed"] == n
    assert ov["n_flags"] == flags.height > 0
    assert _close(ov["modes_per_trace"], flags.height / n)
    comp = diag.filter(pl.col("status") == "ok").drop_nulls("task_completed")
    assert ov["completion"]["n"] == comp["task_completed"].sum() and ov["completion"]["of"] == comp.height
    assert _close(ov["completion"]["ci_low"], _wilson(comp["task_completed"].sum(), comp.height)[0])
    nov = novel.filter(pl.col("trace_id").is_in(list(ok)))
    assert ov["traces_with_novel"]["n"] == nov["trace_id"].n_unique()
    assert ov["n_novel_modes"] == nov.height

    per_mode = Counter(flags["mode_id"])
    n_checked = Counter(verdicts["mode_id"])
    for m in s["taxonomy"]["modes"]:
        assert m["n_traces"] == per_mode.get(m["mode_id"], 0), m["mode_id"]
        assert _close(m["share_flags"], per_mode.get(m["mode_id"], 0) / flags.height)
        # A mode no verdict was given on is "not checked": no rate, never 0%.
        assert m["checked"] is (n_checked[m["mode_id"]] > 0) and m["n_checked"] == n_checked[m["mode_id"]]
        want = per_mode.get(m["mode_id"], 0) / n_checked[m["mode_id"]] if n_checked[m["mode_id"]] else None
        assert _close(m["share_traces"], want), m["mode_id"]
    cat_flags = Counter(flags["category"])
    assert sum(c["share_flags"] for c in s["taxonomy"]["categories"]) == pytest.approx(1.0)
    for c in s["taxonomy"]["categories"]:
        assert c["n_flags"] == cat_flags.get(c["category"], 0)
        assert c["n_traces"] == flags.filter(pl.col("category") == c["category"])["trace_id"].n_unique()

    model_of = dict(traces.select("trace_id", "agent_model").iter_rows())
    n_model = Counter(model_of[t] for t in ok)
    for m in s["models"]:
        if not m["n_diagnosed"]:
            continue
        assert m["n_diagnosed"] == n_model[m["model"]]
        for mode_id, r in m["modes"].items():
            k = sum(
                1 for t in flags.filter(pl.col("mode_id") == mode_id)["trace_id"] if model_of[t] == m["model"]
            )
            of = sum(
                1
                for t in verdicts.filter(pl.col("mode_id") == mode_id)["trace_id"]
                if model_of[t] == m["model"]
            )
            assert (r["n"], r["of"]) == (k, of), (m["model"], mode_id)
            if not of:
                assert r["rate"] is None and r["ci_low"] is None
                continue
            lo, hi = _wilson(k, r["of"])
            assert _close(r["ci_low"], lo) and _close(r["ci_high"], hi)
            assert r["ci_low"] <= r["rate"] <= r["ci_high"]

    multi = dict(traces.select("trace_id", "multi_agent").iter_rows())
    for row in s["agent_setup"]:
        want = {"single-agent": False, "multi-agent": True, "unknown": None}[row["setup"]]
        assert row["n_traces"] == sum(1 for v in multi.values() if v is want)
        assert row["n_diagnosed"] == sum(1 for t in ok if multi[t] is want)

    check_scorecard(s, diag, traces, pl.read_parquet(built / "steps.parquet"), ok)
    check_ambiguity(s, diag, traces, pl.read_parquet(built / "steps.parquet"), ok)
    check_impact(s, diag, flags, verdicts, novel, traces, ok, built)

    assign = pl.read_parquet(built / "novel_assignments.parquet")
    # Families the report merged (recorded in novel.merged) count as the family they were merged into.
    into = {f["cluster_id"]: mg["into"] for mg in s["novel"]["merged"] for f in mg["families"]}
    sizes = Counter(into.get(c, c) for c in assign["cluster_id"])
    assert s["novel"]["clustered"] is True
    assert s["novel"]["n_outliers"] == sizes.get(-1, 0)
    assert {f["cluster_id"] for f in s["novel"]["families"] if f["size"]} == set(sizes)
    for f in s["novel"]["families"]:
        assert f["size"] == sizes[f["cluster_id"]]
        assert len(f["examples"]) == min(3, sizes[f["cluster_id"]])

    pairs: Counter[tuple[str, str]] = Counter()
    for ids in flags.group_by("trace_id").agg(pl.col("mode_id"))["mode_id"]:
        pairs.update(combinations(sorted(set(ids)), 2))
    got = {(c["a"], c["b"]): c["n"] for c in s["cooccurrence"]["cells"] if c["a"] < c["b"]}
    assert got == {k: pairs.get(k, 0) for k in got} and sum(got.values()) == sum(pairs.values())

    steps = (
        pl.read_parquet(built / "steps.parquet")
        .group_by("trace_id")
        .agg(lo=pl.col("index").min(), hi=pl.col("index").max())
    )
    span = {r[0]: (r[1], r[2]) for r in steps.iter_rows()}
    bins = [0] * 10
    rc = diag.filter((pl.col("status") == "ok") & pl.col("root_cause_step").is_not_null())
    for tid, step in rc.select("trace_id", "root_cause_step").iter_rows():
        lo, hi = span[tid]
        rel = (step - lo) / (hi - lo) if hi > lo else 0.0
        bins[min(int(rel * 10), 9)] += 1
    assert [b["n"] for b in s["root_cause"]["bins"]] == bins and sum(bins) == rc.height > 0

    top = {f["model"]: f["top_modes"] for f in s["feedback"]}
    for m in s["models"]:
        ranked = sorted(
            ((k, v["n"]) for k, v in m["modes"].items() if v["n"]), key=lambda kv: (-kv[1], kv[0])
        )[:3]
        assert [t["mode_id"] for t in top[m["model"]]] == [k for k, _ in ranked]
        for t in top[m["model"]]:
            assert t["suggestion"], "every MAST mode has a suggestion"
            for e in t["evidence"]:
                assert model_of[e["trace_id"]] == m["model"]


def _trace_score(dims: dict) -> tuple[float | None, bool | None]:
    """The study's rule, written out again: share of the assessed positive dimensions met, minus 0.2 when the
    trace hallucinates, floored at 0; passes when every assessed positive holds and it does not hallucinate."""
    pos = [dims[k] for k in ("dim_task_completion", "dim_data_retrieval", "dim_result_verification",
                             "dim_sequence", "dim_clarity") if dims[k] is not None]  # fmt: skip
    if not pos:
        return None, None
    bad = dims["dim_hallucination"] is True
    return max(0.0, sum(pos) / len(pos) - (0.2 if bad else 0.0)), all(pos) and not bad


def check_scorecard(s: dict, diag: pl.DataFrame, traces: pl.DataFrame, steps: pl.DataFrame, ok: set) -> None:
    """Per model: the six dimension rates, readiness {score, CI, pass share, bar, meets}, tool-call success, and
    the correlation of tool-call success with completion across models."""
    dims = [c for c in diag.columns if c.startswith("dim_")]
    assert len(dims) == 6
    model_of = dict(traces.select("trace_id", "agent_model").iter_rows())
    rows = [r for r in diag.iter_rows(named=True) if r["status"] == "ok"]
    results = steps.filter(pl.col("kind").is_in(["observation", "tool_result"]))
    z = 1.959963984540054
    pairs = []
    for m in s["models"]:
        mine = [r for r in rows if model_of[r["trace_id"]] == m["model"]]
        if not mine:
            continue
        for k in dims:
            vals = [r[k] for r in mine if r[k] is not None]
            assert (m["dimensions"][k]["n"], m["dimensions"][k]["of"]) == (sum(vals), len(vals)), (
                m["model"],
                k,
            )
        scored = [_trace_score(r) for r in mine]
        scores = [100 * sc for sc, _ in scored if sc is not None]
        rd = m["readiness"]
        assert rd["bar"] == 85 and rd["n_scored"] == len(scores)
        mean = sum(scores) / len(scores)
        assert _close(rd["score"], mean)
        if len(scores) > 1:
            sd = math.sqrt(sum((x - mean) ** 2 for x in scores) / (len(scores) - 1))
            assert _close(rd["ci_low"], max(0.0, mean - z * sd / math.sqrt(len(scores))))
            assert _close(rd["ci_high"], min(100.0, mean + z * sd / math.sqrt(len(scores))))
        passes = [p for _, p in scored if p is not None]
        assert (rd["pass_share"]["n"], rd["pass_share"]["of"]) == (sum(passes), len(passes))
        assert rd["meets"] is (mean >= 85)
        mres = results.filter(pl.col("trace_id").is_in([r["trace_id"] for r in mine]))
        good = sum(
            1
            for r in mres.iter_rows(named=True)
            if not r["is_error"]
            and (r["content"] or "").strip().lower() not in ("", "[]", "{}", "null", "none", '""', "''")
        )
        tc = m["tool_call_success"]
        assert (tc["n"], tc["of"]) == (good, mres.height), m["model"]
        if tc["of"] and m["completion"]["of"]:
            pairs.append((good / mres.height, m["completion"]["rate"]))
    corr = s["scorecard"]["tool_calls"]["correlation_with_completion"]
    assert s["scorecard"]["tool_calls"]["n_models"] == len(pairs)
    if len(pairs) >= 3:
        xs, ys = zip(*pairs, strict=True)
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        num = sum((x - mx) * (y - my) for x, y in pairs)
        den = math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))
        assert _close(corr, num / den if den else None)


def _ambiguity_flags(traces: pl.DataFrame, steps: pl.DataFrame) -> dict[str, str]:
    """The ambiguity signals written out again with plain `re` on lower-cased text (report/ambiguity.py): the
    first agent thought/message that assumes or tool result that calls the request ambiguous, else a final answer
    that asks the user."""
    from trajfm.judges.detectors.ambiguity import _AGENT_ASSUMES, _ENV_AMBIGUOUS, ASKS_USER
    from trajfm.traces.model import default_role

    assumes, env, asks = (re.compile(p.pattern) for p in (_AGENT_ASSUMES, _ENV_AMBIGUOUS, ASKS_USER))
    out: dict[str, str] = {}
    for r in steps.sort("trace_id", "position").iter_rows(named=True):
        text = (r["content"] or "").lower()
        if r["trace_id"] in out:
            continue
        role = r["role"] or default_role(r["kind"], r["agent"])
        if role == "agent" and r["kind"] in ("thought", "message") and assumes.search(text[:2000]):
            out[r["trace_id"]] = "assumes"
        elif role == "tool" and env.search(text[:1500]):
            out[r["trace_id"]] = "tool"
    for tid, answer in traces.select("trace_id", "final_answer").iter_rows():
        if tid not in out and answer and asks.search(answer[:3000].lower()):
            out[tid] = "asked"
    return out


def check_ambiguity(s: dict, diag: pl.DataFrame, traces: pl.DataFrame, steps: pl.DataFrame, ok: set) -> None:
    """Completion on requests flagged ambiguous versus the rest, overall and per model, with the drop in points
    and its Newcombe interval."""
    flags = {t: why for t, why in _ambiguity_flags(traces, steps).items() if t in ok}
    amb = s["ambiguity"]
    assert amb["n_flagged"] == len(flags) and amb["of"] == len(ok)
    assert amb["by_signal"] == {
        k: sum(1 for v in flags.values() if v == k) for k in ("assumes", "tool", "asked")
    }
    done = dict(
        diag.filter(pl.col("status") == "ok")
        .drop_nulls("task_completed")
        .select("trace_id", "task_completed")
        .iter_rows()
    )
    model_of = dict(traces.select("trace_id", "agent_model").iter_rows())

    def compare(got: dict, ids: set) -> None:
        a = [done[t] for t in ids if t in done and t in flags]
        r = [done[t] for t in ids if t in done and t not in flags]
        assert (got["ambiguous"]["n"], got["ambiguous"]["of"]) == (sum(a), len(a))
        assert (got["rest"]["n"], got["rest"]["of"]) == (sum(r), len(r))
        if not a or not r:
            assert got["drop_points"] is None
            return
        pa, pr = sum(a) / len(a), sum(r) / len(r)
        (la, ua), (lr, ur) = _wilson(sum(a), len(a)), _wilson(sum(r), len(r))
        assert _close(got["drop_points"], 100 * (pr - pa))
        assert _close(got["ci_low"], 100 * max(-1.0, pr - pa - math.sqrt((pr - lr) ** 2 + (ua - pa) ** 2)))
        assert _close(got["ci_high"], 100 * min(1.0, pr - pa + math.sqrt((ur - pr) ** 2 + (pa - la) ** 2)))

    compare(amb, set(ok))
    for m in s["models"]:
        compare(m["ambiguity"], {t for t in ok if model_of[t] == m["model"]})


def _risk_ratio(a: int, b: int, c: int, d: int) -> tuple[float | None, float | None, float | None]:
    if a + b == 0 or c + d == 0:
        return None, None, None
    if a == 0 or c == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    rr = (a / (a + b)) / (c / (c + d))
    se = math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    return rr, rr * math.exp(-1.959963984540054 * se), rr * math.exp(1.959963984540054 * se)


def check_impact(s, diag, flags, verdicts, novel, traces, ok, built: Path) -> None:
    """Per mode and family: checked, failed_with, completed_with, lift (with CI); the fix_first ranking."""
    done = dict(
        diag.filter(pl.col("status") == "ok")
        .drop_nulls("task_completed")
        .select("trace_id", "task_completed")
        .iter_rows()
    )
    expected = []
    for m in s["taxonomy"]["modes"]:
        judged = set(verdicts.filter(pl.col("mode_id") == m["mode_id"])["trace_id"]) & set(done)
        with_ = set(flags.filter(pl.col("mode_id") == m["mode_id"])["trace_id"])
        a = sum(1 for t in with_ & judged if not done[t])
        b = sum(1 for t in with_ & judged if done[t])
        c = sum(1 for t in judged - with_ if not done[t])
        d = sum(1 for t in judged - with_ if done[t])
        assert (m["failed_with"], m["completed_with"]) == (a, b), m["mode_id"]
        rr, lo, hi = _risk_ratio(a, b, c, d)
        assert _close(m["lift"], rr) and _close(m["lift_ci_low"], lo) and _close(m["lift_ci_high"], hi)
        excess = (a + b) * (a / (a + b) - c / (c + d)) if a + b and c + d else None
        assert _close(m["excess_failed"], excess)
        if m["checked"] and excess and excess > 0:
            expected.append((-excess, -a, "mode", m["mode_id"]))
    assign = pl.read_parquet(built / "novel_assignments.parquet").join(novel, on="novel_id")
    into = {f["cluster_id"]: mg["into"] for mg in s["novel"]["merged"] for f in mg["families"]}
    for f in s["novel"]["families"]:
        assert f["checked"] is True
        with_ = {
            t
            for c, t in assign.select("cluster_id", "trace_id").iter_rows()
            if into.get(c, c) == f["cluster_id"]
        }
        a = sum(1 for t in with_ if t in done and not done[t])
        b = sum(1 for t in with_ if t in done and done[t])
        c = sum(1 for t in set(done) - with_ if not done[t])
        d = sum(1 for t in set(done) - with_ if done[t])
        assert (f["failed_with"], f["completed_with"]) == (a, b), f["name"]
        assert _close(f["lift"], _risk_ratio(a, b, c, d)[0])
        excess = (a + b) * (a / (a + b) - c / (c + d)) if a + b and c + d else None
        if not f["is_outliers"] and excess and excess > 0:
            expected.append((-excess, -a, "family", f["cluster_id"]))
    expected.sort(key=lambda e: (e[0], e[1], e[2], str(e[3])))
    got = [(c["kind"], c["id"]) for c in s["fix_first"]]
    assert got == [(k, i) for _, _, k, i in expected][:8]
    model_of = dict(traces.select("trace_id", "agent_model").iter_rows())
    for card in s["fix_first"]:
        assert card["advice"] and 1 <= len(card["evidence"]) <= 3
        assert sum(r["n"] for r in card["models"]) == card["n_traces"]
        for e in card["evidence"]:
            assert model_of[e["trace_id"]] == e["model"] and e["trace_id"] in ok


def _script_blocks(html: str) -> dict[str, str]:
    return dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, flags=re.S))


def test_hostile_payloads_never_appear_unescaped(built: Path) -> None:
    html = (built / "report.html").read_text()
    for payload in HOSTILE:
        assert payload not in html, payload
    # Exactly our five script elements; no payload opened another one or ended one early.
    assert len(re.findall(r"<script\b", html)) == 5
    assert html.count("</script>") == 5
    assert "<!--" not in html
    # The JSON data blocks hold no raw "<" at all, so nothing in them can end the element.
    for block in _script_blocks(html).values():
        assert "<" not in block and ">" not in block
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"<(img|svg|iframe|object|embed)\b", markup, flags=re.I)
    assert not re.search(r"<\w+\b[^>]*\son\w+\s*=", markup, flags=re.I)
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", markup, flags=re.I)
    # The payloads survive as data: JSON.parse of the block gives the original text back.
    drill = json.loads(_script_blocks(html)["trajfm-traces"])
    contents = "\n".join(s[6] for t in drill["traces"] for s in t["steps"])
    for payload in HOSTILE:
        assert payload in contents
    assert any(t["model"] == "<script>alert('model')</script>" for t in drill["traces"])
    # ...and as escaped text in the markup (a model name, a cluster name).
    assert "&lt;script&gt;alert(&#39;model&#39;)&lt;/script&gt;" in html
    md = (built / "summary.md").read_text()
    assert "<script>" not in md and "<img" not in md


def test_report_is_self_contained(built: Path) -> None:
    html = (built / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    assert "<link" not in html and "@import" not in html
    found = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert found
    policy = htmllib.unescape(found.group(1))  # the attribute value as the browser reads it
    assert "default-src 'none'" in policy
    assert "unsafe-eval" not in policy  # charts run on Vega's expression interpreter
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    # The script-src hashes are those of the two inline scripts, so exactly those may run.
    import base64
    import hashlib

    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 2
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    charts = json.loads(_script_blocks(html)["trajfm-charts"])
    for name in (
        "taxonomy",
        "categories",
        "heatmap",
        "completion",
        "setup",
        "root_cause",
        "families",
        "novel_map",
    ):
        assert f'id="chart-{name}"' in html and name in charts
    # Evidence links point into the drill-down, never at a URL.
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith("#"), href


def test_report_without_cluster_stage_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=10, with_clusters=False)
    result = build_report(run)
    html = result.html_path.read_text()
    s = json.loads(result.summary_json_path.read_text())
    assert s["novel"]["clustered"] is False and s["novel"]["families"] == []
    assert "trajfm cluster RUN" in s["novel"]["note"]
    assert 'id="no-clusters"' in html and "cluster stage was not run" in html
    assert 'id="chart-novel_map"' not in html
    assert s["novel"]["top_titles"], "novel titles are still listed"


def test_report_of_a_run_with_no_failures(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=1, hostile=False, with_clusters=False)
    s = build_report(run).summary
    assert s["overview"]["n_flags"] == 0 and s["overview"]["n_novel_modes"] == 0
    assert "no novel failure modes" in s["novel"]["note"]
    assert all(m["share_flags"] is None for m in s["taxonomy"]["modes"])


def test_long_steps_are_cut_with_their_full_length(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=6, hostile=False, step_chars=3000)
    build_report(run, budget=TextBudget(step_chars=400, evidence_step_chars=1000, total_chars=10_000_000))
    drill = json.loads(_script_blocks((run / "report.html").read_text())["trajfm-traces"])
    diag = pl.read_parquet(run / "diagnoses.parquet")
    rc = dict(diag.select("trace_id", "root_cause_step").iter_rows())
    seen_cut = seen_evidence = False
    for t in drill["traces"]:
        cited = {s for m in t["modes"] for s in m["steps"]} | {s for n in t["novel"] for s in n["steps"]}
        cited |= {rc[t["id"]]} - {None}
        for step in t["steps"]:
            shown, full = step[6], step[7]
            assert full > 3000
            limit = 1000 if step[0] in cited else 400
            assert len(shown) == limit
            seen_evidence |= step[0] in cited
            seen_cut = True
    assert seen_cut and seen_evidence
    assert drill["n_steps_truncated"] > 0


def test_total_budget_lowers_the_step_cap(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=6, hostile=False, step_chars=3000)
    result = build_report(run, budget=TextBudget(step_chars=2000, total_chars=60_000))
    drill = json.loads(_script_blocks(result.html_path.read_text())["trajfm-traces"])
    assert drill["step_cap"] < 2000
    assert sum(min(len(s[6]), drill["step_cap"]) for t in drill["traces"] for s in t["steps"]) <= 60_000


def test_drilldown_past_its_trace_cap_shows_traces_with_findings_first_and_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=12, hostile=False, with_clusters=False)
    whole = json.loads(_script_blocks(build_report(run).html_path.read_text())["trajfm-traces"])
    assert len(whole["traces"]) == 12 and "drill-down shows" not in (run / "report.html").read_text()
    html = build_report(run, budget=TextBudget(max_traces=5)).html_path.read_text()
    drill = json.loads(_script_blocks(html)["trajfm-traces"])
    ids = [t["id"] for t in drill["traces"]]
    has_finding = [t["id"] for t in whole["traces"] if t["modes"] or t["novel"] or t["status"] != "ok"]
    assert len(ids) == 5 and ids == (has_finding + [t["id"] for t in whole["traces"] if t["id"] not in has_finding])[:5]
    assert ids == [t["id"] for t in whole["traces"] if t["id"] in set(ids)]  # table order kept
    assert "This run has 12 traces; the drill-down shows 5 of them" in html
    # Each shown trace carries the same steps and findings as in the whole drill-down.
    by_id = {t["id"]: t for t in whole["traces"]}
    assert all(t == by_id[t["id"]] for t in drill["traces"])


def test_cli_report_writes_three_files_and_manifest(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=8)
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    for name in ("report.html", "summary.json", "summary.md"):
        assert (run / name).stat().st_size > 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["report"]["html_bytes"] == (run / "report.html").stat().st_size
    assert "report.html" in res.output


def test_cli_report_on_a_missing_run_folder_fails_clearly(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code != 0
    assert "does not exist" in res.output


# ---- end to end: `trajfm run` over the real stages on a small synthetic corpus ------------------------------


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trajfm.synth import DEFAULT_SEED, generate_corpus

    root = tmp_path_factory.mktemp("corpus")
    generate_corpus(root / "assetops", DEFAULT_SEED, limit=40)
    (root / "assetops" / "labels.jsonl").rename(root / "labels.jsonl")  # the sidecar is not a trace
    return root


@pytest.mark.slow
def test_run_pipeline_chains_the_real_stages(small_corpus: Path, tmp_path: Path) -> None:
    from trajfm.orchestrate import run_pipeline

    result = run_pipeline(
        [small_corpus / "assetops"], tmp_path / "run", cluster_options={"embedder": "fake", "seed": 3}
    )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert set(manifest["stages"]) >= {"extract", "cluster", "report", "run"}
    assert manifest["stages"]["cluster"]["options"]["seed"] == 3  # options reach the stage
    assert manifest["stages"]["run"]["stages"] == ["extract", "cluster", "report"]
    s = result.report.summary
    assert s["overview"]["n_traces"] == 40 and s["novel"]["clustered"] is True
    assert (
        s["overview"]["n_novel_modes"] == pl.read_parquet(tmp_path / "run" / "novel_modes.parquet").height > 0
    )
    assert sum(f["size"] for f in s["novel"]["families"]) == s["novel"]["n_clustered_items"]
    assert result.load_failures == []
    check_summary_against_tables(tmp_path / "run")


def test_cli_run_without_cluster_stage_reports_why(small_corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # Stale tables from an earlier clustering must not leak into this run's report.
    make_run(run, n_traces=3, hostile=False)
    res = CliRunner().invoke(
        app, ["run", str(small_corpus / "assetops"), "--out", str(run), "--no-cluster", "--limit", "12"]
    )
    assert res.exit_code == 0, res.output
    assert "cluster stage skipped" in res.output and "report.html" in res.output
    assert not (run / "clusters.parquet").exists()
    s = json.loads((run / "summary.json").read_text())
    assert s["overview"]["n_traces"] == 12 and s["novel"]["clustered"] is False
    assert 'id="no-clusters"' in (run / "report.html").read_text()


def test_cli_run_with_a_bad_input_fails_clearly(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(tmp_path / "missing"), "--out", str(tmp_path / "run")])
    assert res.exit_code != 0
    assert "missing" in res.output


def test_wilson_interval_known_values() -> None:
    from trajfm.report.stats import wilson

    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    assert wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)
    assert wilson(0, 0) == (None, None)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_safe_json_round_trips_and_never_closes_a_script(text: str) -> None:
    from trajfm.report.render import safe_json

    out = safe_json({"t": text, "l": [text]})
    assert "<" not in out and ">" not in out and "&" not in out
    assert json.loads(out) == {"t": text, "l": [text]}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_markdown_cells_cannot_inject_markup_or_cells(text: str) -> None:
    from trajfm.report.summary import md

    cell = md(text, limit=10_000)
    assert "\n" not in cell
    # Once every backslash escape is taken out, no character that makes markup or a table cell is left.
    assert not re.search(r"[|<>\[\]`]", re.sub(r"\\[\\`*_\[\]|<>~]", "", cell))


# ---- fix first, feedback, baseline, readability helpers -----------------------------------------------------


def test_quotes_are_cut_at_sentence_ends_and_widened_to_whole_sentences() -> None:
    from trajfm.report.impact import sentence_cut, widen_to_sentences

    text = "The pump was fine. Then the call failed with error 500 because the service was down. Retrying."
    assert widen_to_sentences("call failed with error", [text]) == (
        "Then the call failed with error 500 because the service was down."
    )
    assert widen_to_sentences("not in the trace", [text]) == "not in the trace"
    long = "First sentence here. " + "word " * 80
    cut = sentence_cut(long, 60)
    assert cut.endswith("…") and not cut.endswith("wor …") and len(cut) <= 62
    assert sentence_cut("One. Two three four five six seven.", 20) == "One. Two three four …"
    assert sentence_cut("A whole sentence. " * 20, 100).endswith(".")


def test_cli_feedback_writes_issue_ready_cards(built: Path, tmp_path: Path) -> None:
    s = json.loads((built / "summary.json").read_text())
    res = CliRunner().invoke(app, ["feedback", str(built)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.startswith("# trajfm feedback")
    for c in s["fix_first"]:
        assert f"## {c['rank']}. " in out
        for e in c["evidence"]:
            assert e["quote"] in out  # inside a fence, verbatim
    # Untrusted text outside code fences is escaped; inside a fence it is shown as text by any markdown viewer.
    fenced = False
    for line in out.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            assert "<script>" not in line and "<img" not in line, line
    res = CliRunner().invoke(
        app, ["feedback", str(built), "--format", "json", "--out", str(tmp_path / "f.json")]
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "f.json").read_text())
    assert [(c["kind"], c["id"]) for c in data["cards"]] == [(c["kind"], c["id"]) for c in s["fix_first"]]
    bad = CliRunner().invoke(app, ["feedback", str(built), "--format", "html"])
    assert bad.exit_code != 0 and "--format" in bad.output


def test_report_against_a_baseline_ranks_changes(tmp_path: Path) -> None:
    old = make_run(tmp_path / "old", n_traces=12, hostile=False, seed=1)
    new = make_run(tmp_path / "new", n_traces=30, hostile=False, seed=2)
    res = CliRunner().invoke(app, ["report", str(new), "--baseline", str(old), "--readiness-bar", "70"])
    assert res.exit_code == 0, res.output
    s = json.loads((new / "summary.json").read_text())
    old_s = build_report(old).summary
    bl = s["baseline"]
    assert bl["baseline"] == str(old) and s["scorecard"]["bar"] == 70
    order = ("new", "grown", "shrunk", "gone", "steady", "not comparable")
    assert [order.index(r["status"]) for r in bl["changes"]] == sorted(
        order.index(r["status"]) for r in bl["changes"]
    )
    before = {m["mode_id"]: m for m in old_s["taxonomy"]["modes"]}
    for r in bl["changes"]:
        if r["kind"] != "mode":
            continue
        now = next(m for m in s["taxonomy"]["modes"] if m["mode_id"] == r["id"])
        assert (r["now"]["n"], r["now"]["of"]) == (now["n_traces"], now["n_checked"])
        assert (r["before"]["n"], r["before"]["of"]) == (
            before[r["id"]]["n_traces"],
            before[r["id"]]["n_checked"],
        )
        if r["status"] == "grown":
            assert r["ci_low"] > 0
        if r["status"] == "new":
            assert r["before"]["n"] == 0 < r["now"]["n"]
        if r["status"] == "not comparable":
            assert not r["now"]["of"] or not r["before"]["of"]
    assert 'id="baseline-table"' in (new / "report.html").read_text()
    assert "Since baseline" in (new / "summary.md").read_text()
    same = CliRunner().invoke(app, ["report", str(new), "--baseline", str(new)])
    assert same.exit_code != 0 and "is the run being reported" in same.output


def test_a_run_written_before_the_dimensions_reads_them_as_not_assessed(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=9, hostile=False)
    path = run / "diagnoses.parquet"
    pl.read_parquet(path).drop(
        [c for c in pl.read_parquet(path).columns if c.startswith("dim_")]
    ).write_parquet(path)
    # Such a folder was written at schema 1; opening it migrates it (the columns come back null), and only the
    # migration fills them: a current-version table without them is refused.
    manifest = json.loads((run / "manifest.json").read_text())
    with pytest.raises(SchemaError, match="dim_task_completion"):
        build_report(run)
    manifest["schema_version"] = 1
    (run / "manifest.json").write_text(json.dumps(manifest))
    s = build_report(run).summary
    assert "dim_task_completion" in pl.read_parquet(path).columns
    assert all(r["of"] == 0 for m in s["models"] for r in m["dimensions"].values())
    assert all(m["readiness"]["score"] is None for m in s["models"])
    assert s["overview"]["readiness"]["dims_assessed"] == []


def test_synthetic_corpus_declaration_reaches_the_report(tmp_path: Path) -> None:
    from trajfm.traces.declared import corpus_declarations

    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "trajfm-corpus.toml").write_text('synthetic = true\ndescription = "made by a generator"\n')
    (decl,) = corpus_declarations([corpus / "sub"])
    assert decl["synthetic"] is True and decl["description"] == "made by a generator"
    (corpus / "trajfm-corpus.toml").write_text("synthetic = [broken")
    (bad,) = corpus_declarations([corpus])
    assert "could not read" in bad["error"]
    assert corpus_declarations([tmp_path / "elsewhere"]) == []
    run = make_run(tmp_path / "run", n_traces=6, hostile=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["extract"]["corpus_declarations"] = [dict(decl, path="corpus/trajfm-corpus.toml")]
    (run / "manifest.json").write_text(json.dumps(manifest))
    s = build_report(run).summary
    assert s["honesty"]["synthetic"] is True
    html = (run / "report.html").read_text()
    assert 'id="synthetic-banner"' in html and "made by a generator" in html


def test_bundled_corpus_declares_itself_synthetic() -> None:
    from trajfm.traces.declared import corpus_declarations

    repo = Path(__file__).resolve().parents[1]
    if not (repo / "traces" / "assetops").is_dir():
        pytest.skip("the bundled corpus is not present")
    decls = corpus_declarations([repo / "traces" / "assetops"])
    assert [d["synthetic"] for d in decls] == [True]


def test_a_model_judging_itself_is_warned_about(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=9, hostile=False)
    path = run / "diagnoses.parquet"
    pl.read_parquet(path).with_columns(judge_model=pl.lit("vendor/model-alpha")).write_parquet(path)
    s = build_report(run).summary
    assert s["scorecard"]["judge_is_agent"] == [
        {"model": "model-alpha", "judge_model": "vendor/model-alpha", "n_traces": 3}  # traces 0, 3, 6
    ]
    assert "A model judged itself" in (run / "report.html").read_text()


def test_readiness_bar_out_of_range_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", n_traces=3, hostile=False)
    res = CliRunner().invoke(app, ["report", str(run), "--readiness-bar", "850"])
    assert res.exit_code != 0 and "--readiness-bar" in res.output


def test_the_vega_bundle_is_kept_on_disk_and_built_again_only_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trajfm.report.render import vega_bundle

    monkeypatch.setenv("TRAJFM_CACHE_DIR", str(tmp_path / "cache"))
    try:
        vega_bundle.cache_clear()
        built = vega_bundle()
        (kept,) = (tmp_path / "cache").glob("vega-bundle-*.js")
        assert kept.read_text(encoding="utf-8") == built and "</script" not in built
        kept.write_text(built + "\n// marker", encoding="utf-8")
        vega_bundle.cache_clear()
        assert vega_bundle().endswith("// marker")  # a fresh process reads it from disk
        kept.unlink()
        vega_bundle.cache_clear()
        assert vega_bundle() == built and kept.is_file()  # missing: built and kept again
    finally:
        vega_bundle.cache_clear()  # later tests get the real bundle
