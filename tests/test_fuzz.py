"""Fuzzing the ways in: "a clear error or a valid result, nothing else".

The document importer (``parse_document`` and ``validate_policy``) and the origin,
path and time parsers get JSON-shaped input with deep nesting, integers of
thousands of digits, odd Unicode, lone surrogates, NUL, and times at the edges of
the calendar. Each must answer with its own error type (``ValidationError``,
``OriginRuleError``, ``PathPatternError``, ``ValueError`` from ``parse_time``) or
a valid result, never anything else (no ``RecursionError``, ``OverflowError``,
``UnicodeError``, ``TypeError``...). What is accepted must be storable by every
backend: UTF-8 encodable and free of NUL.

Deterministic (``derandomize``, no example database) and quick: a few seconds.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corsadmin import ValidationError, parse_document, validate_policy
from corsadmin.policy.origins import OriginRule, OriginRuleError, parse_origin_rule
from corsadmin.policy.paths import (
    MAX_PATTERN_LENGTH,
    PathPattern,
    PathPatternError,
    parse_path_pattern,
)
from corsadmin.policy.spec import (
    EARLIEST_TIME,
    LATEST_TIME,
    POLICY_FIELDS,
    PolicySpec,
    parse_origin_entry,
    parse_time,
)

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- #
# Strategies
# --------------------------------------------------------------------------- #

#: Values that broke something once, or sit on an edge.
SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "a\ud800b",
    "\ufeff",
    "\u202e",
    "\u00a0",
    "\n",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\uffff",
    "\U0010ffff",
    "🙂",
    "路径",
    "İ",
    "ß",
    "*",
    "**",
    "%00",
    "%20",
    "%2F",
    "..",
    "null",
    "file://",
    "re:",
    "re:.*",
    "re:^https://(a+)+\\.example$",
    "re:a{99999999999}",
    "re:(?P<x>a)(?P=x)",
    "https://",
    "https://a.example",
    "https://*.example.com",
    "https://*.com",
    "http://localhost:*",
    "https://xn--",
    "https://xn--zz",
    "https://" + "a" * 64 + ".example",
    "https://" + "a." * 130 + "example",
    "https://[::1]",
    "https://[::1",
    "https://a.example:99999",
    "https://a.example:-1",
    "https://a.example:0x50",
    "HTTPS://A.EXAMPLE:443/",
    "/",
    "/api/**",
    "/service path",
    "/service%20path",
    "/<int:id>",
    "/<a",
    "/" + "/".join(["**"] * 6),
    "/" + "a" * MAX_PATTERN_LENGTH,
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01",
    "9999-12-31",
    "2027-03-01",
    "2027-03-01T00:00:00Z",
    "2027-03-01T00:00:00",
    "2027-02-30",
    "2027-03-01T00:00:00+24:00",
    "2027-03-01T00:00:00\x00Z",
    "\u0662\u0660\u0662\u0667-\u0660\u0663-\u0660\u0661",
    "1" * 3000,
    "GET",
    "Content-Type",
    "X-Company-.*",
    "x" * 3000,
]

SPECIAL_INTS = [0, 1, -1, 2**31 - 1, 2**31, -(2**31), 2**63]

#: Every Unicode code point, surrogates and control characters included.
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())

#: Short texts made mostly of what a backend cannot store or a parser may trip on.
HOSTILE_CHARS = ["\x00", "\ud800", "\udc00", "\x1b", "\x7f", "\n", "\t", " ", "a", "%", "*", "/"]
hostile_texts = st.text(st.sampled_from(HOSTILE_CHARS), min_size=1, max_size=6)
texts = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(ANY_CHAR, max_size=30),
    st.text(string.printable, max_size=30),
    hostile_texts,
    st.builds(lambda a, b: a + b, st.sampled_from(SPECIAL_STRINGS), hostile_texts),
)
#: Integers of thousands of digits (Python cannot turn them into text past 4,300
#: digits). Built, not listed: Hypothesis describes listed values with repr().
huge_ints = st.builds(
    lambda digits, sign: sign * 10**digits,
    st.integers(min_value=4000, max_value=6000),
    st.sampled_from([1, -1]),
)
ints = st.one_of(st.sampled_from(SPECIAL_INTS), st.integers(), huge_ints)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)


def _nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"x": value} if as_dict else [value]
    return value


#: Nesting far deeper than Python's recursion limit (as a JSON reader without a
#: depth limit would hand over).
deep = st.builds(
    _nest, st.integers(min_value=1, max_value=5000), st.sampled_from([None, 1, "x"]), st.booleans()
)
json_values = st.one_of(
    deep,
    st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(texts, children, max_size=4),
        ),
        max_leaves=12,
    ),
)

offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)
aware_datetimes = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.one_of(st.just(UTC), offsets),
)
#: Times within a day of either end of the calendar, with an offset.
edge_datetimes = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2, 23, 59, 59)),
        st.datetimes(min_value=datetime(9999, 12, 30), max_value=datetime(9999, 12, 31, 23, 59)),
    ),
    st.one_of(st.just(UTC), offsets),
)
time_values = st.one_of(
    edge_datetimes.map(lambda d: d.isoformat()),
    edge_datetimes,
    aware_datetimes.map(lambda d: d.isoformat()),
    aware_datetimes,
    st.datetimes(),  # naive
    st.dates(),
    st.dates().map(lambda d: d.isoformat()),
    json_values,
)

origin_texts = st.one_of(
    texts,
    st.builds(
        lambda scheme, host, port: f"{scheme}://{host}{port}",
        st.sampled_from(["http", "https", "HTTP", "ftp", "file", ""]),
        st.one_of(texts, st.from_regex(r"[a-z*]{1,10}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True)),
        st.sampled_from(["", ":80", ":443", ":8080", ":*", ":", ":99999", "/", "/x"]),
    ),
    st.builds(lambda body: "re:" + body, texts),
)
path_texts = st.one_of(
    texts,
    st.lists(
        st.one_of(st.sampled_from(["**", "*", "a", "<id>", "<int:n>", "a b", "%20", ""]), texts),
        max_size=8,
    ).map(lambda segments: "/" + "/".join(segments)),
)
origin_entries = st.one_of(
    origin_texts,
    st.fixed_dictionaries(
        {"origin": origin_texts},
        optional={"note": st.one_of(texts, json_values), "expires": time_values, "x": scalars},
    ),
    json_values,
)

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,70}", fullmatch=True), texts),
    "path": path_texts,
    "description": st.one_of(texts, json_values),
    "origins": st.one_of(st.lists(origin_entries, max_size=4), json_values),
    "methods": st.one_of(
        st.lists(st.one_of(st.sampled_from(["GET", "post", "*", "G T"]), texts), max_size=4),
        json_values,
    ),
    "allow_headers": st.one_of(
        st.lists(
            st.one_of(st.sampled_from(["*", "Content-Type", "X-.+", "X-Company-.*"]), texts),
            max_size=4,
        ),
        json_values,
    ),
    "expose_headers": st.one_of(st.lists(texts, max_size=4), json_values),
    "credentials": scalars,
    "max_age": st.one_of(ints, scalars),
    "private_network": scalars,
    "enabled": scalars,
    "priority": st.one_of(ints, scalars),
    "review_every_days": st.one_of(ints, scalars),
}


@st.composite
def policies(draw: st.DrawFn) -> Any:
    """Mostly policy-shaped objects (some almost valid), sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data: dict[Any, Any] = {"name": "p", "path": "/p/**", "origins": []}
    for key in draw(st.lists(st.sampled_from(POLICY_FIELDS), max_size=7, unique=True)):
        data[key] = draw(FIELD_VALUES[key])
    if draw(st.integers(0, 7)) == 0:
        data[draw(st.one_of(texts, ints))] = draw(scalars)  # an unknown field
    for key in draw(st.lists(st.sampled_from(["name", "path", "origins"]), max_size=1)):
        del data[key]
    return data


