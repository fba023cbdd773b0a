"""Which loader reads a decoded document, and which documents are not traces at all.

Contract:
- `detect(doc)` returns a format name from `FORMATS` or None. It looks only at structure (keys and the shape of
  the first items), never at file names, and is cheap: it is called once per file or record.
- Order matters where shapes overlap: AssetOpsBench files also carry a chat `history`, so assetops is tried
  before Who&When; a list of {content, role} is AgentRx/Magentic-One when a role names an agent and a chat
  transcript when all roles are chat roles.
- `non_trace_note(doc)` recognises documents that sit next to traces in datasets but are not traces (label
  files, scenario lists, dataset metadata) and says what they look like; the loader skips them with that note
  instead of reporting them as broken.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from trajfm.errors import UsageError
from trajfm.traces import agentrx, assetops, chat, mast, otel, whowhen

# name -> loader module (each has FORMAT, sniff(doc) and parse(doc, source)); detection order.
FORMATS: dict[str, ModuleType] = {
    "assetops": assetops,
    "whowhen": whowhen,
    "agentrx": agentrx,
    "otel": otel,
    "mast": mast,
    "chat": chat,
}

_STEP_KEYS = ("trajectory", "history", "traj", "messages", "spans", "child_spans", "steps", "trace")
_TEXT_KEYS = ("text", "utterance", "question", "prompt", "instruction")


def loader(name: str) -> ModuleType:
    """The loader module for a format name (as given to --format)."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown trace format {name!r}; choose one of: {', '.join(FORMATS)}") from None


def detect(doc: Any) -> str | None:
    for name, module in FORMATS.items():
        if module.sniff(doc):
            return name
    return None


def is_single_trace_list(doc: Any) -> bool:
    """A JSON list that is one trace as a whole (spans, chat messages), not a list of trace records."""
    return otel.sniff(doc) or agentrx.is_magentic_list(doc) or chat.sniff(doc)


def non_trace_note(doc: Any) -> str | None:
    """What a recognisable non-trace document is (a noun phrase, e.g. "failure labels (a label file)"); else None."""
    if isinstance(doc, dict):
        if "@context" in doc:
            return "dataset metadata (JSON-LD)"
        errors = doc.get("errors")
        if isinstance(errors, list) and all(isinstance(e, dict) and "location" in e for e in errors[:20]):
            return "span-level error annotations (a label file)"
        if _is_failure_label(doc):
            return "failure labels (a label file)"
        if _is_scenario(doc):
            return "task/scenario descriptions without steps"
        return None
    if isinstance(doc, list) and doc:
        sample = doc[:20]
        if all(isinstance(d, dict) and _is_failure_label(d) for d in sample):
            return "failure labels (a label file)"
        if all(isinstance(d, dict) and _is_scenario(d) for d in sample):
            return "task/scenario descriptions without steps"
    return None


_LABEL_KEYS = ("root_cause", "mistake_step", "behaviours", "behaviors", "labels", "decisive_step", "gold")
_REFERENCE_KEYS = ("trace_path", "trajectory_id", "trace_id", "trace_file")


def _is_failure_label(d: dict[str, Any]) -> bool:
    """Labels about traces: they point at a trace (or carry failure fields) but have no steps of their own."""
    if any(k in d for k in _STEP_KEYS):
        return False
    failures = d.get("failures")
    if isinstance(failures, list) and all(isinstance(f, dict) for f in failures[:10]):
        return True
    return any(k in d for k in _LABEL_KEYS) and (any(k in d for k in _REFERENCE_KEYS) or "root_cause" in d)


def _is_scenario(d: dict[str, Any]) -> bool:
    if any(k in d for k in _STEP_KEYS):
        return False
    if not any(isinstance(d.get(k), str) for k in _TEXT_KEYS):
        return False
    # Scenario records are flat: no nested list of objects that could be steps under another name.
    return not any(isinstance(v, list) and v and isinstance(v[0], dict) for v in d.values())
