"""The scenario model of the synthetic corpus: an utterance, the sub-tasks a careful agent runs, the right answer.

A `Scenario` is one utterance (a 4-digit id, as AssetOpsBench numbers them: IoT 0001-, FMSR 0101-, TSFM 0201-,
work orders 0401-, end-to-end multi-agent 0501-). It carries the ordered `SubTask`s a careful MetaAgent would
delegate (tool, request, the sub-agent's successful answer), the facts of the right final answer, an optional
requested output format, and for ambiguous utterances the clarifying question the agent should ask instead.
Templates live in `tasks_single.py` and `tasks_e2e.py`, the catalogue in `catalogue.py`; this module holds the
data model and the value helpers the templates share.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from trajfm.synth.domain import (
    ASSET_CLASSES,
    Asset,
)

FORMATS = ("json", "table", "list", "degF")


@dataclass(slots=True)
class SubTask:
    """One delegation of the MetaAgent: a tool, its request, and what a working sub-agent answers."""

    tool: str
    request: str
    answer: str
    kind: str
    subject: str = ""
    file_path: str | None = None


@dataclass(slots=True)
class Scenario:
    uid: int
    group: str
    template: str
    text: str
    subtasks: list[SubTask]
    headline: str
    facts: list[tuple[str, str]]
    fmt: str | None = None
    ambiguous: bool = False
    clarify: str = ""
    ask_subtasks: list[SubTask] = field(default_factory=list)
    asset: Asset | None = None
    period: str = ""

    @property
    def multi_agent(self) -> bool:
        agents = {s.tool for s in self.subtasks if s.tool not in ("jsonreader", "Finish")}
        return len(agents) > 1

    @property
    def required_tools(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.subtasks:
            seen.setdefault(s.tool, None)
        return list(seen)


def file_path(rng: random.Random) -> str:
    """A temp-file path like the MetaAgent's, deterministic from the rng (no uuid4)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"/tmp/aob/cbmdir/{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}.json"


# A sensor's plausible reading range by the first of these words its name contains (else 5 to 95).
TYPICAL_RANGES: tuple[tuple[tuple[str, ...], tuple[float, float]], ...] = (
    (("temperature", "dew point"), (6.0, 38.0)),
    (("pressure",), (180.0, 1150.0)),
    (("flow",), (12.0, 140.0)),
    (("power",), (40.0, 420.0)),
    (("current",), (18.0, 160.0)),
    (("vibration",), (0.8, 9.5)),
    (("tonnage",), (120.0, 900.0)),
)


def typical_range(sensor: str) -> tuple[float, float]:
    s = sensor.lower()
    return next((span for words, span in TYPICAL_RANGES if any(w in s for w in words)), (5.0, 95.0))


def sensor_stats(rng: random.Random, sensor: str) -> tuple[float, float, float]:
    lo, hi = typical_range(sensor)
    a, b = sorted(round(rng.uniform(lo, hi), 1) for _ in range(2))
    return a, round((a + b) / 2 + rng.uniform(-0.1, 0.1) * (b - a), 1), b


def unit_of(asset: Asset, sensor: str) -> str:
    return ASSET_CLASSES[asset.kind].units.get(sensor, "")


def week_window(rng: random.Random) -> tuple[str, str, str]:
    """A one-week window: (label, start, end)."""
    year = rng.choice((2021, 2022, 2023, 2024))
    month = rng.randint(1, 12)
    day = rng.randint(1, 21)
    start = f"{year}-{month:02d}-{day:02d}"
    end = f"{year}-{month:02d}-{day + 7:02d}"
    return f"the week of {start}", start, end


def with_unit(value: float, unit: str) -> str:
    return f"{value} \N{DEGREE SIGN}C" if unit == "degC" else f"{value} {unit}"
