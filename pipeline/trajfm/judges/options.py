"""Checking judge options (`--judge-option KEY=VALUE`) against what a judge's constructor declares, up front.

Contract: `check_options(factory, options, judge)` returns the options with values of the declared type (an int
where a float is declared becomes a float; a number where a string is declared becomes its text) or raises a
`JudgeError` naming the option, the value and the type expected, before any trace is judged. An unknown option
is named with the closest known one ("timeout" -> "timeout_s"). Numbers must be finite; bool is not a number.
"""

from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from trajfm.errors import JudgeError


def _accepted(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for a in typing.get_args(annotation) for t in _accepted(a))
    if annotation is type(None) or annotation is None:
        return (type(None),)
    return (annotation,) if isinstance(annotation, type) else ()


def _coerce(value: Any, kinds: tuple[type, ...]) -> Any:
    """`value` as one of `kinds`, or raise ValueError."""
    if value is None and type(None) in kinds:
        return None
    if isinstance(value, bool):
        if bool in kinds:
            return value
        raise ValueError
    if isinstance(value, int | float) and not math.isfinite(value):
        raise ValueError
    if int in kinds and isinstance(value, int):
        return value
    if float in kinds and isinstance(value, int | float):
        return float(value)
    if str in kinds and isinstance(value, str | int | float):
        return str(value)
    if any(isinstance(value, k) for k in kinds if k not in (int, float, str, bool, type(None))):
        return value
    raise ValueError


def check_options(factory: Callable[..., Any], options: dict[str, Any], judge: str) -> dict[str, Any]:
    """See the module docstring. `factory` is the judge's constructor (its signature declares the options)."""
    try:
        hints = typing.get_type_hints(factory)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to no type checks, names still checked
        hints = {}
    params = {n: p for n, p in inspect.signature(factory).parameters.items() if n != "self"}
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise JudgeError(
                f"the {judge} judge has no option {key}{hint}; it takes {', '.join(sorted(params))}"
            )
        kinds = _accepted(hints.get(key, Any))
        if not kinds or value is None:
            checked[key] = value
            continue
        try:
            checked[key] = _coerce(value, kinds)
        except ValueError:
            names = " or ".join(
                sorted(
                    {"a number" if k in (int, float) else k.__name__ for k in kinds if k is not type(None)}
                )
            )
            raise JudgeError(
                f"--judge-option {key}={value!r} should be {names}, e.g. {key}={_example(kinds)}"
            ) from None
    return checked


def _example(kinds: tuple[type, ...]) -> str:
    if int in kinds:
        return "2000"
    if float in kinds:
        return "60"
    if bool in kinds:
        return "true"
    return "VALUE"
