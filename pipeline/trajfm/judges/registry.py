"""Looking up judges by name: `get_judge(name, **options) -> Judge`.

Every judge, built-in or installed, is an entry point of the group `trajfm.judges` (see `trajfm.plugins`). The
entry point names either a `Judge` subclass (built with `Judge.from_options(**options)`) or a factory
`(**options) -> Judge`; options left at None mean "not given". Whatever it builds must be a `Judge`: anything else
is a `JudgeError` naming the plugin. Unknown names and plugins that fail to load are `JudgeError`s too.
"""

from __future__ import annotations

from typing import Any

from trajfm import plugins
from trajfm.errors import JudgeError, PluginError
from trajfm.judges.base import Judge


def judge_names() -> list[str]:
    return plugins.names("judges")


def get_judge(name: str, **options: Any) -> Judge:
    """A configured judge by name. Unknown names are a `JudgeError` listing the known ones."""
    try:
        part = plugins.load("judges", name)
    except PluginError as exc:
        raise JudgeError(str(exc)) from exc
    if isinstance(part, type) and issubclass(part, Judge):
        judge = part.from_options(**options)
    elif callable(part):
        judge = part(**options)
    else:
        raise JudgeError(
            f"judge plugin {name!r} names {part!r}, which is neither a Judge subclass nor a factory"
        )
    if not isinstance(judge, Judge):
        raise JudgeError(
            f"judge plugin {name!r} built {type(judge).__name__}, not a trajfm.judges.base.Judge subclass; "
            "derive the judge class from trajfm.judges.base.Judge"
        )
    return judge
