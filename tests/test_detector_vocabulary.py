"""The rules detectors carry no vocabulary of the traces they were developed on (issue 13).

- Word n-grams: no three-word phrase of a string the detectors define at module level (their patterns, word
  lists and titles) appears in a string of the synthetic generator (`synth/`), so the detectors are not written
  to the generator's own phrasing. Regex sources are cut at their syntax (alternation, groups, classes) first,
  so only literal phrases count.
- Dataset vocabulary: no tool name, agent name, id pattern, review string or domain noun of the datasets the
  project has seen appears anywhere in the detector sources, comments included; such words live in the
  per-format data files under `judges/formats/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import trajfm

PKG = Path(trajfm.__file__).parent
DETECTOR_FILES = sorted(
    [
        *(PKG / "judges" / "detectors").glob("*.py"),
        PKG / "judges" / "rules.py",
        *(PKG / "judges" / "rootcause").glob("*.py"),
    ]
)
# The generator's trace wording; `rates.py` holds its label catalogue (mode and family names the sidecar labels
# use, shared with `detectors/mapping.py` on purpose: they are label names, not phrasing written into traces).
SYNTH_FILES = sorted(f for f in (PKG / "synth").glob("*.py") if f.name != "rates.py")
N = 3
# Identifiers (kind ids such as "output_format_ignored") are one token: they are names, not phrasing.
_WORD = re.compile(r"[a-z][a-z_]*")
_REGEX_ESCAPE = re.compile(r"\\[A-Za-z]")  # \b, \s, \w ...: regex classes, not letters of a word
_REGEX_SYNTAX = re.compile(r"[|()\[\]?*+{}\\\n.,;:!\"]")


def _docstring_ids(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            out.add(id(first.value))
    return out


def _strings(path: Path, *, module_level_only: bool) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstring_ids(tree)
    roots: list[ast.AST] = [tree]
    if module_level_only:  # patterns, word lists and titles; not the messages written inside functions
        roots = [n for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)]  # type: ignore[attr-defined]
    out = []
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                out.append(node.value)
    return out


def ngrams(text: str, n: int = N) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for piece in _REGEX_SYNTAX.split(_REGEX_ESCAPE.sub(" ", text).lower()):
        words = _WORD.findall(piece)
        grams |= {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    return grams


def test_ngram_helper_finds_literal_phrases_only() -> None:
    assert ("no", "need", "to") in ngrams("No need to go further")
    assert ngrams(r"(?:should|may) be (?:enough|fine)") == set()  # words across alternatives are no phrase
    assert ("no", "need", "to") in ngrams(r"\bno need to (?:go|stop)")  # a regex escape is not part of a word


def test_detectors_share_no_phrase_with_the_synthetic_generator() -> None:
    synth: set[tuple[str, ...]] = set()
    for f in SYNTH_FILES:
        for s in _strings(f, module_level_only=False):
            synth |= ngrams(s)
    assert len(synth) > 1000  # the generator's phrase banks were read
    shared: dict[str, set[str]] = {}
    for f in DETECTOR_FILES:
        for s in _strings(f, module_level_only=True):
            for g in ngrams(s) & synth:
                shared.setdefault(" ".join(g), set()).add(f.name)
    assert not shared, f"detector strings share phrases with synth/: {shared}"


# What the datasets and the generator the project has seen call their tools, agents, ids and statuses.
DATASET_VOCABULARY = (
    "find_user_id",
    "get_order_details",
    "get_user_details",
    "#W",
    "total_baggages",
    "IoTAgent",
    "FMSRAgent",
    "TSFMAgent",
    "WOAgent",
    "python_interpreter",
    "visit_webpage",
    "web_search",
    "smolagents",
    "CodeAgent",
    "Computer_terminal",
    "WebSurfer",
    "Orchestrator",
    "Magentic",
    "exitcode",
    "Not Accomplished",
    "Partially Accomplished",
    "sensor",
    "asset",
    "chiller",
    "tonnage",
    "baggage",
    "reservation",
)


def test_detector_sources_hold_no_dataset_vocabulary() -> None:
    found = []
    for f in DETECTOR_FILES:
        text = f.read_text(encoding="utf-8").lower()
        found += [f"{f.name}: {w}" for w in DATASET_VOCABULARY if w.lower() in text]
    assert not found, f"dataset vocabulary in detector sources (move it to judges/formats/*.json): {found}"


def test_framework_vocabulary_lives_in_format_files() -> None:
    from trajfm.judges.formats import vocabulary

    assert "not accomplished" in vocabulary("assetops").subagent_review_failed
    assert vocabulary("chat").subagent_review_failed == ()
    assert "final_answer" in vocabulary(None).finish_tools


def test_a_formats_own_finish_tools_end_its_runs_only() -> None:
    """SWE-agent's give-up command ends a SWE-agent run (its data file says so); the same name in a chat log is an
    ordinary tool call. OpenHands' finish action is a finish tool of its format."""
    from trajfm.judges.detectors.base import build_view
    from trajfm.judges.formats import vocabulary
    from trajfm.traces import StepBuilder, Trace

    assert {"submit", "exit_forfeit"} <= vocabulary("sweagent").finish_tools
    assert "finish" in vocabulary("openhands").finish_tools
    assert "exit_forfeit" not in vocabulary("chat").finish_tools

    def last_act_finishes(fmt: str) -> bool:
        b = StepBuilder()
        b.add(index=1, kind="action", content="ls", role="agent", tool_name="ls", tool_input="ls")
        b.add(index=1, kind="observation", content="a.py", role="tool")
        b.add(index=2, kind="action", content="exit_forfeit", role="agent", tool_name="exit_forfeit")
        return build_view(Trace("t", "t", fmt, steps=b.steps, task="fix it")).main_acts[-1].is_finish

    assert last_act_finishes("sweagent") and not last_act_finishes("chat")
