"""``re:`` origin rules: RE2 only, refused when they let in more than the sites they
name, bounded to check; and ``file://`` origins.

The checker is :mod:`corsadmin.origin_regex`; the rules reach it through
:func:`corsadmin.origins.parse_origin_rule`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from hypothesis import given, settings
from hypothesis import strategies as st

from corsadmin import CorsAdmin
from corsadmin.db.loader import load_snapshot
from corsadmin.engine.review import rule_risks
from corsadmin.errors import ValidationError
from corsadmin.policy.origin_regex import MAX_REGEX_SITES, TOO_COMPLEX, site_of
from corsadmin.policy.origins import (
    MAX_ORIGIN_LENGTH,
    MAX_REGEX_LENGTH,
    OriginMatcher,
    OriginRuleError,
    _compile_re2,
    is_canonical_request_origin,
    parse_origin_rule,
)
from corsadmin.policy.spec import validate_policy
from tests.support.regex_cases import PATHOLOGICAL, worst_of_the_longest_length

# Nets against a hang (an unbounded search never ends), not speed targets: the check
# is bounded by work (MAX_REGEX_CHECK_WORK), and how long it takes is measured by
# benchmarks/regex_check.py (0.1 s for the worst; RESULTS.md). Thread CPU time is
# no steadier than the clock on a loaded CI machine: the worst pattern, 0.1 s alone,
# was charged 1.1 s, then 2.35 s, in the full suite on the 2-core CI machine.
QUICK_SECONDS = 10.0
CHECK_SECONDS = 30.0


def refusal(text: str) -> str:
    with pytest.raises(OriginRuleError) as caught:
        parse_origin_rule(text)
    return str(caught.value)


# ------------------------------------------------------------------------ accepted


@pytest.mark.parametrize(
    ("text", "matches", "refuses"),
    [
        (
            r"re:^https://[a-z]{2}\.partner\.example$",
            ["https://ab.partner.example"],
            ["https://abc.partner.example", "https://ab.partner.example.evil.test"],
        ),
        (
            r"re:^https://(app|admin)\.partner\.example$",
            ["https://app.partner.example", "https://admin.partner.example"],
            ["https://www.partner.example", "https://app.partner.example:8443"],
        ),
        (
            r"re:^https://[a-z0-9-]+\.partner\.example(:\d+)?$",
            ["https://a-1.partner.example", "https://x.partner.example:8443"],
            ["https://partner.example", "https://x.evilpartner.example"],
        ),
        (
            r"re:^http://localhost:\d+$",
            ["http://localhost:3000"],
            ["http://localhost", "https://localhost:3000", "http://localhost.evil.test:1"],
        ),
        (
            r"re:^https://example\.(com|org)$",
            ["https://example.com", "https://example.org"],
            ["https://example.net", "https://www.example.com"],
        ),
        (
            r"re:https://.*\.partner\.example",
            ["https://a.b.partner.example"],
            ["https://evilpartner.example", "https://partner.example"],
        ),
        (
            r"re:HTTPS://APP\.PARTNER\.EXAMPLE",
            ["https://app.partner.example"],
            ["https://APP.PARTNER.EXAMPLE"],  # not canonical: never reaches a regex
        ),
        (
            r"re:https://a\.example(:.{4})?",
            ["https://a.example:8443"],
            ["https://a.example:84"],
        ),
        (r"re:http://127\.0\.0\.1(:[0-9]+)?", ["http://127.0.0.1:8000"], ["http://127.0.0.2"]),
    ],
)
def test_accepted_patterns_match_what_they_name(
    text: str, matches: list[str], refuses: list[str]
) -> None:
    rule = parse_origin_rule(text)
    assert rule.kind == "regex"
    assert rule.is_broad
    matcher = OriginMatcher([rule])
    for origin in matches:
        assert matcher.match(origin) is rule, origin
    for origin in refuses:
        assert matcher.match(origin) is None, origin


def test_named_groups_and_flags_that_re2_reads_are_accepted() -> None:
    rule = parse_origin_rule(r"re:(?i)https://(?P<tenant>[a-z]+)\.partner\.example")
    assert OriginMatcher([rule]).match("https://x.partner.example") is rule


def test_unicode_case_folding_of_k_is_seen_by_the_check() -> None:
    # RE2 folds U+212A KELVIN SIGN onto 'k': the checker must see https://k.com.
    rule = parse_origin_rule(r"re:https://\x{212A}\.com")
    assert OriginMatcher([rule]).match("https://k.com") is rule
    message = refusal(r"re:https://[\x{212A}\x{17F}a-z]\.com")
    assert "would let in https://b.com" in message


# ------------------------------------------------------------ refused: lets in too much


@pytest.mark.parametrize(
    ("text", "example"),
    [
        ("re:.*", "a://b"),
        ("re:https?://.*", "http://b"),
        ("re:HTTPS://.*", "https://b"),
        (r"re:https://.*example\.com", "https://aexample.com"),
        (r"re:https://.+example\.com", "https://bexample.com"),
        (r"re:^https://[a-z]+\.co\.uk$", "https://b.co.uk"),
        (r"re:https://[a-z]+\.github\.io", "https://b.github.io"),
        (r"re:https://[^.]x\.example", "https://bx.example"),
        (r"re:https://app\.example\.com.*", "https://app.example.coma"),
        (r"re:https://app\.example\.com\.?[a-z]*", "https://app.example.coma"),
        (r"re:https://(a+)+\.example", "https://aa.example"),
        (r"re:https://app\.partner\.example|https://[a-z]+\.evil", "https://b.evil"),
    ],
)
def test_patterns_that_let_in_other_sites_are_refused(text: str, example: str) -> None:
    message = refusal(text)
    assert f"the pattern would let in {example}" in message
    assert "not under a site it names" in message
    assert f"at most {MAX_REGEX_SITES} sites" in message


@pytest.mark.parametrize("credentials", [False, True])
@pytest.mark.parametrize("text", ["re:.*", "re:https?://.*"])
def test_match_everything_is_refused_with_or_without_credentials(
    text: str, credentials: bool
) -> None:
    document: dict[str, Any] = {
        "name": "api",
        "path": "/api/**",
        "origins": [text],
        "credentials": credentials,
    }
    with pytest.raises(ValidationError) as caught:
        validate_policy(document)
    assert "would let in" in str(caught.value)


def test_as_many_sites_as_the_bound_are_accepted_and_one_more_is_not() -> None:
    names = [f"s{i:02d}" for i in range(MAX_REGEX_SITES + 1)]
    inside = "re:^https://(" + "|".join(names[:MAX_REGEX_SITES]) + r")\.com$"
    assert parse_origin_rule(inside).kind == "regex"
    outside = "re:^https://(" + "|".join(names) + r")\.com$"
    assert "would let in" in refusal(outside)


# ---------------------------------------------------------------- refused: lone dots


@pytest.mark.parametrize(
    "text",
    [
        r"re:https://(www.)?example\.com",
        r"re:https://api.\w+\.example\.com",
        r"re:https://app.example\.com",
        r"re:https://app\.example\.com.",
        r"re:https://(a|b.)\.example\.com",
        r"re:https://app\.example.(com|org)",
    ],
)
def test_a_lone_dot_is_refused_wherever_it_stands(text: str) -> None:
    assert refusal(text) == "an unescaped '.' matches any character; write '\\.'"


# -------------------------------------------------------- refused: RE2 cannot run them


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            r"re:https://(?=a)\w+\.example",
            "lookaround ('(?=', '(?!', '(?<=', '(?<!') is not supported: "
            "origin patterns run in linear time (RE2)",
        ),
        (r"re:https://(?!evil)\w+\.example", "lookaround"),
        (r"re:https://\w+(?<=a)\.example", "lookaround"),
        (r"re:https://\w+(?<!a)\.example", "lookaround"),
        (r"re:https://(a)\1\.example", "backreferences"),
        (r"re:https://(?P<x>a)(?P=x)\.example", "backreferences"),
        (r"re:https://a*+\.example", "possessive quantifiers"),
        (r"re:https://a++\.example", "possessive quantifiers"),
        (r"re:https://(?>a)\.example", "atomic groups"),
        (r"re:https://(a)?(?(1)b|c)\.example", "conditionals"),
        ("re:a{99999999999}", "RE2 refuses repeats over 1000"),
        (r"re:https://a{1001}\.example", "RE2 refuses repeats over 1000"),
        (r"re:https://a{2,1001}\.example", "RE2 refuses repeats over 1000"),
        (r"re:https://a**\.example", "does not compile: bad repetition operator"),
        (r"re:https://[z-a]\.example", "does not compile"),
    ],
)
def test_constructs_re2_cannot_run_are_refused_by_name(text: str, message: str) -> None:
    error = refusal(text)
    assert message in error
    assert "\n" not in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("text", "instead"),
    [
        (r"re:https://\pL+\.example", "[a-z0-9-]"),
        (r"re:https://\p{Greek}+\.example", "[a-z0-9-]"),
        (r"re:https://[[:alpha:]]+\.example", "[a-z0-9]"),
        (r"re:https://\Qapp.\E\.example", "'\\.'"),
        (r"re:https://app\.example\C", "'\\d', '\\w'"),
    ],
)
def test_re2_syntax_the_checker_does_not_read_says_what_to_write(text: str, instead: str) -> None:
    error = refusal(text)
    assert "not supported in an origin pattern" in error
    assert instead in error


# ----------------------------------------------------------------------- bounded


@pytest.mark.parametrize("text", PATHOLOGICAL)
def test_pathological_patterns_are_refused_quickly(text: str) -> None:
    assert len(text) - 3 <= MAX_REGEX_LENGTH
    started = time.thread_time()
    error = refusal(text)
    elapsed = time.thread_time() - started
    assert error == TOO_COMPLEX or "would let in" in error or "does not compile" in error
    assert elapsed < CHECK_SECONDS


def test_worst_pattern_of_the_longest_length_answers_quickly() -> None:
    text = worst_of_the_longest_length()
    assert len(text) - 3 <= MAX_REGEX_LENGTH
    started = time.thread_time()
    assert refusal(text) == TOO_COMPLEX
    assert time.thread_time() - started < CHECK_SECONDS


def test_the_old_catastrophic_pattern_runs_in_linear_time_when_stored() -> None:
    # Refused at write time (it lets in aa.example, aaa.example...); a stored copy
    # still runs, in RE2, in linear time.
    assert "would let in" in refusal(r"re:https://(a+)+\.example")
    rule = parse_origin_rule(r"re:https://(a+)+\.example", stored=True)
    matcher = OriginMatcher([rule])
    # The longest run of a's a canonical origin holds (Python's re: 2**63 steps).
    run = "https://" + "a" * 63 + ".x"
    assert is_canonical_request_origin(run)
    # The longest value a request may carry, given to RE2 directly.
    longest = "https://" + "a" * (MAX_ORIGIN_LENGTH - len("https://") - 2) + ".x"
    assert len(longest) == MAX_ORIGIN_LENGTH
    started = time.thread_time()
    assert matcher.match(run) is None
    assert _compile_re2(r"https://(a+)+\.example").fullmatch(longest) is None
    assert matcher.match(longest) is None
    assert time.thread_time() - started < QUICK_SECONDS


# ------------------------------------------------------------------- stored rules


def test_stored_rules_skip_the_write_time_checks() -> None:
    rule = parse_origin_rule(r"re:https://.*example\.com", stored=True)
    assert rule.pattern == r"https://.*example\.com"
    assert OriginMatcher([rule]).match("https://aexample.com") is rule


def test_a_stored_pattern_re2_cannot_compile_matches_nothing_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = r"re:https://(?=x)lookahead-logged-once\.example"
    rule = parse_origin_rule(text, stored=True)
    exact = parse_origin_rule("https://app.example")
    with caplog.at_level(logging.WARNING, logger="corsadmin.origins"):
        first = OriginMatcher([rule, exact])
        second = OriginMatcher([rule, exact])
    assert first.match("https://xlookahead-logged-once.example") is None
    assert second.match("https://app.example") is exact
    logged = [r for r in caplog.records if "lookahead-logged-once" in r.getMessage()]
    assert len(logged) == 1
    assert "matches nothing" in logged[0].getMessage()


def test_a_stored_broad_regex_row_still_loads(app: Flask, cors: CorsAdmin) -> None:
    with app.app_context():
        cors.store("tester", app).import_document(
            {
                "corsadmin": 1,
                "policies": [{"name": "api", "path": "/api/**", "origins": ["https://a.test"]}],
            }
        )
        engine = CorsAdmin.state(app).engine()
        with engine.begin() as connection:
            policy_id = connection.execute(
                sa.text("SELECT id FROM corsadmin_policy WHERE name = 'api'")
            ).scalar_one()
            for origin in (r"re:https://.*example\.com", r"re:(?=a)x"):
                connection.execute(
                    sa.text(
                        "INSERT INTO corsadmin_origin_rule "
                        "(policy_id, origin, note, created_at, created_by) "
                        "VALUES (:p, :o, '', CURRENT_TIMESTAMP, 'old version')"
                    ),
                    {"p": policy_id, "o": origin},
                )
        snapshot = load_snapshot(engine)
        policy = snapshot.policy_for("/api/x")
        assert policy is not None
        assert policy.origins.match("https://aexample.com") is not None
        assert policy.origins.match("https://a.test") is not None
        # The export reads stored rows too.
        exported = cors.store("tester", app).export_document()
        assert r"re:https://.*example\.com" in exported["policies"][0]["origins"]


# ------------------------------------------------------------------------ file://


def test_file_origin_is_an_exact_rule_of_its_own() -> None:
    rule = parse_origin_rule("file://")
    assert rule.kind == "file"
    assert rule.text == "file://"
    assert rule.is_broad
    assert parse_origin_rule("FILE://") == rule
    assert is_canonical_request_origin("file://")
    assert not is_canonical_request_origin("FILE://")


@pytest.mark.parametrize("text", ["file:///x", "file://host", "file://localhost", "file:"])
def test_other_file_origins_are_errors(text: str) -> None:
    with pytest.raises(OriginRuleError):
        parse_origin_rule(text)


@pytest.mark.parametrize(
    ("rules", "origin", "expected"),
    [
        (("file://",), "file://", "file://"),
        (("*",), "file://", "*"),
        (("file://", "*"), "file://", "file://"),
        (("null",), "file://", None),
        (("file://",), "null", None),
        (("file://",), "file:///x", None),
        (("file://",), "FILE://", None),
        (("https://app.example", r"re:https://app\.example"), "file://", None),
        (("https://*.partner.example", "http://localhost:*"), "file://", None),
    ],
)
def test_file_origin_is_matched_only_by_its_rule_or_star(
    rules: tuple[str, ...], origin: str, expected: str | None
) -> None:
    found = OriginMatcher(parse_origin_rule(rule) for rule in rules).match(origin)
    assert (found.text if found is not None else None) == expected


@pytest.mark.parametrize("credentials", [False, True])
def test_file_origin_is_shown_to_reviewers_as_risky(credentials: bool) -> None:
    kinds = [risk.code for risk in rule_risks("file://", credentials=credentials)]
    assert kinds[0] == "file"


def test_file_origin_is_answered_through_flask_cors(app: Flask, cors: CorsAdmin) -> None:
    @app.get("/api/file-origin")
    def file_origin() -> Any:
        return jsonify(ok=True)

    with app.app_context():
        cors.store("tester", app).import_document(
            {
                "corsadmin": 1,
                "policies": [
                    {"name": "api", "path": "/api/**", "origins": ["file://"]},
                    {"name": "other", "path": "/other/**", "origins": ["https://a.test"]},
                ],
            }
        )
    client = app.test_client()
    response = client.get("/api/file-origin", headers={"Origin": "file://"})
    assert response.headers.getlist("Access-Control-Allow-Origin") == ["file://"]
    refused = client.get("/api/file-origin", headers={"Origin": "null"})
    assert refused.headers.getlist("Access-Control-Allow-Origin") == []
    preflight = client.options(
        "/api/file-origin",
        headers={"Origin": "file://", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers.getlist("Access-Control-Allow-Origin") == ["file://"]


def test_regex_message_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_policy({"name": "api", "path": "/api/**", "origins": [r"re:https://.*x\.com"]})
    assert re.search(r"origins\[0\]: the pattern would let in https://", str(caught.value))


# ------------------------------------------------------------------ property


_PIECES = [
    "https://", "http://", "https?://", "[a-z]+", "[a-z]", r"\.", "example", "com", ".*",
    ".+", "(a|b)", r"(www\.)?", "x", "[^.]+", "[^/]*", r"(:\d+)?", r"\d+", "-", "co", "uk",
    r"\w+", "S", "K", "[A-Z]+", "[^a-z]", r"\x{17F}", "[^x]*", ":", "localhost", "(", ")",
    "|", "*", "?", "{2}", "[", "]", "\\", "(?=", r"\1",
]  # fmt: skip
_LABELS = ["a", "b", "example", "com", "co", "uk", "x", "www", "s", "k", "aa", "1", "localhost"]


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8),
    hosts=st.lists(
        st.tuples(
            st.sampled_from(["https", "http", "a"]),
            st.lists(st.sampled_from(_LABELS), min_size=1, max_size=3),
            st.sampled_from(["", ":1", ":8080"]),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_an_accepted_pattern_never_matches_more_sites_than_the_bound(
    pieces: list[str], hosts: list[tuple[str, list[str], str]]
) -> None:
    """A one-line OriginRuleError or an accepted rule; an accepted rule, run in RE2 on
    canonical origins, matches hosts under at most MAX_REGEX_SITES sites."""
    pattern = "".join(pieces)
    try:
        rule = parse_origin_rule("re:" + pattern)
    except OriginRuleError as exc:
        message = str(exc)
        rule = None
    if rule is None:
        assert "\n" not in message
        return
    matcher = OriginMatcher([rule])
    sites = set()
    for scheme, labels, port in hosts:
        origin = f"{scheme}://{'.'.join(labels)}{port}"
        if is_canonical_request_origin(origin) and matcher.match(origin) is not None:
            sites.add(site_of(".".join(labels)))
    assert len(sites) <= MAX_REGEX_SITES
