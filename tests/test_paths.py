"""Tests for corsadmin.paths: route pattern validation, matching and choice."""

from __future__ import annotations

import functools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corsadmin.policy.paths import (
    MAX_DOUBLE_STAR_SEGMENTS,
    MAX_MATCH_STEPS,
    MAX_PATTERN_LENGTH,
    PathCandidate,
    PathMatcher,
    PathPattern,
    PathPatternError,
    load_path_pattern,
    parse_path_pattern,
)

# --------------------------------------------------------------------------- #
# Helpers and independent reference implementations
# --------------------------------------------------------------------------- #


def cand(path: str, name: str, priority: int = 0, value: str = "") -> PathCandidate[str]:
    """A candidate as the loader builds it from a stored row (no write-time limits)."""
    return PathCandidate(load_path_pattern(path), priority, name, value or name)


def _segment_regex(segment: str) -> re.Pattern[str]:
    return re.compile("[^/]*".join(re.escape(part) for part in segment.split("*")))


def reference_matches(pattern: PathPattern, path: str) -> bool:
    """Straightforward recursive matcher, independent of PathPattern.matches."""
    if not path.startswith("/"):
        return False

    def rec(pat: tuple[str, ...], segs: tuple[str, ...]) -> bool:
        if not pat:
            return not segs
        if pat[0] == "**":
            return any(rec(pat[1:], segs[k:]) for k in range(len(segs) + 1))
        return (
            bool(segs)
            and _segment_regex(pat[0]).fullmatch(segs[0]) is not None
            and rec(pat[1:], segs[1:])
        )

    return rec(pattern.segments, tuple(path[1:].split("/")))


def _compare(a: PathCandidate[str], b: PathCandidate[str]) -> int:
    """Negative if a is better than b: priority, then specificity, then name ascending."""
    if a.priority != b.priority:
        return -1 if a.priority > b.priority else 1
    if a.pattern.specificity != b.pattern.specificity:
        return -1 if a.pattern.specificity > b.pattern.specificity else 1
    if a.name != b.name:
        return -1 if a.name < b.name else 1
    return 0


def brute_force_candidates(
    entries: list[PathCandidate[str]], path: str
) -> list[PathCandidate[str]]:
    matching = [c for c in entries if c.pattern.matches(path)]
    return sorted(matching, key=functools.cmp_to_key(_compare))


def brute_force_match(entries: list[PathCandidate[str]], path: str) -> PathCandidate[str] | None:
    best: PathCandidate[str] | None = None
    for c in entries:
        if c.pattern.matches(path) and (best is None or _compare(c, best) < 0):
            best = c
    return best


def winner(entries: list[PathCandidate[str]], path: str) -> str | None:
    found = PathMatcher(entries).match(path)
    return None if found is None else found.name


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #

INVALID_PATTERNS = [
    pytest.param("api/users", 'must start with "/"', id="no-leading-slash"),
    pytest.param("", 'must start with "/"', id="empty"),
    pytest.param("*/x", 'must start with "/"', id="leading-star"),
    pytest.param("/" + "a" * MAX_PATTERN_LENGTH, "longer than 1024", id="too-long"),
    pytest.param("/api/a ", "must not end with a space", id="trailing-space"),
    pytest.param("/api/** ", "must not end with a space", id="trailing-space-after-star"),
    pytest.param("/api/a\u00a0b", "whitespace other than the space (found U+00A0)", id="nbsp"),
    pytest.param("/api/a\u3000b", "whitespace other than the space", id="ideographic-space"),
    pytest.param("/api/a\u2028b", "whitespace other than the space", id="line-separator"),
    pytest.param("/api/a\tb", "control", id="tab"),
    pytest.param("/api/a\nb", "control", id="newline"),
    pytest.param("/api/\x00", "control", id="nul"),
    pytest.param("/api/\x7f", "control", id="del"),
    pytest.param("/api/a\u200bb", "invisible", id="zero-width-space"),
    pytest.param("/api/a\u202eb", "invisible", id="bidi-override"),
    pytest.param("/api?x=1", '"?" or "#"', id="query"),
    pytest.param("/api#top", '"?" or "#"', id="fragment"),
    pytest.param("/api%2Fadmin", "write the decoded character", id="percent-2F"),
    pytest.param("/api/%2e%2e/admin", "percent-encoded", id="percent-2e"),
    pytest.param("/a%20b", "percent-encoded", id="percent-20"),
    pytest.param(
        "/service%20path",
        'such as "%20": paths are matched after decoding, so write the decoded character '
        '(write "/service path")',
        id="percent-20-hint",
    ),
    pytest.param("//", "empty segments", id="double-slash-root"),
    pytest.param("/api//users", "empty segments", id="double-slash-middle"),
    pytest.param("/api//", "empty segments", id="double-trailing-slash"),
    pytest.param("//api", "empty segments", id="double-leading-slash"),
    pytest.param("/a**", '"**" only as a whole segment', id="double-star-suffix"),
    pytest.param("/**b", '"**" only as a whole segment', id="double-star-prefix"),
    pytest.param("/***", '"**" only as a whole segment', id="triple-star"),
    pytest.param("/api/**.json", '"**" only as a whole segment', id="double-star-ext"),
    pytest.param("/<id>.json", "whole segment", id="variable-with-suffix"),
    pytest.param("/user-<int:id>", "whole segment", id="variable-with-prefix"),
    pytest.param("/<a><b>", "whole segment", id="two-variables-one-segment"),
    pytest.param("/users/<id", "unbalanced", id="unclosed-variable"),
    pytest.param("/users/id>", "unbalanced", id="unopened-variable"),
    pytest.param("/<a>>", "unbalanced", id="extra-close"),
    pytest.param("/<>", "malformed variable", id="empty-variable"),
    pytest.param("/<1abc>", "malformed variable", id="variable-starts-with-digit"),
    pytest.param("/<int:>", "malformed variable", id="converter-without-name"),
    pytest.param("/<a-b>", "malformed variable", id="variable-with-dash"),
    pytest.param('/<regex("a/b"):x>', "malformed variable", id="variable-spanning-segments"),
]


