"""Route patterns: parsing, validation, matching and choosing the policy for a path.

Pure Python: no Flask, no database. See the "Route patterns" section of the
policy document for the contract.

A pattern is split on ``/`` after its leading ``/`` (``"/"`` -> ``[""]``,
``"/api"`` -> ``["api"]``, ``"/api/"`` -> ``["api", ""]``). Each segment is

* a literal, which matches itself exactly (case-sensitive, nothing decoded; it
  may hold spaces, as ``/service path``);
* a segment holding ``*`` (``*``, ``*.json``, ``v*``), where each ``*`` matches
  any run of characters other than ``/``, including none;
* ``**``, which matches zero or more whole segments.

A Flask variable (``<name>``, ``<converter:name>``, ``<converter(args):name>``)
must be a whole segment and is normalized to ``*``.

No regular expressions are used at match time: per-segment wildcards are matched
with ``str.find`` (linear, no backtracking blow-up), and ``**`` is handled by a
state walk over a segment trie whose states are de-duplicated, so a request path
chosen by an attacker costs at most (trie nodes on its way) x (segments).

That product can still be large (a ``**`` followed by hundreds of segments, on a
path of thousands of segments, cost seconds), so the work of one lookup is
bounded twice: a pattern may hold at most :data:`MAX_DOUBLE_STAR_SEGMENTS`
``**`` segments, and a lookup that needs more than :data:`MAX_MATCH_STEPS`
steps fails closed (no pattern matches: the response gets no CORS headers,
which is never more than any policy would allow).
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = [
    "MAX_DOUBLE_STAR_SEGMENTS",
    "MAX_MATCH_STEPS",
    "MAX_PATTERN_LENGTH",
    "PathCandidate",
    "PathMatcher",
    "PathPattern",
    "PathPatternError",
    "load_path_pattern",
    "parse_path_pattern",
]

MAX_PATTERN_LENGTH: Final = 1024

#: At most this many ``**`` segments in a pattern written from now on. Each ``**``
#: is one "any depth here" gap; real route patterns need one at the end
#: (``/api/**``), sometimes one at the start too (``/**/*.json``) and rarely one
#: in the middle (``/api/**/export/**``): four leaves one to spare. Patterns stored
#: before the limit existed still load (:func:`load_path_pattern`).
MAX_DOUBLE_STAR_SEGMENTS: Final = 4

#: The work one lookup may do: states of the trie walk visited plus wildcard
#: segment tests (weighted by the glob's parts and the segment's length). A
#: realistic policy set needs a few per path segment; past this, the lookup fails
#: closed (no policy covers the path). About 10 ms of CPU at worst.
MAX_MATCH_STEPS: Final = 10_000

#: How the step budget weighs a wildcard segment test: one step per glob, one more
#: per this many ``*``-separated parts, times one more per this many characters of
#: the path segment tested (each part is a ``str.find`` over the segment).
_GLOB_PARTS_PER_STEP: Final = 8
_SEGMENT_CHUNK: Final = 256

_DOUBLE_STAR: Final = "**"

#: Specificity of one segment: bigger is more specific.
_LITERAL: Final = 2
_WILDCARD: Final = 1
_ANY_SEGMENTS: Final = 0

# A Flask/werkzeug rule variable. Converter arguments may hold spaces
# (``<any(about, help):page>``) but no "/", "<", ">" or parentheses.
_VARIABLE_RE: Final = re.compile(
    r"<(?:[A-Za-z_][A-Za-z0-9_]*(?:\([^()<>/]*\))?:)?[A-Za-z_][A-Za-z0-9_]*>"
)
_PERCENT_ENCODED_RE: Final = re.compile(r"%[0-9A-Fa-f]{2}")
# Stands in for a variable while validating; a control character, so it cannot
# occur in an accepted pattern.
_PLACEHOLDER: Final = "\x00"
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs"})
#: A decoded pattern longer than this is not repeated in an error message.
_MAX_HINT_LENGTH: Final = 120


class PathPatternError(ValueError):
    """An invalid route pattern.

    The message is phrased to follow a field name, e.g. ``must start with "/"``,
    so callers can report ``policies[2].path: must start with "/"``.
    """


# --------------------------------------------------------------------------- #
# Segment matching
# --------------------------------------------------------------------------- #


def _glob_matches(parts: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` matches a segment glob split on ``*`` into ``parts``.

    ``parts`` has at least two items (the segment holds at least one ``*``).
    Leftmost-first greedy search is exact for globs whose only wildcard is ``*``,
    and costs O(len(text) * len(pattern)) at worst.
    """
    head, tail = parts[0], parts[-1]
    if len(text) < len(head) + len(tail):
        return False
    if not text.startswith(head) or not text.endswith(tail):
        return False
    pos = len(head)
    end = len(text) - len(tail)
    for part in parts[1:-1]:
        found = text.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def _split_path(path: str) -> list[str] | None:
    """The segments of a request path, or None if it does not start with "/"."""
    if not path.startswith("/"):
        return None
    return path[1:].split("/")


