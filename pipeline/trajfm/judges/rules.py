"""The rules judge: deterministic, offline, fast. Findings from `trajfm.judges.detectors`, mapped to modes.

Contract:
- `RulesJudge().diagnose(trace, taxonomy) -> Diagnosis` with one `ModeFinding` per taxonomy mode, in taxonomy
  order. A mode is detected when at least one finding whose kind maps to it (`detectors/mapping.py`) fired; its
  steps are the union of those findings' steps, its evidence the verbatim quote of the most confident one, its
  rationale their details. An undetected mode that some rule checks is `detected = False` with confidence 0.6
  (rules miss things); one that no rule checks is `detected = None` ("not checked"), confidence 0.0, and says so
  in its rationale: never `False`, since nothing looked.
- Confidence: a detected mode's confidence is its best finding kind's precision measured on human-labelled sets
  of traces of the same shape, span trees or message logs (`judges/calibration.py`, data in
  `detector_calibration.json`); kinds measured under 0.5 precision on a shape are off by default on it
  (`all_detectors=True` turns them on), and a mode only they check is not checked (null) on traces of that shape.
- Novel modes: a finding whose kind has a novel family, or that fits no mode of the taxonomy in use, becomes a
  `NovelMode` (one per family per trace, at most `MAX_NOVEL`), titled by the family and the tool involved and
  described with the tools and error text of the actual trace.
- `task_completed` is False when a completion-blocking finding fired or there is no final answer; when the trace
  records its own outcome (is_correct, a reward, a final review status named in the format's vocabulary file,
  `judges/formats/`), that outcome decides it, and `Diagnosis.source_outcome` records it beside the verdict.
- The root cause (step, agent, confidence) is named exactly when a decisive finding fired or the run is known to
  have failed, and then always; it is chosen by the scored step model of `judges.rootcause` (`choose_root_cause`),
  whose features include the rules' own evidence-based pick (`evidence_pick`); a known failure with no evidence
  against the agent, in a conversation the user speaks in again, goes to the user's request that the first
  state-changing call carried out (`carried_out_request`). `select_root_cause` is that older
  rule with its positional fallbacks, kept for callers that want a rule without fitted weights.
  `Diagnosis.extra["root_cause_mode"]` files the root cause under a mode (`root_cause_mode`): the detected mode at
  the root-cause step, else the most confident detected one (basis "finding"); with none detected, the
  taxonomy's `root_cause_fallback` data by who acted at the root-cause step (basis "structure", with the
  signal), never added to the detected modes.
- The six scorecard dimensions come from the kinds of finding (`trajfm.judges.dimensions.rules_dimensions`);
  clarity stays null (no rule can measure it).
- `Diagnosis.extra["findings"]` keeps every raw finding (kind, steps, evidence, detail) for benchmarks and
  debugging. The judge makes no calls (`calls=0`), never sleeps, and reads nothing but the trace: text inside
  the trace is data, so an instruction written into a trace cannot change the verdict except through the
  signals the detectors measure.
"""

from __future__ import annotations

import time
from typing import Any, Final

from trajfm.errors import JudgeError
from trajfm.judges.base import Diagnosis, Judge, ModeFinding, NovelMode
from trajfm.judges.calibration import SHAPES, load_calibration, trace_shape
from trajfm.judges.detectors import FINDING_KINDS, Finding, TraceView, build_view, run_detectors
from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.actions import bad_tool_name
from trajfm.judges.detectors.origin import first_error_origin, first_reply, first_state_change, stalled_from
from trajfm.judges.dimensions import rules_dimensions
from trajfm.judges.formats import source_outcome
from trajfm.judges.rootcause.features import FEATURES, StepTable, step_features
from trajfm.judges.rootcause.model import RootCauseModel, load_model
from trajfm.judges.rules_version import RULES_VERSION
from trajfm.judges.timelimit import time_limit
from trajfm.taxonomy import Taxonomy
from trajfm.traces.model import Trace

_CALL_KINDS: Final = frozenset({"action", "tool_call"})
MAX_NOVEL: Final = 3
UNDETECTED_CONFIDENCE: Final = 0.6
DEFAULT_TIME_LIMIT_S: Final = 60.0  # per trace; the judge does thousands of ordinary traces per second


