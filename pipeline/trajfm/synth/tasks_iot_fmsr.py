"""Single-agent utterance templates for the IoT (ids 0001-) and FMSR (ids 0101-) sub-agents.

Each template draws its asset, sensor, window and wording from the rng and returns a `Scenario` whose sub-tasks
and facts define the right run and the right answer. All wording is ours.
"""

from __future__ import annotations

import json
import random

from trajfm.synth.domain import (
    ASSET_CLASSES,
    ASSETS,
    SITES,
    assets_at,
)
from trajfm.synth.scenarios import (
    Scenario,
    SubTask,
    file_path,
    sensor_stats,
    unit_of,
    week_window,
    with_unit,
)

# ---- IoT ------------------------------------------------------------------------------------------------------


def iot_sites(rng: random.Random, uid: int) -> Scenario:
    text = rng.choice(
        (
            "Which sites does the IoT platform monitor?",
            "Give me the list of monitored IoT sites.",
            "What sites can I query for sensor data?",
            "Name every site that reports IoT data.",
        )
    )
    sites = ", ".join(SITES)
    st = SubTask(
        "IoTAgent",
        rng.choice(("list all sites", "list the available sites", "return all IoT sites")),
        f"The available sites are {sites}.",
        "iot.sites",
    )
    return Scenario(uid, "IoT", "sites", text, [st], "The monitored sites are:", [("sites", sites)])


def iot_assets(rng: random.Random, uid: int) -> Scenario:
    site = rng.choice(SITES)
    names = [a.name for a in assets_at(site)]
    text = rng.choice(
        (
            f"What equipment is registered at the {site} site?",
            f"List the assets installed at {site}.",
            f"Which assets can I monitor at site {site}?",
        )
    )
    fmt = rng.choice((None, None, "list", "json"))
    text += {"list": " Answer as a bulleted list.", "json": " Reply with a JSON object."}.get(fmt or "", "")
    st = SubTask(
        "IoTAgent",
        f"list assets at site {site}",
        f"{len(names)} assets are registered at {site}: " + ", ".join(names) + ".",
        "iot.assets",
        subject=site,
    )
    return Scenario(
        uid, "IoT", "assets", text, [st], f"Assets at {site}:", [("assets", ", ".join(names))], fmt
    )