@pytest.mark.parametrize(("text", "message"), INVALID_PATTERNS)
def test_invalid_pattern_is_rejected_with_named_problem(text: str, message: str) -> None:
    with pytest.raises(PathPatternError, match=re.escape(message)):
        parse_path_pattern(text)


def test_an_encoded_slash_gets_no_decoded_hint() -> None:
    """Decoding %2F would split the segment: the router would not see that pattern."""
    with pytest.raises(PathPatternError, match=r"write the decoded character$"):
        parse_path_pattern("/a%2Fb")


def test_error_is_a_value_error_phrased_to_follow_a_field_name() -> None:
    with pytest.raises(ValueError, match=r'^must start with "/"$'):
        parse_path_pattern("api")


def test_pattern_of_exactly_max_length_is_accepted() -> None:
    text = "/" + "a" * (MAX_PATTERN_LENGTH - 1)
    assert len(text) == MAX_PATTERN_LENGTH
    assert parse_path_pattern(text).text == text


VALID_PATTERNS = [
    pytest.param("/", "/", ("",), (2,), id="root"),
    pytest.param("/api", "/api", ("api",), (2,), id="literal"),
    pytest.param("/api/", "/api/", ("api", ""), (2, 2), id="trailing-slash"),
    pytest.param("/api/status", "/api/status", ("api", "status"), (2, 2), id="doc-literal"),
    pytest.param("/files/*.json", "/files/*.json", ("files", "*.json"), (2, 1), id="doc-ext"),
    pytest.param("/api/*/items", "/api/*/items", ("api", "*", "items"), (2, 1, 2), id="doc-star"),
    pytest.param("/api/**", "/api/**", ("api", "**"), (2, 0), id="doc-double-star"),
    pytest.param("/users/<id>", "/users/*", ("users", "*"), (2, 1), id="flask-variable"),
    pytest.param(
        "/users/<int:id>/posts",
        "/users/*/posts",
        ("users", "*", "posts"),
        (2, 1, 2),
        id="flask-converter",
    ),
    pytest.param("/<any(about, help):page>", "/*", ("*",), (1,), id="flask-any-with-space"),
    pytest.param(
        "/c/<string(length=2):code>/", "/c/*/", ("c", "*", ""), (2, 1, 2), id="flask-args"
    ),
    pytest.param(
        "/v1.0/a+b/%zz",
        "/v1.0/a+b/%zz",
        ("v1.0", "a+b", "%zz"),
        (2, 2, 2),
        id="literal-punctuation",
    ),
    pytest.param("/ünï/路径", "/ünï/路径", ("ünï", "路径"), (2, 2), id="unicode"),
    pytest.param("/**", "/**", ("**",), (0,), id="everything"),
    pytest.param(
        "/service path", "/service path", ("service path",), (2,), id="CVE-2024-6844-space"
    ),
    pytest.param("/ a/b c /*", "/ a/b c /*", (" a", "b c ", "*"), (2, 2, 1), id="inner-spaces"),
    pytest.param("/a*b*c", "/a*b*c", ("a*b*c",), (1,), id="multi-star-segment"),
]


@pytest.mark.parametrize(("text", "normalized", "segments", "specificity"), VALID_PATTERNS)
def test_valid_pattern_is_normalized(
    text: str, normalized: str, segments: tuple[str, ...], specificity: tuple[int, ...]
) -> None:
    pattern = parse_path_pattern(text)
    assert pattern.text == normalized
    assert str(pattern) == normalized
    assert pattern.segments == segments
    assert pattern.specificity == specificity
    assert parse_path_pattern(normalized) == pattern  # normalization is idempotent


