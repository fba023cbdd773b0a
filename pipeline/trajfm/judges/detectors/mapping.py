"""Finding kinds and how they map onto taxonomy modes and novel families: data, not code.

`FINDING_KINDS[kind]` describes one kind of finding the detectors emit:
- `modes[taxonomy_name]`: the mode ids of that taxonomy the kind is evidence for. A kind with no entry for the
  taxonomy being used (or an empty tuple) fits no mode and becomes a novel mode.
- `novel_family`: when set, the kind is also reported as a novel mode of that family even when it maps to a
  mode, because it is more specific than any taxonomy mode (e.g. "Ineffective Error Recovery" is a kind of MAST
  3.2 that users want counted on its own, as the anchor's judge did).
- `decisive`: can be the root cause of a failed run (cosmetic kinds such as leftover artefacts cannot).
- `blocks_completion`: the task cannot count as completed when this kind is found.
- `confidence`: default confidence of a mode detected from this kind alone.
- `cause`: which of the finding's steps is the agent's own decisive choice, for root-cause selection: "first"
  (default), "repeat" (the second step: a repetition or an identical retry goes wrong when it repeats, not at
  the call it repeats) or "last" (a claim of success is wrong where it is made, not at the error it hides).
- `blame_callee`: the root cause is the agent the call went to (a sub-agent that failed its task), not the caller.
- `slip`: a mistake the run usually gets past (a repeated call, a malformed action that is then retried, a call
  at odds with its reasoning); for the root cause, a later finding that is not a slip explains more.

To support another taxonomy, add its name to `modes` of the kinds that fit; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, slots=True)
class KindSpec:
    title: str
    modes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    novel_family: str | None = None
    decisive: bool = True
    blocks_completion: bool = False
    confidence: float = 0.7
    cause: str = "first"
    blame_callee: bool = False
    slip: bool = False


FINDING_KINDS: Final[dict[str, KindSpec]] = {
    "repeated_action": KindSpec(
        "Step Repetition",
        # TRAIL: calling the same tool again and again (Resource Abuse) is also repeating work already done
        # (Context Handling Failures, whose definition names it)
        {
            "mast": ("1.3",),
            "trail": ("resource_abuse", "context_handling_failures"),
            "agentrx": ("plan_adherence_failure",),
        },
        confidence=0.85,
        cause="repeat",
        slip=True,
    ),
    "repeated_thought": KindSpec(
        "Repeated Reasoning",
        {"mast": ("1.3",), "trail": ("context_handling_failures",)},
        decisive=False,
        confidence=0.6,
    ),
    "error_retried_identically": KindSpec(
        "Identical Retry After Tool Error",
        # TRAIL files the same failed call sent again under Resource Abuse ("the same call again and again"),
        # not Tool-related, which is about fabricated tool calls or results.
        {"mast": ("3.2",), "trail": ("resource_abuse",), "agentrx": ("system_failure",)},
        novel_family="Ineffective Error Recovery",
        blocks_completion=True,
        confidence=0.85,
        cause="repeat",
    ),
    "error_ignored": KindSpec(
        "Tool Error Ignored",
        {
            "mast": ("3.2",),
            "trail": ("tool_output_misinterpretation",),
            "agentrx": ("misinterpretation_of_tool_output",),
        },
        novel_family="Ineffective Error Recovery",
        blocks_completion=True,
        confidence=0.75,
    ),
    "error_unresolved": KindSpec(
        "Tool Error Never Resolved",
        {"mast": ("3.2",), "trail": ("tool_related",), "agentrx": ("system_failure",)},
        novel_family="Ineffective Error Recovery",
        blocks_completion=True,
        confidence=0.75,
    ),
    "invalid_action": KindSpec(
        "Invalid Action Format",
        {"mast": ("1.1",), "trail": ("formatting_errors",), "agentrx": ("invalid_invocation",)},
        novel_family="Invalid Action Formatting",
        confidence=0.9,
        slip=True,
    ),
    "hallucinated_entity": KindSpec(
        "Non-existent Entity Used",
        {"mast": ("3.3",), "trail": ("resource_not_found",), "agentrx": ("invention_of_new_information",)},
        novel_family="Hallucinated Entity",  # a format may title it its own way (judges/formats/)
        blocks_completion=True,
        confidence=0.8,
    ),
    "overstated_completion": KindSpec(
        "Success Claimed Despite Failure",
        {
            "mast": ("3.2",),
            "trail": ("tool_output_misinterpretation",),
            "agentrx": ("misinterpretation_of_tool_output",),
        },
        novel_family="Overstatement of Task Completion",
        blocks_completion=True,
        confidence=0.8,
        cause="last",
    ),
    "unverified_subagent_failure": KindSpec(
        "Sub-agent Failure Accepted Unchecked",
        {
            "mast": ("2.5", "3.2"),
            "trail": ("tool_output_misinterpretation",),
            "agentrx": ("misinterpretation_of_tool_output",),
        },
        blocks_completion=True,
        confidence=0.8,
        blame_callee=True,
    ),
    "output_format_ignored": KindSpec(
        "Requested Output Format Not Followed",
        {"mast": ("1.1",), "trail": ("instruction_non_compliance",), "agentrx": ("plan_adherence_failure",)},
        confidence=0.75,
    ),
    "continued_after_answer": KindSpec(
        "Continued After Reaching an Answer",
        {"mast": ("1.5",), "trail": ("task_orchestration",), "agentrx": ("plan_adherence_failure",)},
        confidence=0.8,
    ),
    "max_steps_reached": KindSpec(
        "Step Limit Reached",
        {"mast": ("1.5",), "trail": ("resource_exhaustion",), "agentrx": ("plan_adherence_failure",)},
        blocks_completion=True,
        confidence=0.85,
    ),
    "premature_termination": KindSpec(
        "Ended Before the Work Was Done",
        {"mast": ("3.1",), "trail": ("task_orchestration",), "agentrx": ("plan_adherence_failure",)},
        blocks_completion=True,
        confidence=0.7,
    ),
    "stopped_on_a_guess": KindSpec(
        "Stopped on a Guess That the Work Was Done",
        # the run ended before the work was verified done (MAST 3.1); the end of the task was decided wrongly
        # (TRAIL Task Orchestration); a required step was skipped (AgentRx)
        {"mast": ("3.1",), "trail": ("task_orchestration",), "agentrx": ("plan_adherence_failure",)},
        blocks_completion=True,
        confidence=0.6,
    ),
    "unsupported_count": KindSpec(
        "Reported a Count No Result Contains",
        # a figure told to the user that no tool gave: the agent read it off a result itself, unchecked (MAST
        # 3.2); reading a tool's output wrongly is TRAIL's and AgentRx's misinterpretation of tool output
        {
            "mast": ("3.2",),
            "trail": ("tool_output_misinterpretation",),
            "agentrx": ("misinterpretation_of_tool_output",),
        },
        confidence=0.5,
    ),
    "contradicted_absence": KindSpec(
        "Said Something Was Missing That a Result Shows",
        # a tool result read wrongly (TRAIL, AgentRx) and a claim made without checking it (MAST 3.2)
        {
            "mast": ("3.2",),
            "trail": ("tool_output_misinterpretation",),
            "agentrx": ("misinterpretation_of_tool_output",),
        },
        confidence=0.6,
    ),
    # Outcome-level: how the run ended. No MAST/TRAIL mode names them exactly, so they are novel modes.
    "ended_on_failure": KindSpec(
        "Ended on a Failing Result",
        {},
        novel_family="Ended on a Failing Result",
        blocks_completion=True,
        confidence=0.7,
    ),
    "handed_to_human": KindSpec(
        "Handed Off to a Person",
        {},
        novel_family="Handed Off to a Person",
        blocks_completion=True,
        confidence=0.7,
    ),
    "leftover_artefacts": KindSpec(
        "Extraneous Output Artefacts",
        {},
        novel_family="Extraneous Output Artefacts",
        decisive=False,
        confidence=0.9,
    ),
    "action_reasoning_mismatch": KindSpec(
        "Action Contradicts Reasoning",
        {"mast": ("2.6",), "trail": ("tool_selection_errors",), "agentrx": ("intent_plan_misalignment",)},
        confidence=0.7,
        slip=True,
    ),
    "unsupported_answer": KindSpec(
        "Answer Given Without Evidence",
        # An answer no tool result supports is a claim in plain text (Language-only), made without the tools the
        # task needed (Tool Selection) and off the plan of looking things up (Goal Deviation); in MAST terms the
        # answer was never checked against anything (3.2).
        {
            "mast": ("3.2",),
            "trail": ("language_only", "goal_deviation", "tool_selection_errors"),
            "agentrx": ("invention_of_new_information",),
        },
        confidence=0.6,
    ),
    "verification_instruction_ignored": KindSpec(
        "Told to Verify, Answered Without Evidence",
        # an explicit instruction of the task (verify, use the tools) not followed
        {
            "mast": ("1.1",),
            "trail": ("instruction_non_compliance",),
            "agentrx": ("plan_adherence_failure",),
        },
        confidence=0.6,
    ),
    "claimed_unseen_result": KindSpec(
        "Claimed a Lookup That Never Happened",
        # TRAIL's Tool-related covers claiming a tool result the trace does not show.
        {
            "mast": ("3.2",),
            "trail": ("tool_related",),
            "agentrx": ("invention_of_new_information",),
        },
        confidence=0.6,
    ),
    "announced_call_missing": KindSpec(
        "Announced Call Never Made",
        # the reasoning says one thing, the code does another (MAST 2.6); in TRAIL the hand-off to the named
        # tool or agent is lost (Task Orchestration) and the work goes to no tool (Tool Selection)
        {
            "mast": ("2.6",),
            "trail": ("task_orchestration", "tool_selection_errors"),
            "agentrx": ("intent_plan_misalignment",),
        },
        confidence=0.6,
    ),
    "search_churn": KindSpec(
        "Search After Search Without Reading",
        # queries reformulated again and again without reading a result: shallow retrieval (TRAIL); the search
        # step repeated without progress (MAST 1.3)
        {"mast": ("1.3",), "trail": ("poor_information_retrieval",)},
        decisive=False,
        confidence=0.55,
    ),
    "no_clarification": KindSpec(
        "Proceeded on an Ambiguous Request",
        {
            "mast": ("2.2",),
            "trail": ("incorrect_problem_identification",),
            "agentrx": ("underspecified_user_intent",),
        },
        confidence=0.65,
    ),
}


# A finding of the key kind explains findings of the listed kinds that share a step with it: an error the agent
# hid behind a claim of success is reported as overstated completion, not also as an ignored error.
SUPERSEDES: Final[dict[str, tuple[str, ...]]] = {
    "overstated_completion": ("error_ignored",),
    "unverified_subagent_failure": ("error_ignored",),
    # a call after the answer that retries a malformed call is explained by the invalid action
    "invalid_action": ("continued_after_answer",),
}


def modes_for(kind: str, taxonomy_name: str) -> tuple[str, ...]:
    """The mode ids of `taxonomy_name` that a finding of `kind` is evidence for (empty: fits no mode)."""
    return FINDING_KINDS[kind].modes.get(taxonomy_name, ())