# Kinds that say how a run ended, not why it failed: they sit at the end of the run, so they decide the root cause
# only through where the run stopped progressing (`stalled_from`) or the fallbacks.
END_OF_RUN_KINDS: Final = frozenset({"premature_termination", "max_steps_reached", "continued_after_answer"})


def select_root_cause(
    findings: list[Finding], trace: Trace, view: TraceView | None = None
) -> tuple[int | None, str | None]:
    """The root-cause step and agent of a failed run (one with a decisive finding), earliest cause first.

    Candidates, by reading-order position: the step that produced the first error signal
    (`detectors.origin.first_error_origin`: the call whose result failed, or the speaker whose code a terminal
    rejected; an error the agent recovered from is skipped, and for a failure of the service itself the agent's
    reaction is blamed) and every decisive finding that is not an end-of-run symptom, placed at the step of the
    agent's own choice (`KindSpec.cause`: a repetition at its repeat, a false success claim where it is made).
    The earliest candidate wins, except that a slip the run got past (`KindSpec.slip`: a repeated call, a
    malformed action then retried, a call at odds with its reasoning) yields to any later weightier candidate;
    a run that hit its step limit or looped after its answer adds where its trailing calls stopped telling
    anything new (`detectors.origin.stalled_from`). With no candidate, the first call that changes state is
    blamed (`detectors.origin.first_state_change`: a misread request or result becomes consequential there), else the
    first agent reply after the opening step (`detectors.origin.first_reply`): a run that failed without any
    visible error usually went wrong at a choice, not where it stopped. Kinds
    marked `decisive=False` (cosmetic ones such as leftover artefacts, or repeated reasoning) never count.
    The agent is the candidate's agent, else the agent of the first step with that index, else the trace's first
    agent. When only non-decisive findings fired and the source does not record a failure, the first of them
    is named (the flaw to look at); with no finding at all, (None, None).
    """
    decisive = [f for f in findings if FINDING_KINDS[f.kind].decisive and f.steps]
    # The source's own outcome (Who&When's is_correct, a tau-bench reward below 1) also marks a failed run.
    if not decisive and trace.is_correct is not False:
        # Only cosmetic flaws (leftover artefacts, repeated reasoning) in a run not known to have failed: the first
        # of them is the step a reader should look at; with none, there is nothing to blame.
        minor = [f for f in findings if f.steps]
        if not minor:
            return None, None
        first = min(minor, key=lambda f: (f.position, min(f.steps)))
        return min(first.steps), first.agent or next(
            (s.agent for s in trace.steps if s.index == min(first.steps) and s.agent), None
        )
    if view is None:  # the judge passes the view its detectors read; other callers get a fresh one
        view = build_view(trace)
    picked = evidence_pick(decisive, trace, view)
    if picked is not None:
        step, agent = picked
    else:
        reply = first_state_change(view) or first_reply(view)
        if reply is not None:
            step, agent = reply.index, reply.agent
        elif decisive:
            first = min(decisive, key=lambda f: (f.position, min(f.steps)))
            step, agent = min(first.steps), first.agent
        else:
            return None, None
    if agent is None:
        agent = next((s.agent for s in trace.steps if s.index == step and s.agent), None)
    if agent is None and trace.agents:
        agent = trace.agents[0]
    return step, agent