def test_patterns_are_hashable_values() -> None:
    assert parse_path_pattern("/users/<id>") == parse_path_pattern("/users/<int:uid>")
    assert len({parse_path_pattern("/a/<x>"), parse_path_pattern("/a/*")}) == 1


# --------------------------------------------------------------------------- #
# Matching one pattern
# --------------------------------------------------------------------------- #

MATCH_TABLE = [
    # the document's examples
    ("/api/status", "/api/status", True),
    ("/api/status", "/api/status/", False),
    ("/api/status", "/api/statusx", False),
    ("/files/*.json", "/files/a.json", True),
    ("/files/*.json", "/files/.json", True),
    ("/files/*.json", "/files/a/b.json", False),
    ("/files/*.json", "/files/a.jsonx", False),
    ("/files/*.json", "/files/ajson", False),
    ("/api/*/items", "/api/x/items", True),
    ("/api/*/items", "/api/x/y/items", False),
    ("/api/*/items", "/api/items", False),
    ("/api/**", "/api", True),
    ("/api/**", "/api/", True),
    ("/api/**", "/api/a/b", True),
    ("/api/**", "/apix", False),
    ("/api/**", "/api-v2", False),
    ("/api/**", "/apix/a", False),
    ("/api/**", "/", False),
    ("/users/<int:id>", "/users/1", True),
    ("/users/<int:id>", "/users/abc", True),
    ("/users/<int:id>", "/users/1/x", False),
    # trailing slash and empty segments
    ("/api/", "/api/", True),
    ("/api/", "/api", False),
    ("/api", "/api/", False),
    ("/api/*", "/api/", True),
    ("/api/*", "/api", False),
    ("/api/*", "/api/x", True),
    ("/api/*", "/api/x/", False),
    ("/api/*/items", "/api//items", True),
    ("/api/**/", "/api/", True),
    ("/api/**/", "/api/a/", True),
    ("/api/**/", "/api/a", False),
    ("/", "/", True),
    ("/", "/a", False),
    ("/", "//", False),
    # "**" anywhere
    ("/**", "/", True),
    ("/**", "/a/b/c", True),
    ("/**", "//", True),
    ("/**/x", "/x", True),
    ("/**/x", "/a/b/x", True),
    ("/**/x", "/a/x/b", False),
    ("/a/**/b/**/c", "/a/b/c", True),
    ("/a/**/b/**/c", "/a/1/b/2/3/c", True),
    ("/a/**/b/**/c", "/a/b/b/c/c", True),
    ("/a/**/b/**/c", "/a/c", False),
    ("/a/**/b/**/c", "/a/b/c/d", False),
    ("/a/**/**", "/a", True),
    ("/**/*.json", "/x/y/z.json", True),
    ("/**/*.json", "/x/y/z.json/", False),
    # several "*" in one segment
    ("/a*b*c", "/abc", True),
    ("/a*b*c", "/aXbYc", True),
    ("/a*b*c", "/abcbc", True),
    ("/a*b*c", "/acb", False),
    ("/a*b*c", "/abcb", False),
    ("/a*a", "/a", False),
    ("/*ab*b", "/ab", False),
    ("/*ab*b", "/abb", True),
    ("/*b*b", "/b", False),
    ("/a*a", "/aa", True),
    ("/v*", "/v", True),
    ("/v*", "/w1", False),
    # regex metacharacters are literal
    ("/v1.0/*", "/v1.0/a", True),
    ("/v1.0/*", "/v1x0/a", False),
    ("/a|b", "/a", False),
    ("/a|b", "/a|b", True),
    ("/x$", "/x", False),
    ("/(x)", "/x", False),
    ("/[ab]", "/a", False),
    ("/[ab]", "/[ab]", True),
    ("/a\\d", "/a1", False),
    ("/a\\d", "/a\\d", True),
    # case-sensitive, nothing folded
    ("/api/**", "/API/x", False),
    ("/api/Admin", "/api/admin", False),
    # any characters other than "/" inside a segment, including newlines
    ("/api/*", "/api/a\nb", True),
    ("/api/a", "/api/a\n", False),
    # a path that does not start with "/" matches nothing
    ("/**", "", False),
    ("/**", "api/x", False),
    ("/*", "*", False),
]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [pytest.param(p, q, e, id=f"{p!r}~{q!r}") for p, q, e in MATCH_TABLE],
)
def test_pattern_matching(pattern: str, path: str, expected: bool) -> None:
    parsed = parse_path_pattern(pattern)
    assert parsed.matches(path) is expected
    assert reference_matches(parsed, path) is expected  # the table itself is consistent
    matcher = PathMatcher([PathCandidate(parsed, 0, "only", "v")])
    assert (matcher.match(path) is not None) is expected
    assert len(matcher.candidates(path)) == int(expected)


# --------------------------------------------------------------------------- #
# Choosing between patterns
# --------------------------------------------------------------------------- #

