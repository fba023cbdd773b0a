"""Phrasing banks: the sentences synthetic agents, sub-agents and reviewers say, several ways each.

Every bank is a tuple of `str.format` templates; `say(rng, BANK, **slots)` picks one. Thoughts are composed of an
opener, a core and sometimes a closer, so two traces of the same utterance rarely read alike. All text is ours.
Contract for the planters: a thought built from `MISMATCH_THOUGHT` names the intended tool exactly (`{tool}`),
`ASSUME` thoughts name the assumed asset, and no clean thought names a tool other than the one it calls.
"""

from __future__ import annotations

import random


def say(rng: random.Random, bank: tuple[str, ...], **slots: object) -> str:
    return rng.choice(bank).format(**slots)


OPENERS = ("", "", "", "First, ", "To start, ", "Okay. ", "Right, ", "Good. ", "Next, ", "Now ", "Alright, ")

CORE_BY_KIND: dict[str, tuple[str, ...]] = {
    "iot.sites": (
        "I need the list of sites the IoT platform knows about.",
        "the site list is the first thing to get.",
        "I should ask for every monitored site.",
        "let me query the available sites.",
    ),
    "iot.assets": (
        "I need the assets registered at the site in question.",
        "I should list the equipment first.",
        "the asset inventory will tell me what exists.",
        "let me fetch the asset list.",
    ),
    "iot.sensors": (
        "I need the sensor inventory of {subject}.",
        "let me see which sensors {subject} reports.",
        "the sensor list for {subject} comes first.",
        "I should retrieve {subject}'s sensors.",
    ),
    "iot.history": (
        "I need the historical readings for {subject} over the requested window.",
        "the data for {subject} has to be downloaded before anything else.",
        "let me pull {subject}'s time series for that period.",
        "I will fetch the recorded values of {subject}.",
    ),
    "read": (
        "The data sits in a file; I will read it to see the values.",
        "let me open the file that was returned.",
        "reading the JSON file will give me the actual numbers.",
        "I should inspect the saved file.",
    ),
    "fmsr.list": (
        "I need the failure modes that apply to {subject}.",
        "the failure-mode catalogue for {subject} is what answers this.",
        "let me look up how {subject} can fail.",
    ),
    "fmsr.sensors": (
        "I need the mapping between this failure mode and the sensors of {subject}.",
        "which sensors carry the signature is the key question for {subject}.",
        "let me get the failure-mode-to-sensor relevance for {subject}.",
    ),
    "fmsr.recipe": (
        "I should ask for a detection recipe for {subject}.",
        "a rule built on the right sensors is needed for {subject}.",
        "let me request a monitoring recipe for {subject}.",
    ),
    "tsfm.models": (
        "I need the catalogue of pretrained time-series models.",
        "the model list will answer this.",
        "let me check which checkpoints exist.",
    ),
    "tsfm.tasks": (
        "I should ask which time-series tasks are supported.",
        "the supported analyses answer this.",
        "let me list what the time-series service can do.",
    ),
    "tsfm.forecast": (
        "With the data available, I can request the forecast for {subject}.",
        "next comes the forecast for {subject}.",
        "a forecast over the horizon is what is asked.",
    ),
    "tsfm.anomaly": (
        "The series can now go through anomaly detection.",
        "I should run anomaly detection on the data of {subject}.",
        "let me look for anomalous windows in {subject}'s data.",
    ),
    "wo.list": (
        "I need the work orders of {subject} for that year.",
        "the work order history of {subject} comes first.",
        "let me retrieve {subject}'s work orders.",
    ),
    "wo.create": (
        "Everything points to an inspection, so a work order on {subject} is due.",
        "I should raise the work order on {subject} now.",
        "time to open a work order for {subject}.",
    ),
    "wo.bundle": (
        "I need the open work orders on {subject} and a bundling recommendation.",
        "let me ask which work orders on {subject} can share a visit.",
    ),
    "wo.events": (
        "I need the event counts for {subject} in that month.",
        "let me summarise {subject}'s events by type.",
    ),
}

CLOSERS = (
    "",
    "",
    "",
    "",
    " That should give me what I need.",
    " Then I can decide the next step.",
    " I will use {tool} for this.",
    " {tool} handles this kind of request.",
)

FINAL_THOUGHT = (
    "I now know the final answer.",
    "I have everything required to answer.",
    "All the pieces are in place; I can answer now.",
    "The results answer the question.",
    "That completes the task; time to report.",
    "I can now give the final answer.",
)

SUMMARY_LINE = (
    "{label} finished; outcome in status, reviewer notes in review.",
    "{label}: request done, see the review block.",
    "{label} completed its run; review attached.",
)

REVIEW_OK = (
    "The sub-agent ran the right call and its answer matches what the tool returned.",
    "The response is backed by the tool output and answers the request directly.",
    "The agent used the appropriate operation; the result is consistent with the observation.",
    "The request was fulfilled and the reported values come from the tool, not from guesswork.",
)
SUGGEST_OK = (
    "",
    "",
    "A one-line summary of the data would make the answer easier to use.",
    "Mention the units explicitly next time.",
)
REVIEW_FAIL = (
    "The agent did not obtain the requested data; the answer is not supported by any tool output.",
    "The underlying call failed and the agent reported no usable result.",
    "The response does not address the request: the required data was never retrieved.",
    "The agent's final answer is empty of results; the task was not completed.",
)
SUGGEST_FAIL = (
    "Check the asset and sensor names and retry with a valid time window.",
    "Verify that the data exists before answering.",
    "Retry the call or report the failure clearly.",
)
FAILED_ANSWER = (
    "The sub-agent could not produce an answer for this request.",
    "No result: the operation ended without data.",
    "Agent stopped before producing a final answer.",
    "Unable to complete the request with the available tools.",
)
NO_DATA_ANSWER = (
    "The request ran but returned 0 observations for {subject} in that window.",
    "No records matched the request for {subject}; the result set is empty.",
    "The dataset for {subject} over that period is not available.",
)