def evidence_pick(decisive: list[Finding], trace: Trace, view: TraceView) -> tuple[int, str | None] | None:
    """The rules' evidence-based root-cause candidate (see `select_root_cause`): the earliest weighty candidate
    among decisive findings, the producer of the first error and where a stalled run stopped progressing; None
    when there is no such evidence (the positional fallbacks are not part of it)."""
    # Reading-order position of each step number's first main-level step (where a cause step is placed).
    first_pos: dict[int, int] = {}
    for s in trace.steps:
        if s.depth == 0:
            first_pos.setdefault(s.index, s.position)
    # (position, step, agent, weighty): a slip the run got past (`KindSpec.slip`) is not weighty
    candidates: list[tuple[int, int, str | None, bool]] = []
    for f in decisive:
        if f.kind in END_OF_RUN_KINDS:
            continue
        step = _cause_step(f)
        pos = f.position if step == min(f.steps) else first_pos.get(step, f.position)
        candidates.append((pos, step, _callee(f, trace) or f.agent, not FINDING_KINDS[f.kind].slip))
    origin = first_error_origin(view)
    if origin is not None:
        candidates.append((origin.position, origin.index, origin.agent, True))
    # A run cut off at its step limit or looping after its answer went wrong where it stopped progressing.
    stalled = stalled_from(view) if any(f.kind in END_OF_RUN_KINDS for f in decisive) else None
    if stalled is not None:
        candidates.append((stalled.position, stalled.index, stalled.agent, True))
    if not candidates:
        return None
    # A slip the run got past (a repeated call, a malformed action that was retried, reasoning at odds with the
    # call) explains less than a later choice or error: the earliest weighty candidate wins, else the earliest.
    weighty = [c for c in candidates if c[3]]
    _, step, agent, _ = min(weighty or candidates, key=lambda c: (c[0], c[1]))
    return step, agent


def choose_root_cause(
    findings: list[Finding],
    trace: Trace,
    view: TraceView,
    model: RootCauseModel,
    *,
    known_failed: bool,
) -> tuple[int | None, str | None, float | None, str | None, str | None]:
    """(step, agent, confidence, signal, basis) of the root cause, chosen by the scored step model
    (`judges.rootcause`); `signal` is who acted at that step (`root_cause_signal`); `basis` says what placed it:
    "user request" (`carried_out_request`), else "scorer".

    A root cause is named exactly when a decisive finding fired or the trace's own record says the run failed;
    otherwise (None, None, None). The model scores every candidate step on framework-neutral features, among them
    the rules' evidence-based pick (`evidence_pick`), so when the evidence is weak it falls back on the positional
    priors it learned (the last agent step, the speaker before the first error). The agent is the chosen step's
    speaker; for a tool or environment step, the agent whose step came before it (the one that asked for it).
    A failed run with no evidence at all against the agent (no decisive finding, no error) in a conversation the
    user takes part in is laid at the user's request that the first state-changing call carried out
    (`carried_out_request`), with that rule's precision measured on the fitting sets (`RootCauseModel.
    user_request_confidence`), or `USER_REQUEST_CONFIDENCE` where it was not measured."""
    decisive = [f for f in findings if FINDING_KINDS[f.kind].decisive and f.steps]
    if not decisive and not known_failed:
        return None, None, None, None, None
    picked = evidence_pick(decisive, trace, view)
    table = step_features(view, findings, picked[0] if picked else None)
    if picked is None and not decisive:
        asked = carried_out_request(view, table)
        if asked is not None:
            step = table.steps[asked]
            measured = model.user_request_confidence()
            confidence = USER_REQUEST_CONFIDENCE if measured is None else measured
            return step.index, step.agent, confidence, "user", "user request"
    best = model.pick(table)
    if best is None:
        return None, None, None, None, None
    i, confidence = best
    step = table.steps[i]
    agent = step.agent if table.roles[i] in ("agent", "user") else None
    if agent is None:
        earlier = [k for k in range(i - 1, -1, -1) if table.roles[k] == "agent" and table.steps[k].agent]
        later = [
            k for k in range(i + 1, len(table.steps)) if table.roles[k] == "agent" and table.steps[k].agent
        ]
        nearest = (earlier or later)[:1]
        agent = table.steps[nearest[0]].agent if nearest else None
    if agent is None:
        agent = step.agent or (trace.agents[0] if trace.agents else None)
    return step.index, agent, round(confidence, 3), root_cause_signal(table, i), "scorer"


# Where the fitting sets did not measure the user-request rule (it fired on fewer than `MIN_MEASURED` of their
# labelled failures: under --protocol lodo without AgentRx, the only visible set that blames a user), its
# confidence is an even chance, not a fitted figure.
USER_REQUEST_CONFIDENCE: Final = 0.5