# --------------------------------------------------------------------------- #
# Patterns
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A validated, normalized route pattern. Build it with :func:`parse_path_pattern`."""

    #: Normalized text: every ``<name>`` / ``<conv:name>`` segment became ``*``.
    text: str
    #: ``text`` split on ``/`` after its leading ``/``.
    segments: tuple[str, ...]
    #: Per segment: 2 literal, 1 holds ``*``, 0 is ``**``. Bigger tuple = more specific.
    specificity: tuple[int, ...]

    def matches(self, path: str) -> bool:
        """Whether this pattern matches ``path`` (the router's, already decoded, path).

        Bounded like :meth:`PathMatcher.match`: past :data:`MAX_MATCH_STEPS` steps
        the answer is False (fail closed).
        """
        segs = _split_path(path)
        if segs is None:
            return False
        pattern = self.segments
        globs = [tuple(seg.split("*")) if "*" in seg else None for seg in pattern]
        p = s = 0
        star_p = -1  # index of the last "**" seen in pattern
        star_s = 0  # path index that "**" is currently assumed to stop before
        steps = 0
        # Two-pointer walk with backtracking to the last "**" only: exact when
        # every other pattern item matches exactly one path segment.
        while s < len(segs):
            steps += 1
            if steps > MAX_MATCH_STEPS:
                return False
            if p < len(pattern) and pattern[p] == _DOUBLE_STAR:
                star_p, star_s = p, s
                p += 1
                continue
            matched = False
            if p < len(pattern):
                parts = globs[p]
                if parts is None:
                    matched = pattern[p] == segs[s]
                else:  # weighed as in PathMatcher
                    steps += (len(parts) // _GLOB_PARTS_PER_STEP) * (
                        1 + len(segs[s]) // _SEGMENT_CHUNK
                    )
                    matched = _glob_matches(parts, segs[s])
            if matched:
                p += 1
                s += 1
            elif star_p >= 0:
                star_s += 1
                p, s = star_p + 1, star_s
            else:
                return False
        while p < len(pattern) and pattern[p] == _DOUBLE_STAR:
            p += 1
        return p == len(pattern)

    def __str__(self) -> str:
        return self.text


def _segment_specificity(segment: str) -> int:
    if segment == _DOUBLE_STAR:
        return _ANY_SEGMENTS
    if "*" in segment:
        return _WILDCARD
    return _LITERAL


def parse_path_pattern(text: str) -> PathPattern:
    """Validate and normalize a route pattern (one being written).

    Raises :class:`PathPatternError` whose message names the problem.
    """
    return _parse(text, max_double_stars=MAX_DOUBLE_STAR_SEGMENTS)


def load_path_pattern(text: str) -> PathPattern:
    """A stored route pattern: validated as :func:`parse_path_pattern` does, except
    for limits added after it may have been written (the number of ``**``
    segments), so that rows written before still load. Their matching cost is
    bounded by :data:`MAX_MATCH_STEPS` like any other's.
    """
    return _parse(text, max_double_stars=None)


def _decoded_hint(text: str, max_double_stars: int | None) -> str:
    """``(write "/service path")`` when decoding the pattern once gives a valid one
    with the same segments (an encoded "/" would change them: no hint then)."""
    decoded = urllib.parse.unquote(text, errors="strict")
    if decoded.count("/") != text.count("/"):
        return ""
    try:
        pattern = _parse(decoded, max_double_stars=max_double_stars, hint=False)
    except (PathPatternError, UnicodeDecodeError):
        return ""
    if len(pattern.text) > _MAX_HINT_LENGTH:
        return ""
    return f' (write "{pattern.text}")'


def _parse(text: str, *, max_double_stars: int | None, hint: bool = True) -> PathPattern:
    _check_characters(text)
    # Whole variables become a placeholder; what remains is checked as written.
    rest = _VARIABLE_RE.sub(_PLACEHOLDER, text)
    _check_syntax(text, rest, max_double_stars=max_double_stars, hint=hint)
    segments = _segments(rest)
    _check_double_stars(segments, max_double_stars)
    normalized = "/" + "/".join(segments)
    return PathPattern(
        text=normalized,
        segments=tuple(segments),
        specificity=tuple(_segment_specificity(s) for s in segments),
    )


def _check_characters(text: str) -> None:
    """Refuse a non-string, a missing leading "/", excess length, control or invisible chars."""
    if not isinstance(text, str):
        raise PathPatternError("must be a string")
    if not text.startswith("/"):
        raise PathPatternError('must start with "/"')
    if len(text) > MAX_PATTERN_LENGTH:
        raise PathPatternError(f"must not be longer than {MAX_PATTERN_LENGTH} characters")
    for char in text:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise PathPatternError(
                f"must not contain control or invisible characters (found U+{ord(char):04X})"
            )


def _check_syntax(text: str, rest: str, *, max_double_stars: int | None, hint: bool) -> None:
    """Refuse odd whitespace, "?"/"#", percent-encoding, malformed variables in ``rest``."""
    # The router sees a space ("/service path", requested as "/service%20path"), so
    # a pattern may hold one. Other whitespace (tabs and line breaks are control
    # characters, refused above; no-break and other Unicode spaces look like a space
    # and are not one) is refused, and so is a space at either end, which is
    # invisible in a form and in a shell and is almost always a typing accident.
    for char in rest:
        if char.isspace() and char != " ":
            raise PathPatternError(
                f"must not contain whitespace other than the space (found U+{ord(char):04X})"
            )
    if text.endswith(" "):
        raise PathPatternError("must not end with a space")
    if "?" in rest or "#" in rest:
        raise PathPatternError(
            'must not contain "?" or "#": a route pattern is matched against the path only'
        )
    encoded = _PERCENT_ENCODED_RE.search(rest)
    if encoded is not None:
        raise PathPatternError(
            f'must not contain percent-encoded sequences such as "{encoded.group()}": '
            "paths are matched after decoding, so write the decoded character"
            + (_decoded_hint(text, max_double_stars) if hint else "")
        )
    if "<" in rest or ">" in rest:
        if rest.count("<") != rest.count(">"):
            raise PathPatternError('has an unbalanced "<" or ">"')
        raise PathPatternError(
            'has a malformed variable: write "<name>", "<converter:name>" '
            'or "<converter(args):name>"'
        )


def _segments(rest: str) -> list[str]:
    """The normalized segments of a checked pattern: each variable becomes ``*``."""
    raw_segments = rest[1:].split("/")
    last = len(raw_segments) - 1
    segments: list[str] = []
    for index, segment in enumerate(raw_segments):
        if segment == "" and index != last:
            raise PathPatternError(
                'must not contain empty segments ("//"); only a single trailing "/" is allowed'
            )
        if _PLACEHOLDER in segment:
            if segment != _PLACEHOLDER:
                raise PathPatternError(
                    'must use "<name>" or "<converter:name>" only as a whole segment'
                )
            segment = "*"
        elif _DOUBLE_STAR in segment and segment != _DOUBLE_STAR:
            raise PathPatternError('must use "**" only as a whole segment')
        segments.append(segment)
    return segments


def _check_double_stars(segments: list[str], max_double_stars: int | None) -> None:
    """Refuse more ``**`` segments than ``max_double_stars`` (None: no limit)."""
    double_stars = segments.count(_DOUBLE_STAR)
    if max_double_stars is not None and double_stars > max_double_stars:
        raise PathPatternError(
            f'must not hold more than {max_double_stars} "**" segments (it holds '
            f'{double_stars}): each "**" already matches any number of segments'
        )


# --------------------------------------------------------------------------- #
# Matcher
# --------------------------------------------------------------------------- #

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PathCandidate(Generic[T]):
    """One enabled policy's route pattern, with what decides between matches."""

    pattern: PathPattern
    priority: int
    name: str
    value: T


class _Node:
    """A node of the segment trie."""

    __slots__ = (
        "any_segments",
        "glob_cost",
        "globs",
        "index",
        "is_double_star",
        "literals",
        "terminal",
    )

    def __init__(self, index: int, *, is_double_star: bool = False) -> None:
        self.index = index
        self.is_double_star = is_double_star
        self.literals: dict[str, _Node] = {}
        # segment text -> (its parts split on "*", child); a short list in practice
        self.globs: dict[str, tuple[tuple[str, ...], _Node]] = {}
        # Steps of testing every glob against one segment of up to _SEGMENT_CHUNK
        # characters: one per glob, plus one per _GLOB_PARTS_PER_STEP of its parts.
        self.glob_cost = 0
        self.any_segments: _Node | None = None  # the "**" edge
        self.terminal: list[int] = []  # ranks of the candidates whose pattern ends here


def _rank_order(entries: list[PathCandidate[T]]) -> list[PathCandidate[T]]:
    """Entries best first: priority desc, specificity desc, name asc (then pattern text)."""
    by_name = sorted(entries, key=lambda c: (c.name, c.pattern.text))
    return sorted(by_name, key=lambda c: (c.priority, c.pattern.specificity), reverse=True)


class PathMatcher(Generic[T]):
    """All enabled policies' route patterns, compiled. Finds the policy for a request path.

    Patterns are kept in a segment trie (literal children in a dict, wildcard
    segments in a short list, one ``**`` edge per node), so a lookup visits only
    the nodes along the path. :meth:`match` is not memoized here: the snapshot
    memoizes the policy per path (``Snapshot.policy_for``, ``PATH_MEMO_LIMIT``).
    Instances are immutable after construction and safe to share between threads.
    """

    __slots__ = ("_node_count", "_ranked", "_root")

    def __init__(self, entries: Iterable[PathCandidate[T]]) -> None:
        ranked = _rank_order(list(entries))
        self._ranked: tuple[PathCandidate[T], ...] = tuple(ranked)
        self._node_count = 1
        self._root = _Node(0)
        for rank, candidate in enumerate(ranked):
            self._insert(candidate.pattern.segments, rank)

    def _new_node(self, *, is_double_star: bool = False) -> _Node:
        node = _Node(self._node_count, is_double_star=is_double_star)
        self._node_count += 1
        return node

    def _insert(self, segments: tuple[str, ...], rank: int) -> None:
        node = self._root
        for segment in segments:
            if segment == _DOUBLE_STAR:
                if node.is_double_star:
                    continue  # "**/**" matches what "**" matches: share the node
                if node.any_segments is None:
                    node.any_segments = self._new_node(is_double_star=True)
                node = node.any_segments
            elif "*" in segment:
                entry = node.globs.get(segment)
                if entry is None:
                    entry = (tuple(segment.split("*")), self._new_node())
                    node.globs[segment] = entry
                    node.glob_cost += 1 + len(entry[0]) // _GLOB_PARTS_PER_STEP
                node = entry[1]
            else:
                child = node.literals.get(segment)
                if child is None:
                    child = self._new_node()
                    node.literals[segment] = child
                node = child
        node.terminal.append(rank)

    def _matching_ranks(self, path: str) -> set[int]:
        """Ranks of every candidate matching ``path``.

        Empty (no match: fail closed) when the walk would take more than
        :data:`MAX_MATCH_STEPS` steps: an answer from a partial walk could pick a
        broader policy than the one that should win, an empty one allows nothing.
        The count depends only on the path and the patterns, so the same path
        always gets the same answer (memoizing it is sound).
        """
        segs = _split_path(path)
        if segs is None or not self._ranked:
            return set()
        n = len(segs)
        ranks: set[int] = set()
        seen: set[tuple[int, int]] = set()
        steps = 0
        # State (node, i): the first i path segments lead to node.
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            key = (node.index, i)
            if key in seen:
                continue
            seen.add(key)
            if i < n and node.glob_cost:
                # Testing the globs costs more on a longer segment (str.find scans it).
                steps += node.glob_cost * (1 + len(segs[i]) // _SEGMENT_CHUNK)
            steps += 1
            if steps > MAX_MATCH_STEPS:
                return set()
            if node.is_double_star:
                # A pattern ending in "**" matches whatever remains: no need to walk it.
                ranks.update(node.terminal)
            elif i == n:
                ranks.update(node.terminal)
            if node.any_segments is not None:
                stack.append((node.any_segments, i))  # "**" matching zero segments
            if i < n:
                segment = segs[i]
                if node.is_double_star and (node.literals or node.globs):
                    stack.append((node, i + 1))  # "**" taking one more segment
                child = node.literals.get(segment)
                if child is not None:
                    stack.append((child, i + 1))
                for parts, glob_child in node.globs.values():
                    if _glob_matches(parts, segment):
                        stack.append((glob_child, i + 1))
        return ranks

    def match(self, path: str) -> PathCandidate[T] | None:
        """The winning candidate for ``path``, or None if no pattern matches."""
        ranks = self._matching_ranks(path)
        return self._ranked[min(ranks)] if ranks else None

    def candidates(self, path: str) -> list[PathCandidate[T]]:
        """Every candidate matching ``path``, best first (for explanations)."""
        return [self._ranked[rank] for rank in sorted(self._matching_ranks(path))]

    def __len__(self) -> int:
        return len(self._ranked)

    def __repr__(self) -> str:
        return f"<PathMatcher of {len(self._ranked)} patterns>"
