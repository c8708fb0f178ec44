"""Who may use the API: the token matrix (none, wrong, expired, revoked, read-only on a
write: each refused, nothing changed), scopes, the throttle of failed authentications,
no cookies and no CORS headers on API responses."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.db.models import ApiToken, utcnow
from corsadmin.db.tokens import TokenStore
from tests.support.api import (
    PARTNER,
    Api,
    new_token,
    problem,
    reader,
    seed,
    seed_draft,
    stored,
    writer,
)

DOCUMENT = {"corsadmin": 1, "policies": []}

#: Every request that changes something: (method, path, keyword arguments).
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/policies", {"json": {"name": "other", "path": "/o/**", "origins": ["*"]}}),
    ("PUT", "/policies/partner", {"json": {**PARTNER, "credentials": True}}),
    ("PATCH", "/policies/partner", {"json": {"enabled": False}}),
    ("DELETE", "/policies/partner", {}),
    ("POST", "/policies/partner/origins", {"json": {"origin": "https://b.example"}}),
    ("PATCH", "/policies/partner/origins", {"json": {"origin": "https://a.example", "note": "x"}}),
    ("DELETE", "/policies/partner/origins", {"query_string": {"origin": "https://a.example"}}),
    ("POST", "/document", {"json": {"document": DOCUMENT, "mode": "replace"}}),
    ("POST", "/draft/import", {"json": {"document": DOCUMENT, "mode": "replace"}}),
    ("POST", "/draft/promote", {}),
    ("POST", "/draft/discard", {}),
]

#: Every request that reads (a read token may send each).
READS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/policies", {}),
    ("GET", "/policies/partner", {}),
    ("GET", "/policies/partner/origins", {}),
    ("GET", "/document", {}),
    ("GET", "/workers", {}),
    ("GET", "/review", {}),
    ("GET", "/refused", {}),
    ("GET", "/audit", {}),
    ("GET", "/draft", {}),
    ("GET", "/draft/report", {}),
    ("POST", "/check", {"json": {"origin": "https://a.example", "path": "/api/x"}}),
]


def test_the_lists_name_every_operation_the_openapi_description_has(app: Flask) -> None:
    """A new endpoint joins READS or WRITES, so the tests below cover its token checks."""
    described = {
        (method.upper(), path.replace("{name}", "partner"))
        for path, operations in Api(app.test_client())
        .get("/openapi.json")
        .get_json()["paths"]
        .items()
        for method in operations
        if method != "parameters"
    }
    listed = {(method, path) for method, path, _ in [*READS, *WRITES]}
    assert described - {("GET", "/openapi.json")} == listed


def _seeded(app: Flask) -> None:
    seed(app, PARTNER)
    seed_draft(app, {"corsadmin": 1, "policies": [{**PARTNER, "origins": ["https://n.example"]}]})


def _expire(app: Flask, name: str) -> None:
    with app.app_context():
        db = CorsAdmin.state(app).db
        db.session.execute(
            sa.update(ApiToken).where(ApiToken.name == name).values(expires_at=utcnow())
        )
        db.session.commit()


def _revoke(app: Flask, name: str) -> None:
    with app.app_context():
        TokenStore(CorsAdmin.state(app).store("admin-tests")).revoke(name)


def _client(app: Flask, credential: str) -> Api:
    """A client presenting ``credential``: none, a wrong or malformed secret, an expired
    or revoked token's, or a read token's."""
    client = app.test_client()
    if credential == "none":
        return Api(client)
    if credential == "wrong":
        return Api(client, "cors_" + "A" * 43)
    if credential == "malformed":
        return Api(client, "not a token")
    secret = new_token(app, credential, "read" if credential == "read" else "write")
    if credential == "expired":
        _expire(app, credential)
    elif credential == "revoked":
        _revoke(app, credential)
    return Api(client, secret)


@pytest.mark.parametrize("credential", ["none", "wrong", "malformed", "expired", "revoked", "read"])
def test_every_write_is_refused_without_a_write_token_and_changes_nothing(
    app: Flask, credential: str
) -> None:
    _seeded(app)
    api = _client(app, credential)
    before = stored(app)
    status = 403 if credential == "read" else 401
    for method, path, kwargs in WRITES:
        response = api.call(method, path, headers={"If-Match": "*"}, **kwargs)
        body = problem(response, status)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="corsadmin"'), (method, path)
        if credential == "read":
            assert 'error="insufficient_scope"' in challenge
            assert "'read' scope" in body["detail"]
        elif credential != "none":
            assert 'error="invalid_token"' in challenge
        assert stored(app) == before, (method, path)


@pytest.mark.parametrize("credential", ["none", "wrong", "expired", "revoked"])
def test_every_read_is_refused_without_a_valid_token(app: Flask, credential: str) -> None:
    _seeded(app)
    api = _client(app, credential)
    for method, path, kwargs in READS:
        assert problem(api.call(method, path, **kwargs), 401), (method, path)


def test_a_read_token_reads_everything_and_may_check(app: Flask) -> None:
    _seeded(app)
    api = reader(app)
    for method, path, kwargs in READS:
        assert api.call(method, path, **kwargs).status_code == 200, (method, path)


def test_a_write_token_reads_too(app: Flask) -> None:
    _seeded(app)
    assert writer(app).get("/policies").status_code == 200


def test_other_schemes_are_refused(app: Flask) -> None:
    secret = new_token(app)
    client = app.test_client()
    for header in (f"Basic {secret}", f"Token {secret}", "Bearer", "Bearer   "):
        response = client.get("/corsadmin/api/v1/policies", headers={"Authorization": header})
        assert problem(response, 401), header


def test_the_openapi_description_needs_no_token(app: Flask) -> None:
    response = Api(app.test_client()).get("/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"] == "3.1.0"


@pytest.mark.parametrize("app_config", [{"CORSADMIN_LOGIN_ATTEMPTS": 1}])
def test_failed_authentications_are_throttled_per_address(app: Flask) -> None:
    """4 x CORSADMIN_LOGIN_ATTEMPTS failures per address within the window, then 429 with
    Retry-After for anything from that address (a valid token too); another address and
    requests with no token at all are not counted."""
    seed(app, PARTNER)
    secret = new_token(app)
    client = app.test_client()
    path = "/corsadmin/api/v1/policies"
    for _ in range(3):
        assert client.get(path).status_code == 401  # no token: not counted
    for _ in range(4):
        response = client.get(path, headers={"Authorization": "Bearer cors_" + "B" * 43})
        assert problem(response, 401)
    good = {"Authorization": f"Bearer {secret}"}
    throttled = client.get(path, headers=good)
    assert problem(throttled, 429)["type"] == "urn:corsadmin:problem:throttled"
    assert 0 < int(throttled.headers["Retry-After"]) <= 901
    elsewhere = client.get(path, headers=good, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert elsewhere.status_code == 200


def test_api_responses_set_no_cookie_and_no_cors_headers(app: Flask) -> None:
    """Browsers are not the API's clients: a policy covering every path (even the admin
    prefix) adds nothing to API responses, and no response sets a cookie."""
    seed(app, {"name": "everything", "path": "/**", "origins": ["*"]})
    api = writer(app)
    origin = {"Origin": "https://evil.example"}
    responses = [
        api.get("/policies", headers=origin),
        api.post("/policies", json={"name": "x"}, headers=origin),
        Api(app.test_client()).get("/policies", headers=origin),
        api.call(
            "OPTIONS",
            "/policies",
            headers={**origin, "Access-Control-Request-Method": "DELETE"},
        ),
        api.get("/openapi.json", headers=origin),
        api.get("/nowhere", headers=origin),
    ]
    for response in responses:
        assert "Set-Cookie" not in response.headers, response.status
        assert not [
            k for k, _ in response.headers.items() if k.lower().startswith("access-control")
        ]
        assert response.headers["Cache-Control"] == "no-store"
    assert (
        app.test_client().get("/api/status", headers=origin).headers["Access-Control-Allow-Origin"]
        == "*"
    )  # the host's own paths are answered
