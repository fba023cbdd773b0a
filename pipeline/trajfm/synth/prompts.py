"""Prompts the synthetic MetaAgent and its sub-agents carry in their files (system prompt, few-shot demonstration).

Written for trajfm in the shape of AssetOpsBench's ReAct prompts (tool list, format block, guidance, examples),
kept short so the corpus stays a few megabytes. They are the same for every trace, as in the real runs.
"""

from __future__ import annotations

_TOOLS_TOP = (
    ("IoTAgent[request]", "sites, assets, sensors; saves sensor history to a JSON file."),
    ("FMSRAgent[request]", "failure modes, which sensors reveal them, detection recipes."),
    ("TSFMAgent[request]", "forecasting, anomaly detection, pretrained model list."),
    ("WOAgent[request]", "reads, counts, bundles and creates work orders; alert and anomaly events."),
    ("jsonreader[file_name]", "returns the parsed content of a JSON file."),
    ("Finish[answer]", "returns the final answer and ends the task."),
)

_SUB_TOOLS = {
    "IoTAgent": (
        ("sites[]", "Lists the sites."),
        ("assets[site_name]", "Lists the assets of a site."),
        ("sensors[site_name, assetnum]", "Lists the sensors of an asset."),
        ("history[site_name, assetnum, start, final]", "Saves sensor values in a window to a file."),
        ("jsonreader[file_name]", "Reads a JSON file."),
    ),
    "FMSRAgent": (
        ("failure_modes[asset_class]", "Lists failure modes."),
        ("fm_sensor_map[asset_class, failure_mode]", "Relates a failure mode to sensors."),
        ("recipe[asset_class, failure_mode]", "Drafts a detection recipe."),
    ),
    "TSFMAgent": (
        ("models[]", "Lists pretrained models."),
        ("forecast[dataset, target, horizon]", "Forecasts."),
        ("anomaly[dataset, target]", "Detects anomalous windows."),
    ),
    "WOAgent": (
        ("workorders[equipment_id, start, end]", "Fetches work orders."),
        ("events[equipment_id, month]", "Counts alerts, anomalies and work orders."),
        ("create_workorder[equipment_id, description, priority]", "Opens a work order."),
        ("bundle[equipment_id, year]", "Suggests work orders to combine."),
    ),
}

_FORMAT = (
    "Format:\nQuestion: the question\nThought: what to do next\nAction: one of [{names}]\n"
    "Action Input: the tool input\nObservation: the tool result\n... (repeat as needed)\n"
    "Thought: I now know the final answer\nFinal Answer: the answer\n\n"
    "## Guidance\n### 1. Reason without tools for dates and arithmetic.\n"
    "### 2. If the asset, site or time window is missing, ask instead of guessing.\n\n"
    "(END OF EXAMPLES)\n\nQuestion: \n"
)


def _prompt(tools: tuple[tuple[str, str], ...]) -> str:
    lines = [f"({i}) {sig} : {desc}" for i, (sig, desc) in enumerate(tools, start=1)]
    if not any(sig.startswith("Finish") for sig, _ in tools):
        lines.append(f"({len(lines) + 1}) Finish[answer] : Returns the final answer and ends the task.")
    names = ", ".join(sig.split("[")[0] for sig, _ in tools if not sig.startswith("Finish"))
    return (
        "Answer the question as well as you can. Tools:\n"
        + "\n".join(lines)
        + "\n\n"
        + _FORMAT.format(names=names)
    )


SYSTEM_PROMPT = _prompt(_TOOLS_TOP)
SUB_SYSTEM_PROMPTS = {agent: _prompt(tools) for agent, tools in _SUB_TOOLS.items()}

DEMONSTRATION = (
    "Question: which sensors does Chiller 2 at RIVERSIDE report?\n"
    "Thought 1: I need the sensor inventory of Chiller 2.\n"
    "Action 1: IoTAgent\n"
    "Action Input 1: request=list sensors of Chiller 2 at RIVERSIDE\n"
    'Observation 1: {"answer": "10 sensors, listed in /tmp/aob/cbmdir/example.json"}\n'
    "Thought 2: I now know the final answer\n"
    "Action 2: Finish\n"
    "Action Input 2: The sensors of Chiller 2 are listed in /tmp/aob/cbmdir/example.json.\n"
)

SUB_DEMONSTRATION = (
    "Question: what sites are there\n"
    "Thought 1: I need the site list.\n"
    "Action 1: sites\n"
    "Action Input 1: {}\n"
    'Observation 1: {"sites": ["RIVERSIDE", "HILLCREST", "DOCKSIDE"]}\n'
    "Thought 2: I now know the final answer\n"
    "Action 2: Finish\n"
    "Action Input 2: The sites are RIVERSIDE, HILLCREST and DOCKSIDE.\n"
)

ISSUE_PREFIX = "We are working on a condition-based maintenance problem. The request:\nISSUE:\n"
