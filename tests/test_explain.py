"""One decision function: the hook, `corsadmin check` and explain() agree, and say why."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from corsadmin import CorsAdmin, CorsRequest, Snapshot, evaluate, explain, validate_policy
from corsadmin.limits import EVALUATION_MEMO_LIMIT as MEMO_LIMIT

SPECS = [
    validate_policy(
        {
            "name": "api",
            "path": "/api/**",
            "origins": ["https://app.example", "http://[::1]:8080"],
            "methods": ["GET", "PUT"],
            "allow_headers": ["Content-Type", "X-A$B"],
        }
    ),
    validate_policy(
        {"name": "users", "path": "/api/users/*", "origins": ["https://admin.example"]}
    ),
    validate_policy(
        {"name": "fallback", "path": "/**", "origins": ["*"], "priority": -1, "methods": ["GET"]}
    ),
]
SNAPSHOT = Snapshot(7, SPECS)


def test_an_allowed_simple_request_is_explained() -> None:
    text = str(explain(SNAPSHOT, "https://app.example", "/api/status"))
    assert "request: GET /api/status from https://app.example (revision 7)" in text
    assert "policy: api (path /api/**, priority 0)" in text
    assert "also matched: fallback (path /**, priority -1) - loses to api on priority" in text
    assert "origin allowed by rule 'https://app.example' (exact)" in text
    assert "  Access-Control-Allow-Origin: https://app.example" in text
    assert "  Vary: Origin" in text
    assert "preflight" not in text
    assert text.endswith("verdict: ALLOWED")


def test_specificity_is_named_when_it_decides() -> None:
    text = str(explain(SNAPSHOT, "https://admin.example", "/api/users/7"))
    assert "policy: users" in text
    assert "also matched: api (path /api/**, priority 0) - loses to users on specificity" in text


def test_a_preflighted_request_shows_both_responses() -> None:
    explanation = explain(
        SNAPSHOT, "https://app.example", "/api/items/1", "put", ["Content-Type: application/json"]
    )
    text = str(explanation)
    assert "preflight: a browser sends one first, because PUT is not a simple method" in text
    assert "it sets Content-Type" in text
    assert "Access-Control-Allow-Methods: GET, PUT" in text
    assert "Access-Control-Allow-Headers: content-type" in text
    assert explanation.allowed


def test_a_header_the_policy_does_not_allow_fails_the_preflight() -> None:
    explanation = explain(SNAPSHOT, "https://app.example", "/api/items/1", "PUT", ["X-Secret"])
    assert not explanation.allowed
    assert "preflight refused" in str(explanation)
    assert str(explanation).endswith("verdict: REFUSED")


def test_simple_content_types_need_no_preflight() -> None:
    explanation = explain(
        SNAPSHOT, "https://app.example", "/api/x", "POST", ["Content-Type: text/plain"]
    )
    assert explanation.preflight is None


def test_refused_and_uncovered() -> None:
    refused = explain(SNAPSHOT, "https://evil.example", "/api/x")
    assert not refused.allowed
    assert "no origin rule of policy 'api' matches 'https://evil.example'" in str(refused)
    empty = explain(Snapshot(1, []), "https://app.example", "/api/x")
    assert "policy: none" in str(empty)
    assert not empty.allowed


def test_ipv6_origins_and_odd_header_names_are_literal_to_flask_cors() -> None:
    """Flask-CORS guesses regexes from characters like '[' and '$'; corsadmin escapes them."""
    request = CorsRequest(
        "/api/x",
        "OPTIONS",
        "http://[::1]:8080",
        request_method="PUT",
        request_headers="x-a$b, x-aab",
    )
    headers = dict(evaluate(SNAPSHOT, request).headers)
    assert headers["Access-Control-Allow-Origin"] == "http://[::1]:8080"
    assert headers["Access-Control-Allow-Headers"] == "x-a$b"


def test_memoized_evaluations_stay_bounded_and_are_reused() -> None:
    snapshot = Snapshot(1, SPECS)
    policy = snapshot.policy_for("/zzz")
    assert policy is not None
    first = evaluate(snapshot, CorsRequest("/zzz", origin="https://o.example"))
    assert evaluate(snapshot, CorsRequest("/zzz/y", origin="https://o.example")) is first
    for i in range(MEMO_LIMIT + 50):
        evaluate(snapshot, CorsRequest("/zzz", origin=f"https://o{i}.example"))
    assert 0 < len(snapshot.evaluations) <= MEMO_LIMIT


REQUESTS: list[dict[str, Any]] = [
    {"method": "GET", "path": "/api/status", "origin": "https://app.example"},
    {"method": "GET", "path": "/api/status", "origin": "https://evil.example"},
    {"method": "PUT", "path": "/api/items/1", "origin": "https://app.example"},
    {"method": "GET", "path": "/other", "origin": "https://evil.example"},
]


@pytest.mark.parametrize("req", REQUESTS)
def test_the_hook_sends_what_explain_says(app: Flask, req: dict[str, Any], cors: CorsAdmin) -> None:
    with app.app_context():
        cors.store("tester", app).import_document(
            {"corsadmin": 1, "policies": [s.to_document() for s in SPECS]}
        )
    explanation = explain(cors.snapshot(app), req["origin"], req["path"], req["method"])
    response = app.test_client().open(
        req["path"], method=req["method"], headers={"Origin": req["origin"]}
    )
    sent = [(k, v) for k, v in response.headers.items() if k.lower().startswith("access-control-")]
    assert sent == list(explanation.actual.headers)
    assert ("Origin" in response.headers.get("Vary", "")) is explanation.actual.vary


def test_no_header_value_can_carry_a_line_break() -> None:
    """Echoed request values (requested headers) never reach the response raw."""
    request = CorsRequest(
        "/fallback",
        "OPTIONS",
        "https://app.example",
        request_method="GET",
        request_headers="x-ok, x-bad\r\nSet-Cookie: a=b",
    )
    headers = evaluate(SNAPSHOT, request).headers
    assert headers  # the preflight is still answered
    assert all("\n" not in v and "\r" not in v for _k, v in headers)
    assert "Access-Control-Allow-Headers" not in dict(headers)


def test_a_new_snapshot_takes_over_unchanged_policies_with_their_memos() -> None:
    first = Snapshot(1, SPECS)
    warm = evaluate(first, CorsRequest("/api/x", origin="https://app.example"))
    changed = [
        SPECS[0],
        validate_policy(
            {"name": "users", "path": "/api/users/*", "origins": ["https://b.example"]}
        ),
        SPECS[2],
    ]
    second = Snapshot(2, changed, previous=first)
    assert second.policy_for("/api/x") is first.policy_for("/api/x")  # unchanged: taken over
    assert evaluate(second, CorsRequest("/api/x", origin="https://app.example")) is warm
    assert second.policy_for("/api/users/1") is not first.policy_for("/api/users/1")
    users = explain(second, "https://b.example", "/api/users/1")
    assert users.allowed  # the changed policy is the new one
    assert not explain(second, "https://admin.example", "/api/users/1").allowed


def test_a_policy_is_compiled_again_once_one_of_its_rules_expired() -> None:
    from datetime import UTC, datetime, timedelta

    soon = datetime.now(UTC) + timedelta(seconds=30)
    spec = validate_policy(
        {
            "name": "api",
            "path": "/api/**",
            "origins": [{"origin": "https://temp.example", "expires": soon.isoformat()}],
        }
    )
    first = Snapshot(1, [spec])
    assert explain(first, "https://temp.example", "/api/x").allowed
    later = Snapshot(1, [spec], now=soon + timedelta(seconds=1), previous=first)
    assert later.policy_for("/api/x") is not first.policy_for("/api/x")
    assert not explain(later, "https://temp.example", "/api/x").allowed
