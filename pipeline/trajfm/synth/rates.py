"""Which behaviours each synthetic run shows: the behaviour table of the brief and per-model propensities.

`BEHAVIOURS` is the shared contract (ids, implied MAST modes, novel family titles; see team BRIEF). The rates are
our choice, made so that models differ and multi-agent (end-to-end) tasks fail more often, aiming near the
anchor's task accuracy (about 68% single-agent vs 47% multi-agent). `sample_behaviours` draws them for one run.
"""

from __future__ import annotations

import random

from trajfm.synth.planters import applicable
from trajfm.synth.scenarios import Scenario

# id -> (MAST modes implied, novel family title or None)
BEHAVIOURS: dict[str, tuple[list[str], str | None]] = {
    "clean_success": ([], None),
    "step_repetition": (["1.3"], None),
    "ineffective_error_recovery": (["3.2"], "Ineffective Error Recovery"),
    "overstated_completion": (["3.2"], "Overstatement of Task Completion"),
    "invalid_action_format": (["1.1"], "Invalid Action Formatting"),
    "hallucinated_entity": (["3.3"], "Hallucinated Asset or Sensor"),
    "premature_termination": (["3.1"], None),
    "ignored_termination": (["1.5"], None),
    "no_clarification": (["2.2"], None),
    "action_reasoning_mismatch": (["2.6"], None),
    "output_format_ignored": (["1.1"], None),
    "unverified_subagent_failure": (["2.5", "3.2"], None),
    "leftover_artefacts": ([], "Extraneous Output Artefacts"),
}

# Pairs never planted together because one planter undoes the other's evidence.
INCOMPATIBLE = {
    frozenset({"ignored_termination", "premature_termination"}),
    frozenset({"ignored_termination", "ineffective_error_recovery"}),
    frozenset({"ignored_termination", "overstated_completion"}),
    frozenset({"premature_termination", "ineffective_error_recovery"}),
    frozenset({"ineffective_error_recovery", "unverified_subagent_failure"}),
    frozenset({"ignored_termination", "unverified_subagent_failure"}),
    frozenset({"output_format_ignored", "ineffective_error_recovery"}),  # a failure report has no format
}

# Probability that a run is clean, single-agent task; multi-agent runs use it times MULTI_CLEAN_FACTOR.
CLEAN_SINGLE: dict[str, float] = {
    "mistral-large": 0.63,
    "llama-3-405b-instruct": 0.65,
    "llama-3-3-70b-instruct": 0.59,
    "llama-4-maverick-17b-128e-instruct-fp8": 0.61,
    "llama-4-scout-17b-16e-instruct": 0.55,
    "gpt-4.1-2025-04-14": 0.75,
    "granite-3-3-8b-instruct": 0.47,
}
MULTI_CLEAN_FACTOR = 0.62

# Probability of assuming an asset (no_clarification) on an ambiguous task.
ASSUME_RATE: dict[str, float] = {
    "mistral-large": 0.7,
    "llama-3-405b-instruct": 0.75,
    "llama-3-3-70b-instruct": 0.7,
    "llama-4-maverick-17b-128e-instruct-fp8": 0.65,
    "llama-4-scout-17b-16e-instruct": 0.7,
    "gpt-4.1-2025-04-14": 0.45,
    "granite-3-3-8b-instruct": 0.85,
}

_BASE = {
    "step_repetition": 1.0,
    "ineffective_error_recovery": 0.9,
    "overstated_completion": 0.8,
    "invalid_action_format": 0.5,
    "hallucinated_entity": 0.5,
    "premature_termination": 0.5,
    "ignored_termination": 0.6,
    "no_clarification": 0.0,  # decided by ASSUME_RATE, not drawn here
    "action_reasoning_mismatch": 0.6,
    "output_format_ignored": 1.2,
    "unverified_subagent_failure": 0.6,
    "leftover_artefacts": 0.7,
}
# Per-model multipliers on _BASE: each model has its own characteristic failures.
_MODEL_BIAS: dict[str, dict[str, float]] = {
    "mistral-large": {"step_repetition": 1.8, "ignored_termination": 1.6, "invalid_action_format": 1.2},
    "llama-3-405b-instruct": {"overstated_completion": 1.6, "hallucinated_entity": 1.2},
    "llama-3-3-70b-instruct": {"ineffective_error_recovery": 1.8, "step_repetition": 1.4},
    "llama-4-maverick-17b-128e-instruct-fp8": {"leftover_artefacts": 2.6, "overstated_completion": 1.3},
    "llama-4-scout-17b-16e-instruct": {
        "leftover_artefacts": 2.0,
        "action_reasoning_mismatch": 1.8,
        "invalid_action_format": 1.5,
    },
    "gpt-4.1-2025-04-14": {
        "invalid_action_format": 0.2,
        "leftover_artefacts": 0.2,
        "output_format_ignored": 0.5,
        "overstated_completion": 1.4,
    },
    "granite-3-3-8b-instruct": {
        "invalid_action_format": 2.5,
        "hallucinated_entity": 2.2,
        "premature_termination": 1.8,
        "output_format_ignored": 1.5,
    },
}
# Multi-agent runs lean towards hand-off failures.
_MULTI_BIAS = {
    "unverified_subagent_failure": 2.0,
    "premature_termination": 1.8,
    "ineffective_error_recovery": 1.3,
}


def weights(model: str, multi_agent: bool) -> dict[str, float]:
    w = {b: v * _MODEL_BIAS[model].get(b, 1.0) for b, v in _BASE.items()}
    if multi_agent:
        w = {b: v * _MULTI_BIAS.get(b, 1.0) for b, v in w.items()}
    return w


def sample_behaviours(rng: random.Random, scenario: Scenario, model: str) -> list[str]:
    """Planted behaviour ids for one run (empty list = a clean run)."""
    # Agents rarely ask back: on an ambiguous task most runs assume an asset, whatever else happens.
    assume = scenario.ambiguous and rng.random() < ASSUME_RATE[model]
    p_clean = CLEAN_SINGLE[model] * (MULTI_CLEAN_FACTOR if scenario.multi_agent else 1.0)
    if rng.random() < p_clean:
        return ["no_clarification"] if assume else []
    w = {b: v for b, v in weights(model, scenario.multi_agent).items() if v > 0 and applicable(scenario, b)}
    n = 1 + (rng.random() < 0.45) + (rng.random() < 0.15)
    chosen: list[str] = []
    if assume:
        chosen.append("no_clarification")
    while w and len(chosen) < n:
        names = sorted(w)
        b = rng.choices(names, weights=[w[x] for x in names])[0]
        del w[b]
        if any(frozenset({b, c}) in INCOMPATIBLE for c in chosen):
            continue
        chosen.append(b)
    return chosen