def carried_out_request(view: TraceView, table: StepTable) -> int | None:
    """The candidate number of the user's request that a failed run's first state-changing call carried out, when
    the user takes part in the conversation (speaks again after the opening request) and the agent's side shows
    nothing wrong (the caller checks: no decisive finding, no error). Explaining away: an agent that did what it
    was asked without a visible slip, in a run that still failed, most likely did the wrong thing because it was
    asked for the wrong thing. None when the user spoke once (a task given up front), when no call changed
    state, or when no user turn comes before that call."""
    users = [i for i, role in enumerate(table.roles) if role == "user"]
    if len(users) < 2:
        return None
    change = first_state_change(view)
    if change is None:
        return None
    before = [i for i in users if table.steps[i].position < change.position]
    return before[-1] if before else None


_ROLE_USER: Final = FEATURES.index("role_user")
_ROLE_AGENT: Final = FEATURES.index("role_agent")
_ROLE_TOOL: Final = FEATURES.index("role_tool")


def root_cause_signal(table: StepTable, i: int) -> str | None:
    """Who acted at root-cause candidate `i` (`taxonomy.ROOT_CAUSE_SIGNALS`): "user" when the person the agent serves
    wrote it, "agent" for an agent step or a tool step (the call an agent made); None for a system or wrapper
    step. A taxonomy's `root_cause_fallback` files a known-failed run's root cause under a mode by this signal when
    no detected mode explains it. An error at the step is not a signal of its own: had an error detector
    recognised it (ignored, retried identically, never resolved), its mode would explain the root cause; an
    error the agent handled shows a choice the state did not allow, which is the plan's fault."""
    row = table.rows[i]
    if row[_ROLE_USER]:
        return "user"
    if row[_ROLE_AGENT] or row[_ROLE_TOOL]:
        return "agent"
    return None


def root_cause_mode(
    modes: list[ModeFinding], root_step: int | None, signal: str | None, taxonomy: Taxonomy
) -> dict[str, str] | None:
    """The mode the root cause is filed under: the most confident detected mode citing the root-cause step, else the
    most confident detected mode ("finding"); with none detected, the taxonomy's `root_cause_fallback` for the
    root-cause step's signal ("structure": no evidence names the mode, only who acted there). None when there is
    no root cause or nothing applies."""
    if root_step is None:
        return None
    found = [m for m in modes if m.detected]
    if found:
        at_root = [m for m in found if root_step in m.steps]
        best = max(at_root or found, key=lambda m: m.confidence)
        return {"mode": best.mode_id, "basis": "finding"}
    fallback = (taxonomy.root_cause_fallback or {}).get(signal or "")
    if fallback is None:
        return None
    return {"mode": fallback, "basis": "structure", "signal": str(signal)}


def _cause_step(f: Finding) -> int:
    """The step of a finding where the agent made its own decisive choice (`KindSpec.cause`)."""
    steps = sorted(set(f.steps))
    cause = FINDING_KINDS[f.kind].cause
    if cause == "repeat" and len(steps) > 1:
        return steps[1]
    if cause == "last":
        return steps[-1]
    return steps[0]


def _callee(f: Finding, trace: Trace) -> str | None:
    """The agent a finding's call went to, when its kind blames the callee and the tool is an agent of the trace."""
    if not (FINDING_KINDS[f.kind].blame_callee and f.tool):
        return None
    return next((a for a in trace.agents if a.lower() == f.tool.lower()), None)


def _confidence(f: Finding) -> float:
    return f.confidence if f.confidence is not None else FINDING_KINDS[f.kind].confidence


def _novel_title(family: str, group: list[Finding], view: TraceView) -> str:
    family = view.vocab.family_title(family)
    # Only a well-formed tool name goes into a title: a malformed one is the finding, not a name.
    tools = [
        f.tool
        for f in group
        if f.tool and not bad_tool_name(f.tool) and " " not in f.tool and len(f.tool) <= 40
    ]
    return f"{family} ({tools[0]})" if tools else family


def _novel_description(group: list[Finding]) -> str:
    parts = []
    for f in group[:3]:
        d = f.detail[:1].upper() + f.detail[1:]
        parts.append(d.rstrip(".") + ".")
    return " ".join(parts)


