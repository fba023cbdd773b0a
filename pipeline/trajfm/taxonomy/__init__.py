"""Failure-mode label sets as data.

A taxonomy is a JSON file `{name, version, title, categories: {id: name}, modes: [{id, name, category,
definition, suggestion}]}`. MAST ships as the default; other sets (TRAIL, AgentRx) ship beside it and a user can
pass a path to their own file. `load_taxonomy("mast")` or `load_taxonomy(Path("my.json"))`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from trajfm.errors import UsageError


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
    name: str
    version: str
    title: str
    categories: dict[str, str]
    modes: tuple[FailureMode, ...]

    def mode(self, mode_id: str) -> FailureMode:
        for m in self.modes:
            if m.id == mode_id:
                return m
        raise KeyError(mode_id)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.modes]


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))


def load_taxonomy(name_or_path: str | Path = "mast") -> Taxonomy:
    """Load a built-in taxonomy by name, or a taxonomy JSON file by path."""
    p = Path(str(name_or_path))
    if p.suffix == ".json" and not p.is_file():  # clearly meant as a file: say it is missing, not "unknown"
        raise UsageError(
            f"taxonomy file {p} does not exist; pass the path of a taxonomy .json file or a built-in name "
            f"({', '.join(builtin_names())})"
        )
    if p.suffix == ".json":
        text, origin = p.read_text(), str(p)
    else:
        name = str(name_or_path)
        if name not in builtin_names():
            raise UsageError(
                f"unknown taxonomy {name!r}: built-in ones are {', '.join(builtin_names())}, "
                "or pass the path of a taxonomy .json file"
            )
        text, origin = (resources.files(__package__) / f"{name}.json").read_text(), f"built-in {name}"
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
        return Taxonomy(
            str(raw["name"]), str(raw.get("version", "1")), str(raw.get("title", raw["name"])), cats, modes
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"taxonomy {origin} is malformed ({exc!r}); it needs name, categories and modes with id, name, "
            "category and definition"
        ) from exc
