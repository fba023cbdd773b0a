"""End-to-end utterance templates (ids 0501-): tasks that need several sub-agents in sequence.

Variants: anomaly check, forecast, failure-mode check, anomaly then work order, the full chain, and an
ambiguous request that names no asset. All wording is ours.
"""

from __future__ import annotations

import random

from trajfm.synth.domain import (
    ASSET_CLASSES,
    ASSETS,
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

# ---- end-to-end (multi-agent) -----------------------------------------------------------------------------------


def e2e(rng: random.Random, uid: int) -> Scenario:
    asset = rng.choice([a for a in ASSETS if a.kind in ("chiller", "pump", "ahu", "compressor")])
    cls = ASSET_CLASSES[asset.kind]
    fm = rng.choice(cls.failure_modes)
    sensor = fm.sensors[0]
    label, start, end = week_window(rng)
    path = file_path(rng)
    n_obs = rng.randint(150, 2016)
    n_anom = rng.randint(1, 5)
    unit = unit_of(asset, sensor)
    lo, mean, hi = sensor_stats(rng, sensor)
    wonum = f"WO-{rng.randint(100000, 999999)}"
    iot = SubTask(
        "IoTAgent",
        f"download {sensor} of {asset.name} at {asset.site} from {start} to {end}",
        f"{n_obs} observations of {sensor} for {asset.name} from {start} to {end} saved in {path}.",
        "iot.history",
        subject=asset.name,
        file_path=path,
    )
    fmsr = SubTask(
        "FMSRAgent",
        f"which sensors of {asset.name} reveal {fm.name}",
        f"{fm.name} shows in " + ", ".join(fm.sensors) + f": {fm.signature}.",
        "fmsr.sensors",
        subject=asset.name,
    )
    tsad = SubTask(
        "TSFMAgent",
        f"run anomaly detection on {sensor} in {path}",
        f"{n_anom} anomalous windows found in {sensor}; the largest deviation reached {with_unit(hi, unit)}.",
        "tsfm.anomaly",
        subject=asset.name,
    )
    fcst = SubTask(
        "TSFMAgent",
        f"forecast {sensor} for the next 48 hours using {path}",
        f"48-hour forecast of {sensor}: mean {with_unit(mean, unit)}, range {lo} to {with_unit(hi, unit)}.",
        "tsfm.forecast",
        subject=asset.name,
    )
    wo = SubTask(
        "WOAgent",
        f"create work order for {asset.equipment_id}: inspect for {fm.name}, priority 2 - high",
        f"Work order {wonum} created for {asset.equipment_id} (inspect for {fm.name}).",
        "wo.create",
        subject=asset.equipment_id,
    )
    variant = rng.choice(("anomaly", "forecast", "fm_check", "anomaly_wo", "full", "ambiguous"))
    fmt = None
    if variant == "anomaly":
        text = rng.choice(
            (
                f"Were there anomalies in {asset.name}'s {sensor} during {label} at {asset.site}?",
                f"Check {sensor} of {asset.name} ({asset.site}) for anomalies in {label}.",
            )
        )
        subs = [iot, tsad]
        facts = [("anomalous windows", str(n_anom)), ("sensor", sensor), ("peak", with_unit(hi, unit))]
        fmt = rng.choice((None, "json", "degF" if unit == "degC" else None))
    elif variant == "forecast":
        text = rng.choice(
            (
                f"Using {label} of data at {asset.site}, forecast {asset.name}'s {sensor} for 48 hours.",
                f"Predict the next two days of {sensor} for {asset.name} based on {label}.",
            )
        )
        subs = [iot, fcst]
        facts = [
            ("forecast mean", with_unit(mean, unit)),
            ("low", with_unit(lo, unit)),
            ("high", with_unit(hi, unit)),
        ]
        fmt = rng.choice((None, "table", "degF" if unit == "degC" else None))
    elif variant == "fm_check":
        text = rng.choice(
            (
                f"Is {asset.name} at {asset.site} showing signs of {fm.name} in {label}?",
                f"Based on {label}'s data, assess the risk of {fm.name} on {asset.name}.",
            )
        )
        subs = [fmsr, iot, tsad]
        facts = [("failure mode", fm.name), ("evidence sensor", sensor), ("anomalous windows", str(n_anom))]
    elif variant == "anomaly_wo":
        text = rng.choice(
            (
                f"Look for anomalies in {asset.name}'s {sensor} over {label} and open a work order if "
                "any are found.",
                f"If {sensor} on {asset.name} was anomalous in {label}, raise a work order for it.",
            )
        )
        subs = [iot, tsad, wo]
        facts = [("anomalous windows", str(n_anom)), ("work order", wonum)]
        fmt = rng.choice((None, "list"))
    elif variant == "full":
        text = rng.choice(
            (
                f"Investigate {fm.name} on {asset.name} ({asset.site}): find the relevant sensors, check "
                f"their data for {label}, run anomaly detection and raise a work order if needed.",
                f"End-to-end check of {asset.name} for {fm.name} during {label}: sensors, data, "
                "anomalies, work order.",
            )
        )
        subs = [fmsr, iot, tsad, wo]
        facts = [("failure mode", fm.name), ("anomalous windows", str(n_anom)), ("work order", wonum)]
        fmt = rng.choice((None, "json", "table"))
    else:
        word = asset.kind.replace("_", " ")
        text = rng.choice(
            (
                f"Check whether the {word} has any anomalies and fix it with a work order.",
                f"Something looks off with the {word}; analyse its data and raise a work order.",
            )
        )
        subs = [iot, tsad, wo]
        facts = [("asset", asset.name), ("anomalous windows", str(n_anom)), ("work order", wonum)]
        ask = SubTask(
            "IoTAgent",
            f"list all {word} assets",
            f"Several {word} assets are registered across sites.",
            "iot.assets",
        )
        clarify = f"Which {word} (and which site and time window) do you mean? Several are registered."
        return Scenario(
            uid,
            "E2E",
            "e2e_ambiguous",
            text,
            subs,
            "Result:",
            facts,
            ambiguous=True,
            clarify=clarify,
            ask_subtasks=[ask],
            asset=asset,
            period=label,
        )
    text += {
        "json": " Return JSON.",
        "table": " Summarise in a table.",
        "degF": " Give temperatures in Fahrenheit.",
        "list": " Reply as a bullet list.",
    }.get(fmt or "", "")
    return Scenario(
        uid,
        "E2E",
        f"e2e_{variant}",
        text,
        subs,
        f"{asset.name}, {label}:",
        facts,
        fmt,
        asset=asset,
        period=label,
    )
