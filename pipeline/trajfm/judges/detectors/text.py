"""Small text helpers shared by the rules detectors: normalisation, token sets, verbatim quotes.

Everything here is framework-independent and cheap (compiled regexes, no allocation-heavy parsing), because the
rules judge must handle thousands of traces per second on one core.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from trajfm.judges.formats import vocabulary

T = TypeVar("T")

_WORD_RUN: Final = re.compile(r"\w+")
_TOKEN: Final = re.compile(r"[a-z0-9_]+")

# Names agent frameworks give the "I am done, here is the answer" pseudo-tool: data (`judges/formats/_common.json`).
FINISH_TOOLS: Final = vocabulary(None).finish_tools

# "Tool Name: X , Tool Parameter: ...", "X[args]", "X(args)", "Action: X\nAction Input: args": the common ways an
# action is written as plain text when the loader had no structured tool name.
_ACTION_FORMS: Final = (
    re.compile(
        r"tool\s*name\s*:\s*(?P<tool>[^,\n]*?)\s*,\s*tool\s*parameter\s*:\s*(?P<args>.*)", re.I | re.S
    ),
    re.compile(
        r"^\s*action\s*\d*\s*:\s*(?P<tool>[^\n]*)\n\s*action\s+input\s*\d*\s*:\s*(?P<args>.*)", re.I | re.S
    ),
    re.compile(r"^\s*(?P<tool>[A-Za-z_][\w.\-]*)\s*[\[(](?P<args>.*)[\])]\s*$", re.S),
)


# Every ASCII character that is not a word character (`\\w`: letters, digits, "_"), mapped to a space.
_ASCII_NON_WORD: Final = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")})


def normalise(text: str, limit: int = 4000) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed: the form duplicate detection compares."""
    # Every character is a word character, whitespace or punctuation, so replacing punctuation runs by spaces and
    # collapsing whitespace leaves exactly the word runs joined by single spaces: one findall instead of two subs.
    low = text[:limit].lower()
    if low.isascii():  # the same word runs, by a translation and a split (several times cheaper than the regex)
        return " ".join(low.translate(_ASCII_NON_WORD).split())
    return " ".join(_WORD_RUN.findall(low))


def squash(text: str) -> str:
    """Whitespace collapsed, case kept: the form verbatim-evidence checks compare."""
    # `\s` and str.split() agree on every code point (both are str.isspace), so this is re.sub(r"\s+", " ", text).strip()
    return " ".join(text.split())


def tokens(normalised: str) -> list[str]:
    if normalised.isascii():
        # `normalise` output in ASCII is lower-case word runs ([a-z0-9_]) joined by single spaces: the tokens
        # are its words, and splitting is several times cheaper than the regex
        return normalised.split()
    return _TOKEN.findall(normalised)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@functools.lru_cache(maxsize=4096)
def is_finish_tool(tool: str) -> bool:
    # Cached: every detector asks it of every action, and a trace has only a handful of distinct tool names.
    return tool.strip().lower() in FINISH_TOOLS


def parse_action_text(content: str) -> tuple[str, str]:
    """Best-effort (tool, args) from an action written as text; ("", content) when no form matches."""
    for form in _ACTION_FORMS:
        m = form.search(content[:2000])
        if m:
            return m.group("tool").strip(), m.group("args").strip()
    return "", content.strip()


