"""Extending trajfm: one path for every kind of part (judges, embedders, taxonomies, trace formats).

A part is found by name through Python entry points, the way pytest and simonw/llm find theirs. A package adds
parts by declaring them in its pyproject.toml:

    [project.entry-points."trajfm.judges"]
    my-judge = "my_package.judge:MyJudge"            # a `trajfm.judges.base.Judge` subclass or factory
    [project.entry-points."trajfm.embedders"]
    my-embedder = "my_package.embed:MyEmbedder"      # a `trajfm.clustering.embed.Embedder` subclass or factory
    [project.entry-points."trajfm.taxonomies"]
    my-taxonomy = "my_package.tax:my_taxonomy"       # a function () -> `trajfm.taxonomy.Taxonomy`
    [project.entry-points."trajfm.formats"]
    my-format = "my_package.fmt:MyFormat"            # a `trajfm.traces.format.Format` subclass

and is then usable by name after `pip install`: `trajfm extract --judge my-judge`, `trajfm cluster --embedder
my-embedder`, `--taxonomy my-taxonomy`, `--format my-format`. What each kind must provide is the docstring of its
base class (named above); `trajfm plugins` lists every part, where it comes from and whether it loads.

Contract:
- Built-in parts are entry points too: `BUILTIN` holds them in the same "module:attribute" form, turned into
  `importlib.metadata.EntryPoint` objects and loaded by the same code as installed ones. (They are declared in
  code rather than in trajfm's own package metadata so that a stale editable install cannot lose them.)
- Loading is lazy: `load(kind, name)` imports only the named part, so a broken plugin never stops a run that
  does not ask for it. A plugin that fails to import, names a missing attribute, or takes the name of a built-in
  is reported by name (`PluginError` when asked for; a row with its error in `trajfm plugins`) and the built-ins
  keep working.
- A kind may name a check (`CHECKS`) that a loaded part must pass (a format must be a `Format` named as its
  entry point); `trajfm plugins` runs it, so a plugin that imports but is no usable part is listed as BROKEN.
- The installed entry points are scanned once per process.
- `override(kind, name, obj)` is a context manager that makes `name` resolve to `obj` inside the block only
  (tests and notebooks); nothing registered at run time outlives its block.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from trajfm.errors import PluginError

Kind = Literal["judges", "embedders", "taxonomies", "formats"]
KINDS: tuple[Kind, ...] = ("judges", "embedders", "taxonomies", "formats")


def group(kind: Kind) -> str:
    """The entry-point group of a kind: trajfm.judges, trajfm.embedders, trajfm.taxonomies, trajfm.formats."""
    return f"trajfm.{kind}"


BUILTIN: dict[Kind, dict[str, str]] = {
    "judges": {
        "rules": "trajfm.judges.rules:make_rules_judge",
        "llm": "trajfm.judges.llm:make_llm_judge",
    },
    "embedders": {
        "minilm": "trajfm.clustering.embed:SentenceTransformerEmbedder",
        "minilm-int8": "trajfm.clustering.onnx_embed:OnnxMiniLMEmbedder",
        "fake": "trajfm.clustering.embed:FakeEmbedder",
    },
    "taxonomies": {
        "mast": "trajfm.taxonomy:mast",
        "trail": "trajfm.taxonomy:trail",
        "agentrx": "trajfm.taxonomy:agentrx",
    },
    # In this order: it breaks exact ties of detection scores (specific formats first, generic chat last).
    "formats": {
        "assetops": "trajfm.traces.assetops:AssetOpsFormat",
        "assetops-run": "trajfm.traces.assetops_mcp:AssetOpsRunFormat",
        "assetops-plan": "trajfm.traces.assetops_mcp:AssetOpsPlanFormat",
        "assetops-tools": "trajfm.traces.assetops_mcp:AssetOpsToolsFormat",
        "sweagent": "trajfm.traces.sweagent:SweAgentFormat",
        "whowhen": "trajfm.traces.whowhen:WhoWhenFormat",
        "agentrx": "trajfm.traces.agentrx:AgentRxFormat",
        "tau2": "trajfm.traces.tau2:Tau2Format",
        "openhands": "trajfm.traces.openhands:OpenHandsFormat",
        "otel": "trajfm.traces.otel:OtelFormat",
        "langsmith": "trajfm.traces.langsmith:LangSmithFormat",
        "langfuse": "trajfm.traces.langfuse:LangfuseFormat",
        "autogen": "trajfm.traces.autogen:AutoGenFormat",
        "mast": "trajfm.traces.mast:MastFormat",
        "chat": "trajfm.traces.chat:ChatFormat",
    },
}
# What a loaded part must be, checked by `trajfm plugins` as well as at use: "module:function" taking (name,
# loaded object) and raising PluginError when the object is not a usable part of its kind.
CHECKS: dict[Kind, str] = {"formats": "trajfm.traces.detect:as_format"}
BUILTIN_SOURCE = "trajfm (built-in)"


@dataclass(frozen=True)
class PluginEntry:
    """One part as declared: its kind, name, "module:attribute" and the distribution that declared it."""

    kind: Kind
    name: str
    value: str
    source: str
    entry_point: md.EntryPoint | None = None
    conflict: str | None = None  # why this declaration is not used (e.g. a built-in already has the name)

    @property
    def builtin(self) -> bool:
        return self.source == BUILTIN_SOURCE


_overrides: dict[Kind, dict[str, object]] = {k: {} for k in KINDS}
_loaded: dict[tuple[Kind, str], object] = {}


def _installed(kind: Kind) -> list[md.EntryPoint]:
    return sorted(_entry_points(group(kind)), key=lambda ep: (ep.name, ep.value))


_scanned: dict[str, tuple[md.EntryPoint, ...]] = {}


def _entry_points(name: str) -> tuple[md.EntryPoint, ...]:
    """The installed entry points of one group, read once per process (a scan of every installed package's
    metadata costs 0.1-0.5 s, and the CLI needs it for its --format help as well as to load parts)."""
    if name not in _scanned:
        _scanned[name] = tuple(md.entry_points(group=name))
    return _scanned[name]


def _dist_label(ep: md.EntryPoint) -> str:
    dist = ep.dist
    if dist is None:
        return "unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


def entries(kind: Kind) -> list[PluginEntry]:
    """Every declaration of `kind`: the built-ins first, then installed plugins (by name). A plugin reusing a
    built-in's name, or a name another plugin took first, is listed with its conflict and never used."""
    out = [
        PluginEntry(kind, name, value, BUILTIN_SOURCE, md.EntryPoint(name, value, group(kind)))
        for name, value in BUILTIN[kind].items()
    ]
    taken = {e.name: e.source for e in out}
    for ep in _installed(kind):
        source = _dist_label(ep)
        if BUILTIN[kind].get(ep.name) == ep.value:  # trajfm's own metadata repeating a built-in
            continue
        conflict = None
        if ep.name in taken:
            conflict = f"the name {ep.name!r} is already taken by {taken[ep.name]}"
        else:
            taken[ep.name] = source
        out.append(PluginEntry(kind, ep.name, ep.value, source, ep, conflict))
    return out