CHOICE_TABLE = [
    pytest.param(
        [("/api/users/*", "users-one", 0), ("/api/**", "api-all", 0)],
        "/api/users/1",
        "users-one",
        id="star-beats-double-star",
    ),
    pytest.param(
        [("/api/users/me", "me", 0), ("/api/users/*", "users-one", 0)],
        "/api/users/me",
        "me",
        id="literal-beats-star",
    ),
    pytest.param(
        [("/api/users/me", "me", 0), ("/api/users/*", "users-one", 0)],
        "/api/users/you",
        "users-one",
        id="star-when-literal-does-not-match",
    ),
    pytest.param(
        [("/api/**", "api-all", 0), ("/api/*/x", "any-x", 0)],
        "/api/a/x",
        "any-x",
        id="star-then-literal-beats-double-star",
    ),
    pytest.param(
        [("/api/**", "api-all", 0), ("/api/*/x", "any-x", 0)],
        "/api/a/y",
        "api-all",
        id="double-star-when-other-does-not-match",
    ),
    pytest.param(
        [("/api/*", "one", 0), ("/api/**", "all", 0)],
        "/api/x",
        "one",
        id="star-beats-double-star-same-depth",
    ),
    pytest.param(
        [("/api/", "slash", 0), ("/api/**", "all", 0), ("/api/*", "one", 0)],
        "/api/",
        "slash",
        id="trailing-slash-literal-wins",
    ),
    pytest.param(
        [("/api/*/x", "star-first", 0), ("/*/v/x", "later-literal", 0)],
        "/api/v/x",
        "star-first",
        id="compared-from-the-left",
    ),
    pytest.param(
        [("/a/**", "short", 0), ("/a/**/x", "longer", 0)],
        "/a/x",
        "longer",
        id="pattern-that-runs-out-first-loses",
    ),
    pytest.param(
        [("/api/**", "broad-but-high", 10), ("/api/users/me", "exact", 0)],
        "/api/users/me",
        "broad-but-high",
        id="priority-beats-specificity",
    ),
    pytest.param(
        [("/api/**", "broad-but-low", -1), ("/**", "everything", 0)],
        "/api/x",
        "everything",
        id="negative-priority-loses",
    ),
    pytest.param(
        [("/files/*.json", "b-json", 0), ("/files/x*", "a-x", 0)],
        "/files/x.json",
        "a-x",
        id="tie-broken-by-name-a",
    ),
    pytest.param(
        [("/files/*.json", "a-json", 0), ("/files/x*", "b-x", 0)],
        "/files/x.json",
        "a-json",
        id="tie-broken-by-name-b",
    ),
    pytest.param(
        [("/api/**", "all", 0)],
        "/other",
        None,
        id="nothing-matches",
    ),
]


@pytest.mark.parametrize(("entries", "path", "expected"), CHOICE_TABLE)
def test_choice_between_patterns(
    entries: list[tuple[str, str, int]], path: str, expected: str | None
) -> None:
    candidates = [cand(p, n, prio) for p, n, prio in entries]
    for order in (candidates, candidates[::-1]):
        assert winner(order, path) == expected
        found = PathMatcher(order).candidates(path)
        assert [c.name for c in found] == [c.name for c in brute_force_candidates(order, path)]
        if expected is not None:
            assert found[0].name == expected


def test_candidates_lists_every_match_best_first() -> None:
    entries = [
        cand("/**", "everything", -5),
        cand("/api/**", "api", 0),
        cand("/api/*/x", "any-x", 0),
        cand("/api/v1/x", "exact", 0),
        cand("/api/v1/*", "v1-one", 0),
        cand("/api/v1/**", "v1-all", 0),
        cand("/api/v2/**", "v2-all", 0),
        cand("/api/v1/x", "pinned", 3),
    ]
    matcher = PathMatcher(entries)
    names = [c.name for c in matcher.candidates("/api/v1/x")]
    assert names == ["pinned", "exact", "v1-one", "v1-all", "any-x", "api", "everything"]
    assert matcher.match("/api/v1/x") is entries[-1]
    assert matcher.candidates("api/v1/x") == []
    assert matcher.candidates("/nothing") == [entries[0]]


def test_value_is_carried_through() -> None:
    marker = object()
    matcher = PathMatcher([PathCandidate(parse_path_pattern("/a"), 0, "a", marker)])
    found = matcher.match("/a")
    assert found is not None
    assert found.value is marker


def test_len_and_empty_matcher() -> None:
    assert len(PathMatcher([])) == 0
    assert PathMatcher([]).match("/") is None
    assert PathMatcher([]).candidates("/") == []
    entries = [cand("/a", "a"), cand("/a", "b"), cand("/**", "c")]
    assert len(PathMatcher(entries)) == 3
    assert len(PathMatcher(iter(entries))) == 3  # any iterable, consumed once