documents = st.one_of(
    st.fixed_dictionaries(
        {
            "corsadmin": st.one_of(st.just(1), st.sampled_from([True, 1.0, "1"]), scalars),
            "policies": st.lists(policies(), max_size=3),
        },
        optional={"extra": scalars},
    ),
    json_values,
)

# --------------------------------------------------------------------------- #
# What a valid result must be
# --------------------------------------------------------------------------- #


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def assert_storable(spec: PolicySpec) -> None:
    """Every backend stores it: UTF-8 text without NUL, times and ints in range."""
    document = spec.to_document()
    for text in _strings(document):
        text.encode("utf-8")  # no lone surrogate
        assert "\x00" not in text
    json.dumps(document, ensure_ascii=False).encode("utf-8")
    for entry in spec.origins:
        if entry.expires is not None:
            assert EARLIEST_TIME <= entry.expires <= LATEST_TIME
    for number in (spec.max_age or 0, spec.priority, spec.review_every_days):
        assert -(2**31) < number < 2**31
    # The document written back reads as the same policy (export | import changes nothing).
    assert validate_policy(document) == spec


# --------------------------------------------------------------------------- #
# The properties
# --------------------------------------------------------------------------- #

R = TypeVar("R")
E = TypeVar("E", bound=Exception)


def attempt(call: Callable[[], R], expected: type[E]) -> tuple[R | None, E | None]:
    """The result, or the expected error; anything else propagates (and fails the test)."""
    try:
        return call(), None
    except expected as error:
        return None, error


