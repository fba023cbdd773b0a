"""Conversational tool-calling agents: a refused call that the agent explains to the user and replaces by another
one is handled, not ignored; a success claim that names the replacement call is not an overstatement of the
refused one; the same claim about the refused call still is."""

from __future__ import annotations

from trajfm.judges.detectors import run_detectors
from trajfm.traces.model import Step, Trace

REFUSED = "Error: a pending shipment cannot be rerouted, only delivered ones"
SUCCESS = '{"shipment": "S-17", "status": "pending", "destination": "Lyon"}'


def chat(turns: list[tuple[str, str, str | None]], answer: str) -> Trace:
    """A tool-calling chat: (kind, content, tool) per step; the agent's last message is the final answer."""
    roles = {"message": "agent", "user": "user", "tool_call": "agent", "tool_result": "tool"}
    steps = []
    for i, (kind, content, tool) in enumerate([*turns, ("message", answer, None)]):
        steps.append(
            Step(
                position=i,
                index=i + 1,
                kind="message" if kind == "user" else kind,  # type: ignore[arg-type]
                content=content,
                agent="user" if kind == "user" else "assistant",
                role=roles[kind],
                tool_name=tool,
                tool_input=content if kind == "tool_call" else None,
            )
        )
    return Trace(
        trace_id="c",
        source_path="c.json",
        source_format="test",
        steps=steps,
        task="Please send shipment S-17 to Lyon instead of Paris.",
        final_answer=answer,
    )


def kinds(trace: Trace) -> set[str]:
    return {f.kind for f in run_detectors(trace)}


def turns(explained: bool) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = [
        ("tool_call", '{"shipment": "S-17", "to": "Lyon"}', "reroute_delivered_shipment"),
        ("tool_result", REFUSED, "reroute_delivered_shipment"),
    ]
    if explained:
        out += [
            ("message", "S-17 is still pending, and only delivered shipments can be rerouted. I can change the "
                        "destination of the pending shipment instead. Shall I?", None),  # fmt: skip
            ("user", "Yes, do that.", None),
        ]
    out += [
        ("tool_call", '{"shipment": "S-17", "destination": "Lyon"}', "change_pending_destination"),
        ("tool_result", SUCCESS, "change_pending_destination"),
    ]
    return out


def test_refused_call_explained_to_the_user_is_not_ignored() -> None:
    answer = "The destination of your pending shipment S-17 has been successfully changed to Lyon."
    assert kinds(chat(turns(explained=True), answer)) == set()


def test_refused_call_never_mentioned_is_still_ignored() -> None:
    # The claim names the call that went through ("destination ... changed"), so it overstates nothing; but the
    # refusal was neither explained nor fixed.
    answer = "The destination of your pending shipment S-17 has been successfully changed to Lyon."
    found = kinds(chat(turns(explained=False), answer))
    assert "error_ignored" in found and "overstated_completion" not in found


def test_claim_about_the_refused_call_is_an_overstatement() -> None:
    # The answer claims the rerouting that was refused; the later, different call does not support that claim.
    answer = "Your shipment S-17 has been successfully rerouted to Lyon."
    assert "overstated_completion" in kinds(chat(turns(explained=False), answer))
    assert "overstated_completion" in kinds(chat(turns(explained=True), answer))