def _summary(
    findings: list[Finding], trace: Trace, completed: bool | None, root: int | None, basis: str | None = None
) -> str:
    n_steps = len(trace.step_indices())
    if not findings:
        ending = (
            "the agent returned a final answer"
            if (trace.final_answer or "").strip()
            else "no final answer recorded"
        )
        told = f"No failure signal found in {n_steps} steps; {ending}."
        if completed is False and root is not None:
            where = (
                "at the user's request that the first state-changing call carried out, since nothing in the "
                "agent's own steps shows a slip"
                if basis == "user request"
                else "where the step scorer's structural features point (no detector evidence)"
            )
            told += f" The run is recorded as failed: root cause placed at step {root}, {where}."
        return told
    lead = next((f for f in findings if f.steps and min(f.steps) == root), findings[0])
    kinds = sorted({FINDING_KINDS[f.kind].title.lower() for f in findings if f is not lead})
    more = f"; also {', '.join(kinds)}" if kinds else ""
    done = {True: "task completed", False: "task not completed", None: "completion unknown"}[completed]
    return (
        f"{FINDING_KINDS[lead.kind].title} at step {min(lead.steps) if lead.steps else '?'}{more} ({done})."
    )


def _rule_map(taxonomy: Taxonomy) -> dict[str, tuple[str, ...]]:
    """Which finding kinds are evidence for which modes: the taxonomy's own `rules` data when it has some (a plugin
    taxonomy), else the detectors' mapping for the taxonomy's name."""
    if taxonomy.rule_map is not None:
        return taxonomy.rule_map
    return {kind: spec.modes.get(taxonomy.name, ()) for kind, spec in FINDING_KINDS.items()}


