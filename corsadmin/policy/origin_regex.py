"""Write-time checks of ``re:`` origin rules: what an expression can let in.

Pure Python: no Flask and no database. :func:`check_origin_regex` is called by
:func:`corsadmin.policy.origins.parse_origin_rule` for every new ``re:`` rule; it raises
:class:`RegexCheckError` with a one-line message, or returns.

How it decides. A ``re:`` rule is only ever run (with RE2, case-insensitive, full
match) on *canonical* request origins: ``scheme://host[:port]`` serialized as a
browser sends it, every letter lower-case (:meth:`corsadmin.policy.origins.OriginMatcher.match`
refuses anything else before a regex sees it). So:

1. The expression is parsed here, by a small parser of the RE2 syntax origin
   patterns need (:class:`_Parser`). Constructs RE2 cannot run (lookaround,
   backreferences, possessive quantifiers, atomic groups, conditionals) are refused
   by name; RE2 syntax this parser does not read (``\\pL``, ``[[:alpha:]]``, ``\\Q``)
   is refused with the spelling to use instead. An ``ANY`` (``.``) that is not
   itself repeated is refused: it is almost always a mistaken ``\\.``.
2. The parse tree becomes a Thompson NFA over a small alphabet: the characters a
   canonical origin can hold (``a-z 0-9 - _ . : / [ ] +``). Case: a canonical origin
   is all lower-case, and RE2 matches case-insensitively, so an alphabet character
   ``c`` is taken by a pattern character or class when *any* case variant of ``c``
   is (``c``, its upper case, and the two non-ASCII letters Unicode folds onto
   ASCII: U+017F for ``s`` and U+212A for ``k``). That is exactly RE2's
   case-insensitive rule for literals and positive classes; for a negated class
   it is a superset of it (RE2 folds then negates). The set analysed is therefore
   the set of canonical origins RE2 can match, or more: never fewer, so a
   refusal may be over-cautious but an acceptance is sound. Anchors and word
   boundaries are read as "always true" (also a superset).
3. ``W = L(R) ∩ C minus A(D1..Dk)``, where ``C`` is an automaton of canonical origins
   (a superset of them, which is again the safe side) and ``A(D)`` the origins whose
   host is ``D`` or ends in ``.D``, is searched breadth-first (shortest, then first in
   alphabet order) on the product of the NFA's state sets, ``C`` and a suffix tracker
   for the ``D``s. Starting with no ``D``, each shortest witness's site (registrable
   domain; for an IP address, ``localhost`` or a public suffix, the host itself) is
   added, until ``W`` is empty (accepted) or more than :data:`MAX_REGEX_SITES` sites
   were needed (refused, naming origins it would let in). Since ``A`` is applied to
   the lower-cased witness and the witness alphabet is lower-case, case-closure of
   ``A`` holds by construction.
4. Everything is bounded: NFA size (:data:`MAX_REGEX_NFA_STATES`) and search work
   (:data:`MAX_REGEX_CHECK_WORK`); past either, the pattern is refused as "too complex
   to check; simplify it", in well under a second.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from publicsuffixlist import PublicSuffixList

__all__ = [
    "MAX_REGEX_CHECK_WORK",
    "MAX_REGEX_NFA_STATES",
    "MAX_REGEX_REPEAT",
    "MAX_REGEX_SITES",
    "RegexCheckError",
    "RegexConstructRefused",
    "RegexSyntaxUnsupported",
    "check_origin_regex",
]

MAX_REGEX_SITES: Final = 16
"""A pattern may match origins under at most this many sites (registrable domains)."""
MAX_REGEX_REPEAT: Final = 1000
"""Largest counted repeat (``{n}``, ``{n,m}``): RE2 refuses more."""
MAX_REGEX_NFA_STATES: Final = 5000
"""Largest automaton the checker builds from one pattern (counted repeats expanded)."""
MAX_REGEX_CHECK_WORK: Final = 300_000
"""Work units (automaton states visited) the checker may spend on one pattern."""

TOO_COMPLEX: Final = "the regular expression is too complex to check; simplify it"
LONE_DOT: Final = "an unescaped '.' matches any character; write '\\.'"

# The characters a canonical serialized origin can hold, in the order witnesses are
# tried (so that a shortest witness reads naturally: letters before digits).
_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789-_.:/[]+"
_INDEX: Final = {ch: i for i, ch in enumerate(_ALPHABET)}
_ALL: Final = (1 << len(_ALPHABET)) - 1
# Unicode simple case folding maps exactly these non-ASCII letters onto ASCII ones.
_EXTRA_FOLDS: Final = {"s": "\u017f", "k": "\u212a"}
_VARIANTS: Final[tuple[tuple[str, ...], ...]] = tuple(
    tuple(dict.fromkeys((ch, ch.upper(), *_EXTRA_FOLDS.get(ch, "")))) for ch in _ALPHABET
)


class RegexCheckError(ValueError):
    """The expression is refused; the message is one line, for an operator."""


class RegexConstructRefused(RegexCheckError):
    """A construct RE2 cannot run (lookaround, backreferences...) or refuses (a repeat
    over :data:`MAX_REGEX_REPEAT`), named in the message."""


class RegexSyntaxUnsupported(RegexCheckError):
    """The checker cannot read this syntax (RE2 may: the caller says which)."""


# ---------------------------------------------------------------------- the parse tree


@dataclass(frozen=True, slots=True)
class _Chars:
    mask: int  # bit i: _ALPHABET[i] is taken
    any: bool = False  # an unescaped '.'


@dataclass(frozen=True, slots=True)
class _Empty:
    pass


@dataclass(frozen=True, slots=True)
class _Concat:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Repeat:
    item: _Node
    low: int
    high: int | None


_Node = _Chars | _Empty | _Concat | _Alt | _Repeat

_EMPTY: Final = _Empty()
_DIGITS: Final = frozenset("0123456789")
_WORD: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SPACE: Final = frozenset("\t\n\f\r ")
_REPEAT_RE: Final = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")
_FLAGS_RE: Final = re.compile(r"\(\?([imsU]*(?:-[imsU]+)?)(\)|:)")
_NAME_RE: Final = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_CONTROL_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}

_LOOKAROUND: Final = (
    "lookaround ('(?=', '(?!', '(?<=', '(?<!') is not supported: "
    "origin patterns run in linear time (RE2)"
)
_BACKREFERENCE: Final = (
    "backreferences ('\\1', '(?P=name)', '\\k<name>') are not supported: "
    "origin patterns run in linear time (RE2)"
)


@dataclass(frozen=True, slots=True)
class _CharSet:
    """A class before it is folded onto the alphabet: a predicate on one character."""

    chars: frozenset[str] = frozenset()
    ranges: tuple[tuple[int, int], ...] = ()
    negated_sets: tuple[frozenset[str], ...] = ()  # \D, \W, \S inside a class

    def has(self, ch: str) -> bool:
        if ch in self.chars:
            return True
        code = ord(ch)
        if any(low <= code <= high for low, high in self.ranges):
            return True
        return any(ch not in negated for negated in self.negated_sets)


def _mask(charset: _CharSet, *, negated: bool) -> int:
    """The alphabet characters a (case-insensitive) class takes; see the module doc."""
    mask = 0
    for i, variants in enumerate(_VARIANTS):
        if negated:
            # RE2 folds, then negates: no variant may be in the class. Taking the
            # character when any one variant is outside it is a superset of that.
            taken = any(not charset.has(v) for v in variants)
        else:
            taken = any(charset.has(v) for v in variants)
        if taken:
            mask |= 1 << i
    return mask


def _literal(ch: str) -> _Chars:
    return _Chars(_mask(_CharSet(frozenset(ch)), negated=False))


class _Parser:
    """A recursive-descent parser of the RE2 syntax that origin patterns use."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def parse(self) -> _Node:
        node = self._alternation()
        if self.pos != len(self.text):
            raise RegexCheckError("the regular expression has an unmatched ')'")
        return node

    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def _alternation(self) -> _Node:
        self.depth += 1
        if self.depth > 100:
            raise RegexCheckError(TOO_COMPLEX)
        items = [self._concatenation()]
        while self._peek() == "|":
            self.pos += 1
            items.append(self._concatenation())
        self.depth -= 1
        return items[0] if len(items) == 1 else _Alt(tuple(items))

    def _concatenation(self) -> _Node:
        items: list[_Node] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._quantified(self._atom()))
        if not items:
            return _EMPTY
        return items[0] if len(items) == 1 else _Concat(tuple(items))

    def _quantified(self, node: _Node) -> _Node:
        ch = self._peek()
        low: int
        high: int | None
        if ch == "*":
            low, high, width = 0, None, 1
        elif ch == "+":
            low, high, width = 1, None, 1
        elif ch == "?":
            low, high, width = 0, 1, 1
        elif ch == "{" and (found := _REPEAT_RE.match(self.text, self.pos)) is not None:
            low, high = _repeat_bounds(found)
            width = found.end() - self.pos
        else:
            return node
        if node is _EMPTY:
            raise RegexCheckError("a repetition operator has nothing to repeat")
        self.pos += width
        self._after_quantifier()
        return _Repeat(node, low, high)

    def _after_quantifier(self) -> None:
        """Read a lazy '?'; refuse a possessive '+' and a repeat of a repeat."""
        if self._peek() == "?":  # lazy: the same language
            self.pos += 1
        elif self._peek() == "+":
            raise RegexConstructRefused(
                "possessive quantifiers ('*+', '++', '?+') are not supported: "
                "origin patterns run in linear time (RE2)"
            )
        if self._peek() in ("*", "+", "?") or (
            self._peek() == "{" and _REPEAT_RE.match(self.text, self.pos)
        ):
            raise RegexCheckError("a repetition operator follows another one; use a group")

    def _atom(self) -> _Node:
        ch = self._peek()
        if ch == "(":
            return self._group()
        if ch == "[":
            return self._class()
        self.pos += 1
        if ch == ".":
            return _Chars(_ALL, any=True)
        if ch in ("^", "$"):
            return _EMPTY  # an anchor: read as always true (a superset)
        if ch == "\\":
            return self._escape()
        if ch in ("*", "+", "?"):
            raise RegexCheckError("a repetition operator has nothing to repeat")
        return _literal(ch)

    def _group(self) -> _Node:
        text, pos = self.text, self.pos
        if text.startswith(("(?=", "(?!", "(?<=", "(?<!"), pos):
            raise RegexConstructRefused(_LOOKAROUND)
        if text.startswith("(?P=", pos):
            raise RegexConstructRefused(_BACKREFERENCE)
        if text.startswith("(?>", pos):
            raise RegexConstructRefused(
                "atomic groups ('(?>') are not supported: origin patterns run in linear time (RE2)"
            )
        if text.startswith("(?(", pos):
            raise RegexConstructRefused(
                "conditionals ('(?(') are not supported: origin patterns run in linear time (RE2)"
            )
        if text.startswith("(?:", pos):
            self.pos += 3
        elif (named := _NAME_RE.match(text, pos)) is not None:
            self.pos = named.end()
        elif (flags := _FLAGS_RE.match(text, pos)) is not None:
            # i: already on; s, m, U: no effect on which origins match.
            self.pos = flags.end()
            if flags.group(2) == ")":
                return _EMPTY
        elif text.startswith("(?", pos):
            raise RegexCheckError(
                f"the group {text[pos : pos + 4]!r}... is not supported in an origin pattern; "
                "use '(' or '(?:'"
            )
        else:
            self.pos += 1
        node = self._alternation()
        if self._peek() != ")":
            raise RegexCheckError("the regular expression has an unclosed '('")
        self.pos += 1
        return node

    def _escape(self) -> _Node:
        """After a backslash, outside a class."""
        ch = self._peek()
        if ch in ("b", "B", "A", "z"):
            self.pos += 1
            return _EMPTY
        if ch in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "k"):
            raise RegexConstructRefused(_BACKREFERENCE)
        charset, negated = self._class_escape()
        return _Chars(_mask(charset, negated=negated))

    def _class_escape(self) -> tuple[_CharSet, bool]:
        """After a backslash: one character or a Perl class, as (set, negated)."""
        ch = self._peek()
        if not ch:
            raise RegexCheckError("the regular expression ends with a lone '\\'")
        self.pos += 1
        perl = {"d": _DIGITS, "w": _WORD, "s": _SPACE}
        if ch in perl:
            return _CharSet(perl[ch]), False
        if ch.lower() in perl:
            return _CharSet(perl[ch.lower()]), True
        if ch in _CONTROL_ESCAPES:
            return _CharSet(frozenset(_CONTROL_ESCAPES[ch])), False
        if ch == "x":
            return _CharSet(frozenset(self._hex())), False
        if ch in ("p", "P"):
            raise RegexSyntaxUnsupported(
                "Unicode classes ('\\p') are not supported in an origin pattern; list the "
                "characters instead, like [a-z0-9-]"
            )
        if ch in ("Q", "E"):
            raise RegexSyntaxUnsupported(
                "'\\Q...\\E' is not supported in an origin pattern; escape each character "
                "instead, like '\\.'"
            )
        if ch.isascii() and not ch.isalnum():
            return _CharSet(frozenset(ch)), False
        raise RegexSyntaxUnsupported(
            f"the escape '\\{ch}' is not supported in an origin pattern; use '\\d', '\\w', "
            "'\\.', '\\xHH' or a class like [a-z]"
        )

    def _hex(self) -> str:
        text, pos = self.text, self.pos
        found = re.compile(r"\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{2})").match(text, pos)
        if found is None:
            raise RegexCheckError("'\\x' must be followed by two hex digits or '{hex}'")
        self.pos = found.end()
        code = int(found.group(1) or found.group(2), 16)
        if code > 0x10FFFF:
            raise RegexCheckError("'\\x{...}' is beyond the last Unicode character")
        return chr(code)

    def _class(self) -> _Node:
        self.pos += 1  # '['
        negated = self._peek() == "^"
        if negated:
            self.pos += 1
        chars: set[str] = set()
        ranges: list[tuple[int, int]] = []
        negated_sets: list[frozenset[str]] = []
        first = True
        while True:
            ch = self._peek()
            if not ch:
                raise RegexCheckError("the regular expression has an unclosed '['")
            if ch == "]" and not first:
                self.pos += 1
                break
            first = False
            if ch == "[" and self._peek(1) == ":":
                raise RegexSyntaxUnsupported(
                    "POSIX classes like '[[:alpha:]]' are not supported in an origin "
                    "pattern; write the characters, like [a-z0-9]"
                )
            low = self._class_char()
            if low is None:
                continue
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.pos += 1
                high = self._class_char()
                if isinstance(low, _CharSet) or high is None or isinstance(high, _CharSet):
                    raise RegexCheckError("a class range must be between two characters")
                if ord(high) < ord(low):
                    raise RegexCheckError(f"the class range '{low}-{high}' is backwards")
                ranges.append((ord(low), ord(high)))
            elif isinstance(low, _CharSet):
                chars |= low.chars
                negated_sets.extend(low.negated_sets)
            else:
                chars.add(low)
        charset = _CharSet(frozenset(chars), tuple(ranges), tuple(negated_sets))
        return _Chars(_mask(charset, negated=negated))

    def _class_char(self) -> str | _CharSet | None:
        """One class member: a character, or a Perl class as a _CharSet."""
        ch = self._peek()
        self.pos += 1
        if ch != "\\":
            return ch
        escaped, negated_perl = self._class_escape()
        if negated_perl:
            return _CharSet(negated_sets=(escaped.chars,))
        if len(escaped.chars) == 1:
            return next(iter(escaped.chars))
        return _CharSet(escaped.chars)


