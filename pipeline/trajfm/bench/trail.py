"""TRAIL (Patronus AI 2025): span-level errors in OpenTelemetry traces of agents, 20 categories.

Data (PATH = the trail folder): raw traces `data/<part>/<trace_id>.json` (span trees, children in `child_spans`)
and labels `processed_annotations_<part in lower case, spaces as _>/<trace_id>.json` with
`errors: [{category, location: span_id, evidence, description, impact}]`. Parts: `GAIA`, `SWE Bench`. One label
file has a trailing comma (read leniently); category spellings vary and are normalised to `taxonomy/trail.json`.

Metrics, computed like TRAIL's scorer:
- category F1: sklearn's support-weighted F1 over per-trace multi-hot category vectors;
- location accuracy: mean over traces of |gold span ids ∩ predicted span ids| / |gold span ids|;
- joint accuracy: the same over (span id, category) pairs.
Location and joint accuracy are recalls, and weighted F1 rewards predicting every category, so precision-aware
figures are reported beside them (location precision and F1, joint precision and F1, micro and macro category F1).
Judge findings point at steps; a TRAIL step is one span (`Step.index` = position in time order, `step_id` = span
id), so a finding's steps become span ids through the loaded trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trajfm.bench import baselines as bl
from trajfm.bench import metrics as m
from trajfm.bench.core import (
    BenchResult,
    BenchSettings,
    LabelNormaliser,
    Timer,
    layout_root,
    load_dataset_traces,
    not_loaded_notes,
    read_json_lenient,
)
from trajfm.errors import TraceLoadError, UsageError
from trajfm.judges.base import Diagnosis
from trajfm.taxonomy import load_taxonomy
from trajfm.traces.model import Trace

METRIC_NAMES = {
    "category_f1_weighted": "category F1 (weighted, official)",
    "location_acc": "location accuracy (official; a recall)",
    "joint_acc": "joint accuracy (official; a recall)",
    "location_precision": "location precision",
    "location_f1": "location F1",
    "joint_precision": "joint precision",
    "joint_f1": "joint F1",
    "category_f1_micro": "category F1 (micro)",
    "category_f1_macro": "category F1 (macro)",
}
PUBLISHED = {
    "GAIA": {
        "Gemini-2.5-Pro (paper)": {"category_f1_weighted": 0.389, "location_acc": 0.546, "joint_acc": 0.183},
        "GPT-4.1 (paper)": {"category_f1_weighted": 0.218, "location_acc": 0.107, "joint_acc": 0.028},
    }
}
PUBLISHED_SOURCE = "TRAIL paper Table 1, via ../shared/datasets/README.md"


@dataclass
class LabelledTrace:
    trace_file: Path
    label_file: Path
    errors: list[tuple[str, str]]  # (span id, category id)
    llm_spans: set[str] = field(default_factory=set)
    error_spans: set[str] = field(default_factory=set)

    @property
    def gold_locations(self) -> set[str]:
        return {loc for loc, _ in self.errors}

    @property
    def gold_categories(self) -> set[str]:
        return {cat for _, cat in self.errors}

    @property
    def gold_pairs(self) -> set[tuple[str, str]]:
        return set(self.errors)


def category_normaliser() -> LabelNormaliser:
    tax = load_taxonomy("trail")
    return LabelNormaliser({mode.name: mode.id for mode in tax.modes})


def find_parts(path: Path) -> list[tuple[str, Path, Path]]:
    """(part name, raw trace folder, label folder) for every part under PATH with both folders. PATH is the trail
    folder, or a checkout of TRAIL's repository (whose files sit under benchmarking/)."""
    path = layout_root(path, lambda p: (p / "data").is_dir(), ("benchmarking",))
    data = path / "data"
    if not data.is_dir():
        raise UsageError(
            f"no TRAIL data under {path}: expected data/<part>/ and processed_annotations_<part>/"
        )
    parts = []
    for sub in sorted(p for p in data.iterdir() if p.is_dir()):
        labels = path / f"processed_annotations_{sub.name.lower().replace(' ', '_')}"
        if labels.is_dir():
            parts.append((sub.name, sub, labels))
    if not parts:
        raise UsageError(f"no TRAIL part under {path}/data has a processed_annotations_<part> label folder")
    return parts


