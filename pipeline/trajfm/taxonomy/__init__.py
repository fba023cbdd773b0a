"""Failure-mode label sets as data.

A taxonomy is a JSON file `{name, version, title, categories: {id: name}, modes: [{id, name, category,
definition, suggestion}], rules: {finding kind: [mode id, ...]}, root_cause_fallback: {signal: mode id}}` (`rules`
optional: which findings of the rules judge are evidence for which of its modes; without it the rules judge uses
its own mapping for the built-in taxonomies, and checks no mode of any other. `root_cause_fallback` optional: the
mode a known-failed run's root cause is filed under when no detected mode explains it, by who acted at the
root-cause step: "user" (the person the agent serves) or "agent" (an agent, or the tool it called); see
`judges.rules.root_cause_signal`). MAST ships as the default; other sets (TRAIL, AgentRx) ship beside
it. `load_taxonomy(NAME)` takes a name registered under the entry-point group `trajfm.taxonomies` (built-ins and
plugins alike, see `trajfm.plugins`: the entry point names a function `() -> Taxonomy`, typically
`lambda: load_taxonomy_file(path)`) or the path of a taxonomy .json file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from trajfm.errors import UsageError

# Who acted at a known-failed run's root-cause step, as the rules judge reads it (keys of `root_cause_fallback`).
ROOT_CAUSE_SIGNALS = ("user", "agent")


@dataclass(frozen=True, slots=True)
class FailureMode:
    id: str
    name: str
    category: str
    category_name: str
    definition: str
    suggestion: str = ""


@dataclass(frozen=True)
class Taxonomy:
    """A label set. `rule_map` (finding kind -> mode ids), when given, tells the rules judge which of its findings
    are evidence for which mode; None means "use the rules judge's own mapping for this taxonomy's name"."""

    name: str
    version: str
    title: str
    categories: dict[str, str]
    modes: tuple[FailureMode, ...]
    rule_map: dict[str, tuple[str, ...]] | None = None
    root_cause_fallback: dict[str, str] | None = None

    def mode(self, mode_id: str) -> FailureMode:
        for m in self.modes:
            if m.id == mode_id:
                return m
        raise KeyError(mode_id)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.modes]


def builtin_names() -> list[str]:
    """The names `load_taxonomy` accepts: built-in and installed taxonomies (entry points)."""
    from trajfm import plugins

    return plugins.names("taxonomies")


def _packaged(name: str) -> Taxonomy:
    return parse_taxonomy((resources.files(__package__) / f"{name}.json").read_text(), f"built-in {name}")


def mast() -> Taxonomy:
    """MAST's 14 failure modes (the default)."""
    return _packaged("mast")


def trail() -> Taxonomy:
    """TRAIL's error categories."""
    return _packaged("trail")


def agentrx() -> Taxonomy:
    """AgentRx's failure categories."""
    return _packaged("agentrx")


def load_taxonomy_file(path: str | Path) -> Taxonomy:
    """A taxonomy from a JSON file (the format in the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read taxonomy file {p} ({exc.strerror or exc})") from exc
    return parse_taxonomy(text, str(p))


def load_taxonomy(name_or_path: str | Path = "mast") -> Taxonomy:
    """A taxonomy by registered name (built-in or plugin), or a taxonomy JSON file by path."""
    from trajfm import plugins
    from trajfm.errors import PluginError

    p = Path(str(name_or_path))
    if p.suffix == ".json" and not p.is_file():  # clearly meant as a file: say it is missing, not "unknown"
        raise UsageError(
            f"taxonomy file {p} does not exist; pass the path of a taxonomy .json file or a known name "
            f"({', '.join(builtin_names())})"
        )
    if p.suffix == ".json":
        return load_taxonomy_file(p)
    name = str(name_or_path)
    if name not in builtin_names():
        raise UsageError(
            f"unknown taxonomy {name!r}: known ones are {', '.join(builtin_names())} (`trajfm plugins` lists "
            "installed ones), or pass the path of a taxonomy .json file"
        )
    try:
        factory = plugins.load("taxonomies", name)
    except PluginError as exc:
        raise UsageError(str(exc)) from exc
    taxonomy = factory() if callable(factory) else factory
    if not isinstance(taxonomy, Taxonomy):
        raise UsageError(
            f"taxonomy plugin {name!r} gave {type(taxonomy).__name__}, not a trajfm.taxonomy.Taxonomy; its entry "
            "point must name a function returning one (e.g. load_taxonomy_file(path))"
        )
    return taxonomy


def parse_taxonomy(text: str, origin: str) -> Taxonomy:
    """A taxonomy from JSON text; `origin` names where it came from in error messages."""
    try:
        raw = json.loads(text)
        cats = {str(k): str(v) for k, v in raw["categories"].items()}
        modes = tuple(
            FailureMode(
                id=str(m["id"]),
                name=str(m["name"]),
                category=str(m["category"]),
                category_name=cats.get(str(m["category"]), str(m["category"])),
                definition=str(m["definition"]),
                suggestion=str(m.get("suggestion", "")),
            )
            for m in raw["modes"]
        )
        rules = raw.get("rules")
        rule_map = None
        if rules is not None:
            ids = {m.id for m in modes}
            rule_map = {str(k): tuple(str(m) for m in v) for k, v in dict(rules).items()}
            unknown = sorted({m for v in rule_map.values() for m in v} - ids)
            if unknown:
                raise ValueError(f"rules name mode(s) {', '.join(unknown)} that the taxonomy does not define")
        fallback = raw.get("root_cause_fallback")
        root_fallback = None
        if fallback is not None:
            root_fallback = {str(k): str(v) for k, v in dict(fallback).items()}
            bad = sorted(set(root_fallback) - set(ROOT_CAUSE_SIGNALS))
            if bad:
                raise ValueError(
                    f"root_cause_fallback names signal(s) {', '.join(bad)}; known: {', '.join(ROOT_CAUSE_SIGNALS)}"
                )
            unknown = sorted(set(root_fallback.values()) - {m.id for m in modes})
            if unknown:
                raise ValueError(
                    f"root_cause_fallback names mode(s) {', '.join(unknown)} that the taxonomy does not define"
                )
        return Taxonomy(
            str(raw["name"]),
            str(raw.get("version", "1")),
            str(raw.get("title", raw["name"])),
            cats,
            modes,
            rule_map,
            root_fallback,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"taxonomy {origin} is malformed ({exc!r}); it needs name, categories and modes with id, name, "
            "category and definition"
        ) from exc