# --------------------------------------------------------------------------- #
# The Flask-CORS 2024 CVE classes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        pytest.param(["/api/**"], "/API/x", None, id="CVE-2024-6866-upper-case-path"),
        pytest.param(["/api/**"], "/Api/admin", None, id="CVE-2024-6866-mixed-case-path"),
        pytest.param(["/api/admin/*"], "/api/ADMIN/x", None, id="CVE-2024-6866-inner-segment"),
        pytest.param(["/API/**"], "/api/x", None, id="CVE-2024-6866-upper-case-pattern"),
        pytest.param(["/api/**", "/API/**"], "/API/x", "/API/**", id="CVE-2024-6866-exact-case"),
    ],
)
def test_cve_2024_6866_matching_is_case_sensitive(
    patterns: list[str], path: str, expected: str | None
) -> None:
    matcher = PathMatcher([cand(p, f"p{i}") for i, p in enumerate(patterns)])
    found = matcher.match(path)
    assert (None if found is None else found.pattern.text) == expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        pytest.param("/api/a+b", "/api/a+b", True, id="CVE-2024-6844-plus-is-literal"),
        pytest.param("/api/a+b", "/api/a b", False, id="CVE-2024-6844-plus-is-not-space"),
        pytest.param("/api/a+b", "/api/a%2Bb", False, id="CVE-2024-6844-plus-not-re-encoded"),
        pytest.param("/api/a b", "/api/a+b", False, id="CVE-2024-6844-space-is-not-plus"),
        pytest.param("/service path", "/service path", True, id="CVE-2024-6844-space-route"),
        pytest.param("/service path", "/service%20path", False, id="CVE-2024-6844-not-encoded"),
        pytest.param("/service *", "/service path", True, id="CVE-2024-6844-space-then-star"),
        pytest.param("/admin", "/api/%2e%2e/admin", False, id="CVE-2024-6844-no-dot-dot-decode"),
        pytest.param("/admin/**", "/api/%2e%2e/admin", False, id="CVE-2024-6844-no-traversal"),
        pytest.param(
            "/api/*/admin",
            "/api/%2e%2e/admin",
            True,
            id="CVE-2024-6844-encoded-dots-are-one-literal-segment",
        ),
        pytest.param(
            "/api/../admin",
            "/api/%2e%2e/admin",
            False,
            id="CVE-2024-6844-encoded-dots-are-not-dots",
        ),
        pytest.param("/api/*", "/api/a%2Fb", True, id="CVE-2024-6844-encoded-slash-one-segment"),
        pytest.param("/api/a/b", "/api/a%2Fb", False, id="CVE-2024-6844-encoded-slash-not-split"),
        pytest.param("/api/*/*", "/api/a%2Fb", False, id="CVE-2024-6844-no-second-segment"),
        pytest.param("/api/a%b", "/api/a%b", True, id="CVE-2024-6844-lone-percent-literal"),
    ],
)
def test_cve_2024_6844_path_is_matched_as_given(
    pattern: str, path: str, expected: bool | None
) -> None:
    if expected is None:
        with pytest.raises(PathPatternError):
            parse_path_pattern(pattern)
        return
    matcher = PathMatcher([cand(pattern, "p")])
    assert (matcher.match(path) is not None) is expected
    assert parse_path_pattern(pattern).matches(path) is expected


def test_cve_2024_6844_encoded_traversal_does_not_reach_admin_policy() -> None:
    entries = [cand("/admin/**", "admin", priority=100), cand("/api/**", "api")]
    assert winner(entries, "/api/%2e%2e/admin") == "api"
    assert winner(entries, "/api/%2e%2e/admin/x") == "api"
    assert winner(entries, "/admin/x") == "admin"


LONG_DESCRIPTION = "A very broad policy that covers the whole API surface. " * 40


@pytest.mark.parametrize(
    ("entries", "path", "expected"),
    [
        pytest.param(
            [("/api/**", "api-broad-with-a-much-longer-name"), ("/api/admin/*", "admin")],
            "/api/admin/x",
            "admin",
            id="CVE-2024-6839-long-broad-pattern-loses",
        ),
        pytest.param(
            [("/a/**", "long"), ("/a/x", "short")],
            "/a/x",
            "short",
            id="CVE-2024-6839-short-specific-pattern-wins",
        ),
        pytest.param(
            [("/a/**/**/**/**/**/**/**/**", "longest"), ("/a/x", "short")],
            "/a/x",
            "short",
            id="CVE-2024-6839-many-double-stars-lose",
        ),
        pytest.param(
            [("/api/*/*/*/*/*/**", "deep-wildcards"), ("/api/v1/**", "v1")],
            "/api/v1/a/b/c/d/e",
            "v1",
            id="CVE-2024-6839-literal-beats-longer-wildcards",
        ),
        pytest.param(
            [("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/**", "long-literal"), ("/*/x", "short-star")],
            "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x",
            "long-literal",
            id="CVE-2024-6839-specificity-not-length-either-way",
        ),
    ],
)
def test_cve_2024_6839_most_specific_wins_regardless_of_length_or_order(
    entries: list[tuple[str, str]], path: str, expected: str
) -> None:
    candidates = [cand(p, n, value=LONG_DESCRIPTION if "**" in p else n) for p, n in entries]
    for order in (candidates, candidates[::-1]):
        assert winner(order, path) == expected


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #

PATTERN_SEGMENTS = st.sampled_from(
    [
        "a",
        "b",
        "ab",
        "a.b",
        "a+b",
        "A",
        "*",
        "a*",
        "*b",
        "*.b",
        "a*b",
        "*a*",
        "*b*b",
        "a*b*b",
        "**",
        "<id>",
        "<int:n>",
    ]
)
PATH_SEGMENTS = st.sampled_from(
    ["a", "b", "ab", "a.b", "a+b", "A", "", "aab", "a.bb", "abab", "%2e", "a b", "x", "*", "**"]
)


@st.composite
def pattern_texts(draw: st.DrawFn) -> str:
    segments: list[str] = draw(st.lists(PATTERN_SEGMENTS, max_size=5))
    add_slash: bool = draw(st.booleans())
    trailing = "/" if segments and add_slash else ""
    return "/" + "/".join(segments) + trailing


@st.composite
def paths(draw: st.DrawFn) -> str:
    segments = draw(st.lists(PATH_SEGMENTS, max_size=6))
    prefix = draw(st.sampled_from(["/", "/", "/", "/", ""]))
    return prefix + "/".join(segments)


NAMES = [f"{letter}{digit}" for letter in "abcdefgh" for digit in "01"] + list("abcdefgh")


@st.composite
def entry_lists(draw: st.DrawFn) -> list[PathCandidate[str]]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=12))
    return [
        cand(draw(pattern_texts()), name, draw(st.integers(min_value=-1, max_value=2)))
        for name in names
    ]


@settings(max_examples=500)
@given(pattern=pattern_texts(), path=paths())
def test_property_pattern_matches_agrees_with_reference(pattern: str, path: str) -> None:
    parsed = load_path_pattern(pattern)
    assert parsed.matches(path) == reference_matches(parsed, path)


@settings(max_examples=300)
@given(entries=entry_lists(), probes=st.lists(paths(), min_size=1, max_size=10))
def test_property_matcher_agrees_with_brute_force(
    entries: list[PathCandidate[str]], probes: list[str]
) -> None:
    matcher = PathMatcher(entries)
    for path in probes:
        assert matcher.match(path) == brute_force_match(entries, path)
        assert matcher.candidates(path) == brute_force_candidates(entries, path)


@settings(max_examples=300)
@given(
    entries=entry_lists(),
    probes=st.lists(paths(), min_size=1, max_size=10),
    rnd=st.randoms(use_true_random=False),
)
def test_property_result_independent_of_entry_order(
    entries: list[PathCandidate[str]], probes: list[str], rnd: random.Random
) -> None:
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    first, second = PathMatcher(entries), PathMatcher(shuffled)
    for path in probes:
        assert first.match(path) == second.match(path)
        assert first.candidates(path) == second.candidates(path)


@settings(max_examples=300)
@given(pattern=pattern_texts())
def test_property_normalization_is_idempotent(pattern: str) -> None:
    parsed = load_path_pattern(pattern)
    assert "<" not in parsed.text
    assert load_path_pattern(parsed.text) == parsed
    assert parsed.text == "/" + "/".join(parsed.segments)
    assert len(parsed.specificity) == len(parsed.segments)


@settings(max_examples=500)
@given(text=st.one_of(st.text(max_size=40), st.text(max_size=40).map(lambda t: "/" + t)))
def test_property_arbitrary_text_is_accepted_or_rejected_cleanly(text: str) -> None:
    try:
        parsed = parse_path_pattern(text)
    except PathPatternError as error:
        message = str(error)
        parsed = None
    if parsed is None:
        assert message  # every rejection says what is wrong
        return
    assert parsed.text.startswith("/")
    assert not any((ch.isspace() and ch != " ") or ch in "?#" for ch in parsed.text)
    assert not parsed.text.endswith(" ")
    assert parse_path_pattern(parsed.text) == parsed


# --------------------------------------------------------------------------- #
# Scale and memoization
# --------------------------------------------------------------------------- #