@FUZZ
@given(data=policies())
def test_validate_policy_gives_a_validation_error_or_a_valid_policy(data: Any) -> None:
    spec, error = attempt(lambda: validate_policy(data), ValidationError)
    if error is not None:
        assert error.errors
        for problem in error.errors:
            assert problem.message
            assert len(str(problem)) < 2000  # values are quoted, not repeated whole
        return
    assert spec is not None
    assert_storable(spec)


@FUZZ
@given(document=documents)
def test_parse_document_gives_a_validation_error_or_valid_policies(document: Any) -> None:
    specs, error = attempt(lambda: parse_document(document), ValidationError)
    if error is not None:
        assert error.errors
        assert str(error)
        return
    assert specs is not None
    assert isinstance(document, dict)
    assert type(document["corsadmin"]) is int
    assert document["corsadmin"] == 1
    for spec in specs:
        assert_storable(spec)


@FUZZ
@given(text=origin_texts)
def test_parse_origin_rule_gives_its_error_or_a_rule(text: str) -> None:
    rule, error = attempt(lambda: parse_origin_rule(text), OriginRuleError)
    if error is not None:
        assert str(error)
        return
    assert isinstance(rule, OriginRule)
    rule.text.encode("utf-8")
    assert "\x00" not in rule.text


@FUZZ
@given(origin=origin_texts, note=st.one_of(texts, json_values), expires=time_values)
def test_parse_origin_entry_gives_a_validation_error_or_an_entry(
    origin: Any, note: Any, expires: Any
) -> None:
    entry, error = attempt(
        lambda: parse_origin_entry(origin, note=note, expires=expires), ValidationError
    )
    if error is not None:
        assert {e.field for e in error.errors} <= {"origin", "note", "expires"}
        return
    assert entry is not None
    entry.note.encode("utf-8")
    assert "\x00" not in entry.note
    if entry.expires is not None:
        assert EARLIEST_TIME <= entry.expires <= LATEST_TIME


@FUZZ
@given(text=path_texts)
def test_parse_path_pattern_gives_its_error_or_a_pattern(text: str) -> None:
    pattern, error = attempt(lambda: parse_path_pattern(text), PathPatternError)
    if error is not None:
        assert str(error)
        return
    assert isinstance(pattern, PathPattern)
    pattern.text.encode("utf-8")
    assert parse_path_pattern(pattern.text) == pattern
    assert pattern.matches(pattern.text.replace("**", "x").replace("*", "y")) in (True, False)


@FUZZ
@given(value=time_values)
def test_parse_time_gives_a_value_error_or_a_time_in_range(value: Any) -> None:
    parsed, error = attempt(lambda: parse_time(value), ValueError)
    if error is not None:
        assert str(error)
        return
    assert parsed is not None
    assert parsed.tzinfo is UTC
    assert EARLIEST_TIME <= parsed <= LATEST_TIME
