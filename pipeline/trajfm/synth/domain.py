"""Asset-operations content the synthetic corpus talks about: sites, assets, sensors, failure modes, work orders.

Everything here is invented for trajfm. The shape follows AssetOpsBench (sites with chillers, air handling units,
pumps; sensors with a signature per failure mode; work orders per equipment id), the names and values do not.
The agent models, their vendors and the trace counts per model are the anchor's (TrajFM, 881 traces).
"""

from __future__ import annotations

from dataclasses import dataclass

# The anchor corpus: model -> (vendor folder, number of traces). Order is the write order.
MODELS: dict[str, tuple[str, int]] = {
    "mistral-large": ("mistralai", 145),
    "llama-3-405b-instruct": ("meta-llama", 145),
    "llama-3-3-70b-instruct": ("meta-llama", 145),
    "llama-4-maverick-17b-128e-instruct-fp8": ("meta-llama", 125),
    "llama-4-scout-17b-16e-instruct": ("meta-llama", 111),
    "gpt-4.1-2025-04-14": ("openai", 105),
    "granite-3-3-8b-instruct": ("ibm-granite", 105),
}
TOTAL_TRACES = sum(n for _, n in MODELS.values())

# The integer model id the MetaAgent writes into overall_metric.configuration_parameters (any stable int works).
MODEL_IDS: dict[str, int] = {name: 3 + 4 * i for i, name in enumerate(MODELS)}

TOOLS = ("IoTAgent", "FMSRAgent", "TSFMAgent", "WOAgent", "jsonreader", "Finish")
SUB_AGENTS = ("IoTAgent", "FMSRAgent", "TSFMAgent", "WOAgent")


@dataclass(frozen=True, slots=True)
class FailureMode:
    """A failure mode of an asset class and the sensor pattern that reveals it."""

    name: str
    sensors: tuple[str, ...]
    signature: str


@dataclass(frozen=True, slots=True)
class AssetClass:
    kind: str
    sensors: tuple[str, ...]
    failure_modes: tuple[FailureMode, ...]
    units: dict[str, str]


