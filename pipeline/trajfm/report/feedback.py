"""`trajfm feedback RUN`: the report's "fix first" cards as issue-ready text for an agent team.

`feedback_markdown(figures, title)` writes one markdown block per card (a title line an issue tracker can take,
the impact, the models compared, the advice, the evidence quotes with their trace ids and steps, the traces to
open), after a short preamble saying what produced the figures and how far to trust them (synthetic corpus,
judge reliability, sampling). `feedback_json(figures)` is the same content for machines. Untrusted text (model
names, quotes, family names) is escaped for markdown as in summary.md; quotes go in fenced code blocks whose
fence is longer than any backtick run in the quote, so a trace cannot close them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from trajfm.report.summary import md

FEEDBACK_VERSION = 1


def feedback_json(fig: dict[str, Any], title: str) -> dict[str, Any]:
    hon = fig["honesty"]
    return {
        "feedback_version": FEEDBACK_VERSION,
        "run": title,
        "synthetic": hon["synthetic"],
        "judges": [{"judge": j["judge"], "caveat": j["caveat"]} for j in hon["judges"]],
        "sampling_note": hon["sampling"]["note"],
        "readiness_bar": fig["scorecard"]["bar"],
        "readiness": [
            {"model": m["model"], **{k: m["readiness"][k] for k in ("score", "ci_low", "ci_high", "meets")}}
            for m in fig["models"]
            if m["n_diagnosed"]
        ],
        "cards": fig["fix_first"],
    }


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _code(text: str) -> str:
    """An inline code span: markup inside it is shown as text; backticks (which could end it) are removed."""
    return "`" + " ".join(str(text).replace("`", "").split())[:300] + "`"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def feedback_markdown(fig: dict[str, Any], title: str) -> str:
    hon = fig["honesty"]
    ov = fig["overview"]
    lines = [
        f"# trajfm feedback: {md(title)}",
        "",
        f"{ov['n_diagnosed']:,} of {ov['n_traces']:,} traces diagnosed; outcome = the judge's task-completion "
        "verdict"
        + (
            f" ({hon['outcome_from_source']['n']:,} of them the outcome the trace itself records)"
            if hon.get("outcome_from_source", {}).get("n")
            else ""
        )
        + ". Cards are ranked by excess failures: traces with the problem x (failure rate with it - "
        "failure rate without it).",
    ]
    if hon["synthetic"]:
        lines += [
            "",
            "> **These traces are synthetic** (their corpus says so): the cards describe planted failures.",
        ]
    for j in hon["judges"]:
        lines += ["", f"> Judge {_code(j['judge'])}: {md(j['caveat'], 600)}"]
    if hon["sampling"]["note"]:
        lines += ["", f"> {md(hon['sampling']['note'], 300)}"]
    ready = [m for m in fig["models"] if m["n_diagnosed"]]
    if ready:
        bar = fig["scorecard"]["bar"]
        n_meet = sum(1 for m in ready if m["readiness"]["meets"])
        lines += [
            "",
            f"Readiness (bar {bar:g}): {n_meet} of {len(ready)} models reach it; "
            + ", ".join(f"{md(m['model'])} {_num(m['readiness']['score'])}" for m in ready)
            + ".",
        ]
    if not fig["fix_first"]:
        lines += ["", "No failure mode or family comes with more failures than the traces without it."]
    for c in fig["fix_first"]:
        kind = f"mode {md(c['id'])}" if c["kind"] == "mode" else "novel family"
        lines += [
            "",
            "---",
            "",
            f"## {c['rank']}. {md(c['name'])} ({kind})",
            "",
            f"- In **{c['n_traces']}** traces: **{c['failed_with']} failed**, {c['completed_with']} completed.",
            f"- Traces with it fail **{_num(c['lift'])}x** as often as the others (95% CI {_num(c['lift_ci_low'])}-"
            f"{_num(c['lift_ci_high'])}); about **{_num(c['excess_failed'], 0)}** more failed traces than expected.",
            "",
            "| model | traces with it | rate |",
            "|---|---:|---:|",
        ]
        lines += [f"| {md(r['model'])} | {r['n']}/{r['of']} | {_pct(r['rate'])} |" for r in c["models"]]
        lines += ["", f"**What to change:** {md(c['advice'], 600)} _({md(c['advice_from'])})_", ""]
        if c["evidence"]:
            lines.append("**Evidence:**")
            for e in c["evidence"]:
                steps = f", step {', '.join(str(s) for s in e['steps'])}" if e["steps"] else ""
                state = " (failed)" if e["failed"] else ""
                lines += [
                    "",
                    f"- {md(e['model'])}, trace {_code(e['trace_id'])}{steps}{state}:",
                    "",
                    _fence(e["quote"]),
                ]
        lines += ["", "Traces to open: " + ", ".join(_code(t) for t in c["trace_ids"])]
    lines.append("")
    return "\n".join(lines)


def write_feedback(run: Path | str, *, fmt: str = "md", readiness_bar: float = 85.0) -> str:
    """The feedback text of a run folder, in `fmt` (md or json)."""
    from trajfm.report.build import run_figures
    from trajfm.report.render import clean_json

    fig, tables = run_figures(run, readiness_bar=readiness_bar)
    title = tables.run.root.resolve().name
    if fmt == "json":
        return json.dumps(clean_json(feedback_json(fig, title)), indent=2, ensure_ascii=False) + "\n"
    return feedback_markdown(fig, title)
