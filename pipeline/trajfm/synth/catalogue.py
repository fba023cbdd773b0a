"""The utterance catalogue of the synthetic corpus: every template group with its id range and size.

`build_catalogue(rng)` returns 152 scenarios in id order (100 single-agent, 52 end-to-end); the same rng state
gives the same catalogue.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from trajfm.synth.scenarios import Scenario
from trajfm.synth.tasks_e2e import e2e
from trajfm.synth.tasks_iot_fmsr import (
    fmsr_list,
    fmsr_recipe,
    fmsr_sensors,
    iot_ambiguous,
    iot_assets,
    iot_history,
    iot_sensors,
    iot_sites,
)
from trajfm.synth.tasks_tsfm_wo import (
    tsfm_file_task,
    tsfm_models,
    tsfm_tasks,
    wo_ambiguous,
    wo_bundle,
    wo_create,
    wo_events,
    wo_list,
)

GROUPS: dict[str, tuple[int, int, list[Callable[[random.Random, int], Scenario]]]] = {
    # group: (first id, how many, templates cycled through)
    "IoT": (1, 26, [iot_sites, iot_assets, iot_sensors, iot_history, iot_history, iot_ambiguous]),
    "FMSR": (101, 24, [fmsr_list, fmsr_sensors, fmsr_recipe]),
    "TSFM": (201, 22, [tsfm_models, tsfm_tasks, tsfm_file_task, tsfm_file_task]),
    "WO": (401, 28, [wo_list, wo_create, wo_bundle, wo_events, wo_list, wo_ambiguous]),
    "E2E": (501, 52, [e2e]),
}


def build_catalogue(rng: random.Random) -> list[Scenario]:
    """All utterances of the corpus, in id order (150: 100 single-agent groups, 50 end-to-end)."""
    out: list[Scenario] = []
    for _group, (first, count, templates) in GROUPS.items():
        for i in range(count):
            out.append(templates[i % len(templates)](rng, first + i))
    return out