def _repeat_bounds(found: re.Match[str]) -> tuple[int, int | None]:
    """The (minimum, maximum or None) of a ``{m}``, ``{m,}`` or ``{m,n}`` repeat."""
    low = int(found.group(1)) if len(found.group(1)) < 6 else MAX_REGEX_REPEAT + 1
    upper = found.group(3)
    high: int | None
    if found.group(2) is None:
        high = low
    elif not upper:
        high = None
    else:
        high = int(upper) if len(upper) < 6 else MAX_REGEX_REPEAT + 1
    if max(low, high or 0) > MAX_REGEX_REPEAT:
        raise RegexConstructRefused(
            f"a repeat count above {MAX_REGEX_REPEAT} is not supported "
            f"(RE2 refuses repeats over {MAX_REGEX_REPEAT})"
        )
    if high is not None and high < low:
        raise RegexCheckError(f"the repeat {found.group(0)} has its maximum below its minimum")
    return low, high


def _lone_dot(node: _Node, repeated: bool = False) -> bool:
    """True when an unescaped '.' stands somewhere not itself repeated."""
    if isinstance(node, _Chars):
        return node.any and not repeated
    if isinstance(node, _Repeat):
        return _lone_dot(node.item, repeated=True)
    if isinstance(node, _Concat | _Alt):
        return any(_lone_dot(item) for item in node.items)
    return False