def _walk_spans(raw: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(reversed(raw.get("spans", [])))
    while stack:
        span = stack.pop()
        out.append(span)
        stack.extend(reversed(span.get("child_spans") or []))
    return out


def _span_shows_error(span: dict[str, Any]) -> bool:
    if str(span.get("status_code", "")).lower() == "error":
        return True
    attrs = span.get("span_attributes") or {}
    return bool(bl.ERROR_SIGNAL.search(str(attrs.get("output.value", ""))))


def read_part(
    traces_dir: Path, labels_dir: Path, norm: LabelNormaliser, *, limit: int | None = None
) -> tuple[list[LabelledTrace], list[str]]:
    """Labelled traces of one part (label files without a raw trace are listed in the returned notes)."""
    notes = []
    label_files = sorted(labels_dir.glob("*.json"))
    orphans = [f.name for f in label_files if not (traces_dir / f.name).is_file()]
    if orphans:
        notes.append(
            f"{len(orphans)} label files have no raw trace and are skipped: {', '.join(orphans[:4])}"
        )
    label_files = [f for f in label_files if (traces_dir / f.name).is_file()]
    if limit is not None:
        label_files = label_files[:limit]
    out = []
    unreadable = []
    for lf in label_files:
        try:
            labels = read_json_lenient(lf)
            errors = []
            for e in labels.get("errors") or []:
                cat = norm(str(e.get("category", "")))
                if cat is not None and e.get("location"):
                    errors.append((str(e["location"]), cat))
            spans = _walk_spans(read_json_lenient(traces_dir / lf.name))
            llm_spans = {
                str(s["span_id"])
                for s in spans
                if (s.get("span_attributes") or {}).get("openinference.span.kind") == "LLM"
            }
            error_spans = {str(s["span_id"]) for s in spans if _span_shows_error(s)}
        except (TraceLoadError, AttributeError, TypeError, KeyError) as exc:
            unreadable.append(f"{lf.name} ({exc!r})")
            continue
        out.append(
            LabelledTrace(
                trace_file=traces_dir / lf.name,
                label_file=lf,
                errors=errors,
                llm_spans=llm_spans,
                error_spans=error_spans,
            )
        )
    if unreadable:
        notes.append(
            f"{len(unreadable)} labelled traces could not be read (label or raw trace file) and are left out: "
            + "; ".join(unreadable[:3])
        )
    if norm.unknown:
        notes.append(f"category spellings not in taxonomy/trail.json, dropped: {dict(norm.unknown)}")
    return out, notes


def score(
    gold: list[LabelledTrace],
    pred_categories: list[set[str]],
    pred_locations: list[set[str]],
    pred_pairs: list[set[tuple[str, str]]],
) -> dict[str, float]:
    """TRAIL's official figures and their precision-aware twins."""
    g_cat = [g.gold_categories for g in gold]
    g_loc = [g.gold_locations for g in gold]
    g_pair = [g.gold_pairs for g in gold]
    loc_acc = m.set_recall_mean(pred_locations, g_loc)
    loc_p = m.set_precision_mean(pred_locations, g_loc)
    joint_acc = m.set_recall_mean(pred_pairs, g_pair)
    joint_p = m.set_precision_mean(pred_pairs, g_pair)
    return {
        "category_f1_weighted": m.multilabel_f1(pred_categories, g_cat, "weighted"),
        "location_acc": loc_acc,
        "joint_acc": joint_acc,
        "location_precision": loc_p,
        "location_f1": m.harmonic(loc_p, loc_acc),
        "joint_precision": joint_p,
        "joint_f1": m.harmonic(joint_p, joint_acc),
        "category_f1_micro": m.multilabel_f1(pred_categories, g_cat, "micro"),
        "category_f1_macro": m.multilabel_f1(pred_categories, g_cat, "macro"),
    }


def category_table(gold: list[LabelledTrace], pred_categories: list[set[str]]) -> list[dict[str, Any]]:
    """Per TRAIL category: traces with it in gold (support), predicted, precision, recall, F1."""
    modes = load_taxonomy("trail").modes
    per_mode = m.per_label_prf(
        pred_categories, [g.gold_categories for g in gold], [mode.id for mode in modes]
    )
    rows = [
        {"mode": mode.name, **per_mode[mode.id]}
        for mode in modes
        if per_mode[mode.id]["support"] or per_mode[mode.id]["predicted"]
    ]
    return sorted(rows, key=lambda row: -row["support"])


def naive_baselines(gold: list[LabelledTrace]) -> dict[str, dict[str, float]]:
    if not gold:
        return {}
    all_cats = set(load_taxonomy("trail").ids)
    top = bl.most_common([c for g in gold for c in sorted(g.gold_categories)]) or ""
    out = {}
    out["every LLM span, every category"] = score(
        gold,
        [all_cats for _ in gold],
        [g.llm_spans for g in gold],
        [{(s, c) for s in g.llm_spans for c in all_cats} for g in gold],
    )
    out[f"every LLM span, modal category ({top}; label prior)"] = score(
        gold,
        [{top} for _ in gold],
        [g.llm_spans for g in gold],
        [{(s, top) for s in g.llm_spans} for g in gold],
    )
    out["spans showing an error signal, modal category"] = score(
        gold,
        [{top} if g.error_spans else set() for g in gold],
        [g.error_spans for g in gold],
        [{(s, top) for s in g.error_spans} for g in gold],
    )
    return out


def predictions_from(
    d: Diagnosis | None, trace: Trace | None
) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """(categories, span ids, (span id, category) pairs) of one diagnosis; steps become span ids via the trace."""
    if d is None or trace is None or d.status != "ok":
        return set(), set(), set()
    span_of = spans_by_step(trace)
    cats, locs, pairs = set(), set(), set()
    for f in d.detected:
        cats.add(f.mode_id)
        for idx in f.steps:
            for span in sorted(span_of.get(idx, ())):
                locs.add(span)
                pairs.add((span, f.mode_id))
    return cats, locs, pairs


def match_traces(gold: list[LabelledTrace], traces: list[Trace]) -> dict[str, Trace]:
    by_name = {Path(t.source_path).name: t for t in traces}
    return {g.trace_file.name: by_name[g.trace_file.name] for g in gold if g.trace_file.name in by_name}


def spans_by_step(trace: Trace) -> dict[int, set[str]]:
    """The span ids of each step number of a loaded TRAIL trace (labels point at spans, findings at steps)."""
    span_of: dict[int, set[str]] = {}
    for s in trace.steps:
        span_of.setdefault(s.index, set()).add(s.step_id)
    return span_of


def labelled_traces(path: Path) -> list[tuple[LabelledTrace, Trace]]:
    """Every labelled trace of every TRAIL part under PATH with its loaded trace (traces that do not load are left
    out), for the fitting and calibration code that needs labels and traces side by side."""
    out = []
    for _, traces_dir, labels_dir in find_parts(path):
        gold, _ = read_part(traces_dir, labels_dir, category_normaliser())
        matched = match_traces(gold, load_dataset_traces([g.trace_file for g in gold]))
        out += [(g, matched[g.trace_file.name]) for g in gold if g.trace_file.name in matched]
    return out


def run(path: Path, settings: BenchSettings) -> list[BenchResult]:
    """Score a judge on every TRAIL part under PATH (the trail folder)."""
    results = []
    for part, traces_dir, labels_dir in find_parts(path):
        with Timer() as timer:
            gold, notes = read_part(traces_dir, labels_dir, category_normaliser(), limit=settings.limit)
            traces = load_dataset_traces([g.trace_file for g in gold])
            matched = match_traces(gold, traces)
            judged, status = settings.judge_labelled(
                gold, lambda g: g.trace_file.name, matched, taxonomy="trail"
            )
            p_cat, p_loc, p_pair, per_trace = [], [], [], []
            for j in judged:
                g = j.label
                cats, locs, pairs = predictions_from(j.diagnosis, j.trace)
                p_cat.append(cats)
                p_loc.append(locs)
                p_pair.append(pairs)
                per_trace.append(
                    {
                        "trace": g.trace_file.stem,
                        "gold_categories": sorted(g.gold_categories),
                        "pred_categories": sorted(cats),
                        "gold_locations": sorted(g.gold_locations),
                        "pred_locations": sorted(locs),
                        "status": j.status,
                    }
                )
            metrics = score(gold, p_cat, p_loc, p_pair)
            per_category = category_table(gold, p_cat)
        notes += not_loaded_notes(len(gold), len(matched), "traces", "empty predictions")
        if not any(p == "SWE Bench" for p, _, _ in find_parts(path)):
            notes.append("The SWE Bench part is not in this folder and was not measured.")
        results.append(
            BenchResult(
                dataset="trail",
                part=part,
                judge=settings.judge,
                path=str(traces_dir),
                n_traces=len(gold),
                n_scored=sum(1 for r in per_trace if r["status"] == "ok"),
                metrics=metrics,
                metric_names=METRIC_NAMES,
                baselines=naive_baselines(gold),
                published=PUBLISHED.get(part, {}),
                published_source=PUBLISHED_SOURCE,
                notes=notes,
                per_trace=per_trace,
                judge_status=status,
                seconds=timer.seconds,
                extra_tables={"per_category": per_category},
            )
        )
    return results
