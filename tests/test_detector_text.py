"""The fast regex helpers of the rules detectors (`judges/detectors/text.py`) give exactly `re`'s matches.

`Pattern` searches a lower-cased text without re.IGNORECASE and skips text without its needles; a pattern opening
with `\\b` is searched as the rest of it plus a boundary test (`_LeadingBoundary`); `AnyOf` searches an alternation
branch by branch. Each is compared here with the plain `re` search of the same pattern (re.IGNORECASE on the
original text) over generated texts that put the patterns' words at word boundaries, inside words, in upper case
and next to non-ASCII letters.
"""

from __future__ import annotations

import random
import re

import pytest

from trajfm.judges.detectors import text as tx
from trajfm.judges.detectors.actions import _MALFORMED
from trajfm.judges.detectors.entities import _MISSING
from trajfm.judges.detectors.errors import _ERROR

WORDS = (
    "not found", "does not exist", "no such", "unknown Tool", "is not valid", "no asset named", "not listed in the",
    "error encountered", "call failed", "timed out", "connection reset", "is not supported", "http 503",
    "max steps", "reached", "step limit", "hit the maximum number of steps", "agent stopped due to time limit",
    "invalid json", "cannot parse", "tool foo was not found", "malformed", "json decode error", "missing tool name",
    "exit code 2", "failed to load", '"status": "error"', "Error: boom", "Exception",
)  # fmt: skip
FILLER = ("a", "the", "x_", "9", "é", "ß", "İ", "-", "_", " ", "\n", ".", ",", "'", '"', "K")


def _texts(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rnd.randint(1, 12)):
            w = rnd.choice(WORDS) if rnd.random() < 0.5 else rnd.choice(FILLER)
            if rnd.random() < 0.2:
                w = w.upper()
            parts.append(w)
            parts.append(rnd.choice(("", " ", "", "\n", "_", "a")))
        out.append("".join(parts))
    return out


def _spans(ms: list[re.Match[str]]) -> list[tuple[int, int]]:
    return [m.span() for m in ms]


@pytest.mark.parametrize(
    "pattern",
    [r"\bnot found", r"\b(?:is|are) not (?:a )?(?:valid|listed)", r"\bexit ?code:? ?[1-9]", r"\bno \w+ named",
     r"\b[a-z]+ failed\b", r"\bx|y", r"\b(?=n)not", r"\bstatus(?: code)?:? [45]\d\d\b"],
)  # fmt: skip
def test_leading_boundary_matches_re(pattern: str) -> None:
    fast = tx.compile_fast(pattern)
    plain = re.compile(pattern)
    for text in _texts(400):
        low = text.lower()
        m, want = fast.search(low), plain.search(low)
        assert (m and m.span()) == (want and want.span()), (pattern, text)
        assert _spans(list(fast.finditer(low))) == _spans(list(plain.finditer(low))), (pattern, text)


