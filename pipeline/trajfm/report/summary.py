"""summary.json (every figure of the report, for machines) and summary.md (for a pull request or a ticket).

summary.json = `{"summary_version", "generated_at", "run": run metadata, <every key of compute_figures>}`.
The markdown is short: headline numbers, categories, the top modes, per-model completion, readiness per model,
families, the first cards of the ranked "fix first" list and, with a baseline, what changed since. Untrusted text (model names, titles) is escaped for markdown
tables so a trace cannot inject table cells, links or HTML into a PR comment.
"""

from __future__ import annotations

import re
from typing import Any

SUMMARY_VERSION = 1


def summary_json(figures: dict[str, Any], meta: dict[str, Any], generated_at: str) -> dict[str, Any]:
    return {"summary_version": SUMMARY_VERSION, "generated_at": generated_at, "run": meta, **figures}


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>~])")


def md(text: Any, limit: int = 120) -> str:
    """Escape untrusted text for one markdown table cell or line."""
    s = " ".join(str(text if text is not None else "–").split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", s)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _ambiguity_lines(amb: dict[str, Any]) -> list[str]:
    """Completion on requests flagged ambiguous versus the rest (report/ambiguity.py)."""
    if not amb.get("n_flagged"):
        return []
    line = (
        f"- Requests flagged ambiguous (from the traces): {amb['n_flagged']:,}; completed "
        f"{_rate(amb['ambiguous'])} vs {_rate(amb['rest'])} on the rest"
    )
    if amb.get("drop_points") is not None:
        line += (
            f" (completion on the rest minus on ambiguous: {amb['drop_points']:+.1f} points, 95% CI "
            f"{amb['ci_low']:+.1f} to {amb['ci_high']:+.1f})"
        )
    return [line]


def _rate(r: dict[str, Any]) -> str:
    return "–" if not r.get("of") else f"{_pct(r['rate'])} ({r['n']}/{r['of']})"


def _set_aside_lines(jq: dict[str, Any]) -> list[str]:
    """Judge replies set aside as degenerate (report/judge_quality.py): how many and why."""
    if not jq.get("n"):
        return []
    why = "; ".join(f"{r['n']} {r['why']}" for r in jq.get("reasons", []))
    return [f"- **{jq['n']:,} of {jq['of']:,} judge replies set aside** as degenerate (left out of every figure): {why}"]


def _run_lines(run: dict[str, Any]) -> list[str]:
    """Bullets on what the judge spent and whether the run is a sample (from the extract manifest)."""
    lines = []
    sample = run.get("sample")
    if sample:
        lines.append(
            f"- **A sample**: {sample['size']:,} of {sample['of']:,} traces, stratified by agent model and scenario "
            f"(seed {sample['seed']}); figures describe the sample"
        )
    spend = run.get("judge_spend")
    if spend and spend.get("calls"):
        cost = f"; cost {spend['cost']:.4f} at the given prices" if spend.get("cost") is not None else ""
        lines.append(
            f"- Judge spend this run: {spend['calls']:,} calls, {spend['tokens_in']:,} input and "
            f"{spend['tokens_out']:,} output tokens{cost}"
        )
    return lines


def summary_markdown(s: dict[str, Any], title: str) -> str:
    ov = s["overview"]
    judges = ", ".join(
        f"{j['judge']}{' / ' + j['judge_model'] if j['judge_model'] else ''}" for j in ov["judges"]
    )
    hon = s.get("honesty", {})
    lines = [
        f"## trajfm: {md(title)}",
        "",
        *(
            [
                "> **Synthetic traces**: their corpus declares them synthetic; the figures describe planted failures.",
                "",
            ]
            if hon.get("synthetic")
            else []
        ),
        f"- **{ov['n_traces']:,} traces** from {ov['n_models']} agent models; {ov['n_diagnosed']:,} diagnosed by "
        f"{md(judges)}" + (f" ({ov['calls']:,} judge calls)" if ov["calls"] else ""),
        f"- Task completed (judge): **{_rate(ov['completion'])}**"
        + (f"; source says correct: {_rate(ov['source_correct'])}" if ov["source_correct"]["of"] else ""),
        f"- Failure modes per trace: **{ov['modes_per_trace']:.2f}**; traces with at least one: "
        f"{_rate(ov['traces_with_any_mode'])}"
        if ov["modes_per_trace"] is not None
        else "- No diagnosed traces",
        f"- Traces with novel failure modes: **{_rate(ov['traces_with_novel'])}** "
        f"({ov['n_novel_modes']:,} instances)",
        *_ambiguity_lines(s.get("ambiguity") or {}),
        *_run_lines(s.get("run") or {}),
        *_set_aside_lines(s.get("judge_quality") or {}),
        "",
        f"### {md(s['taxonomy']['name']).upper()} categories (share of all {ov['n_flags']:,} flags / share of traces)",
        "",
        "| category | flags | share of flags | share of traces |",
        "|---|---:|---:|---:|",
    ]
    for c in s["taxonomy"]["categories"]:
        lines.append(
            f"| {md(c['category'])} {md(c['name'])} | {c['n_flags']} | {_pct(c['share_flags'])} | {_pct(c['share_traces'])} |"
        )
    top = sorted(
        (m for m in s["taxonomy"]["modes"] if m["n_traces"]), key=lambda m: (-m["n_traces"], m["mode_id"])
    )[:5]
    if top:
        lines += [
            "",
            "### Most frequent modes",
            "",
            "| mode | traces | share of traces | share of flags |",
            "|---|---:|---:|---:|",
        ]
        for m in top:
            lines.append(  # share of traces is over the traces where the mode was checked
                f"| {md(m['mode_id'])} {md(m['name'])} | {m['n_traces']} | {_pct(m['share_traces'])} | {_pct(m['share_flags'])} |"
            )
    unchecked = [m for m in s["taxonomy"]["modes"] if not m.get("n_checked", 1)]
    if unchecked:
        names = ", ".join(f"{md(m['mode_id'])} {md(m['name'])}" for m in unchecked)
        lines += ["", f"Not checked by this judge (no rule for them; left out of every count): {names}."]
    lines += [
        "",
        "### Per agent model",
        "",
        "| model | diagnosed | completed | modes / trace | top mode |",
        "|---|---:|---:|---:|---|",
    ]
    top_mode = {f["model"]: f["top_modes"][0] for f in s["feedback"] if f["top_modes"]}
    for m in s["models"]:
        tm = top_mode.get(m["model"])
        mpt = "–" if m["modes_per_trace"] is None else f"{m['modes_per_trace']:.2f}"
        lines.append(
            f"| {md(m['model'])} | {m['n_diagnosed']} | {_rate(m['completion'])} | {mpt} | "
            + (f"{md(tm['mode_id'])} {md(tm['name'])} ({_pct(tm['rate'])})" if tm else "–")
            + " |"
        )
    ready = [m for m in s["models"] if m["n_diagnosed"]]
    if ready:
        bar = s["scorecard"]["bar"]
        lines += [
            "",
            f"### Readiness (bar {bar:g} points; mean trace score with 95% CI)",
            "",
            "| model | score | 95% CI | ready | pass | tool calls ok |",
            "|---|---:|---|---|---:|---:|",
        ]
        for m in ready:
            r = m["readiness"]
            ci = "–" if r["ci_low"] is None else f"{r['ci_low']:.1f}–{r['ci_high']:.1f}"
            score = "–" if r["score"] is None else f"{r['score']:.1f}"
            meets = "–" if r["meets"] is None else ("yes" if r["meets"] else "no")
            lines.append(
                f"| {md(m['model'])} | {score} | {ci} | {meets} | {_pct(r['pass_share']['rate'])} | "
                f"{_pct(m['tool_call_success']['rate'])} |"
            )
        assessed = set(s["overview"]["readiness"]["dims_assessed"])
        missing = [d["label"] for d in s["scorecard"]["dimensions"] if d["key"] not in assessed]
        if missing:
            lines += ["", f"Not assessed by this judge: {md(', '.join(missing))}."]
    nv = s["novel"]
    lines += ["", "### Novel failure families", ""]
    if not nv["clustered"]:
        lines.append(md(nv["note"], 400))
    else:
        lines += [
            f"{nv['n_families']} families; {nv['n_outliers']} of {nv['n_clustered_items']} items "
            f"({_pct(nv['outlier_share'])}) are outliers.",
            "",
            "| family | size | share | nearest mode | novel | new since baseline |",
            "|---|---:|---:|---|---|---|",
        ]
        for f in nv["families"]:
            lines.append(
                f"| {md(f['name'])} | {f['size']} | {_pct(f['share'])} | {md(f['nearest_mode'])} | "
                f"{'–' if f['is_outliers'] else ('yes' if f['is_novel'] else 'no')} | "
                f"{'–' if f['new_since_baseline'] is None else ('yes' if f['new_since_baseline'] else 'no')} |"
            )
    if s.get("fix_first"):
        lines += [
            "",
            "### Fix first (ranked by excess failures; `trajfm feedback RUN` for issue-ready cards)",
            "",
        ]
        for c in s["fix_first"][:5]:
            what = f"{md(c['id'])} {md(c['name'])}" if c["kind"] == "mode" else f"family {md(c['name'])}"
            lift = "–" if c["lift"] is None else f"{c['lift']:.1f}x"
            lines.append(
                f"{c['rank']}. **{what}**: {c['failed_with']} failed / {c['completed_with']} completed traces, "
                f"fail {lift} as often; {md(c['advice'], 300)}"
            )
    bl = s.get("baseline")
    if bl:
        lines += [
            "",
            f"### Since baseline {md(bl['baseline'])}",
            "",
            ", ".join(f"{n} {k}" for k, n in bl["counts"].items() if n) + ".",
            "",
            "| status | mode or family | before | now | change (points, 95% CI) |",
            "|---|---|---:|---:|---|",
        ]
        for r in bl["changes"]:
            if r["status"] in ("steady", "not comparable"):
                continue
            ch = (
                "–"
                if r["change_points"] is None
                else f"{r['change_points']:+.1f} ({r['ci_low']:+.1f} to {r['ci_high']:+.1f})"
            )
            name = f"{md(r['id'])} {md(r['name'])}" if r["kind"] == "mode" else f"family {md(r['name'])}"
            lines.append(
                f"| {r['status']} | {name} | {_pct(r['before']['rate'])} | {_pct(r['now']['rate'])} | {ch} |"
            )
    lines += [
        "",
        "Full report: `report.html` (self-contained; open it in a browser). Every figure: `summary.json`.",
        "",
    ]
    return "\n".join(lines)