# ------------------------------------------------------------------------ the automaton


def _size(node: _Node) -> int:
    if isinstance(node, _Chars):
        return 1
    if isinstance(node, _Empty):
        return 0
    if isinstance(node, _Concat):
        return sum(_size(item) for item in node.items)
    if isinstance(node, _Alt):
        return sum(_size(item) for item in node.items) + 1
    inner = _size(node.item) + 1
    copies = node.low + 1 if node.high is None else max(node.high, 1)
    return inner * copies


class _NFA:
    """A Thompson NFA: state i takes the characters in mask[i] to char_next[i], and
    moves freely to each of eps[i]. State 0 is the final state."""

    def __init__(self, root: _Node) -> None:
        self.mask: list[int] = [0]
        self.char_next: list[int] = [-1]
        self.eps: list[list[int]] = [[]]
        self.start = self._build(root, 0)
        self._closures: dict[int, frozenset[int]] = {}
        self.spend: Callable[[int], None] = lambda amount: None

    def _new(self, mask: int = 0, char_next: int = -1) -> int:
        self.mask.append(mask)
        self.char_next.append(char_next)
        self.eps.append([])
        return len(self.mask) - 1

    def _build(self, node: _Node, out: int) -> int:
        if isinstance(node, _Chars):
            return self._new(node.mask, out)
        if isinstance(node, _Empty):
            return out
        if isinstance(node, _Concat):
            for item in reversed(node.items):
                out = self._build(item, out)
            return out
        if isinstance(node, _Alt):
            split = self._new()
            self.eps[split] = [self._build(item, out) for item in node.items]
            return split
        current = out
        if node.high is None:
            loop = self._new()
            self.eps[loop] = [self._build(node.item, loop), out]
            current = loop
        else:
            for _ in range(node.high - node.low):
                optional = self._new()
                self.eps[optional] = [self._build(node.item, current), out]
                current = optional
        for _ in range(node.low):
            current = self._build(node.item, current)
        return current

    def closure(self, state: int) -> frozenset[int]:
        """The states reachable from ``state`` by free moves that take a character
        (and 0 if the final state is reachable)."""
        found = self._closures.get(state)
        if found is None:
            seen = {state}
            stack = [state]
            result: set[int] = set()
            while stack:
                current = stack.pop()
                if current == 0 or self.mask[current]:
                    result.add(current)
                for nxt in self.eps[current]:
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            self.spend(len(seen))
            found = self._closures[state] = frozenset(result)
        return found