def test_leading_boundary_is_used_only_where_it_binds_the_whole_pattern() -> None:
    assert isinstance(tx.compile_fast(r"\bnot found"), tx._LeadingBoundary)
    assert isinstance(tx.compile_fast(r"\b(?:a|b)c"), tx._LeadingBoundary)
    assert isinstance(tx.compile_fast(r"\ba|b"), re.Pattern)  # the \b binds only the first branch
    assert isinstance(tx.compile_fast(r"\b[|]a"), tx._LeadingBoundary)
    assert isinstance(tx.compile_fast(r"\bx", re.ASCII), re.Pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"^\s*(?:\[\s*\]|\{\s*\}|null|none)\s*$", r"^\W{0,3}(?:error|exception|traceback|fatal)\b", r"^$", r"^(?=.)",
     r"^\s*(?P<a>x)+\s*$", r"^a|b"],
)  # fmt: skip
def test_line_start_matches_re(pattern: str) -> None:
    """A MULTILINE pattern opening with `^` (`_LineStart`) gives `re`'s match from every start position."""
    fast = tx.compile_fast(pattern, re.M)
    plain = re.compile(pattern, re.M)
    assert isinstance(fast, tx._LineStart) == (pattern != r"^a|b")  # the ^ binds only the first branch there
    rnd = random.Random(5)
    pieces = ("\n", " ", "\t", "[", "]", "{", "}", "null", "none", "x", "error", "!", "é", "a", "b", "exception")
    texts = _texts(300) + ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 20))) for _ in range(3000)]
    for text in texts:
        low = text.lower()
        for pos in sorted({0, len(low) // 2, len(low), rnd.randint(0, len(low))}):
            m, want = fast.search(low, pos), plain.search(low, pos)
            assert (m and (m.span(), m.groups())) == (want and (want.span(), want.groups())), (pattern, text, pos)
        assert _spans(list(fast.finditer(low))) == _spans(list(plain.finditer(low))), (pattern, text)


@pytest.mark.parametrize("any_of", [_MISSING, _ERROR, _MALFORMED], ids=["missing", "error", "malformed"])
def test_any_of_matches_the_single_alternation(any_of: tx.AnyOf) -> None:
    """The reference is the single alternation searched as `Pattern` always has: case-sensitively in the lower-cased
    text when lower-casing keeps its length (so a `[A-Z]` in a pattern matches nothing there), with
    re.IGNORECASE on the original text when it does not."""
    flags = any_of.alternatives[0].slow.flags & ~re.I  # (`fast` may be a helper class, `slow` is always compiled)
    alternation = "|".join(f"(?:{a.pattern})" for a in any_of.alternatives)
    lowered, ignorecase = re.compile(alternation, flags), re.compile(alternation, flags | re.I)
    gate = any_of.gate
    texts = _texts(600)
    assert sum(ignorecase.search(t) is not None for t in texts) > 30  # the texts do exercise the patterns
    for text in texts:
        low = text.lower()
        if len(low) != len(text):
            want_all = list(ignorecase.finditer(text))
        elif gate and not any(g in low for g in gate):
            want_all = []
        else:
            want_all = list(lowered.finditer(low))
        got = any_of.search(text)
        assert (got and got.span()) == (want_all[0].span() if want_all else None), text
        if any_of is _MISSING:
            assert _spans(any_of.finditer(text)) == _spans(want_all), text


def test_normalise_of_ascii_text_is_the_word_runs() -> None:
    rnd = random.Random(3)
    chars = [chr(c) for c in range(128)]
    for _ in range(5000):
        text = "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 40)))
        assert tx.normalise(text) == " ".join(re.findall(r"\w+", text.lower())), repr(text)
    assert tx.normalise("Ünïcode-Wörds, too!") == "ünïcode wörds too"


def test_patterns_converted_from_ignorecase_match_as_ignorecase_did() -> None:
    """Patterns that were plain re.IGNORECASE regexes (the output-format requests, the error label, the final-answer
    mark) give re.IGNORECASE's matches, also on text where it folds a letter lower-casing keeps ("ı", "ſ")."""
    from trajfm.judges.detectors.origin import _ERROR_LABEL
    from trajfm.judges.detectors.output import FORMAT_RULES
    from trajfm.judges.detectors.termination import _FINAL_MARK_FAST

    patterns = [_ERROR_LABEL, _FINAL_MARK_FAST, *(p for p, _, _ in FORMAT_RULES)]
    words = ("Fınal anſwer:", "final answer :", "ERROR:", "Exceptıon:", "as JSON", "ın a table", "in CSV",
             "as a bullet list", "anſwer with yes or no", "only the number", "in Fahrenheit", "ıso 8601 format",
             "in two words", "in 3 sentences", "yyyy-mm-dd")  # fmt: skip
    rnd = random.Random(5)
    for _ in range(3000):
        text = " ".join(rnd.choice(words + FILLER) for _ in range(rnd.randint(1, 6)))
        for p in patterns:
            want = re.compile(p.pattern, re.I).search(text)
            got = p.search(text)
            assert (got and got.span()) == (want and want.span()), (p.pattern, text)


def test_tool_like_branches_find_what_the_alternation_finds() -> None:
    from trajfm.judges.detectors.actions import _TOOL_LIKE, _TOOL_LIKE_BRANCHES

    words = ("use ", "call ", "use foo_bar", "call x_y_z ", "IoTAgent", "SearchTool", "WeatherAPI", "jsonreader",
             "websearch", "fileparser", "agent", "use use_it", "the_tool", "FooAgentX", "calls ", "usefoo_bar",
             "use Foo_bar", "lookup_id")  # fmt: skip
    rnd = random.Random(11)
    found = 0
    for _ in range(4000):
        text = "".join(rnd.choice(words + FILLER) for _ in range(rnd.randint(1, 10)))
        want = _TOOL_LIKE.findall(text)
        found += bool(want)
        assert _TOOL_LIKE_BRANCHES.findall(text) == want, text
    assert found > 1000


def test_words_among_is_the_word_set_intersection() -> None:
    from trajfm.judges.detectors.coverage import _WORD, _words_among

    pieces = ("abc", "pump", "pumps", "-", "--", "x", "ab", "12", "12.5", ".", "3", "é", "a-b", "-pump", "pump-",
              "٣", " ", " ", "_", "x-ray", "ray", "1.2.3")  # fmt: skip
    rnd = random.Random(13)
    for _ in range(5000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        wanted = frozenset(rnd.sample(("abc", "pump", "pumps", "ray", "x-ray", "12", "12.5", "3", "2.3", "٣", "b-ab"), 4))
        words = sorted(w for w in wanted if "a" <= w[0] <= "z")
        got = _words_among(text, words, wanted.difference(words))
        assert got == wanted.intersection(_WORD.findall(text)), (text, wanted)


def test_squash_collapses_whitespace_as_the_regex_did() -> None:
    space = [chr(c) for c in range(0x3100) if re.fullmatch(r"\s", chr(c))]
    assert space == [chr(c) for c in range(0x3100) if chr(c).isspace()]
    rnd = random.Random(17)
    for _ in range(5000):
        text = "".join(rnd.choice([*space, "a", "b", "é", "\u200b"]) for _ in range(rnd.randint(0, 12)))
        assert tx.squash(text) == re.sub(r"\s+", " ", text).strip(), repr(text)


def test_numbers_among_is_the_number_set_intersection() -> None:
    from trajfm.judges.detectors.coverage import _NUMBER, _numbers_among

    pieces = ("1", "12", "12.5", ".", "..", "3", "0", "٣", "a", " ", "-", "1.2.3", "2.3", "x12", "5.")
    rnd = random.Random(19)
    for _ in range(5000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 40)))  # up to 40: past MAX_NUMBER_RUNS too
        numbers = frozenset(rnd.sample(("1", "12", "12.5", "3", "2.3", "٣", "0", "5", "23", "1.2"), 4))
        assert _numbers_among(text, numbers) == numbers.intersection(_NUMBER.findall(text)), (text, numbers)


REJECTION_WORDS = (
    "unexpected keyword argument", "missing 2 required positional arguments", "missing 1 required keyword-only argument",
    "takes from 1 to 2 positional arguments but 3 were given", "got multiple values for keyword argument",
    "error in code parsing", "regex pattern foo was not found", "output could not be parsed", "code cannot be parsed",
    "validation errors for", "invalid input provided", "invalid arguments to", "required parameter 'x' is missing",
    "required property id not provided", "argument", "parsed", "required", "invalid", "missing", "regex",
)  # fmt: skip
ARTEFACT_WORDS = (
    "## Step 2:", "#step 1 :", "thought:", "Thought 3 :", "action input 2:", "Action 1:", "observation:",
    "(end of feedback)", "now it's your turn", "now its your turn", "\nquestion:", "Question: ", "question",
    "<|endoftext|>", "[INST]", "[/inst]", "<s>", "</s>", "<|im_start|>", "im_end|>", "assistant:", "Assistant :",
    "step", "action", "turn", "#",
)  # fmt: skip

MALFORMED_WORDS = (
    "incorrectly formatted", "invalid tool name", "invalid arguments", "could not parse", "unable to decode",
    "unparseable", "unparsable", "not a valid json", "unknown function", "no such action", "tool foo_bar is not found",
    "action x was not recognised", "function y does not exist", "tool z not available", "invalid syntax",
    "jsondecodeerror", "json decode error", "expecting value", "expecting property name", "action input is missing",
    "missing tool name", "parse", "not ", "missing", "decode", "invalid", "unknown", "formatted", "tool ",
)  # fmt: skip


def _worded(words: tuple[str, ...], n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rnd.choice(words) if rnd.random() < 0.5 else rnd.choice(FILLER) for _ in range(rnd.randint(1, 12))]
        out.append("".join(p.upper() if rnd.random() < 0.2 else p for p in parts))
    return out


def test_split_alternations_match_the_single_patterns_they_replace() -> None:
    """`REJECTED_CALL` and `_ARTEFACT` were one `Pattern` each, and `_MALFORMED` had no gate: the branches searched
    one at a time, behind their gate, find the same match as the old alternation (searched as `Pattern` does: in the lower-cased text, re.IGNORECASE on the original
    when lower-casing changes its length)."""
    from trajfm.judges.detectors.call_errors import REJECTED_CALL
    from trajfm.judges.detectors.output import _ARTEFACT

    cases = ((REJECTED_CALL, REJECTION_WORDS, 0), (_ARTEFACT, ARTEFACT_WORDS, re.M), (_MALFORMED, MALFORMED_WORDS, 0))
    for any_of, words, flags in cases:
        old = tx.Pattern("|".join(a.pattern for a in any_of.alternatives), flags)
        hits = 0
        for text in _worded(words, 3000, 23):
            want = old.search(text)
            hits += want is not None
            got = any_of.search(text)
            assert (got and got.span()) == (want and want.span()), (any_of.pattern, text)
        assert hits > 300


def test_final_label_finds_what_ignorecase_finds() -> None:
    from trajfm.judges.detectors.output import _FINAL_LABEL

    pieces = ("final answer:", "Final Answer is :", "FINAL ANSWER", "final answer  :", "xfinal answer:", "ſ", "ı",
              "İ", "fınal answer:", "final anſwer:", " ", "\n", ":", "a", "is")  # fmt: skip
    rnd = random.Random(29)
    plain = re.compile(r"\bfinal answer(?: is)?\s*:", re.I)
    for _ in range(5000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 10)))
        assert _spans(_FINAL_LABEL.finditer(text, text.lower())) == _spans(list(plain.finditer(text))), text


