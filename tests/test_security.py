"""corsadmin is not open to Flask-CORS's 2024 CVEs, nor fooled by the classic origin tricks.

Each test goes through the real request hooks: the path the router sees, the
Origin header as sent, and the headers that come back.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from corsadmin import CorsAdmin, CorsRequest, evaluate
from tests.support.host import host_of

TRUSTED = "https://trusted.example"
EVIL = "https://evil.example"


def load(app: Flask, *policies: dict[str, Any]) -> FlaskClient:
    @app.route("/<path:anything>")
    def catch_all(anything: str) -> Any:
        return jsonify(path=anything)

    with app.app_context():
        host_of(app).cors.store("tester", app).import_document(
            {"corsadmin": 1, "policies": list(policies)}
        )
    return app.test_client()


def allowed(client: FlaskClient, path: str, origin: str) -> bool:
    response = client.get(path, headers={"Origin": origin})
    assert response.status_code < 500
    values = response.headers.getlist("Access-Control-Allow-Origin")
    assert len(values) <= 1
    return values == [origin] or values == ["*"]


# A broad policy open to everyone, and a narrow one only for the trusted origin.
OPEN = {"name": "open", "path": "/api/**", "origins": ["*"], "description": "x" * 500}


@pytest.mark.parametrize(
    ("private_pattern", "request_path"),
    [
        # CVE-2024-6844: Flask-CORS turned '+' into ' ' before matching, so a path
        # with '+' fell through to the broad policy.
        ("/api/private+data/**", "/api/private+data/x"),
        # CVE-2024-6839: Flask-CORS preferred the longer pattern, not the more specific.
        ("/api/admin/*", "/api/admin/users"),
        ("/api/a/b", "/api/a/b"),
    ],
    ids=["CVE-2024-6844-plus", "CVE-2024-6839-specificity", "CVE-2024-6839-literal"],
)
def test_the_narrow_policy_governs_its_paths(
    app: Flask, private_pattern: str, request_path: str
) -> None:
    client = load(app, OPEN, {"name": "private", "path": private_pattern, "origins": [TRUSTED]})
    assert allowed(client, request_path, TRUSTED)
    assert not allowed(client, request_path, EVIL)
    assert allowed(client, "/api/other", EVIL)  # the open policy still works elsewhere


def test_cve_2024_6844_a_space_is_not_a_plus(app: Flask) -> None:
    client = load(app, {"name": "plus", "path": "/api/a+b", "origins": [TRUSTED]})
    assert allowed(client, "/api/a+b", TRUSTED)
    assert not allowed(client, "/api/a%20b", TRUSTED)


def test_cve_2024_6866_paths_are_case_sensitive(app: Flask) -> None:
    """/API/... is another path to the router, so /api/** does not govern it."""
    client = load(
        app,
        {"name": "api", "path": "/api/**", "origins": [TRUSTED]},
        {"name": "upper", "path": "/API/**", "origins": [EVIL]},
    )
    assert allowed(client, "/api/x", TRUSTED)
    assert not allowed(client, "/API/x", TRUSTED)
    assert allowed(client, "/API/x", EVIL)
    assert not allowed(client, "/api/x", EVIL)


@pytest.mark.parametrize(
    ("request_path", "router_path"),
    [
        ("/api/%2561dmin/x", "/api/%61dmin/x"),  # decoded once, never twice
        ("/api/admin%2Fx", "/api/admin/x"),
    ],
)
def test_paths_are_decoded_once_like_the_router(
    app: Flask, request_path: str, router_path: str
) -> None:
    client = load(
        app,
        {"name": "admin", "path": "/api/admin/**", "origins": [TRUSTED]},
        {"name": "rest", "path": "/api/**", "origins": [EVIL], "priority": -1},
    )
    seen = client.get(request_path).get_json()
    assert "/" + seen["path"] == router_path
    is_admin = router_path.startswith("/api/admin/")
    assert allowed(client, request_path, TRUSTED) is is_admin
    assert allowed(client, request_path, EVIL) is not is_admin


def test_cve_2024_1681_no_log_injection(
    app: Flask, caplog: pytest.LogCaptureFixture, cors: CorsAdmin
) -> None:
    """Request paths and origins never reach a log line raw (CR/LF could forge entries)."""
    client = load(app, {"name": "api", "path": "/api/**", "origins": [TRUSTED]})
    caplog.set_level(logging.DEBUG)
    for path in ("/api/x%0d%0aFORGED", "/api/%0aFORGED"):
        client.get(path, headers={"Origin": TRUSTED})
        client.options(path, headers={"Origin": TRUSTED, "Access-Control-Request-Method": "PUT"})
    for record in caplog.records:
        message = record.getMessage()
        assert "\nFORGED" not in message
        assert "\rFORGED" not in message
    # The reasons corsadmin gives (check, admin page) quote the origin, never raw.
    snapshot = cors.snapshot(app)
    forged = CorsRequest("/api/x", origin="https://a.example\r\nFORGED")
    decision = evaluate(snapshot, forged).decision
    assert not decision.allowed
    assert "\n" not in decision.reason
    assert "\r" not in decision.reason


# The classic origin tricks, each class against the rule it tries to fool.
TRICKS = [
    # prefix and suffix look-alikes
    ("https://partner.example", "https://partner.example.evil.example", "suffix look-alike"),
    ("https://partner.example", "https://evilpartner.example", "prefix look-alike"),
    ("https://*.partner.example", "https://partner.example.evil.example", "wildcard suffix"),
    ("https://*.partner.example", "https://evilpartner.example", "wildcard prefix"),
    ("https://*.partner.example", "https://partner.example", "wildcard apex"),
    # unescaped dots and unanchored expressions
    ("https://app.partner.example", "https://appxpartner.example", "literal dot"),
    (r"re:https://app\.partner\.example", "https://app.partner.example.evil.example", "anchor"),
    (
        r"re:https://app\.partner\.example",
        "https://evil.example/https://app.partner.example",
        "anchor start",
    ),
    # scheme and port swaps
    ("https://partner.example", "http://partner.example", "scheme swap"),
    ("https://partner.example", "https://partner.example:8443", "port swap"),
    ("http://localhost:*", "https://localhost:3000", "port wildcard scheme"),
    ("https://*.partner.example", "https://a.partner.example:444", "wildcard port"),
    # null
    ("https://partner.example", "null", "null"),
    (r"re:https://.*\.partner\.example", "null", "regex null"),
    # case
    ("https://partner.example", "https://PARTNER.example", "case host"),
    ("https://partner.example", "HTTPS://partner.example", "case scheme"),
    # trailing dots and slashes
    ("https://partner.example", "https://partner.example.", "trailing dot"),
    ("https://partner.example", "https://partner.example/", "trailing slash"),
    # percent-encoding
    ("https://partner.example", "https://partner%2Eexample", "percent dot"),
    ("https://partner.example", "https://%70artner.example", "percent letter"),
    # user info, default port spelled out
    ("https://partner.example", "https://partner.example@evil.example", "user info"),
    ("https://partner.example", "https://partner.example:443", "default port"),
    # IDN: a homograph is a different origin
    ("https://apple.example", "https://xn--pple-43d.example", "IDN homograph"),
    ("https://bücher.example", "https://bücher.example", "IDN unencoded request"),
]


@pytest.mark.parametrize(("rule", "origin"), [t[:2] for t in TRICKS], ids=[t[2] for t in TRICKS])
def test_origin_tricks_are_refused(app: Flask, rule: str, origin: str) -> None:
    client = load(app, {"name": "p", "path": "/api/**", "origins": [rule]})
    assert not allowed(client, "/api/x", origin)


GENUINE = [
    ("https://partner.example", "https://partner.example"),
    ("https://*.partner.example", "https://a.b.partner.example"),
    ("http://localhost:*", "http://localhost:5173"),
    (r"re:https://[a-z]{2}\.partner\.example", "https://de.partner.example"),
    ("null", "null"),
    ("https://bücher.example", "https://xn--bcher-kva.example"),
    ("http://[::1]:8080", "http://[::1]:8080"),
]


@pytest.mark.parametrize(("rule", "origin"), GENUINE)
def test_genuine_origins_are_allowed(app: Flask, rule: str, origin: str) -> None:
    client = load(app, {"name": "p", "path": "/api/**", "origins": [rule]})
    assert allowed(client, "/api/x", origin)


def test_a_huge_origin_is_refused_without_an_error(app: Flask) -> None:
    # (re:https://.*\.example is refused now: it lets in every site under .example.)
    client = load(
        app, {"name": "p", "path": "/api/**", "origins": [r"re:https://.*\.partner\.example"]}
    )
    assert allowed(client, "/api/x", "https://a.partner.example")
    assert not allowed(client, "/api/x", "https://" + "a" * 20000 + ".partner.example")


def test_deny_until_allowed(app: Flask) -> None:
    """A fresh database allows nothing: no policy, no CORS headers."""

    @app.get("/api/thing")
    def thing() -> Any:
        return jsonify(ok=True)

    client = app.test_client()
    response = client.get("/api/thing", headers={"Origin": TRUSTED})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