ERRORS = (
    "Error encountered: Execution failed while calling the tool. Details: upstream service returned HTTP 503.",
    "Error encountered: request timed out after 120 s while waiting for the {tool} backend.",
    "Error encountered: Execution failed while calling the tool. Details: connection reset by peer.",
    "Error encountered: KeyError: 'assetnum' raised inside {tool}.",
    "Error encountered: rate limit exceeded (429) for {tool}; try again later.",
    "Error encountered: Execution failed while calling the tool. Details: model endpoint unavailable in "
    "this region.",
)

FORMAT_ERROR = (
    "The action could not be decoded. Write the action as a tool name from the list, then the input "
    "on the Action Input line; for Finish the input must be the final answer.",
    "Unparseable action: expected one of the listed tool names followed by its Action Input. Fix the "
    "format and try again.",
)

RETRY_THOUGHT = (
    "The call failed. I will send the same request again.",
    "That looks transient; retrying as is.",
    "Another error. Trying the identical request once more.",
    "Let me simply repeat the request.",
    "It failed again, but it may work on the next attempt.",
)

# These name the sub-agent loosely ("the IoT agent"), never by tool name: the next action calls another tool.
RECOVER_THOUGHT = (
    "That request was too broad and failed; narrowing it.",
    "The last call errored. I will send a tighter request instead.",
    "Trying again with a more specific request.",
    "The tool rejected that; rephrasing the request.",
)

MOVE_ON_THOUGHT = (
    "The {label} has responded, so that part is done. Moving on.",
    "Got the result from the {label}; next step.",
    "The {label} returned its answer. I can continue with the plan.",
    "That step is complete according to the {label}. Continuing.",
)

MISMATCH_THOUGHT = (
    "I should ask the {tool} to {purpose}.",
    "The right move is to call {tool} and {purpose}.",
    "Let me use {tool} to {purpose}.",
    "{tool} can {purpose}; I will call it now.",
)
PURPOSE = {
    "IoTAgent": "download the raw sensor data",
    "FMSRAgent": "map the failure mode to its sensors",
    "TSFMAgent": "run anomaly detection on the series",
    "WOAgent": "open a work order",
    "jsonreader": "read the saved file",
}

ASSUME = (
    "The request does not name the asset; I will assume it means {asset} at {site} for {period}.",
    "No asset or window was given. Presumably this is {asset} ({site}), {period}.",
    "I'll go with {asset} at {site} and {period}, the most likely candidate.",
    "Most likely the user means {asset}; I'll take {period} as the window.",
)

HALLUCINATE = (
    "I will query {entity}, which should hold the relevant readings.",
    "Let me also pull {entity}; it is the usual place this shows up.",
    "{entity} is the natural thing to check next.",
)
NOT_FOUND = (
    "{entity} was not found at {site}. Available: {available}.",
    "No asset or sensor named {entity} exists at {site}; known names are {available}.",
    "Lookup failed: {entity} is not registered at {site}. Registered: {available}.",
)

EXTRA_THOUGHT = (
    "To be thorough, let me double-check with another query.",
    "Before finishing, I'll gather a little more context.",
    "Let me confirm the result with one more call.",
    "I'll look at this from another angle first.",
    "One more check would not hurt.",
    "It may be worth verifying a related detail.",
    "Some extra context could make the answer stronger.",
    "Let me make sure nothing else is relevant here.",
    "A quick cross-check before I wrap up.",
    "I want to rule out anything I may have missed.",
)

PREMATURE_THOUGHT = (
    "That should be enough to answer.",
    "I think I can answer already.",
    "No need to go further; I have the gist.",
    "This is sufficient for a response.",
)

OVERSTATE = (
    "Successfully completed: {headline} all requested steps were carried out.",
    "Done. The analysis is complete and confirms the expected result. {headline}",
    "Task accomplished. {headline} Everything was retrieved and verified.",
    "All data was retrieved and analysed successfully. {headline}",
)

ARTEFACTS = (
    "## Step 1: Understand the request\n{body}\n## Step 2: Report\nThe final answer is above.",
    "{body}\nThought: I now know the final answer",
    "{body}<|eot_id|>",
    "{body}\nAction Input: answer={body_short}",
    "Final Answer: {body}\n\n## Step 3: Verify",
    "{body} $\\boxed{{done}}$ <|eot_id|><|start_header_id|>assistant",
)

ASK_ANSWER = ("{clarify}", "Before I run anything: {clarify}", "I need one detail first. {clarify}")

REFLECTION = (
    "Looking back, I should have checked the tool output before building on it.",
    "I relied on a result that did not contain data. Next time I will verify each observation first.",
    "I repeated calls instead of changing my approach; a different request would have helped.",
    "I should confirm which asset is meant before running the analysis.",
)

REVIEW_TOP_OK = (
    "The agent executed the needed calls and the answer follows from the observations.",
    "All required steps were performed and the final response answers the question.",
    "The answer is supported by the retrieved data and covers the request.",
)
REVIEW_TOP_FAIL = (
    "The final answer is not supported by the observations; required results are missing.",
    "Key steps failed or were skipped, so the response does not satisfy the request.",
    "The agent did not obtain the information the task asked for.",
)
REVIEW_TOP_FOOLED = (
    "The agent reports that all steps completed and gives a confident answer.",
    "The response states the task was completed successfully.",
)