# Single alternations that the detectors now search branch by branch (`tx.AnyOf`), as they were written before the
# split: (the pattern, its needles, folds). Each split must give the single pattern's match on every text.
_SPLIT_FROM = {
    "environment": (
        r"\b(?:(?:http|status|error|code)\s*:?\s*5\d\d\b|5\d\d (?:internal server error|bad gateway|service unavailable|"
        r"gateway time-?out)|(?:service|endpoint|server|backend|host|api) (?:is )?(?:temporarily )?unavailable|"
        r"timed? ?out\b(?!\s*=)|connection (?:refused|reset|aborted|error|closed)|rate limit|too many requests|"
        r"upstream service|raised inside|internal (?:server )?error)",
        ("http", "status", "error", "code", "unavailable", "bad gateway", "gateway time", "tim", "connection ",
         "rate limit", "too many requests", "upstream service", "raised inside", "internal "),
        True,
    ),
    "assumes": (
        r"\b(?:(?:is|was|were|are|wasn't|isn't|weren't|aren't) not (?:specified|provided|given|mentioned|stated|clear)|"
        r"(?:wasn't|isn't|weren't|aren't) (?:specified|provided|given|mentioned|stated|clear)|"
        r"(?:not|never) (?:specified|provided|given|mentioned) (?:in|by) the (?:task|question|request|user)|"
        r"no [a-z ]{1,40} (?:was|were|is|are) (?:given|specified|provided|mentioned|named|stated)|"
        r"unspecified|is ambiguous|unclear which|without (?:a |any )?(?:specific|specified)|presumably|"
        r"(?:most likely|probably) (?:the user|they|you|this|it) (?:means?|meant|wants?|refers?)|"
        r"i(?:'ll| will| shall)? assume|assuming (?:that |the |it |a |an )|i(?:'ll| will) (?:just )?(?:pick|choose|go with|"
        r"default to|take)\b[^.\n]{0,40}\bas (?:the|a|an)\b|i(?:'ll| will) (?:just )?(?:pick|choose|go with|default to)|"
        r"by default,? i(?:'ll| will))",
        ("not ", "n't", "never", "no ", "unspecified", "ambiguous", "unclear", "without", "presumably", "likely",
         "probably", "assum", "pick", "choose", "go with", "default", "take"),
        False,
    ),
    "claim": (
        r"\b(?:successfully|success|accomplished|verified|(?:has|have) (?:now )?(?:been )?(?:successfully )?(?:[a-z]+ed|"
        r"done|sent|made|set up|written|run|forecast|built)\b|(?:task|request|analysis|job) (?:is|was|has been) (?:complete|"
        r"completed|done|finished)|completed (?:successfully|the task)|everything (?:was|is|has been) [a-z]+ed|"
        r"all (?:requested |the )?(?:steps|tasks|items|data)[^.\n]{0,40}(?:complete|completed|done|retrieved)|"
        r"as requested)\b",
        ("success", "accomplished", "verified", "has ", "have ", "task", "request", "analysis", "job", "completed",
         "everything", "all ", "as requested"),
        False,
    ),
    "admits": (
        r"\b(?:error|errors|fail(?:ed|ing|ure to|s to)?|no results?|unable|could not|couldn't|cannot|can't|not (?:be )?(?:available|"
        r"possible|supported|retrieved|completed|found|able)|unfortunately|was not able|wasn't able|did not succeed|"
        r"no data|not accessible|unavailable)\b",
        ("error", "fail", "no result", "unable", "could", "can", "not ", "unfortunately", "wasn't able", "no data",
         "unavailable"),
        False,
    ),
}  # fmt: skip
_SPLIT_WORDS = (
    "is not specified", "wasn't given", "no value was provided", "I'll assume", "assuming that ", "I will pick X as the",
    "i'll go with", "by default, I'll", "probably the user means", "HTTP 503", "status: 502", "timed out",
    "timeout = 3", "Connection refused", "rate limit", "Internal Server Error", "502 bad gateway", "successfully",
    "has been completed", "have now sent", "all the steps done", "as requested", "task is done", "error", "errors",
    "failed", "fails to", "cannot", "can't", "not be found", "no data", "unfortunately", "ı", "ſ", "İ", "Error 500",
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(_SPLIT_FROM))
def test_split_alternations_match_the_single_pattern(name: str) -> None:
    from trajfm.judges.detectors.ambiguity import _AGENT_ASSUMES
    from trajfm.judges.detectors.completion import _CLAIM
    from trajfm.judges.detectors.errors import ADMITS_FAILURE
    from trajfm.judges.detectors.origin import _ENVIRONMENT

    split = {
        "environment": _ENVIRONMENT,
        "assumes": _AGENT_ASSUMES,
        "claim": _CLAIM,
        "admits": ADMITS_FAILURE,
    }[name]
    pattern, needles, folds = _SPLIT_FROM[name]
    single = tx.Pattern(pattern, needles=needles, folds=folds)
    rnd = random.Random(11)
    pieces = _SPLIT_WORDS + FILLER
    texts = _texts(300) + [
        "".join(rnd.choice(pieces) + rnd.choice(("", " ", "\n", "a")) for _ in range(rnd.randint(1, 14)))
        for _ in range(4000)
    ]
    hits = 0
    for text in texts:
        want, got = single.search(text), split.search(text)
        assert (got and (got.span(), got.group(0))) == (want and (want.span(), want.group(0))), (name, text)
        hits += want is not None
        low = text.lower()
        if len(low) == len(text):
            want, got = single.search(text, low), split.search(text, low)
            assert (got and got.span()) == (want and want.span()), (name, text)
    assert hits > 300  # the texts do exercise the patterns