ASSET_CLASSES: dict[str, AssetClass] = {
    "chiller": AssetClass(
        kind="chiller",
        sensors=(
            "Supply Water Temperature",
            "Return Water Temperature",
            "Condenser Water Flow",
            "Evaporator Pressure",
            "Condenser Pressure",
            "Compressor Power",
            "Tonnage",
            "Oil Temperature",
            "Vibration",
            "Percent Loaded",
        ),
        failure_modes=(
            FailureMode(
                "Refrigerant Leak",
                ("Evaporator Pressure", "Tonnage", "Supply Water Temperature"),
                "evaporator pressure drifts down while supply water temperature creeps up at the same load",
            ),
            FailureMode(
                "Condenser Fouling",
                ("Condenser Pressure", "Compressor Power", "Condenser Water Flow"),
                "condenser pressure and compressor power rise together with no change in flow",
            ),
            FailureMode(
                "Compressor Bearing Wear",
                ("Vibration", "Oil Temperature", "Compressor Power"),
                "vibration amplitude climbs step by step and oil temperature follows a few hours later",
            ),
            FailureMode(
                "Low Chilled Water Flow",
                ("Supply Water Temperature", "Return Water Temperature"),
                "the supply/return temperature difference widens beyond its design band",
            ),
            FailureMode(
                "Evaporator Tube Scaling",
                ("Evaporator Pressure", "Supply Water Temperature", "Tonnage"),
                "approach temperature grows slowly over weeks while tonnage falls",
            ),
        ),
        units={
            "Supply Water Temperature": "degC",
            "Return Water Temperature": "degC",
            "Condenser Water Flow": "L/s",
            "Evaporator Pressure": "kPa",
            "Condenser Pressure": "kPa",
            "Compressor Power": "kW",
            "Tonnage": "tons",
            "Oil Temperature": "degC",
            "Vibration": "mm/s",
            "Percent Loaded": "%",
        },
    ),
    "ahu": AssetClass(
        kind="ahu",
        sensors=(
            "Supply Air Temperature",
            "Return Air Temperature",
            "Mixed Air Temperature",
            "Fan Speed",
            "Filter Differential Pressure",
            "Cooling Valve Position",
            "Duct Static Pressure",
        ),
        failure_modes=(
            FailureMode(
                "Clogged Filter",
                ("Filter Differential Pressure", "Fan Speed"),
                "filter differential pressure rises steadily and fan speed ramps up to hold static pressure",
            ),
            FailureMode(
                "Stuck Cooling Valve",
                ("Cooling Valve Position", "Supply Air Temperature"),
                "valve position stays flat while supply air temperature wanders off setpoint",
            ),
            FailureMode(
                "Fan Belt Slip",
                ("Fan Speed", "Duct Static Pressure"),
                "fan speed command is high but duct static pressure sags",
            ),
            FailureMode(
                "Damper Actuator Failure",
                ("Mixed Air Temperature", "Return Air Temperature"),
                "mixed air temperature tracks return air temperature regardless of outside conditions",
            ),
        ),
        units={
            "Supply Air Temperature": "degC",
            "Return Air Temperature": "degC",
            "Mixed Air Temperature": "degC",
            "Fan Speed": "%",
            "Filter Differential Pressure": "Pa",
            "Cooling Valve Position": "%",
            "Duct Static Pressure": "Pa",
        },
    ),
    "pump": AssetClass(
        kind="pump",
        sensors=(
            "Discharge Pressure",
            "Suction Pressure",
            "Flow Rate",
            "Motor Current",
            "Bearing Temperature",
            "Vibration Velocity",
        ),
        failure_modes=(
            FailureMode(
                "Cavitation",
                ("Suction Pressure", "Vibration Velocity", "Flow Rate"),
                "suction pressure dips and vibration turns noisy while flow fluctuates",
            ),
            FailureMode(
                "Impeller Wear",
                ("Flow Rate", "Discharge Pressure", "Motor Current"),
                "flow and discharge pressure fall at an unchanged motor current",
            ),
            FailureMode(
                "Mechanical Seal Leak",
                ("Suction Pressure", "Flow Rate"),
                "small persistent loss of flow with a slow suction pressure decay",
            ),
            FailureMode(
                "Bearing Overheating",
                ("Bearing Temperature", "Vibration Velocity"),
                "bearing temperature climbs above its usual band, often after a vibration rise",
            ),
        ),
        units={
            "Discharge Pressure": "kPa",
            "Suction Pressure": "kPa",
            "Flow Rate": "L/s",
            "Motor Current": "A",
            "Bearing Temperature": "degC",
            "Vibration Velocity": "mm/s",
        },
    ),
    "cooling_tower": AssetClass(
        kind="cooling_tower",
        sensors=("Basin Temperature", "Fan Power", "Approach Temperature", "Makeup Water Flow"),
        failure_modes=(
            FailureMode(
                "Fill Fouling",
                ("Approach Temperature", "Fan Power"),
                "approach temperature grows although fan power is unchanged",
            ),
            FailureMode(
                "Fan Motor Failure",
                ("Fan Power", "Basin Temperature"),
                "fan power drops to zero and basin temperature rises within the hour",
            ),
            FailureMode(
                "Makeup Valve Leak",
                ("Makeup Water Flow", "Basin Temperature"),
                "makeup water flow stays high outside the evaporation pattern",
            ),
        ),
        units={
            "Basin Temperature": "degC",
            "Fan Power": "kW",
            "Approach Temperature": "degC",
            "Makeup Water Flow": "L/min",
        },
    ),
    "compressor": AssetClass(
        kind="compressor",
        sensors=(
            "Discharge Pressure",
            "Oil Temperature",
            "Motor Current",
            "Dew Point",
            "Inlet Valve Position",
        ),
        failure_modes=(
            FailureMode(
                "Air Leak",
                ("Discharge Pressure", "Motor Current"),
                "load cycles get shorter and the discharge pressure decays faster between them",
            ),
            FailureMode(
                "Intake Valve Sticking",
                ("Inlet Valve Position", "Discharge Pressure"),
                "inlet valve position freezes and discharge pressure overshoots",
            ),
            FailureMode("Dryer Saturation", ("Dew Point",), "pressure dew point rises over several days"),
        ),
        units={
            "Discharge Pressure": "bar",
            "Oil Temperature": "degC",
            "Motor Current": "A",
            "Dew Point": "degC",
            "Inlet Valve Position": "%",
        },
    ),
}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    equipment_id: str
    site: str
    kind: str

    @property
    def cls(self) -> AssetClass:
        return ASSET_CLASSES[self.kind]