def iot_sensors(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    sensors = ASSET_CLASSES[asset.kind].sensors
    text = rng.choice(
        (
            f"Which sensors are installed on {asset.name} at {asset.site}?",
            f"Show the sensor list of {asset.name} ({asset.site} site).",
            f"I need the names of all sensors on {asset.name} at {asset.site}.",
        )
    )
    fmt = rng.choice((None, "list", None))
    if fmt == "list":
        text += " Please give them as a numbered list."
    path = file_path(rng)
    st1 = SubTask(
        "IoTAgent",
        f"list sensors of {asset.name} at {asset.site}",
        f"Found {len(sensors)} sensors for {asset.name} at {asset.site}; they are listed in file {path}.",
        "iot.sensors",
        subject=asset.name,
        file_path=path,
    )
    st2 = SubTask("jsonreader", f"file_name={path}", json.dumps(list(sensors)), "read", subject=asset.name)
    return Scenario(
        uid,
        "IoT",
        "sensors",
        text,
        [st1, st2],
        f"Sensors on {asset.name}:",
        [("sensors", ", ".join(sensors))],
        fmt,
        asset=asset,
    )


def iot_history(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    sensor = rng.choice(ASSET_CLASSES[asset.kind].sensors)
    label, start, end = week_window(rng)
    lo, mean, hi = sensor_stats(rng, sensor)
    unit = unit_of(asset, sensor)
    n = rng.randint(96, 2016)
    fmt = rng.choice((None, None, "json", "degF" if unit == "degC" else "table"))
    text = rng.choice(
        (
            f"Pull the {sensor} readings of {asset.name} at {asset.site} for {label} and summarise them.",
            f"What did {asset.name}'s {sensor} look like between {start} and {end} at {asset.site}?",
            f"Summarise {sensor} for {asset.name} ({asset.site}) from {start} to {end}.",
        )
    )
    text += {
        "json": " Return the min, mean and max as JSON.",
        "degF": " Report temperatures in degrees Fahrenheit.",
        "table": " Put the summary in a table.",
    }.get(fmt or "", "")
    path = file_path(rng)
    st1 = SubTask(
        "IoTAgent",
        f"download history of {sensor} for {asset.name} at {asset.site} from {start} to {end}",
        f"Downloaded {n} observations of {sensor} for {asset.name} ({start} to {end}); stored in {path}.",
        "iot.history",
        subject=asset.name,
        file_path=path,
    )
    sample = [
        {"timestamp": f"{start}T{h:02d}:00:00", sensor: round(rng.uniform(lo, hi), 2)} for h in (0, 6, 12)
    ]
    st2 = SubTask("jsonreader", f"file_name={path}", json.dumps(sample), "read", subject=asset.name)
    facts = [
        ("sensor", sensor),
        ("min", with_unit(lo, unit)),
        ("mean", with_unit(mean, unit)),
        ("max", with_unit(hi, unit)),
        ("observations", str(n)),
    ]
    return Scenario(
        uid,
        "IoT",
        "history",
        text,
        [st1, st2],
        f"{sensor} of {asset.name}, {start} to {end}:",
        facts,
        fmt,
        asset=asset,
        period=label,
    )


def iot_ambiguous(rng: random.Random, uid: int) -> Scenario:
    kind = rng.choice(("chiller", "ahu", "pump"))
    word = {"chiller": "chiller", "ahu": "air handler", "pump": "pump"}[kind]
    text = rng.choice(
        (
            f"Get me the latest data for the {word}.",
            f"Is the {word} running normally?",
            f"Download recent readings for the {word} please.",
            f"How has the {word} been doing lately?",
        )
    )
    candidates = [a for a in ASSETS if a.kind == kind]
    asset = rng.choice(candidates)
    sensor = ASSET_CLASSES[kind].sensors[0]
    label, start, end = week_window(rng)
    lo, mean, hi = sensor_stats(rng, sensor)
    unit = unit_of(asset, sensor)
    path = file_path(rng)
    st = SubTask(
        "IoTAgent",
        f"download history of {sensor} for {asset.name} at {asset.site} from {start} to {end}",
        f"Downloaded {rng.randint(96, 900)} observations of {sensor} for {asset.name} ({start} to {end}); "
        f"stored in {path}.",
        "iot.history",
        subject=asset.name,
        file_path=path,
    )
    ask = SubTask(
        "IoTAgent",
        f"list all {word}s across sites",
        f"{len(candidates)} {word}s are registered: "
        + ", ".join(f"{a.name} ({a.site})" for a in candidates)
        + ".",
        "iot.assets",
    )
    names = ", ".join(f"{a.name} at {a.site}" for a in candidates[:4])
    clarify = (
        f"The request does not say which {word} or which time window is meant. Candidates include {names}. "
        "Which asset and period should I use?"
    )
    facts = [("asset", asset.name), ("sensor", sensor), ("mean", with_unit(mean, unit))]
    return Scenario(
        uid,
        "IoT",
        "ambiguous_data",
        text,
        [st],
        f"{sensor} of {asset.name} for {label}:",
        facts,
        ambiguous=True,
        clarify=clarify,
        ask_subtasks=[ask],
        asset=asset,
        period=label,
    )


# ---- FMSR -----------------------------------------------------------------------------------------------------


def fmsr_list(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    fms = [f.name for f in ASSET_CLASSES[asset.kind].failure_modes]
    fmt = rng.choice((None, "list", "json", None))
    text = rng.choice(
        (
            f"What can go wrong with {asset.name} at {asset.site}? List its failure modes.",
            f"Enumerate the known failure modes of {asset.name}.",
            f"Which failure modes apply to {asset.name} ({asset.site})?",
        )
    )
    text += {"list": " One failure mode per bullet, please.", "json": " Answer in JSON."}.get(fmt or "", "")
    st = SubTask(
        "FMSRAgent",
        f"list failure modes of {asset.name}",
        f"{asset.name} is a {asset.kind.replace('_', ' ')}; its failure modes are " + ", ".join(fms) + ".",
        "fmsr.list",
        subject=asset.name,
    )
    return Scenario(
        uid,
        "FMSR",
        "fm_list",
        text,
        [st],
        f"Failure modes of {asset.name}:",
        [("failure modes", ", ".join(fms))],
        fmt,
        asset=asset,
    )


def fmsr_sensors(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    fm = rng.choice(ASSET_CLASSES[asset.kind].failure_modes)
    text = rng.choice(
        (
            f"If {asset.name} develops {fm.name}, which sensors would show it first?",
            f"Which sensors should I watch on {asset.name} to catch {fm.name} early?",
            f"Map {fm.name} on {asset.name} to the sensors that can detect it.",
        )
    )
    fmt = rng.choice((None, "table", None))
    if fmt == "table":
        text += " Use a table with one row per sensor."
    st = SubTask(
        "FMSRAgent",
        f"which sensors detect {fm.name} on {asset.name}",
        f"{fm.name} on {asset.name} is visible in " + ", ".join(fm.sensors) + f": {fm.signature}.",
        "fmsr.sensors",
        subject=asset.name,
    )
    return Scenario(
        uid,
        "FMSR",
        "fm_sensors",
        text,
        [st],
        f"Sensors that reveal {fm.name} on {asset.name}:",
        [("sensors", ", ".join(fm.sensors)), ("signature", fm.signature)],
        fmt,
        asset=asset,
    )


def fmsr_recipe(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice(ASSETS)
    fm = rng.choice(ASSET_CLASSES[asset.kind].failure_modes)
    text = rng.choice(
        (
            f"Draft a detection recipe for {fm.name} on {asset.name}.",
            f"How would we build an early-warning rule for {fm.name} in {asset.name}?",
            f"Propose a monitoring plan that detects {fm.name} on {asset.name} at {asset.site}.",
        )
    )
    window = rng.choice(("24 hours", "3 days", "7 days"))
    recipe = f"monitor {', '.join(fm.sensors)} with a rolling {window} baseline; alert when {fm.signature}"
    st = SubTask(
        "FMSRAgent",
        f"generate a detection recipe for {fm.name} on {asset.name}",
        f"Recipe for {fm.name}: {recipe}.",
        "fmsr.recipe",
        subject=asset.name,
    )
    return Scenario(
        uid,
        "FMSR",
        "fm_recipe",
        text,
        [st],
        f"Detection recipe for {fm.name} on {asset.name}:",
        [("recipe", recipe)],
        asset=asset,
    )