# Canonical origins, a superset: scheme "://" host [":" port].
_C_START, _C_SCHEME, _C_COLON, _C_SLASH, _C_HOST = 0, 1, 2, 3, 4
_C_LABEL, _C_DOT, _C_V6, _C_V6_END, _C_PORT_START, _C_PORT = 5, 6, 7, 8, 9, 10
_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"
_LABEL_CHARS: Final = _LETTERS + "0123456789-_"


def _c_transitions() -> dict[int, tuple[tuple[int, str, int], ...]]:
    table: dict[int, dict[str, int]] = {
        _C_START: dict.fromkeys(_LETTERS, _C_SCHEME),
        _C_SCHEME: {**dict.fromkeys(_LETTERS + "0123456789+.-", _C_SCHEME), ":": _C_COLON},
        _C_COLON: {"/": _C_SLASH},
        _C_SLASH: {"/": _C_HOST},
        _C_HOST: {**dict.fromkeys(_LABEL_CHARS, _C_LABEL), "[": _C_V6},
        _C_LABEL: {**dict.fromkeys(_LABEL_CHARS, _C_LABEL), ".": _C_DOT, ":": _C_PORT_START},
        _C_DOT: dict.fromkeys(_LABEL_CHARS, _C_LABEL),
        _C_V6: {**dict.fromkeys("0123456789abcdef:.", _C_V6), "]": _C_V6_END},
        _C_V6_END: {":": _C_PORT_START},
        _C_PORT_START: dict.fromkeys("0123456789", _C_PORT),
        _C_PORT: dict.fromkeys("0123456789", _C_PORT),
    }
    return {
        state: tuple(
            (_INDEX[ch], ch, nxt)
            for ch, nxt in sorted(moves.items(), key=lambda item: _INDEX[item[0]])
        )
        for state, moves in table.items()
    }


