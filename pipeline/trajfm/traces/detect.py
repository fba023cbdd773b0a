"""Which format reads a decoded document, and which documents are not traces at all.

Contract:
- Detection is by evidence, not first match: every registered format scores the document (`Format.score`, in
  [0, 1]: keys present, step fields non-empty) and the best score wins (`detect_doc`). A best score under
  `MIN_FIT` means "no format": the document is unknown (or a recognised non-trace). A best under `WEAK_FIT`, or a
  runner-up within `CLOSE` of the best, is still loaded but the `Detection` carries a note that the loader
  reports with the `--format` choices. Scoring looks only at structure (keys and the first few items), never at
  file names, and is cheap: it runs for every format on every document.
- A document the user forced into a format (`--format`) is a misread when it fits that format under `MIN_FIT`, or
  when another format fits it clearly better (by `MISREAD_MARGIN`, and at least `WEAK_FIT`): `forced_misread`
  returns the message, which names the format that fits best. Misreads are refused, never loaded as empty steps.
- `non_trace_note(doc)` recognises documents that sit next to traces in datasets but are not traces (label
  files, scenario lists, dataset metadata) and says what they look like; the loader skips them with that note
  instead of reporting them as broken.
- The formats are those declared in the `trajfm.formats` entry-point group (`trajfm.plugins`): the built-ins
  (`plugins.BUILTIN["formats"]`, in a fixed order that breaks exact score ties) and installed plugins, loaded
  on first use. `FORMATS` maps name -> `Format`; a plugin that fails to load or is not a `Format` is left out
  and named (`trajfm plugins` lists it as BROKEN; `--format` with its name says why); the built-ins keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trajfm import plugins
from trajfm.errors import PluginError, UsageError
from trajfm.traces.format import CLOSE, MIN_FIT, MISREAD_MARGIN, WEAK_FIT, Format

# ---- the registry: every format declared in the `trajfm.formats` entry-point group ----------------------------


@dataclass(frozen=True, slots=True)
class _Registry:
    generation: int  # plugins.generation() when it was built
    formats: dict[str, Format]
    broken: dict[str, str]  # declared formats that did not load, with why
    # (name, scoring function) pairs, prebuilt because detection calls every one for every document.
    scorers: tuple[tuple[str, Callable[[Any], float]], ...]
    text_scorers: tuple[tuple[str, Callable[[str], float]], ...]


_registry: _Registry | None = None


def as_format(name: str, obj: object) -> Format:
    """The `Format` a `trajfm.formats` entry point names (a `Format` subclass, or an instance of one).

    Raises `PluginError` when it is something else or its `name` differs from the entry point's."""
    fmt = obj() if isinstance(obj, type) and issubclass(obj, Format) else obj
    if not isinstance(fmt, Format):
        raise PluginError(f"format plugin {name!r} gives {obj!r}, not a trajfm.traces.Format subclass")
    if fmt.name != name:
        raise PluginError(f"format plugin {name!r} is a Format named {fmt.name!r}: the two names must agree")
    return fmt


def registry() -> _Registry:
    """The formats that load, in declaration order (built-ins first, in `plugins.BUILTIN` order; their order
    breaks exact score ties), and those that do not. Built once per process (again when an override changes)."""
    global _registry
    key = plugins.generation()
    if _registry is not None and _registry.generation == key:
        return _registry
    formats: dict[str, Format] = {}
    broken: dict[str, str] = {}
    for name in plugins.names("formats", ordered=True):
        try:
            formats[name] = as_format(name, plugins.load("formats", name))
        except PluginError as exc:  # a broken plugin is named (`trajfm plugins`) and left out; the rest work
            broken[name] = str(exc)
    _registry = _Registry(
        key,
        formats,
        broken,
        tuple((n, f.score) for n, f in formats.items()),
        tuple((n, f.score_text) for n, f in formats.items()),
    )
    return _registry


class _FormatTable(Mapping[str, Format]):
    """`FORMATS`: name -> Format, read from the registry at each use (plugins load on first use, not import)."""

    def __getitem__(self, name: str) -> Format:
        return registry().formats[name]

    def __iter__(self) -> Iterator[str]:
        return iter(registry().formats)

    def __len__(self) -> int:
        return len(registry().formats)

    def __repr__(self) -> str:
        return f"FORMATS({', '.join(self)})"


FORMATS: Mapping[str, Format] = _FormatTable()