class RulesJudge(Judge):
    """Deterministic detectors mapped onto a taxonomy (see the module docstring).

    `root_cause_model`: a weights file for the root-cause step scorer (default: the shipped one); the lodo bench
    protocol passes one fitted without the dataset it scores."""

    name = "rules"
    model: str | None = None
    prompt_version = RULES_VERSION
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S

    def __init__(
        self,
        root_cause_model: str | None = None,
        calibration: str | None = None,
        all_detectors: bool = False,
    ) -> None:
        self.root_cause_path = root_cause_model
        self.root_cause = load_model(root_cause_model)
        self.calibration = load_calibration(calibration)
        # Per trace shape, the kinds measured under 0.5 precision on it are off unless all_detectors
        # (judges/calibration.py).
        self.off_by_shape: dict[str, frozenset[str]] = (
            dict.fromkeys(SHAPES, frozenset()) if all_detectors else self.calibration.off_by_shape()
        )
        self._checked: dict[str, tuple[frozenset[str], dict[str, list[str]]]] = {}
        # the detectors' mapping per taxonomy name
        self._rule_maps: dict[str, dict[str, tuple[str, ...]]] = {}
        # per taxonomy object (by identity, the object kept) and trace shape: its mode ids and the verdicts of modes
        # without a finding
        self._plans: dict[
            tuple[int, str], tuple[Taxonomy, frozenset[str], tuple[tuple[str, bool | None, str, float], ...]]
        ] = {}

    def cache_material(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "version": RULES_VERSION,
            "root_cause": self.root_cause.to_dict(),
            "calibration": {
                shape: dict(sorted(self.calibration.for_shape(shape).precision.items())) for shape in SHAPES
            },
            "off": {shape: sorted(self.off_by_shape[shape]) for shape in SHAPES},
        }

    def manifest_info(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": None,
            "prompt_version": RULES_VERSION,
            "detectors": sorted(FINDING_KINDS),
            "detectors_off_by_default": {shape: sorted(self.off_by_shape[shape]) for shape in SHAPES},
            "root_cause_model": self.root_cause.source,
            "calibration": self.calibration.source,
        }

    def _confidence(self, f: Finding, shape: str) -> float:
        measured = self.calibration.for_shape(shape).confidence(f.kind)
        return measured if measured is not None else _confidence(f)

    def _checked_modes(
        self, taxonomy: Taxonomy, rule_map: dict[str, tuple[str, ...]], shape: str
    ) -> tuple[frozenset[str], dict[str, list[str]]]:
        """(modes some enabled kind checks, {mode: the off kinds that alone would check it}) for a taxonomy and a
        trace shape."""
        own = ":own-rules" if taxonomy.rule_map is not None else ""
        key = f"{taxonomy.name}@{taxonomy.version}/{shape}{own}"
        got = self._checked.get(key)
        if got is None:
            off = self.off_by_shape[shape]
            on = {m for k, modes in rule_map.items() if k not in off for m in modes}
            only_off: dict[str, list[str]] = {}
            for k in sorted(off):
                for m in rule_map.get(k, ()):
                    if m not in on:
                        only_off.setdefault(m, []).append(k)
            got = self._checked[key] = (frozenset(on), only_off)
        return got

    def _mode_plan(
        self, taxonomy: Taxonomy, rule_map: dict[str, tuple[str, ...]], shape: str
    ) -> tuple[frozenset[str], tuple[tuple[str, bool | None, str, float], ...]]:
        """(the taxonomy's mode ids, per mode in order: (id, detected, rationale, confidence) of its verdict when no
        finding maps to it) on traces of one shape. Computed once per taxonomy (a frozen object: kept by identity,
        with a reference) and shape."""
        got = self._plans.get((id(taxonomy), shape))
        if got is not None and got[0] is taxonomy:
            return got[1], got[2]
        checked, only_off = self._checked_modes(taxonomy, rule_map, shape)
        precision = self.calibration.for_shape(shape).precision
        plan: list[tuple[str, bool | None, str, float]] = []
        for mode in taxonomy.modes:
            if mode.id in checked:
                plan.append((mode.id, False, "no rule for this mode fired", UNDETECTED_CONFIDENCE))
            else:
                # Not checked is not absent: null, so reports and counts leave it out.
                why = "no rule checks this mode"
                if mode.id in only_off:
                    kinds = ", ".join(f"{k} ({precision[k]:.2f})" for k in only_off[mode.id])
                    why = (
                        f"its only rules are off by default on {shape} traces, measured precision under 0.5: "
                        f"{kinds}"
                    )
                plan.append((mode.id, None, f"not checked: {why}", 0.0))
        entry = (taxonomy, frozenset(taxonomy.ids), tuple(plan))
        if len(self._plans) < 64:
            self._plans[(id(taxonomy), shape)] = entry
        return entry[1], entry[2]

    def diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        """Judge one trace within `time_limit_s` (a `TraceTimeLimit` past it: the runner records the trace as
        failed and goes on)."""
        with time_limit(
            self.time_limit_s, f"the rules judge on trace {trace.trace_id} ({len(trace.steps)} steps)"
        ):
            return self._diagnose(trace, taxonomy)

    def _diagnose(self, trace: Trace, taxonomy: Taxonomy) -> Diagnosis:
        started = time.perf_counter()
        view = build_view(trace)  # built once, read by every detector and by root-cause selection
        shape = trace_shape(trace)
        off = self.off_by_shape[shape]
        findings = run_detectors(trace, view=view, skip_kinds=off)
        switched_off = [f for f in findings if f.kind in off]
        if switched_off:
            findings = [f for f in findings if f.kind not in off]
        rule_map = self._rule_maps.get(taxonomy.name) if taxonomy.rule_map is None else taxonomy.rule_map
        if rule_map is None:
            rule_map = self._rule_maps[taxonomy.name] = _rule_map(taxonomy)
        by_mode: dict[str, list[Finding]] = {}
        novel_groups: dict[str, list[Finding]] = {}
        mode_ids, plan = self._mode_plan(taxonomy, rule_map, shape)
        for f in findings:
            spec = FINDING_KINDS[f.kind]
            mapped = [m for m in rule_map.get(f.kind, ()) if m in mode_ids]
            for m in mapped:
                by_mode.setdefault(m, []).append(f)
            family = spec.novel_family or (None if mapped else spec.title)
            if family:
                novel_groups.setdefault(family, []).append(f)
        modes: list[ModeFinding] = []
        for mode_id, undetected, rationale, confidence in plan:
            hits = by_mode.get(mode_id)
            if hits:
                confidences = [self._confidence(f, shape) for f in hits]
                top = max(confidences)
                best = hits[confidences.index(top)]
                modes.append(
                    ModeFinding(
                        mode_id=mode_id,
                        detected=True,
                        steps=sorted({s for f in hits for s in f.steps}),
                        evidence=best.evidence,
                        rationale="; ".join(dict.fromkeys(f.detail for f in hits[:4])),
                        confidence=round(top, 3),
                    )
                )
            else:
                # positionally: mode_id, detected, steps, evidence, evidence_verified, rationale, confidence
                modes.append(ModeFinding(mode_id, undetected, [], "", False, rationale, confidence))
        novel = [
            NovelMode(
                title=_novel_title(family, group, view),
                description=_novel_description(group),
                steps=sorted({s for f in group for s in f.steps}),
                evidence=group[0].evidence,
            )
            for family, group in list(novel_groups.items())[:MAX_NOVEL]
        ]
        blocking = any(FINDING_KINDS[f.kind].blocks_completion for f in findings)
        completed: bool | None = bool((trace.final_answer or "").strip()) and not blocking
        if not (trace.final_answer or "").strip() and not any(s.kind in _CALL_KINDS for s in trace.steps):
            # A chat log keeps its answer in its last message: without a final-answer field nothing says
            # whether the task was done, unless a blocking finding already says it was not.
            completed = False if blocking else None
        outcome = source_outcome(trace)
        basis, own_reading = "judge", completed
        if outcome is not None:
            # The trace's own record of the outcome (a reward, is_correct, a final review status) outranks the
            # rules' reading of it; `source_outcome` says so beside the verdict.
            completed, basis = outcome == "succeeded", "source"
        root_step, root_agent, root_conf, root_signal, root_basis = choose_root_cause(
            findings, trace, view, self.root_cause, known_failed=completed is False
        )
        root_mode = root_cause_mode(modes, root_step, root_signal, taxonomy)
        return Diagnosis(
            trace_id=trace.trace_id,
            judge=self.name,
            judge_model=None,
            prompt_version=RULES_VERSION,
            status="ok",
            task_completed=completed,
            summary=_summary(findings, trace, completed, root_step, root_basis),
            root_cause_step=root_step,
            root_cause_agent=root_agent,
            root_cause_confidence=root_conf,
            source_outcome=outcome,
            modes=modes,
            novel=novel,
            dimensions=rules_dimensions(
                (f.kind for f in findings),
                task_completed=completed,
                has_tool_calls=any(s.kind in _CALL_KINDS for s in trace.steps),
            ),
            latency_s=time.perf_counter() - started,
            calls=0,
            extra={
                "completion_basis": basis,
                # The rules' own reading of the outcome, kept when the source's outcome decides `task_completed`:
                # how often the two agree measures the judge on traces that carry no outcome.
                "judge_task_completed": own_reading,
                "root_cause_mode": root_mode,
                "findings_off_by_default": [
                    {"kind": f.kind, "steps": f.steps, "detail": f.detail} for f in switched_off
                ],
                "findings": [
                    {
                        "kind": f.kind,
                        "steps": f.steps,
                        "evidence": f.evidence,
                        "detail": f.detail,
                        "tool": f.tool,
                        "error": f.error and tx.short(f.error, 120),
                    }  # fmt: skip
                    for f in findings
                ],
            },
        )


