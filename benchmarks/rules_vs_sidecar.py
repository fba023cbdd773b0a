"""Precision and recall of the rules judge per planted behaviour of the bundled corpus, against its sidecar.

    python benchmarks/rules_vs_sidecar.py [CORPUS_DIR]      (default: traces/assetops)

The corpus sidecar (`labels.jsonl`, one object per trace) says which behaviours were planted in each trace and at
which steps. The rules judge speaks in finding kinds; `KIND_TO_BEHAVIOUR` below translates them into the corpus's
behaviour ids (the translation is the only corpus-specific knowledge here: the detectors never see it). Per
behaviour, at trace level: TP = planted and detected, FP = detected but not planted, FN = planted and missed.
"step hit" is the share of true positives where a finding's steps include a planted step. `clean_success` is
"detected" when the judge found nothing at all. A second table scores MAST modes against the sidecar's `mast`
lists, and the decisive step against `decisive_step`.

`score(corpus_dir)` returns the figures (tests/test_rules_judge_corpus.py asserts floors on them).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from trajfm.judges.rules import RulesJudge
from trajfm.taxonomy import load_taxonomy
from trajfm.traces import load_traces

KIND_TO_BEHAVIOUR: dict[str, str] = {
    "repeated_action": "step_repetition",
    "repeated_thought": "step_repetition",
    "error_retried_identically": "ineffective_error_recovery",
    "error_ignored": "ineffective_error_recovery",
    "error_unresolved": "ineffective_error_recovery",
    "overstated_completion": "overstated_completion",
    "invalid_action": "invalid_action_format",
    "hallucinated_entity": "hallucinated_entity",
    "premature_termination": "premature_termination",
    "stopped_on_a_guess": "premature_termination",
    "continued_after_answer": "ignored_termination",
    "max_steps_reached": "ignored_termination",
    "no_clarification": "no_clarification",
    "action_reasoning_mismatch": "action_reasoning_mismatch",
    "output_format_ignored": "output_format_ignored",
    "unverified_subagent_failure": "unverified_subagent_failure",
    "leftover_artefacts": "leftover_artefacts",
}


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def score(corpus_dir: Path | str) -> dict[str, Any]:
    corpus = Path(corpus_dir)
    labels = {}
    for line in (corpus / "labels.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            labels[rec["trace_path"]] = rec
    loaded = load_traces([corpus])
    # Every detector, including those the shipped calibration switches off (measured precision under 0.5 on
    # human-labelled sets): this checks that each detector finds what it claims to, not the judge's defaults.
    judge = RulesJudge(all_detectors=True)
    mast = load_taxonomy("mast")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "step_hit": 0})
    mode_counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    decisive = {"labelled": 0, "exact": 0, "predicted": 0}
    completed = {"agree": 0, "n": 0}
    judged = 0
    t0 = time.perf_counter()
    root_name = corpus.name
    for trace in loaded.traces:
        rel = (
            trace.trace_id.split("/", 1)[1] if trace.trace_id.startswith(root_name + "/") else trace.trace_id
        )
        label = labels.get(rel)
        if label is None:
            continue
        judged += 1
        d = judge.diagnose(trace, mast)
        findings = d.extra["findings"]
        predicted: dict[str, set[int]] = defaultdict(set)
        for f in findings:
            predicted[KIND_TO_BEHAVIOUR[f["kind"]]].update(f["steps"])
        if not findings:
            predicted["clean_success"] = set()
        planted = {b["id"]: set(b.get("steps") or []) for b in label["behaviours"]}
        for beh in set(predicted) | set(planted):
            c = counts[beh]
            if beh in planted and beh in predicted:
                c["tp"] += 1
                if not planted[beh] or planted[beh] & predicted[beh]:
                    c["step_hit"] += 1
            elif beh in predicted:
                c["fp"] += 1
            else:
                c["fn"] += 1
        gold_modes = {m for b in label["behaviours"] for m in b.get("mast") or []}
        got_modes = {m.mode_id for m in d.detected}
        for m in gold_modes | got_modes:
            mc = mode_counts[m]
            if m in gold_modes and m in got_modes:
                mc["tp"] += 1
            elif m in got_modes:
                mc["fp"] += 1
            else:
                mc["fn"] += 1
        if label.get("decisive_step") is not None:
            decisive["labelled"] += 1
            decisive["exact"] += int(d.root_cause_step == label["decisive_step"])
        decisive["predicted"] += int(d.root_cause_step is not None)
        if label.get("task_success") is not None and d.task_completed is not None:
            completed["n"] += 1
            completed["agree"] += int(bool(label["task_success"]) == d.task_completed)
    seconds = time.perf_counter() - t0
    behaviours = {}
    for beh, c in sorted(counts.items()):
        p, r, f = _prf(c["tp"], c["fp"], c["fn"])
        behaviours[beh] = {**c, "precision": p, "recall": r, "f1": f,
                           "step_hit": c["step_hit"] / c["tp"] if c["tp"] else 0.0}  # fmt: skip
    modes = {}
    for m, c in sorted(mode_counts.items()):
        p, r, f = _prf(c["tp"], c["fp"], c["fn"])
        modes[m] = {**c, "precision": p, "recall": r, "f1": f}
    return {
        "traces": judged,
        "load_failures": len(loaded.failures),
        "behaviours": behaviours,
        "modes": modes,
        "decisive_step_accuracy": decisive["exact"] / decisive["labelled"] if decisive["labelled"] else 0.0,
        "decisive": decisive,
        "task_completed_agreement": completed["agree"] / completed["n"] if completed["n"] else 0.0,
        "judge_seconds": seconds,
    }


def main(argv: list[str]) -> int:
    corpus = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "traces" / "assetops"
    if not (corpus / "labels.jsonl").exists():
        print(f"no labels.jsonl in {corpus}: generate the corpus with `trajfm synth` or pass its folder")
        return 2
    s = score(corpus)
    print(f"rules judge vs sidecar of {corpus}: {s['traces']} traces ({s['load_failures']} load failures), "
          f"judged in {s['judge_seconds']:.2f} s")  # fmt: skip
    print(
        f"\n{'planted behaviour':30} {'support':>7} {'TP':>5} {'FP':>5} {'FN':>5} {'prec':>6} {'recall':>6} {'F1':>6} {'step hit':>8}"
    )
    for beh, b in s["behaviours"].items():
        support = b["tp"] + b["fn"]
        print(f"{beh:30} {support:7d} {b['tp']:5d} {b['fp']:5d} {b['fn']:5d} {b['precision']:6.3f} {b['recall']:6.3f} "
              f"{b['f1']:6.3f} {b['step_hit']:8.3f}")  # fmt: skip
    print(
        f"\n{'MAST mode':10} {'support':>7} {'TP':>5} {'FP':>5} {'FN':>5} {'prec':>6} {'recall':>6} {'F1':>6}"
    )
    for m, c in s["modes"].items():
        print(f"{m:10} {c['tp'] + c['fn']:7d} {c['tp']:5d} {c['fp']:5d} {c['fn']:5d} {c['precision']:6.3f} "
              f"{c['recall']:6.3f} {c['f1']:6.3f}")  # fmt: skip
    print(f"\ndecisive step exact: {s['decisive_step_accuracy']:.3f} of {s['decisive']['labelled']} labelled; "
          f"task_completed agreement with task_success: {s['task_completed_agreement']:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
