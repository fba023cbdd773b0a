"""Text from outside (file names, trace contents, endpoint replies) made safe to show.

Contract:
- `visible(text)` replaces every control character that could move the cursor, start a new line, colour or
  clear the terminal (C0 except tab, DEL, C1, so also ESC of ANSI sequences) and every unicode bidi control
  (which reorders what a reader sees) by a visible escape such as `\\n`, `\\x1b` or `<U+202E>`. Printed names
  therefore stay on their own line and cannot forge output.
- `for_rich(text)` is `visible` plus Rich markup escaping, for anything interpolated into a string that a Rich
  console parses (`x[/]y.json` is printed as is instead of raising MarkupError).
- `show_bidi(text)` makes only the bidi controls visible (for report.html and summary.md, where newlines are
  legitimate); it also rewrites their JSON escapes (`\\u202e`), so data embedded as JSON is covered too.
"""

from __future__ import annotations

import re

from rich.markup import escape

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f" + BIDI_CONTROLS + "]")
_BIDI = re.compile("[" + BIDI_CONTROLS + "]")
_BIDI_JSON = re.compile(r"\\u(061[cC]|200[eEfF]|202[a-eA-E]|206[6-9])")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    if ch in BIDI_CONTROLS:
        return f"<U+{ord(ch):04X}>"
    return f"\\x{ord(ch):02x}"


def visible(text: object) -> str:
    return _CONTROL.sub(_escape_char, str(text))


def for_rich(text: object) -> str:
    return escape(visible(text))


def show_bidi(text: str) -> str:
    text = _BIDI.sub(lambda m: f"<U+{ord(m.group(0)):04X}>", text)
    return _BIDI_JSON.sub(lambda m: f"<U+{m.group(1).upper()}>", text)
