"""The outcome code of every CORS request, computed once per memoized answer in the
engine (corsadmin.engine.outcome), and shared with explain()'s preflight problems."""

from __future__ import annotations

from typing import get_args

import pytest

from corsadmin import Snapshot, explain, validate_policy
from corsadmin.engine.decide import NOT_COVERED_EVALUATION, decide
from corsadmin.engine.outcome import OUTCOMES, Outcome, preflight_problems

SPECS = [
    validate_policy(
        {
            "name": "api",
            "path": "/api/**",
            "origins": ["https://app.example"],
            "methods": ["GET", "PUT"],
            "allow_headers": ["Content-Type", "X-Trace"],
        }
    ),
    validate_policy(
        {
            "name": "lan",
            "path": "/lan/**",
            "origins": ["https://app.example"],
            "methods": ["GET", "DELETE"],
            "allow_headers": ["*"],
            "private_network": True,
        }
    ),
    validate_policy(
        {"name": "open", "path": "/open/**", "origins": ["*"], "methods": ["GET"]},
    ),
]
APP = "https://app.example"


def outcome(
    path: str,
    origin: str | None,
    method: str = "GET",
    requested: str | None = None,
    headers: str | None = None,
    private: bool = False,
) -> Outcome:
    snapshot = Snapshot(1, SPECS)
    return decide(snapshot, path, method, origin, requested, headers, private).outcome


CASES: list[tuple[tuple[object, ...], Outcome]] = [
    (("/api/x", APP), "allowed"),
    (("/open/x", "https://anyone.example"), "allowed"),
    (("/api/x", "https://evil.example"), "origin-not-allowed"),
    (("/api/x", "https://app.example/path"), "not-a-serialized-origin"),
    (("/api/x", "not an origin"), "not-a-serialized-origin"),
    (("/elsewhere", APP), "no-policy"),
    # Preflights: the method, the headers, private network.
    (("/api/x", APP, "OPTIONS", "PUT", "content-type, x-trace"), "allowed"),
    (("/api/x", APP, "OPTIONS", "POST"), "allowed"),  # safelisted: never needs listing
    (("/api/x", APP, "OPTIONS", "DELETE"), "method-not-allowed"),
    (("/api/x", APP, "OPTIONS", "delete"), "method-not-allowed"),
    (("/api/x", APP, "OPTIONS", "PUT", "x-other"), "header-not-allowed"),
    (("/api/x", APP, "OPTIONS", "PUT", "content-type, x-other"), "header-not-allowed"),
    (("/api/x", APP, "OPTIONS", "PUT", "bad header(,"), "header-not-allowed"),
    (("/api/x", APP, "OPTIONS", "PUT", ", ,"), "allowed"),  # no name at all
    (("/api/x", APP, "OPTIONS", "PUT", None, True), "private-network-not-allowed"),
    (("/lan/x", APP, "OPTIONS", "DELETE", "x-anything", True), "allowed"),
    (("/open/x", APP, "OPTIONS", "PUT"), "method-not-allowed"),
    (("/api/x", "https://evil.example", "OPTIONS", "PUT"), "origin-not-allowed"),
    # An OPTIONS request that is no preflight is judged as a plain request.
    (("/api/x", APP, "OPTIONS"), "allowed"),
]


def test_the_codes_are_a_fixed_set_and_each_is_tested() -> None:
    assert get_args(Outcome) == OUTCOMES
    assert len(set(OUTCOMES)) == 7
    assert {expected for _args, expected in CASES} == set(OUTCOMES)


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_each_case_has_its_code(args: tuple[object, ...], expected: Outcome) -> None:
    assert outcome(*args) == expected  # type: ignore[arg-type]


def test_the_code_is_memoized_with_the_answer() -> None:
    snapshot = Snapshot(1, SPECS)
    first = decide(snapshot, "/api/x", "OPTIONS", APP, "DELETE", None, False)
    again = decide(snapshot, "/api/x", "OPTIONS", APP, "DELETE", None, False)
    assert again is first  # one evaluation: the code was computed once
    assert first.outcome == "method-not-allowed"
    assert NOT_COVERED_EVALUATION.outcome == "no-policy"


def test_a_wildcard_allow_headers_covers_all_but_authorization() -> None:
    star = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Headers", "*"))
    assert preflight_problems(star, "GET", ["X-A"], False) == []
    problems = preflight_problems(star, "GET", ["X-A", "Authorization"], False)
    assert problems == [("header-not-allowed", "the header(s) Authorization are not allowed")]


def test_wildcards_do_not_count_with_credentials() -> None:
    headers = (
        ("Access-Control-Allow-Origin", APP),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "*"),
        ("Access-Control-Allow-Headers", "*"),
    )
    codes = [code for code, _text in preflight_problems(headers, "PATCH", ["X-A"], True)]
    assert codes == ["method-not-allowed", "header-not-allowed", "private-network-not-allowed"]
    without = headers[:1] + headers[2:]
    assert [c for c, _t in preflight_problems(without, "PATCH", ["X-A"], False)] == []


def test_explain_and_the_outcome_agree_on_a_refused_preflight() -> None:
    snapshot = Snapshot(1, SPECS)
    explanation = explain(snapshot, APP, "/api/x", "DELETE", ["X-Other"])
    assert explanation.preflight_problems == [
        "the method DELETE is not allowed",
        "the header(s) X-Other are not allowed",
    ]
    assert explanation.preflight is not None
    assert explanation.preflight.outcome == "method-not-allowed"
    assert not explanation.allowed