_STEP_KEYS = ("trajectory", "history", "traj", "messages", "spans", "child_spans", "steps", "trace")
_TEXT_KEYS = ("text", "utterance", "question", "prompt", "instruction")


@dataclass(frozen=True, slots=True)
class Detection:
    """The format a document was given to, its score, and the runner-up."""

    name: str | None
    score: float
    runner_up: str | None = None
    runner_up_score: float = 0.0

    @property
    def note(self) -> str | None:
        """Why this detection is doubtful (weak fit or a close second), or None when it is clear."""
        if self.name is None:
            return None
        if self.runner_up is not None and self.runner_up_score >= MIN_FIT and self.score - self.runner_up_score < CLOSE:
            return (
                f"ambiguous format: {self.name} fits {self.score:.2f}, {self.runner_up} fits {self.runner_up_score:.2f}; "
                f"check it, or force one with --format ({choices()})"
            )
        if self.score < WEAK_FIT:
            return f"weak fit as {self.name} ({self.score:.2f}); if misread, force the format with --format ({choices()})"
        return None


def choices() -> str:
    return ", ".join(registry().formats)


def get(name: str) -> Format:
    """The format registered under `name` (as given to --format)."""
    reg = registry()
    fmt = reg.formats.get(name)
    if fmt is not None:
        return fmt
    if name in reg.broken:
        raise UsageError(f"{reg.broken[name]}; choose another format: {choices()}")
    raise UsageError(f"unknown trace format {name!r}; choose one of: {choices()}")


loader = get  # the older name


def _best_two(scorers: tuple[tuple[str, Callable[[Any], float]], ...], doc: Any) -> Detection:
    """The best and runner-up formats for `doc`; no format (name None) when the best fits under MIN_FIT."""
    best_name: str | None = None
    best = 0.0
    second_name: str | None = None
    second = 0.0
    for name, score in scorers:
        sc = score(doc)
        if sc > best:
            second_name, second = best_name, best
            best_name, best = name, sc
        elif sc > second:
            second_name, second = name, sc
    if best < MIN_FIT:
        return Detection(None, best, best_name, best)
    return Detection(best_name, best, second_name, second)


def detect_doc(doc: Any) -> Detection:
    """The best format for a parsed JSON document."""
    return _best_two(registry().scorers, doc)


def detect(doc: Any) -> str | None:
    """The best-fitting format's name, or None when no format fits."""
    return detect_doc(doc).name


def detect_text(text: str) -> Detection:
    """The best format for a raw (non-JSON) text log."""
    return _best_two(registry().text_scorers, text)


def forced_misread(name: str, doc: Any, *, text: bool = False) -> tuple[float, str | None]:
    """(fit, None) when `doc` may be read as `name`; (fit, the misread message) when it may not."""
    fmt = get(name)
    fit = fmt.score_text(doc) if text else fmt.score(doc)
    if fit >= MIN_FIT:
        alt = detect_text(doc) if text else detect_doc(doc)
        if alt.name is None or alt.name == name or alt.score < WEAK_FIT or alt.score - fit < MISREAD_MARGIN:
            return fit, None
    return fit, misread_reason(name, fit, doc, text=text)


def misread_reason(name: str, fit: float, doc: Any, *, text: bool = False) -> str:
    """The failure message for a document forced into a format it does not fit."""
    alt = detect_text(doc) if text else detect_doc(doc)
    hint = (
        f"it fits {alt.name} best ({alt.score:.2f}): drop --format or use --format {alt.name}"
        if alt.name and alt.name != name
        else f"check the file, or choose another --format ({choices()})"
    )
    if text and get(name).score_text(doc) == 0.0:
        return f"misread: this is text, not JSON, so not a {name} trace (fit {fit:.2f}); {hint}"
    return f"misread: this does not look like a {name} trace (fit {fit:.2f}); {hint}"


def whole_list_format(doc: list[Any]) -> str | None:
    """The format for which the JSON list `doc` is one trace as a whole (spans, chat messages), if any."""
    best_name: str | None = None
    best = 0.0
    for name, fmt in registry().formats.items():
        if fmt.whole_list(doc):
            sc = fmt.score(doc)
            if sc > best:
                best_name, best = name, sc
    return best_name


def is_single_trace_list(doc: Any) -> bool:
    """A JSON list that is one trace as a whole (spans, chat messages), not a list of trace records."""
    return isinstance(doc, list) and whole_list_format(doc) is not None


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