def _thousand_entries() -> list[PathCandidate[str]]:
    entries = [cand("/**", "zz-fallback", priority=-1)]
    for i in range(250):
        entries += [
            cand(f"/svc{i}/**", f"svc{i:03}-all"),
            cand(f"/svc{i}/items/<int:id>", f"svc{i:03}-item"),
            cand(f"/svc{i}/items/*/detail", f"svc{i:03}-detail"),
            cand(f"/svc{i}/v*/status", f"svc{i:03}-status"),
        ]
    return entries


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/svc0/items/5", "svc000-item"),
        ("/svc17/items/5/detail", "svc017-detail"),
        ("/svc249/v2/status", "svc249-status"),
        ("/svc249/w2/status", "svc249-all"),
        ("/svc100", "svc100-all"),
        ("/svc100/", "svc100-all"),
        ("/svc100/items/5/other", "svc100-all"),
        ("/svc250/items/5", "zz-fallback"),
        ("/SVC1/items/5", "zz-fallback"),
        ("/", "zz-fallback"),
        ("svc1/items/5", None),
    ],
)
def test_thousand_patterns_choose_correctly(path: str, expected: str | None) -> None:
    entries = _thousand_entries()
    assert len(entries) == 1001
    matcher = PathMatcher(entries)
    assert len(matcher) == 1001
    found = matcher.match(path)
    assert (None if found is None else found.name) == expected
    assert found == brute_force_match(entries, path)


def test_thousand_patterns_agree_with_brute_force_on_many_paths() -> None:
    entries = _thousand_entries()
    matcher = PathMatcher(entries)
    rnd = random.Random(6839)
    tails = ["", "/", "/items/7", "/items/7/detail", "/v1/status", "/x/y/z", "/items//detail"]
    for _ in range(300):
        path = f"/svc{rnd.randrange(260)}{rnd.choice(tails)}"
        assert matcher.candidates(path) == brute_force_candidates(entries, path)
        assert matcher.match(path) == brute_force_match(entries, path)


def test_match_is_consistent() -> None:
    # Not memoized per matcher: the snapshot memoizes the policy per path (PATH_MEMO_LIMIT).
    entries = [cand("/api/*", "one"), cand("/api/**", "all")]
    matcher = PathMatcher(entries)
    for i in range(5000):
        found = matcher.match(f"/api/{i}")
        assert found is not None
        assert found.name == "one"
    first = matcher.match("/api/x/y")
    assert first is not None
    assert first.name == "all"
    assert matcher.match("/api/x/y") is first


def test_very_long_path_is_matched() -> None:
    matcher = PathMatcher([cand("/api/**", "all"), cand("/api/*", "one")])
    long_path = "/api/" + "x/" * 5000 + "end"
    found = matcher.match(long_path)
    assert found is not None
    assert found.name == "all"
    long_segment = "/api/" + "a" * 10_000
    found = matcher.match(long_segment)
    assert found is not None
    assert found.name == "one"


def test_many_double_stars_and_many_segments_stay_correct() -> None:
    # A pathological pattern and path: correctness only, the walk is de-duplicated.
    pattern = "/" + "/".join(["**", "a"] * 8) + "/b"
    matcher = PathMatcher([cand(pattern, "p")])
    assert matcher.match("/" + "/".join(["a"] * 200)) is None
    assert matcher.match("/" + "/".join(["a"] * 200) + "/b") is not None
    glob = "/" + "*a" * 20 + "*"
    assert parse_path_pattern(glob).matches("/" + "a" * 19 + "b" * 1000) is False
    assert parse_path_pattern(glob).matches("/" + "a" * 20) is True


# --------------------------------------------------------------------------- #
# Bounded work per lookup (issue 7)
# --------------------------------------------------------------------------- #

#: A request path as long as a server in front accepts: gunicorn's default request
#: line is 4094 bytes, nginx's 8 KB; 4,000 segments of "a".
LONG_PATH = "/" + "/".join(["a"] * 4000)
#: Accepted today by load_path_pattern (stored rows), and most were accepted on write
#: before the "**" limit: each one made a lookup on LONG_PATH take seconds.
HOSTILE_PATTERNS = [
    "/" + "/".join(["**", "a"] * 203) + "/b",  # 203 "**": 1,018 characters
    "/**/" + "a/" * 509 + "b",  # one "**", then 510 literals
    "/**/" + "*/" * 509 + "*",  # one "**", then 510 wildcards: matches LONG_PATH
    "/**/" + "*a/" * 300 + "*",
]
#: Every hostile pattern matches it: before the bound, each lookup found that match
#: after seconds; after it, each gives up after MAX_MATCH_STEPS steps.
HOSTILE_PATH = LONG_PATH + "/b"


def test_too_many_double_star_segments_are_refused_with_the_limit() -> None:
    limit = MAX_DOUBLE_STAR_SEGMENTS
    accepted = "/" + "/".join(["**", "x"] * limit)
    assert parse_path_pattern(accepted).segments.count("**") == limit
    with pytest.raises(PathPatternError, match=rf'more than {limit} "\*\*" segments'):
        parse_path_pattern(accepted + "/**")
    with pytest.raises(PathPatternError, match="holds 203"):
        parse_path_pattern(HOSTILE_PATTERNS[0])