def names(kind: Kind, *, ordered: bool = False) -> list[str]:
    """The usable names of a kind (built-in and installed, plus any active `override`), sorted; or, `ordered`,
    in declaration order (built-ins first, then installed plugins by name, then overrides)."""
    found = [e.name for e in entries(kind) if e.conflict is None]
    found += [n for n in _overrides[kind] if n not in found]
    return found if ordered else sorted(found)


_generation = [0]


def generation() -> int:
    """A number that changes whenever what `load` and `names` give may change (an override entered or left,
    `forget`); caches built from the parts (the format registry) compare it."""
    return _generation[0]


def forget() -> None:
    """Drop what this process has scanned and loaded, so newly installed (or patched-in) parts are seen."""
    _scanned.clear()
    _loaded.clear()
    _generation[0] += 1


def _find(kind: Kind, name: str) -> PluginEntry | None:
    return next((e for e in entries(kind) if e.name == name and e.conflict is None), None)


def load(kind: Kind, name: str) -> object:
    """The object a part's entry point names (a class, a factory or a function; see each kind's contract).

    Raises `PluginError` naming the part, where it was declared and what went wrong; an unknown name lists
    the known ones."""
    if name in _overrides[kind]:
        return _overrides[kind][name]
    cached = _loaded.get((kind, name))
    if cached is not None:
        return cached
    entry = _find(kind, name)
    if entry is None:
        singular = kind[:-1] if kind != "taxonomies" else "taxonomy"
        raise PluginError(
            f"unknown {singular} {name!r}; known: {', '.join(names(kind)) or 'none'} "
            "(`trajfm plugins` lists what is installed)"
        )
    obj = _load_entry(entry)
    _loaded[(kind, name)] = obj
    return obj


def _load_entry(entry: PluginEntry) -> object:
    assert entry.entry_point is not None
    try:
        return entry.entry_point.load()
    except Exception as exc:  # any import-time failure of third-party code: name the plugin, keep going
        raise PluginError(
            f"{entry.kind[:-1] if entry.kind != 'taxonomies' else 'taxonomy'} plugin {entry.name!r} from "
            f"{entry.source} ({entry.value}) failed to load: {type(exc).__name__}: {exc}; fix or uninstall "
            "that package (the built-in parts still work)"
        ) from exc


def _check(kind: Kind, name: str, obj: object) -> None:
    """Raise PluginError when `obj` is not a usable part of `kind` (see `CHECKS`)."""
    if kind in CHECKS:
        check = md.EntryPoint(name, CHECKS[kind], "trajfm.checks").load()  # imports "module:function" lazily
        check(name, obj)


@dataclass(frozen=True)
class PluginStatus:
    """One row of `trajfm plugins`."""

    kind: Kind
    name: str
    source: str
    value: str
    ok: bool
    error: str | None


def status(kinds: tuple[Kind, ...] = KINDS) -> list[PluginStatus]:
    """Try to load every declared part; one row per declaration with its error if it fails (never raises)."""
    rows: list[PluginStatus] = []
    for kind in kinds:
        for entry in entries(kind):
            error = entry.conflict
            if error is None:
                try:
                    _check(kind, entry.name, _load_entry(entry))
                except PluginError as exc:
                    error = str(exc)
            rows.append(PluginStatus(kind, entry.name, entry.source, entry.value, error is None, error))
        for name, obj in _overrides[kind].items():
            rows.append(PluginStatus(kind, name, "override (this process only)", repr(obj), True, None))
    return rows


@contextmanager
def override(kind: Kind, name: str, obj: object) -> Iterator[None]:
    """Make `load(kind, name)` return `obj` inside the block (tests, notebooks); restored on exit."""
    before = _overrides[kind].get(name, _MISSING)
    _overrides[kind][name] = obj
    _generation[0] += 1
    try:
        yield
    finally:
        if before is _MISSING:
            _overrides[kind].pop(name, None)
        else:
            _overrides[kind][name] = before
        _generation[0] += 1


_MISSING = object()