_C_MOVES: Final = _c_transitions()
_C_IN_HOST: Final = frozenset({_C_HOST, _C_LABEL, _C_DOT, _C_V6})
_C_HOST_END: Final = frozenset({_C_LABEL, _C_V6_END})


class _Sites:
    """A suffix tracker for "the host is D or ends in .D" over a set of sites D."""

    def __init__(self, sites: list[str], spend: Callable[[int], None]) -> None:
        self._spend = spend
        self.patterns = frozenset("." + site for site in sites)
        self.prefixes = frozenset({""} | {p[:i] for p in self.patterns for i in range(len(p) + 1)})
        self._moves: dict[tuple[str, str], str] = {}
        self.chars = frozenset("".join(self.patterns))

    def start(self) -> str:
        return self.step("", ".")

    def step(self, state: str, ch: str) -> str:
        key = (state, ch)
        found = self._moves.get(key)
        if found is None:
            candidate = state + ch
            while candidate not in self.prefixes:
                self._spend(1 + len(candidate) // 32)
                candidate = candidate[1:]
            found = self._moves[key] = candidate
        return found

    def covers(self, state: str) -> bool:
        return any(state.endswith(pattern) for pattern in self.patterns)


class _Search:
    def __init__(self, nfa: _NFA) -> None:
        self.nfa = nfa
        nfa.spend = self.spend
        self.work = 0
        self._steps: dict[tuple[frozenset[int], int], frozenset[int]] = {}
        # Characters no mask tells apart step alike: one computation per class.
        masks = sorted(set(nfa.mask[1:]))
        signatures: dict[tuple[int, ...], int] = {}
        self._class = [
            signatures.setdefault(tuple((mask >> i) & 1 for mask in masks), len(signatures))
            for i in range(len(_ALPHABET))
        ]

    def spend(self, amount: int) -> None:
        self.work += amount
        if self.work > MAX_REGEX_CHECK_WORK:
            raise RegexCheckError(TOO_COMPLEX)

    def step(self, states: frozenset[int], index: int) -> frozenset[int]:
        key = (states, self._class[index])
        found = self._steps.get(key)
        if found is None:
            self.spend(len(states))
            bit = 1 << index
            nfa = self.nfa
            result: set[int] = set()
            for state in states:
                if nfa.mask[state] & bit:
                    reached = nfa.closure(nfa.char_next[state])
                    self.spend(len(reached))
                    result |= reached
            found = self._steps[key] = frozenset(result)
        return found

    def shortest(self, sites: _Sites) -> str | None:
        """The shortest canonical origin the pattern matches outside ``sites``."""
        start: tuple[frozenset[int], int, str | None] = (
            self.nfa.closure(self.nfa.start),
            _C_START,
            sites.start(),
        )
        parents: dict[tuple[frozenset[int], int, str | None], tuple[object, str]] = {}
        seen = {start}
        queue: deque[tuple[frozenset[int], int, str | None]] = deque([start])
        while queue:
            node = queue.popleft()
            self.spend(1)
            if _outside_sites(node, sites):
                return _spelled(node, parents)
            for child, ch in self._children(node, sites):
                self.spend(1)
                if child not in seen:
                    seen.add(child)
                    parents[child] = (node, ch)
                    queue.append(child)
        return None

    def _children(
        self, node: tuple[frozenset[int], int, str | None], sites: _Sites
    ) -> list[tuple[tuple[frozenset[int], int, str | None], str]]:
        """The nodes one character after ``node``, each with that character, in search order."""
        states, c_state, tracker = node
        in_host = c_state in _C_IN_HOST
        in_sites = sites.chars
        classes = self._class
        children: list[tuple[tuple[frozenset[int], int, str | None], str]] = []
        # Characters that step the automaton alike and that no named site holds lead
        # to the same node: the first of them (alphabet order) stands for all.
        tried: set[tuple[int, int, str]] = set()
        for index, ch, c_next in _C_MOVES[c_state]:
            group = (classes[index], c_next, ch if in_host and ch in in_sites else "")
            if group in tried:
                continue
            tried.add(group)
            following = self.step(states, index)
            if not following:
                continue
            next_tracker: str | None = tracker
            if c_state in _C_HOST_END and c_next == _C_PORT_START:
                assert tracker is not None
                if sites.covers(tracker):
                    continue  # the host is under a site already named
                next_tracker = None
            elif in_host:
                assert tracker is not None
                next_tracker = sites.step(tracker, ch)
            children.append(((following, c_next, next_tracker), ch))
        return children


def _outside_sites(node: tuple[frozenset[int], int, str | None], sites: _Sites) -> bool:
    """Whether the search node ends a matched canonical origin whose host is outside ``sites``."""
    states, c_state, tracker = node
    return 0 in states and (
        c_state == _C_PORT
        or (c_state in _C_HOST_END and tracker is not None and not sites.covers(tracker))
    )


def _spelled(
    node: tuple[frozenset[int], int, str | None],
    parents: dict[tuple[frozenset[int], int, str | None], tuple[object, str]],
) -> str:
    """The characters on the search's way from its start to ``node``."""
    chars: list[str] = []
    current: object = node
    while current in parents:
        current, ch = parents[current]
        chars.append(ch)
    return "".join(reversed(chars))


# --------------------------------------------------------------------------- the check


@functools.cache
def public_suffix_list() -> PublicSuffixList:
    """The public suffix list (ICANN and private sections), loaded once on first use."""
    return PublicSuffixList(only_icann=False)


def _host(origin: str) -> str:
    authority = origin.split("://", 1)[1]
    if authority.startswith("["):
        return authority[: authority.index("]") + 1]
    return authority.partition(":")[0]


def site_of(host: str) -> str:
    """The site a host belongs to: its registrable domain; the host itself for an IP
    address or a public suffix; ``localhost`` for it and every name under it."""
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost"
    last = host.rsplit(".", 1)[-1]
    if host.startswith("[") or last.isdigit() or last.startswith("0x"):
        return host
    found: str | None = public_suffix_list().privatesuffix(host)
    return found or host


def parse_origin_regex(expr: str) -> _Node:
    """Parse; refuse named constructs (RegexCheckError) and unread syntax
    (RegexSyntaxUnsupported)."""
    return _Parser(expr).parse()


def check_origin_regex(expr: str) -> None:
    """Refuse an expression that can let in an origin outside the sites it names.

    Call it only for an expression RE2 compiles (the parser here is not RE2's
    judge of syntax, only a reader of the syntax origin patterns need).
    """
    tree = parse_origin_regex(expr)
    if _lone_dot(tree):
        raise RegexCheckError(LONE_DOT)
    if _size(tree) > MAX_REGEX_NFA_STATES:
        raise RegexCheckError(TOO_COMPLEX)
    search = _Search(_NFA(tree))
    sites: list[str] = []
    witnesses: list[str] = []
    while True:
        try:
            witness = search.shortest(_Sites(sites, search.spend))
        except RegexCheckError:
            if len(witnesses) <= 4:
                raise
            break  # out of budget, but already plainly too broad: say what it lets in
        if witness is None:
            return
        witnesses.append(witness)
        if len(sites) == MAX_REGEX_SITES:
            break
        sites.append(site_of(_host(witness)))
    # The first witness is most likely the site meant; show the next ones.
    examples = witnesses[1:4]
    shown = ", ".join(examples[:-1]) + " and " + examples[-1]
    raise RegexCheckError(
        f"the pattern would let in {shown}, which are not under a site it names (an origin pattern "
        f"may match hosts under at most {MAX_REGEX_SITES} sites; write '\\.' for a dot and "
        "spell each site out)"
    )