_LLM_ONLY: Final = ("model", "base_url", "samples", "dry_run", "temperature", "seed", "redact")
_RULES_OPTIONS: Final = ("root_cause_model", "calibration", "all_detectors")


def make_rules_judge(**options: Any) -> RulesJudge:
    """Registry factory. Options meant for model-backed judges are refused when set (None values are ignored),
    so `--judge rules --model X` is an error rather than a silently ignored flag."""
    limit = options.pop("time_limit_s", None)
    given = sorted(
        k for k, v in options.items() if v is not None and k != "concurrency" and k not in _RULES_OPTIONS
    )
    if given:
        raise JudgeError(
            f"the rules judge takes no {', '.join('--' + k.replace('_', '-') for k in given)}: it runs offline and "
            "deterministically; use --judge llm for a model-backed judge (its options: --judge-option "
            "time_limit_s=SECONDS, the per-trace time limit, root_cause_model=PATH, calibration=PATH, all_detectors=true)"
        )
    judge = RulesJudge(
        root_cause_model=options.get("root_cause_model"),
        calibration=options.get("calibration"),
        all_detectors=bool(options.get("all_detectors")),
    )
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
            raise JudgeError(
                f"--judge-option time_limit_s={limit!r} should be a number of seconds (0 for no limit), e.g. "
                "time_limit_s=120"
            )
        judge.time_limit_s = float(limit) or None
    return judge
