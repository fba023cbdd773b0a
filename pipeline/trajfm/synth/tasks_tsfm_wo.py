"""Single-agent utterance templates for the TSFM (ids 0201-) and work-order (ids 0401-) sub-agents.

Each template draws its asset, sensor, window and wording from the rng and returns a `Scenario` whose sub-tasks
and facts define the right run and the right answer. All wording is ours.
"""

from __future__ import annotations

import random

from trajfm.synth.domain import (
    ASSET_CLASSES,
    ASSETS,
    TSFM_MODELS,
    TSFM_TASKS,
    WO_PRIORITIES,
    WO_TYPES,
)
from trajfm.synth.scenarios import (
    Scenario,
    SubTask,
    file_path,
    sensor_stats,
    unit_of,
    with_unit,
)

# ---- TSFM -----------------------------------------------------------------------------------------------------


def tsfm_models(rng: random.Random, uid: int) -> Scenario:
    ctx = rng.choice((512, 1024, 1536))
    models = [m for m in TSFM_MODELS if m.startswith(f"ttm-{ctx}")]
    text = rng.choice(
        (
            f"Which pretrained forecasting models accept a context length of {ctx}?",
            f"Is there a time-series model with context length {ctx} available?",
            f"List the TSFM checkpoints that take {ctx} input points.",
        )
    )
    fmt = rng.choice((None, "list"))
    if fmt == "list":
        text += " List them as bullets."
    st = SubTask(
        "TSFMAgent",
        f"list pretrained models with context length {ctx}",
        f"Models with context length {ctx}: " + ", ".join(models) + ".",
        "tsfm.models",
    )
    return Scenario(
        uid,
        "TSFM",
        "models",
        text,
        [st],
        f"Models with context length {ctx}:",
        [("models", ", ".join(models))],
        fmt,
    )


def tsfm_tasks(rng: random.Random, uid: int) -> Scenario:
    text = rng.choice(
        (
            "What kinds of time-series analysis can the platform run?",
            "Which time-series tasks are supported?",
            "What can the TSFM service do with sensor data?",
        )
    )
    st = SubTask(
        "TSFMAgent",
        "list supported time-series tasks",
        "Supported tasks: " + ", ".join(TSFM_TASKS) + ".",
        "tsfm.tasks",
    )
    return Scenario(
        uid, "TSFM", "tasks", text, [st], "Supported time-series tasks:", [("tasks", ", ".join(TSFM_TASKS))]
    )