def quote(text: str, start: int = 0, end: int | None = None, *, max_len: int = 160) -> str:
    """A verbatim slice of `text` around [start, end), at most `max_len` characters, trimmed to whole words
    where possible and stripped of surrounding whitespace. Always a substring of `text`."""
    if end is None:
        end = len(text)
    if end - start > max_len:
        end = start + max_len
        cut = text.rfind(" ", start + max_len // 2, end)
        if cut > start:
            end = cut
    return text[start:end].strip()


def quote_match(text: str, m: re.Match[str], *, context: int = 60, max_len: int = 160) -> str:
    """A verbatim quote of a regex match with up to `context` characters either side, cut at word bounds."""
    s = max(0, m.start() - context)
    e = min(len(text), m.end() + context)
    if s > 0:
        sp = text.find(" ", s, m.start())
        if sp != -1:
            s = sp + 1
    if e < len(text):
        sp = text.rfind(" ", m.end(), e)
        if sp != -1:
            e = sp
    return quote(text, s, e, max_len=max(max_len, m.end() - m.start()))


def line_of(text: str, m: re.Match[str], *, max_len: int = 200) -> str:
    """The whole line a match sits on (from the line start, or the match when the line is long), verbatim."""
    s = text.rfind("\n", 0, m.start()) + 1
    if m.start() - s > max_len // 2:
        s = m.start()
    e = text.find("\n", m.end())
    return quote(text, s, len(text) if e == -1 else e, max_len=max_len)


def first_line(text: str, max_len: int = 120) -> str:
    """The first non-empty line of `text`, verbatim, cut to `max_len` at a word boundary."""
    for line in text.splitlines():
        if line.strip():
            return quote(line, max_len=max_len)
    return ""


def short(text: str, max_len: int = 80) -> str:
    """A one-line abbreviation for descriptions (not evidence: it may be cut and re-spaced)."""
    s = squash(text)
    return s if len(s) <= max_len else s[: max_len - 1].rstrip() + "…"


CACHED_CHARS: Final = 2000


def cached_for_short_text(fn: Callable[[str], T], maxsize: int) -> Callable[[str], T]:
    """`fn` with a bounded cache for texts up to CACHED_CHARS characters (tasks, tool names and arguments repeat
    across the traces of one agent; long texts rarely do, and would fill the cache). `fn` must return an immutable
    value: every caller of a text gets the same object."""
    cached = functools.lru_cache(maxsize=maxsize)(fn)

    def call(text: str) -> T:
        return cached(text) if len(text) <= CACHED_CHARS else fn(text)

    return call


def _none_in(needles: tuple[str, ...], low: str) -> bool:
    """True when `needles` is non-empty and none of them occurs in `low`."""
    if not needles:
        return False
    # A plain loop, not any() over a generator: this runs for every step a pattern is asked about.
    for n in needles:  # noqa: SIM110 (a generator costs more than the substring tests)
        if n in low:
            return False
    return True


def _top_level_branch(pattern: str) -> bool:
    """Does `pattern` have a `|` outside every group (so a leading `\\b` binds only its first alternative)?"""
    depth = 0
    k = 0
    in_class = False
    while k < len(pattern):
        c = pattern[k]
        if c == "\\":
            k += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            if pattern[k + 1 : k + 2] == "^":
                k += 1
            if pattern[k + 1 : k + 2] == "]":  # a "]" first in a class is a literal
                k += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        k += 1
    return False


def _is_word(c: str) -> bool:
    """`re`'s word character for str patterns (Py_UNICODE_ISALNUM or "_")."""
    return c.isalnum() or c == "_"


def _at_boundary(text: str, p: int) -> bool:
    """Is `p` a word boundary of `text`, as `\\b` reads it?"""
    before = p > 0 and _is_word(text[p - 1])
    after = p < len(text) and _is_word(text[p])
    return before != after


class _LeadingBoundary:
    """A compiled `\\bX` searched as X followed by a boundary test at its start. CPython's `re` finds a literal
    prefix with a fast substring scan, but a leading `\\b` hides the prefix and the engine then tries the pattern
    at every position (about 50 times slower on a 500-character result). Same matches: the leftmost match of
    `\\bX` is X's leftmost match at a position that is a word boundary, and X's match there is the same. The match
    objects come from the compiled X (same groups, same spans)."""

    __slots__ = ("whole", "rest")

    def __init__(self, whole: re.Pattern[str], rest: re.Pattern[str]) -> None:
        self.whole = whole
        self.rest = rest

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        rest = self.rest
        while True:
            m = rest.search(text, pos)
            if m is None:
                return None
            p = m.start()
            if _at_boundary(text, p):
                return m
            pos = p + 1

    def finditer(self, text: str) -> list[re.Match[str]]:
        out: list[re.Match[str]] = []
        pos = 0
        while True:
            m = self.search(text, pos)
            if m is None:
                return out
            if m.end() == m.start():  # an empty match: let `re` apply its own rules for those
                return list(self.whole.finditer(text))
            out.append(m)
            pos = m.end()


class _LineStart:
    """A compiled MULTILINE `^X` searched as: a match of X at `pos` when a line starts there, else the first match of
    `\\nX` (whose "\\n" `re` finds by a fast scan) and X's match right after its newline. `re` tries `^X` at every
    position (`^` hides every literal). Same matches: with re.MULTILINE `^` holds at the text's start and right after
    a "\\n", so the leftmost match of `^X` from `pos` is X's match at `pos` when `pos` starts a line, else X's match
    just after the leftmost "\\n" at or after `pos` that X matches after. The match objects come from the compiled
    `^X` (`match` at that position: same groups, same spans)."""

    __slots__ = ("whole", "after_newline")

    def __init__(self, whole: re.Pattern[str], after_newline: re.Pattern[str]) -> None:
        self.whole = whole
        self.after_newline = after_newline

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        if pos == 0 or text[pos - 1 : pos] == "\n":
            m = self.whole.match(text, pos)
            if m is not None:
                return m
        n = self.after_newline.search(text, pos)
        return None if n is None else self.whole.match(text, n.start() + 1)

    def finditer(self, text: str) -> list[re.Match[str]]:
        return list(self.whole.finditer(text))


def compile_fast(pattern: str, flags: int = 0) -> re.Pattern[str] | _LeadingBoundary | _LineStart:
    """`re.compile(pattern, flags)`, or for a pattern opening with `\\b` that binds the whole of it, the same
    search run as `_LeadingBoundary`, and for a MULTILINE one opening with `^` that binds the whole of it, as
    `_LineStart` (only `search(text, pos)` and `finditer(text)` are offered)."""
    whole = re.compile(pattern, flags)
    if pattern.startswith("^") and flags & re.M and not _top_level_branch(pattern):
        return _LineStart(whole, re.compile(r"\n" + pattern[1:], flags))
    if (
        pattern.startswith("\\b")
        and not flags & (re.ASCII | re.LOCALE)
        and not _top_level_branch(pattern)
        and pattern[2:3] not in ("", "*", "+", "?", "{")
    ):
        return _LeadingBoundary(whole, re.compile(pattern[2:], flags))
    return whole


class Pattern:
    """A case-insensitive regex that runs fast: CPython's `re` is several times slower with re.IGNORECASE, so the
    pattern (written in lower case) is searched case-sensitively in the lower-cased text. Match offsets refer to
    the original text (lower-casing keeps lengths for all but a few non-ASCII letters; when it does not, the
    search falls back to re.IGNORECASE on the original). `group()` of a match is lower-cased text."""

    __slots__ = ("fast", "slow", "pattern", "needles", "requires", "folds")

    def __init__(
        self,
        pattern: str,
        flags: int = 0,
        *,
        needles: tuple[str, ...] = (),
        requires: tuple[str, ...] = (),
        folds: bool = False,
    ) -> None:
        """`needles`: lower-case substrings at least one of which every match contains. When given, text with
        none of them is skipped without running the regex (substring tests are far cheaper than alternations).
        `requires`: a second such set (every match also contains one of these), for patterns whose first keyword
        is common ("status") and whose rarer part ("not completed") sits later in the match. `folds`: match
        exactly as re.IGNORECASE does, also where it folds a letter that lower-casing keeps ("ı" matches "i",
        "ſ" matches "s"): a text holding one of them is searched with re.IGNORECASE (for patterns that were
        plain re.IGNORECASE regexes, so their matches stay what they were)."""
        self.pattern = pattern
        self.fast = compile_fast(pattern, flags)
        self.slow = re.compile(pattern, flags | re.I)
        self.needles = needles
        self.requires = requires
        self.folds = folds

    def _unfolded(self, low: str) -> bool:
        """Does the fast search miss a fold of re.IGNORECASE in this text (see `folds`)?"""
        return self.folds and not low.isascii() and ("ı" in low or "ſ" in low)

    def _skip(self, low: str) -> bool:
        return _none_in(self.needles, low) or _none_in(self.requires, low)

    def search(self, text: str, low: str | None = None) -> re.Match[str] | None:
        if low is None:
            low = text.lower()
        # (`_unfolded` written out, as `_skip` below)
        if len(low) != len(text) or (self.folds and not low.isascii() and ("ı" in low or "ſ" in low)):
            return self.slow.search(text)
        # `_skip` written out: this runs dozens of times per trace, and the calls cost more than the tests.
        needles = self.needles
        if needles:
            for n in needles:  # noqa: SIM110 (a generator costs more than the substring tests)
                if n in low:
                    break
            else:
                return None
        requires = self.requires
        if requires:
            for n in requires:  # noqa: SIM110
                if n in low:
                    break
            else:
                return None
        return self.fast.search(low)

    def finditer(self, text: str, low: str | None = None) -> list[re.Match[str]]:
        if low is None:
            low = text.lower()
        if len(low) != len(text) or self._unfolded(low):
            return list(self.slow.finditer(text))
        return [] if self._skip(low) else list(self.fast.finditer(low))


class AnyOf:
    """The alternation `a|b|c` of several `Pattern`s, searched one alternative at a time so that each can skip text
    without its own needles. Gives the same matches as the single alternation: that returns the leftmost match,
    and at one start position its first alternative that matches there, which is what taking the earliest start
    over the alternatives (ties to the earlier one) gives; `finditer` repeats that from the end of each match.
    Splitting `\\b(?:x|y)z` into `\\bxz` and `\\byz` keeps the order of the branches, so it is the same pattern;
    each part then opens with a literal, which `re` finds by a fast substring scan (see `_LeadingBoundary`)."""

    __slots__ = ("alternatives", "pattern", "needles", "gate", "_by_needle", "_words", "_plans",
                 "_lists", "_gate_in", "_gate_over", "_absent_parent", "_slow", "folds")  # fmt: skip

    def __init__(self, *alternatives: Pattern, gate: tuple[str, ...] = ()) -> None:
        """`gate`: lower-case words at least one of which the text must hold for any match (as `Pattern`'s
        needles: a coarser list kept from before a pattern was split, so it matches exactly as it did)."""
        self.alternatives = alternatives
        self.gate = gate
        self.pattern = "|".join(a.pattern for a in alternatives)
        # Every needle of every alternative, when each alternative has some: text with none of them cannot match
        # any alternative.
        every = all(a.needles for a in alternatives)
        self.needles = tuple(dict.fromkeys(n for a in alternatives for n in a.needles)) if every else ()
        # (needle, the alternatives it lets through, as a bit per alternative), shorter needles first.
        bits: dict[str, int] = {}
        for i, a in enumerate(alternatives):
            for n in a.needles:
                bits[n] = bits.get(n, 0) | (1 << i)
        order = sorted(bits, key=len)
        self._by_needle = tuple((n, bits[n]) for n in order)
        # Each needle's parent: the longest shorter needle inside it (-1 for none). A needle whose parent is absent
        # from a text is absent too, and is not searched for (substring tests on a long result are most of what
        # these searches cost).
        self._absent_parent = tuple(
            max((j for j, m in enumerate(order[:k]) if m in n), key=lambda j: len(order[j]), default=-1)
            for k, n in enumerate(order)
        )
        # The words looked for first, all at once (a bit per word): the gate, or without one, when every alternative
        # has needles, the needles with no parent (every needle holds one, so a text holding none of them holds
        # no needle at all: most texts hold none). What they say settles needles without a search of their own:
        # a needle holding an absent word is absent ("does not exist" without "exist"), one inside a present word
        # is present ("with " in "with the"). Per needle: (the words it holds, the words that hold it), as masks.
        if gate:
            words = gate
        elif every:
            words = tuple(n for k, n in enumerate(order) if self._absent_parent[k] < 0)
        else:
            words = ()
        self._words = words
        self._gate_in = tuple(sum(1 << j for j, g in enumerate(words) if g in n) for n in order)
        self._gate_over = tuple(sum(1 << j for j, g in enumerate(words) if n in g) for n in order)
        # Per mask of words present: (alternatives live already, the needles left to look for). Built when a mask is
        # first seen: texts give few distinct masks, and the loop below then runs only over the undecided needles.
        self._plans: dict[int, tuple[int, int, tuple[tuple[int, str, int, int], ...]]] = {}
        # Per mask of live alternatives: (compiled alternative, its required words) in order.
        self._lists: dict[int, tuple[tuple[re.Pattern[str] | _LeadingBoundary | _LineStart, tuple[str, ...]], ...]] = {}
        self._slow: re.Pattern[str] | None = None  # the whole alternation with re.IGNORECASE, for finditer
        # Alternatives split from one `Pattern` with `folds`: a text where re.IGNORECASE folds a letter lower-casing
        # keeps is searched with re.IGNORECASE, as that pattern was.
        self.folds = any(a.folds for a in alternatives)
        if self.folds and not all(a.folds for a in alternatives):
            raise ValueError("AnyOf: either every alternative folds or none does")

    def _plan(self, present: int) -> tuple[int, int, tuple[tuple[int, str, int, int], ...]]:
        """(live, absent, tests) for a text holding the words of mask `present`: the alternatives that are live (no
        needle, or a needle inside a present word), the needles known absent (bit per needle) and the needles
        still to look for, as (index, needle, alternatives, parent index), shorter first."""
        got = self._plans.get(present)
        if got is not None:
            return got
        live = sum(1 << i for i, a in enumerate(self.alternatives) if not a.needles)
        absent = 0
        tests = []
        for k, (n, bits) in enumerate(self._by_needle):
            if self._gate_in[k] & ~present:
                absent |= 1 << k
            elif self._gate_over[k] & present:
                live |= bits
            else:
                tests.append((k, n, bits, self._absent_parent[k]))
        got = (live, absent, tuple(tests))
        if len(self._plans) < 4096:
            self._plans[present] = got
        return got

    def _live(self, low: str) -> list[re.Pattern[str] | _LeadingBoundary | _LineStart]:
        """The compiled alternatives that can match in `low` (their needles and required words occur), in order."""
        words = self._words
        present = 0
        if words:
            bit = 1
            for w in words:  # (a plain loop: map over low.__contains__ costs more, its calls build argument tuples)
                if w in low:
                    present |= bit
                bit <<= 1
            if not present:
                return []  # no gate word, so no match
        live, absent, tests = self._plans.get(present) or self._plan(present)
        for k, n, bits, parent in tests:
            if not bits & ~live:
                continue  # every alternative it lets through is live already
            if parent >= 0 and absent >> parent & 1:
                absent |= 1 << k
            elif n in low:
                live |= bits
            else:
                absent |= 1 << k
        if not live:
            return []
        entries = self._lists.get(live)
        if entries is None:
            entries = tuple((a.fast, a.requires) for i, a in enumerate(self.alternatives) if live >> i & 1)
            if len(self._lists) < 4096:
                self._lists[live] = entries
        out = []
        for fast, requires in entries:
            if requires:  # (a plain loop: map over low.__contains__ or a generator costs more than the tests)
                for n in requires:  # noqa: SIM110
                    if n in low:
                        break
                else:
                    continue
            out.append(fast)
        return out

    @staticmethod
    def _first(alts: list[re.Pattern[str] | _LeadingBoundary | _LineStart], low: str, pos: int) -> re.Match[str] | None:
        best: re.Match[str] | None = None
        for fast in alts:
            m = fast.search(low, pos)
            if m is not None and (best is None or m.start() < best.start()):
                best = m
                if best.start() == pos:
                    break  # nothing starts earlier, and earlier alternatives win ties
        return best

    def search(self, text: str, low: str | None = None) -> re.Match[str] | None:
        if low is None:
            low = text.lower()
        if len(low) != len(text) or (self.folds and not low.isascii() and ("ı" in low or "ſ" in low)):
            best: re.Match[str] | None = None
            for alt in self.alternatives:  # each falls back to re.IGNORECASE on the original text
                m = alt.slow.search(text)
                if m is not None and (best is None or m.start() < best.start()):
                    best = m
                    if best.start() == 0:
                        break
            return best
        alts = self._live(low)
        return self._first(alts, low, 0) if alts else None

    def finditer(self, text: str, low: str | None = None) -> list[re.Match[str]]:
        """Every match, left to right, not overlapping (`re.finditer` of the alternation)."""
        if low is None:
            low = text.lower()
        if len(low) != len(text) or (self.folds and not low.isascii() and ("ı" in low or "ſ" in low)):
            if self._slow is None:
                flags = {a.slow.flags for a in self.alternatives}
                if len(flags) != 1:
                    raise ValueError("AnyOf.finditer needs alternatives compiled with the same flags")
                self._slow = re.compile("|".join(f"(?:{a.pattern})" for a in self.alternatives), flags.pop())
            return list(self._slow.finditer(text))
        alts = self._live(low)
        out: list[re.Match[str]] = []
        pos = 0
        while alts:
            m = self._first(alts, low, pos)
            if m is None:
                break
            if m.end() == m.start():
                raise ValueError("AnyOf.finditer: an alternative matched the empty string")
            out.append(m)
            pos = m.end()
        return out


class AfterWords:
    """`(?:(?<=w1)|(?<=w2)...)body` searched as: find each word (a fast substring scan), then match `body` right after
    it. The same matches as the regex, which has no literal opening to scan for and is tried at every position."""

    __slots__ = ("words", "body")

    def __init__(self, words: tuple[str, ...], body: str, flags: int = 0) -> None:
        self.words = words
        self.body = re.compile(body, flags)

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        best: re.Match[str] | None = None
        for w in self.words:
            i = text.find(w, max(0, pos - len(w)))
            while i != -1:
                j = i + len(w)
                if best is not None and j >= best.start():
                    break  # an earlier word already gave a match at or before this one
                if j >= pos:
                    m = self.body.match(text, j)
                    if m is not None:
                        best = m
                        break
                i = text.find(w, i + 1)
        return best


class Branches:
    """A case-sensitive alternation `a|b|c` searched branch by branch (`findall` only): each branch a compiled
    pattern, `_LeadingBoundary` or `AfterWords`, with the substrings one of which every match of it holds (none:
    always tried). Same result as `re.findall` of the alternation, as `AnyOf` argues (leftmost match, ties to the
    earlier branch, each search from the end of the last match); no branch may match the empty string."""

    __slots__ = ("branches",)

    def __init__(self, *branches: tuple[re.Pattern[str] | _LeadingBoundary | _LineStart | AfterWords, tuple[str, ...]]) -> None:
        self.branches = branches

    def findall(self, text: str) -> list[str]:
        live = [b for b, needles in self.branches if not needles or not _none_in(needles, text)]
        out: list[str] = []
        pos = 0
        while live:
            best: re.Match[str] | None = None
            for b in live:
                m = b.search(text, pos)
                if m is not None and (best is None or m.start() < best.start()):
                    best = m
                    if best.start() == pos:
                        break
            if best is None:
                break
            if best.end() == best.start():
                raise ValueError("Branches.findall: a branch matched the empty string")
            out.append(best.group(0))
            pos = best.end()
        return out


_NAME_WORD: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@functools.lru_cache(maxsize=4096)
def name_words(tool: str) -> tuple[str, ...]:
    """The words of a tool name, lowercased: `lookup_account_by_email` and `lookupAccountByEmail` give the same.
    Cached: a trace has a handful of distinct tool names, asked about for every pair of calls."""
    return tuple(w.lower() for w in _NAME_WORD.findall(tool))


# Words that introduce how a tool looks something up ("..._by_email", "..._with_name"): what comes before them
# names the operation, what follows the key it is looked up by.
_QUALIFIERS: Final = frozenset({"by", "with", "using", "via", "from"})


def alternative_tool(a: str, b: str) -> bool:
    """Two tools of one operation that differ only in the key they use: the same words up to a qualifier word
    ("lookup_account_by_email", "lookup_account_by_phone"). Sharing a prefix alone is not enough:
    "get_x_readings" and "get_x_summary" are different operations."""
    if a == b:
        return False
    wa, wb = name_words(a), name_words(b)
    for k, w in enumerate(wa):
        if w in _QUALIFIERS:
            return k >= 1 and len(wb) > k and wb[: k + 1] == wa[: k + 1] and wa != wb
    return False


STEM: Final = 5  # words are compared by their first letters: "cancel", "canceled", "cancellation" share "cance"
_STEM_WORD: Final = re.compile(r"[a-z]{4,}")


def stems(text: str) -> set[str]:
    """The stems (first STEM letters) of the words of four or more letters of a lower-cased text: enough to see
    that a message and a tool name or an error speak of the same thing, with no vocabulary of any framework."""
    return {w[:STEM] for w in _STEM_WORD.findall(text)}


def name_stems(tool: str) -> set[str]:
    """`stems` of a tool name's words (`name_words`)."""
    return {w[:STEM] for w in name_words(tool) if len(w) >= 4}


JSON_CHARS: Final = 200_000  # longer results are not parsed as JSON (their text is searched as it is)


def json_container(text: str) -> Any:
    """The JSON object or list a whole result holds, or None (not one, or over `JSON_CHARS` long)."""
    body = text.strip()
    if body[:1] not in ("{", "[") or len(body) > JSON_CHARS:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