SITES = ("RIVERSIDE", "HILLCREST", "DOCKSIDE")

ASSETS: tuple[Asset, ...] = (
    Asset("Chiller 2", "CHW-R0207", "RIVERSIDE", "chiller"),
    Asset("Chiller 5", "CHW-R0511", "RIVERSIDE", "chiller"),
    Asset("Chiller 7", "CHW-R0733", "RIVERSIDE", "chiller"),
    Asset("AHU 3 East", "AHU-R0304", "RIVERSIDE", "ahu"),
    Asset("Condenser Pump 1", "PMP-R0102", "RIVERSIDE", "pump"),
    Asset("Cooling Tower 2", "CTW-R0209", "RIVERSIDE", "cooling_tower"),
    Asset("Chiller 11", "CHW-H1105", "HILLCREST", "chiller"),
    Asset("Chiller 12", "CHW-H1218", "HILLCREST", "chiller"),
    Asset("AHU 1B", "AHU-H0122", "HILLCREST", "ahu"),
    Asset("AHU 4 West", "AHU-H0417", "HILLCREST", "ahu"),
    Asset("Hot Water Pump 3", "PMP-H0306", "HILLCREST", "pump"),
    Asset("Chiller 21", "CHW-D2103", "DOCKSIDE", "chiller"),
    Asset("Air Compressor A", "CMP-D0A01", "DOCKSIDE", "compressor"),
    Asset("Air Compressor B", "CMP-D0B02", "DOCKSIDE", "compressor"),
    Asset("Booster Pump 2", "PMP-D0214", "DOCKSIDE", "pump"),
    Asset("Cooling Tower 5", "CTW-D0508", "DOCKSIDE", "cooling_tower"),
)

# Names an agent might invent: plausible but absent from every site (used by the hallucination planter).
PHANTOM_ASSETS = (
    "Chiller 14",
    "Chiller 9B",
    "AHU 6 North",
    "Condenser Pump 4",
    "Air Compressor D",
    "Cooling Tower 7",
    "Chiller 31",
    "Booster Pump 6",
)
PHANTOM_SENSORS = (
    "Discharge Superheat",
    "Refrigerant Level",
    "Bearing Acoustic Index",
    "Coil Delta Pressure",
    "Suction Superheat",
    "Motor Winding Temperature",
    "Belt Tension",
    "Oil Pressure Differential",
)

WO_TYPES = ("corrective", "preventive", "inspection", "calibration")
WO_PRIORITIES = ("1 - urgent", "2 - high", "3 - medium", "4 - low")

TSFM_MODELS = ("ttm-512-96", "ttm-1024-96", "ttm-1536-96", "ttm-512-48")
TSFM_TASKS = ("anomaly detection", "forecasting", "forecast fine-tuning", "forecast evaluation")


def assets_at(site: str) -> list[Asset]:
    return [a for a in ASSETS if a.site == site]


def asset_named(name: str) -> Asset:
    for a in ASSETS:
        if a.name == name:
            return a
    raise KeyError(name)
