"""Combining several replies about one trace into one Diagnosis (used by the LLM judge).

Contract:
- `vote_samples(diagnoses, taxonomy)`: K samples of the same prompt. A mode is detected when more than half of
  the samples detect it (a tie is not a majority); its confidence is the share of samples that agree with the
  verdict; its steps are the union of the agreeing samples' steps and its evidence the first verified quote among
  them. Task completion and the root cause are the most common answers; summary and novel modes come from the
  first sample that agrees on task completion. One sample is returned unchanged.
- `merge_chunks(diagnoses, taxonomy)`: the parts of a chunked trace. A mode is detected when any part detects it
  (steps unioned); the last part, which holds the final answer, decides task completion; the earliest root-cause
  step wins; novel modes are kept up to MAX_NOVEL, distinct by title (the titles left out in
  `extra["novel_left_out"]`); summaries are joined in order.
Both expect every diagnosis to list the taxonomy's modes in taxonomy order (as the LLM judge builds them).
"""

from __future__ import annotations

from collections import Counter

from trajfm.judges.base import Diagnosis, ModeFinding, NovelMode
from trajfm.judges.dimensions import DIMENSION_KEYS, NEGATIVE_KEY
from trajfm.judges.prompt import MAX_NOVEL
from trajfm.taxonomy import Taxonomy


def vote_samples(samples: list[Diagnosis], taxonomy: Taxonomy) -> Diagnosis:
    """Majority vote across samples of one chunk; per-mode confidence = share of samples agreeing."""
    if len(samples) == 1:
        return samples[0]
    k = len(samples)
    first = samples[0]
    modes = []
    for i, m in enumerate(taxonomy.modes):
        verdicts = [s.modes[i] for s in samples]
        if all(v.detected is None for v in verdicts):  # no sample reported on this mode
            modes.append(ModeFinding(mode_id=m.id, detected=None, confidence=0.0))
            continue
        n_yes = sum(v.detected is True for v in verdicts)
        detected = n_yes * 2 > k  # a tie is not a majority: not detected (samples silent on it count as "no")
        agreeing = [v for v in verdicts if bool(v.detected) == detected]
        best = next((v for v in agreeing if v.evidence_verified), agreeing[0])
        modes.append(
            ModeFinding(
                mode_id=m.id,
                detected=detected,
                steps=sorted({s for v in agreeing for s in v.steps}) if detected else [],
                evidence=best.evidence if detected else "",
                evidence_verified=best.evidence_verified if detected else False,
                rationale=best.rationale,
                confidence=len(agreeing) / k,
            )
        )
    completed = Counter(s.task_completed for s in samples).most_common(1)[0][0]
    voice = next(s for s in samples if s.task_completed == completed)
    root = Counter((s.root_cause_step, s.root_cause_agent) for s in samples).most_common(1)[0][0]
    d = Diagnosis(
        trace_id=first.trace_id,
        judge=first.judge,
        judge_model=first.judge_model,
        prompt_version=first.prompt_version,
        task_completed=completed,
        summary=voice.summary,
        root_cause_step=root[0],
        root_cause_agent=root[1],
        modes=modes,
        novel=list(voice.novel),
        dimensions=vote_dimensions([s.dimensions for s in samples]),
        extra={"novel_evidence_verified": voice.extra.get("novel_evidence_verified", [])},
    )
    d.extra["task_completed_agreement"] = sum(s.task_completed == completed for s in samples) / k
    return d


def merge_chunks(chunks: list[Diagnosis], taxonomy: Taxonomy) -> Diagnosis:
    """One diagnosis from the diagnoses of a trace's parts: any part's detection counts, the last part (which
    holds the final answer) decides task completion, the earliest root cause wins."""
    if len(chunks) == 1:
        return chunks[0]
    last = chunks[-1]
    modes = []
    for i, m in enumerate(taxonomy.modes):
        verdicts = [c.modes[i] for c in chunks]
        hits = [v for v in verdicts if v.detected]
        if hits:
            best = next((v for v in hits if v.evidence_verified), hits[0])
            modes.append(
                ModeFinding(
                    m.id,
                    True,
                    sorted({s for v in hits for s in v.steps}),
                    best.evidence,
                    best.evidence_verified,
                    best.rationale,
                    max(v.confidence for v in hits),
                )
            )
        elif all(v.detected is None for v in verdicts):  # no part reported on this mode
            modes.append(ModeFinding(m.id, None, confidence=0.0))
        else:
            reported = [v for v in verdicts if v.detected is not None]
            modes.append(
                ModeFinding(
                    m.id, False, [], "", False, reported[-1].rationale, min(v.confidence for v in reported)
                )
            )
    novel: list[NovelMode] = []
    verified: list[bool] = []
    left_out: list[str] = []  # distinct titles beyond MAX_NOVEL (the judge records them as dropped)
    for c in chunks:
        for n, ok in zip(
            c.novel, c.extra.get("novel_evidence_verified", [False] * len(c.novel)), strict=False
        ):
            if n.title.casefold() in {x.title.casefold() for x in novel}:
                continue
            if len(novel) < MAX_NOVEL:
                novel.append(n)
                verified.append(ok)
            else:
                left_out.append(n.title)
    roots = [(c.root_cause_step, c.root_cause_agent) for c in chunks if c.root_cause_step is not None]
    root = min(roots, key=lambda r: r[0]) if roots else (None, last.root_cause_agent)
    return Diagnosis(
        trace_id=last.trace_id,
        judge=last.judge,
        judge_model=last.judge_model,
        prompt_version=last.prompt_version,
        task_completed=last.task_completed,
        summary=" ".join(c.summary for c in chunks if c.summary),
        root_cause_step=root[0],
        root_cause_agent=root[1],
        modes=modes,
        novel=novel,
        dimensions=merge_chunk_dimensions([c.dimensions for c in chunks]),
        extra={
            "novel_evidence_verified": verified,
            "chunk_summaries": [c.summary for c in chunks],
            "novel_left_out": left_out,
        },
    )


def vote_dimensions(samples: list[dict[str, bool | None]]) -> dict[str, bool | None]:
    """Each scorecard dimension by majority of the samples that assessed it; a tie or no verdict is None."""
    out: dict[str, bool | None] = {}
    for key in DIMENSION_KEYS:
        votes = [d.get(key) for d in samples if d.get(key) is not None]
        yes = sum(1 for v in votes if v)
        out[key] = None if not votes or yes * 2 == len(votes) else yes * 2 > len(votes)
    return out


def merge_chunk_dimensions(chunks: list[dict[str, bool | None]]) -> dict[str, bool | None]:
    """The dimensions of a trace from its parts: completion from the last part (it holds the final answer); a
    flaw any part saw counts (a positive dimension false, hallucination true), else any part's verdict."""
    out: dict[str, bool | None] = {}
    for key in DIMENSION_KEYS:
        if key == "dim_task_completion":
            out[key] = chunks[-1].get(key)
            continue
        verdicts = [d.get(key) for d in chunks if d.get(key) is not None]
        flaw = key == NEGATIVE_KEY
        out[key] = None if not verdicts else (flaw if flaw in verdicts else not flaw)
    return out