def tsfm_file_task(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice([a for a in ASSETS if a.kind in ("chiller", "pump", "ahu")])
    sensor = rng.choice(ASSET_CLASSES[asset.kind].sensors)
    fname = f"{asset.name.lower().replace(' ', '_')}_{sensor.lower().replace(' ', '_')}.csv"
    task = rng.choice(("forecast", "anomaly"))
    if task == "forecast":
        horizon = rng.choice((24, 48, 96))
        lo, mean, hi = sensor_stats(rng, sensor)
        unit = unit_of(asset, sensor)
        text = rng.choice(
            (
                f"Forecast the next {horizon} hours of '{sensor}' from the data in '{fname}'.",
                f"Using '{fname}', predict {sensor} for the coming {horizon} hours.",
            )
        )
        st = SubTask(
            "TSFMAgent",
            f"forecast {sensor} for {horizon} hours using {fname}",
            f"Forecast written for {horizon} hours of {sensor}; expected range {lo} to {with_unit(hi, unit)}, "
            f"mean {with_unit(mean, unit)}.",
            "tsfm.forecast",
            subject=asset.name,
        )
        facts = [
            ("horizon", f"{horizon} h"),
            ("expected mean", with_unit(mean, unit)),
            ("range", f"{lo} to {with_unit(hi, unit)}"),
        ]
        return Scenario(
            uid,
            "TSFM",
            "forecast_file",
            text,
            [st],
            f"{horizon}-hour forecast of {sensor}:",
            facts,
            asset=asset,
        )
    n = rng.randint(0, 6)
    text = rng.choice(
        (
            f"Check '{fname}' for anomalies in {sensor}.",
            f"Run anomaly detection on {sensor} in '{fname}' and tell me what you find.",
        )
    )
    fmt = rng.choice((None, "json"))
    if fmt == "json":
        text += " Give the result as JSON."
    st = SubTask(
        "TSFMAgent",
        f"run anomaly detection on {sensor} in {fname}",
        f"Anomaly detection finished on {fname}: {n} anomalous windows in {sensor}.",
        "tsfm.anomaly",
        subject=asset.name,
    )
    return Scenario(
        uid,
        "TSFM",
        "anomaly_file",
        text,
        [st],
        f"Anomaly detection on {sensor}:",
        [("anomalous windows", str(n)), ("sensor", sensor)],
        fmt,
        asset=asset,
    )


# ---- work orders ----------------------------------------------------------------------------------------------


def wo_list(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    year = rng.choice((2019, 2020, 2021, 2022))
    n = rng.randint(3, 40)
    corrective = rng.randint(0, n)
    text = rng.choice(
        (
            f"How many work orders were raised for equipment {asset.equipment_id} in {year}?",
            f"Retrieve the {year} work orders of {asset.equipment_id} and count the corrective ones.",
            f"Give me the work order history of {asset.equipment_id} for {year}.",
        )
    )
    fmt = rng.choice((None, "table", "json", None))
    text += {"table": " Show the counts in a table.", "json": " Respond in JSON."}.get(fmt or "", "")
    path = file_path(rng)
    st = SubTask(
        "WOAgent",
        f"get work orders for {asset.equipment_id} in {year}",
        f"{n} work orders found for {asset.equipment_id} in {year} ({corrective} corrective); "
        f"records saved to {path}.",
        "wo.list",
        subject=asset.equipment_id,
        file_path=path,
    )
    facts = [
        ("equipment", asset.equipment_id),
        ("year", str(year)),
        ("work orders", str(n)),
        ("corrective", str(corrective)),
    ]
    return Scenario(
        uid,
        "WO",
        "wo_list",
        text,
        [st],
        f"Work orders of {asset.equipment_id} in {year}:",
        facts,
        fmt,
        asset=asset,
    )


def wo_create(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    fm = rng.choice(ASSET_CLASSES[asset.kind].failure_modes)
    prio = rng.choice(WO_PRIORITIES[:3])
    wonum = f"WO-{rng.randint(100000, 999999)}"
    text = rng.choice(
        (
            f"Open a {prio.split(' - ')[1]}-priority work order to inspect {asset.name} for {fm.name}.",
            f"Raise a work order on {asset.equipment_id} ({asset.name}) for suspected {fm.name}.",
        )
    )
    st = SubTask(
        "WOAgent",
        f"create work order for {asset.equipment_id}: inspect for {fm.name}, priority {prio}",
        f"Work order {wonum} created for {asset.equipment_id} (inspect for {fm.name}, priority {prio}).",
        "wo.create",
        subject=asset.equipment_id,
    )
    return Scenario(
        uid,
        "WO",
        "wo_create",
        text,
        [st],
        "Work order created:",
        [("work order", wonum), ("equipment", asset.equipment_id), ("priority", prio)],
        asset=asset,
    )


def wo_bundle(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    year = rng.choice((2020, 2021, 2022, 2023))
    kinds = rng.sample(WO_TYPES, 2)
    text = rng.choice(
        (
            f"Which open work orders on {asset.equipment_id} could be bundled into one visit in {year}?",
            f"Suggest work orders for {asset.equipment_id} that can be combined ({year}).",
        )
    )
    n = rng.randint(2, 5)
    st = SubTask(
        "WOAgent",
        f"recommend bundling of open work orders for {asset.equipment_id} in {year}",
        f"{n} open {kinds[0]} and {kinds[1]} work orders on {asset.equipment_id} fall within the same "
        "two-week window and can be done in one visit.",
        "wo.bundle",
        subject=asset.equipment_id,
    )
    return Scenario(
        uid,
        "WO",
        "wo_bundle",
        text,
        [st],
        f"Bundling proposal for {asset.equipment_id}:",
        [("bundle size", str(n)), ("types", f"{kinds[0]}, {kinds[1]}")],
        asset=asset,
    )


def wo_events(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    year, month = rng.choice((2020, 2021, 2022)), rng.randint(1, 12)
    alerts, anomalies, wos = rng.randint(0, 30), rng.randint(0, 12), rng.randint(0, 6)
    text = rng.choice(
        (
            f"Count alerts, anomalies and work orders for {asset.equipment_id} in {year}-{month:02d}.",
            f"Summarise the events of {asset.equipment_id} during {year}-{month:02d} by event type.",
        )
    )
    fmt = rng.choice((None, "table", "json"))
    text += {"table": " Present it as a table.", "json": " Output JSON only."}.get(fmt or "", "")
    st = SubTask(
        "WOAgent",
        f"summarise events of {asset.equipment_id} for {year}-{month:02d} by type",
        f"{asset.equipment_id} in {year}-{month:02d}: {alerts} alerts, {anomalies} anomalies, "
        f"{wos} work orders.",
        "wo.events",
        subject=asset.equipment_id,
    )
    facts = [("alerts", str(alerts)), ("anomalies", str(anomalies)), ("work orders", str(wos))]
    return Scenario(
        uid,
        "WO",
        "wo_events",
        text,
        [st],
        f"Events of {asset.equipment_id} in {year}-{month:02d}:",
        facts,
        fmt,
        asset=asset,
    )


def wo_ambiguous(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    kind = asset.kind.replace("_", " ")
    text = rng.choice(
        (
            f"Create a work order for the {kind} that keeps alarming.",
            f"Schedule maintenance for the faulty {kind}.",
        )
    )
    wonum = f"WO-{rng.randint(100000, 999999)}"
    st = SubTask(
        "WOAgent",
        f"create work order for {asset.equipment_id}: inspect alarms, priority 2 - high",
        f"Work order {wonum} created for {asset.equipment_id}.",
        "wo.create",
        subject=asset.equipment_id,
    )
    ask = SubTask(
        "WOAgent",
        f"list open alerts for {kind} assets",
        f"Several {kind} assets have open alerts.",
        "wo.events",
    )
    clarify = (
        f"Several {kind} assets have open alerts; which equipment id should the work order be raised on?"
    )
    return Scenario(
        uid,
        "WO",
        "ambiguous_wo",
        text,
        [st],
        "Work order created:",
        [("work order", wonum), ("equipment", asset.equipment_id)],
        ambiguous=True,
        clarify=clarify,
        ask_subtasks=[ask],
        asset=asset,
    )
