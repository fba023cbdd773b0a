"""The contract every trace format implements: a small typed class, scored against each document.

A format is a subclass of `Format` with three class attributes and two methods:

- `name` (what `--format` takes), `description` (one line: what the format is) and `origin` (where files in it
  come from: the project or tool that writes them and the file shape); the README and `--help` tables list them.
- `score(doc) -> float` in [0, 1]: how well a decoded document fits this format, from its keys and the first few
  step items (present and non-empty). 0 means "not this format"; detection gives the document to the format
  with the best score (`trajfm.traces.detect`). It must be cheap: it is called for every format on every
  document, so it returns 0.0 after one dict lookup when the format's own container key is absent.
- `load(doc, source) -> list[Trace]`: parse the document (raises only `TraceLoadError`).

Optional hooks, with defaults: `whole_list(doc)` (a JSON list that is one trace as a whole, e.g. a list of spans,
rather than a list of trace records), `is_part(doc)` (one JSONL line that is a piece of a trace, e.g. one span:
the whole file is then one trace), `score_text(text)` (formats read from raw text logs), and the loading-quality
expectations `has_final_answer` / `has_task` (whether the format records them, so a trace without one is
flagged as possibly misread).

A format whose scoring and parsing are module functions names them as class keywords instead of writing the two
methods: `class MyFormat(Format, scorer=score, parser=parse)`; `part=is_span` sets `is_part` (and `whole_list`:
a list whose first 20 items are all parts, unless the class defines its own).

Formats are registered through the `trajfm.formats` entry-point group (see `trajfm.plugins`): a package declares
`my-format = "my_package.fmt:MyFormat"` under `[project.entry-points."trajfm.formats"]` and, once installed, it
is detected and usable with `--format my-format`. The built-in formats are declared the same way
(`trajfm.plugins.BUILTIN`). The entry point's name must be the class's `name`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from trajfm.traces._common import Source
from trajfm.traces.model import Trace

# Below this score a document is not taken to be in a format at all (auto-detection reports it as unknown, and
# a forced --format reports it as misread).
MIN_FIT = 0.3
# A best score under this is loaded but reported as a weak fit; a runner-up within CLOSE of the best is reported
# as ambiguous.
WEAK_FIT = 0.6
CLOSE = 0.1
# A forced --format is refused as a misread when another format fits the document better by this much.
MISREAD_MARGIN = 0.25


class Format:
    """One trace format. Subclasses set the class attributes and implement `score` and `load` (or name module
    functions for them: `class MyFormat(Format, scorer=score, parser=parse)`)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    origin: ClassVar[str] = ""
    # Whether traces of this format normally carry a final answer / a task; a trace without one is flagged.
    has_final_answer: ClassVar[bool] = True
    has_task: ClassVar[bool] = True

    def __init_subclass__(
        cls,
        *,
        scorer: Callable[[Any], float] | None = None,
        parser: Callable[[Any, Source], list[Trace]] | None = None,
        part: Callable[[Any], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if scorer is not None:
            cls.score = staticmethod(scorer)  # type: ignore[method-assign,assignment]
        if parser is not None:
            cls.load = staticmethod(parser)  # type: ignore[method-assign,assignment]
        if part is not None:
            # One item of the format (a span, a message): a JSONL line of it is a part of a trace, and a list whose
            # first items all are is one trace as a whole (unless the class says otherwise).
            cls.is_part = staticmethod(part)  # type: ignore[method-assign,assignment]
            if "whole_list" not in cls.__dict__:
                cls.whole_list = staticmethod(lambda doc: bool(doc) and all(part(x) for x in doc[:20]))  # type: ignore[method-assign,assignment]

    def score(self, doc: Any) -> float:
        raise NotImplementedError

    def load(self, doc: Any, source: Source) -> list[Trace]:
        raise NotImplementedError

    def expects_final_answer(self, trace: Trace) -> bool:
        """Whether `trace` should carry a final answer (a form of the format without one can say no)."""
        return self.has_final_answer

    def whole_list(self, doc: list[Any]) -> bool:
        """True when the JSON list `doc` is one trace of this format as a whole (not a list of records)."""
        return False

    def is_part(self, doc: Any) -> bool:
        """True when one JSONL line is a piece of a trace of this format (the whole file is one trace)."""
        return False

    def score_text(self, text: str) -> float:
        """How well a raw (non-JSON) text log fits this format; 0 for JSON-only formats."""
        return 0.0

    def __repr__(self) -> str:
        return f"<format {self.name}>"


# ---- scoring helpers -------------------------------------------------------------------------------------------


def key_fit(doc: dict[str, Any], keys: Sequence[str]) -> float:
    """The share of `keys` that `doc` has."""
    if not keys:
        return 0.0
    present = 0
    for k in keys:
        if k in doc:
            present += 1
    return present / len(keys)


_EMPTY: tuple[Any, ...] = (None, "", [], {})


def item_fit(items: list[Any], keys: Sequence[str], *, sample: int = 3, content: Sequence[str] = ()) -> float:
    """How well the first `sample` items look like this format's steps: per item, the share of `keys` present;
    when `content` keys are given, an item whose content keys are all empty (None, "", [], {}) counts half.
    0 for non-objects. Plain loops: this runs for several formats on every document."""
    head = items[:sample]
    if not head:
        return 0.0
    n_keys = len(keys)
    total = 0.0
    for item in head:
        if not isinstance(item, dict):
            continue
        present = 0
        for k in keys:
            if k in item:
                present += 1
        fit = present / n_keys if n_keys else 1.0
        if content:
            for k in content:
                if item.get(k) not in _EMPTY:
                    break
            else:
                fit *= 0.5
        total += fit
    return total / len(head)


def combine(keys: float, steps: float, *, key_weight: float = 0.3) -> float:
    """A document's score from its top-level key fit and its step fit."""
    return round(key_weight * keys + (1.0 - key_weight) * steps, 4)
