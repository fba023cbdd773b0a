"""Reading fields of decoded JSON leniently, as every format loader must: a missing, null or mistyped field is
absent (None, "" or {}), never a KeyError or TypeError; a field a loader cannot do without fails with a
`TraceLoadError` naming it (`require_dict`, `require_list`).

Contract: `opt_str`/`opt_int`/`opt_float`/`opt_bool` read a scalar or give None (integers outside the Int64
columns' range are None); `to_text` renders any JSON value as readable text (content-part lists joined);
`dumps`/`loads_maybe` are orjson with stdlib fallbacks; `strip_trailing_commas` repairs the commonest hand-edit
damage before a JSON document is given up on.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from trajfm.traces._common import Source


# ---- field access that fails with TraceLoadError ---------------------------------------------------------------


def require_dict(value: Any, what: str, source: Source) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise source.error(f"{what} should be a JSON object, found {type_name(value)}")
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (for optional blocks such as `info`)."""
    return value if isinstance(value, dict) else {}


def require_list(value: Any, what: str, source: Source) -> list[Any]:
    if not isinstance(value, list):
        raise source.error(f"{what} should be a JSON list, found {type_name(value)}")
    return value


def type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def opt_str(value: Any) -> str | None:
    """A scalar as text, or None for null/empty/containers (used for ids, names, models)."""
    if value is None or isinstance(value, dict | list):
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    return text or None


def opt_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            f = float(value)
        except OverflowError:  # an integer beyond float range (10**400): not a usable number
            return None
        return f if f == f and f not in (float("inf"), float("-inf")) else None
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
        return f if f == f and f not in (float("inf"), float("-inf")) else None
    return None


def opt_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "yes", "1"):
            return True
        if v in ("false", "no", "0"):
            return False
    return None


# Step numbers, exit codes and the like end up in Int64 columns: a number outside this range (a corrupt
# field, 1e38 for a step number) is treated as absent rather than overflowing the table.
_INT_LIMIT = 2**62


def opt_int(value: Any) -> int | None:
    """An integer field read leniently (1, 1.0, "1"); None for anything else, including out-of-range numbers."""
    if isinstance(value, bool):
        return None
    out: int | None = None
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    elif isinstance(value, str):
        v = value.strip()
        if v.lstrip("-").isdigit() and len(v) < 19:
            out = int(v)
    if out is None or not -_INT_LIMIT < out < _INT_LIMIT:
        return None
    return out


def to_text(value: Any) -> str:
    """Any JSON value as readable text: strings as is, content-part lists joined, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "\n".join(value)
        if all(isinstance(v, dict) for v in value):
            # OpenAI / Anthropic content parts: [{"type": "text", "text": "..."}]
            texts = [v.get("text") for v in value]
            if texts and all(isinstance(t, str) for t in texts):
                return "\n".join(t for t in texts if isinstance(t, str))
    return dumps(value)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # orjson refuses integers beyond 64 bits and non-str keys; the stdlib does not.
        return json.dumps(value, default=str, ensure_ascii=False)


def loads_maybe(text: str) -> Any:
    """Decode text that may hold JSON; returns the text itself when it is not JSON."""
    s = text.strip()
    if not s or s[0] not in '[{"':
        return text
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        return text


# ---- lenient JSON ------------------------------------------------------------------------------------------------

# A string literal or a comma right before a closing bracket; matching strings first keeps commas inside
# strings untouched. Linear in the text length.
_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(\s*[}\]])')


def strip_trailing_commas(text: str) -> str:
    return _TRAILING_COMMA.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(0), text)
