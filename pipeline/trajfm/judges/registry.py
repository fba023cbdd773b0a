"""Looking up judges by name: `get_judge(name, **options)` and `register_judge(name, factory)`.

Built-in judges register through the same table as any plugin would: `BUILTIN` maps a name to
"module:factory", imported only when that judge is asked for, so `get_judge("rules")` never imports the HTTP
stack of the LLM judge and a missing optional module only matters to whoever asks for it. A factory takes keyword
options (None meaning "not given") and returns a judge (see `trajfm.judges.base`); it raises `JudgeError` for
options it cannot honour. `register_judge` adds or replaces a factory at run time (tests, plugins).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from trajfm.errors import JudgeError

JudgeFactory = Callable[..., Any]

BUILTIN: dict[str, str] = {
    "rules": "trajfm.judges.rules:make_rules_judge",
    "llm": "trajfm.judges.llm:make_llm_judge",
}

_registered: dict[str, JudgeFactory] = {}


def register_judge(name: str, factory: JudgeFactory) -> None:
    """Make `get_judge(name, ...)` call `factory(**options)`. Replaces an earlier registration of `name`."""
    if not name or not name.replace("-", "_").isidentifier():
        raise ValueError(f"judge name {name!r} must be a simple identifier")
    _registered[name] = factory


def judge_names() -> list[str]:
    return sorted(set(BUILTIN) | set(_registered))


def _load_builtin(name: str) -> JudgeFactory:
    module_name, _, attr = BUILTIN[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise JudgeError(f"judge {name!r} is not available: importing {module_name} failed ({exc})") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise JudgeError(f"judge {name!r} is not available: {module_name} has no {attr}")
    _registered.setdefault(name, factory)
    return _registered[name]


def get_judge(name: str, **options: Any) -> Any:
    """A configured judge by name. Unknown names are a `JudgeError` listing the known ones."""
    factory = _registered.get(name)
    if factory is None:
        if name not in BUILTIN:
            raise JudgeError(f"unknown judge {name!r}; known judges: {', '.join(judge_names())}")
        factory = _load_builtin(name)
    return factory(**options)