def test_stored_patterns_over_the_limit_still_load_and_match() -> None:
    stored = "/a/" + "/".join(["**"] * 8)
    pattern = load_path_pattern(stored)
    assert pattern.text == stored
    assert pattern.matches("/a/x/y")
    assert winner([cand(stored, "stored"), cand("/a/x", "short")], "/a/x") == "short"
    assert winner([cand(stored, "stored"), cand("/a/x", "short")], "/a/y/z") == "stored"
    for text, message in INVALID_PATTERNS_FOR_LOAD:
        with pytest.raises(PathPatternError, match=re.escape(message)):
            load_path_pattern(text)


INVALID_PATTERNS_FOR_LOAD = [("api", 'must start with "/"'), ("/a//b", "empty segments")]


@pytest.mark.parametrize("hostile", HOSTILE_PATTERNS)
def test_one_lookup_is_bounded_and_fails_closed(hostile: str) -> None:
    import time

    matcher = PathMatcher([cand(hostile, "hostile"), cand("/api/**", "api")])
    pattern = load_path_pattern(hostile)
    started = time.perf_counter()
    found = matcher.match(HOSTILE_PATH)
    candidates = matcher.candidates(HOSTILE_PATH)
    pattern.matches(HOSTILE_PATH)  # True or, past the budget, False: either way bounded
    elapsed = time.perf_counter() - started
    # Fail closed: past the budget no policy covers the path (no CORS headers at all,
    # never more than any policy would allow), whatever the pattern.
    assert found is None
    assert candidates == []
    # Seconds each before the bound; about 10 ms each after (generous: shared CI machines).
    assert elapsed < 2, f"{elapsed:.3f}s"
    # Ordinary paths still get their answer.
    assert winner([cand(hostile, "hostile"), cand("/api/**", "api")], "/api/x") == "api"


def test_many_hostile_policies_together_stay_bounded() -> None:
    import time

    # 300 different chains of 60 wildcards that all match "a", each after one "**".
    globs = ["*", "a*", "*a", "*a*", "a"]
    patterns = [
        "/**/"
        + "/".join(globs[(k * 7 + j * 3 + k // 7 + j // 5) % 5] for j in range(60))
        + f"/z{k}"
        for k in range(300)
    ]
    matcher = PathMatcher([cand(p, f"p{k:03}") for k, p in enumerate(patterns)])
    for path in (LONG_PATH + "/z7", "/" + "/".join(["a"] * 1000) + "/z7"):
        started = time.thread_time()
        assert matcher.match(path) is None  # a match before the bound, after seconds
        assert time.thread_time() - started < 2


def test_long_paths_under_realistic_patterns_are_still_matched() -> None:
    entries = [
        cand("/**", "fallback", priority=-1),
        cand("/api/**", "api"),
        cand("/**/static/*.js", "static"),
        cand("/files/*.json", "json"),
    ]
    matcher = PathMatcher(entries)
    assert matcher.match("/api/" + "x/" * 2000 + "y") == entries[1]
    assert matcher.match("/x/" + "y/" * 2000 + "static/app.js") == entries[2]
    assert matcher.match("/x/" + "y/" * 2000 + "static/app.css") == entries[0]
    for path in ("/api/" + "x/" * 2000 + "y", "/x/" + "y/" * 2000 + "static/app.js"):
        assert matcher.match(path) == brute_force_match(entries, path)


def test_the_step_budget_is_a_deterministic_cut_off() -> None:
    """The same path always gets the same answer (so memoizing it is sound), and the
    cut-off sits where the walk's state count crosses MAX_MATCH_STEPS."""
    matcher = PathMatcher([cand("/**/" + "*/" * 9 + "end", "p")])
    # Each path segment costs about 10 states of the "**" + 9 wildcards chain
    # (plus their wildcard tests): well under the budget at 100 segments,
    # well over it at MAX_MATCH_STEPS segments.
    short = "/" + "a/" * 100 + "end"
    long = "/" + "a/" * MAX_MATCH_STEPS + "end"
    assert matcher.match(short) is not None
    assert matcher.match(long) is None
    assert matcher.match(long) is None
    assert load_path_pattern("/**/" + "*/" * 9 + "end").matches(short)


def test_wildcard_tests_on_long_segments_are_weighed_but_ordinary_ones_pass() -> None:
    """A wildcard test scans the segment: the budget counts a long segment as more
    work, so a crowd of wildcard siblings on an 8 KB segment fails closed at once,
    while a few wildcards on the same segment are still matched."""
    long_segment = "a" * 8000 + ".json"
    few = PathMatcher([cand("/files/*.json", "json"), cand("/files/*.xml", "xml")])
    found = few.match("/files/" + long_segment)
    assert found is not None
    assert found.name == "json"
    crowd = PathMatcher(
        [cand("/" + "*a" * k + "*b", f"g{k:03}") for k in range(1, 100)] + [cand("/*", "any")]
    )
    assert crowd.match("/x") is not None  # a short segment: within the budget
    assert crowd.match("/" + long_segment) is None  # ~23,000 steps on 8 KB: fails closed
