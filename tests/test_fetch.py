"""The headers every browser gets, checked against the Fetch standard's rules.

Through the real request hooks of the host app (tests/support/host.py), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, jsonify
from flask.testing import FlaskClient

from corsadmin import CorsAdmin

POLICIES: dict[str, Any] = {
    "corsadmin": 1,
    "policies": [
        {
            "name": "api",
            "path": "/api/**",
            "origins": ["https://app.example", "http://localhost:*", "https://*.partner.example"],
            "methods": ["get", "post", "put", "delete"],
            "allow_headers": ["Content-Type", "X-Request-Id"],
            "expose_headers": ["X-Request-Id"],
            "max_age": 0,
        },
        {
            "name": "account",
            "path": "/api/account/**",
            "origins": ["https://app.example"],
            "credentials": True,
            "max_age": 600,
        },
        {"name": "public", "path": "/public/**", "origins": ["*"], "methods": ["GET"]},
        {
            "name": "devices",
            "path": "/devices/**",
            "origins": ["https://app.example"],
            "private_network": True,
        },
        {
            "name": "everything",
            "path": "/**",
            "origins": ["https://app.example"],
            "priority": -10,
        },
        {"name": "off", "path": "/off/**", "origins": ["*"], "enabled": False},
    ],
}

APP = "https://app.example"
EVIL = "https://evil.example"


@pytest.fixture
def api(app: Flask, cors: CorsAdmin) -> Iterator[FlaskClient]:
    """The host app plus a few routes that exercise the router's corner cases."""

    @app.get("/api/slash/")
    def slash() -> Any:
        return jsonify(ok=True)

    @app.get("/api/own-header")
    def own_header() -> Response:
        response = jsonify(ok=True)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Vary"] = "Accept-Encoding"
        return response

    @app.get("/api/bad")
    def bad() -> Any:
        return jsonify(error="bad"), 400

    @app.get("/corsadmin/ping")
    def admin_ping() -> Any:
        return jsonify(admin=True)

    @app.get("/public/x")
    def public_x() -> Any:
        return jsonify(public=True)

    @app.get("/off/x")
    def off_x() -> Any:
        return jsonify(off=True)

    with app.app_context():
        cors.store("tester", app).import_document(POLICIES)
    return app.test_client()


def acao(response: Any) -> list[str]:
    return response.headers.getlist("Access-Control-Allow-Origin")


def vary(response: Any) -> set[str]:
    return {v.strip().lower() for v in ",".join(response.headers.getlist("Vary")).split(",") if v}


def test_allowed_simple_request_gets_exactly_one_origin_and_vary(api: FlaskClient) -> None:
    response = api.get("/api/status", headers={"Origin": APP})
    assert response.status_code == 200
    assert acao(response) == [APP]
    assert "origin" in vary(response)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-Id"
    assert "Access-Control-Allow-Methods" not in response.headers  # only on preflights


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:3000", "http://localhost", "https://a.b.partner.example"],
)
def test_the_answer_echoes_the_request_origin_exactly(api: FlaskClient, origin: str) -> None:
    response = api.get("/api/status", headers={"Origin": origin})
    assert acao(response) == [origin]


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Origin": "null"}, {}])
def test_refused_and_origin_less_responses_still_vary_on_origin(
    api: FlaskClient, headers: dict[str, str]
) -> None:
    response = api.get("/api/status", headers=headers)
    assert response.status_code == 200
    assert acao(response) == []
    assert not [h for h in response.headers if h[0].lower().startswith("access-control-")]
    assert "origin" in vary(response)


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Origin": "null"}, {}])
def test_any_origin_policy_answers_star_to_everyone(
    api: FlaskClient, headers: dict[str, str]
) -> None:
    response = api.get("/public/x", headers=headers)
    assert acao(response) == ["*"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_credentials_are_exactly_true_and_never_beside_star(api: FlaskClient) -> None:
    response = api.get("/api/account/me", headers={"Origin": APP})
    assert acao(response) == [APP]
    assert response.headers.getlist("Access-Control-Allow-Credentials") == ["true"]
    for path in ("/api/account/me", "/public/x", "/api/status", "/devices/1"):
        for origin in (APP, EVIL, "null"):
            r = api.get(path, headers={"Origin": origin})
            if "Access-Control-Allow-Credentials" in r.headers:
                assert acao(r) == [origin]
                assert acao(r) != ["*"]


def test_preflight_lists_upper_case_methods_and_allowed_headers(api: FlaskClient) -> None:
    response = api.options(
        "/api/items/7",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, x-request-id",
        },
    )
    assert 200 <= response.status_code < 300
    assert acao(response) == [APP]
    methods = [m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")]
    assert sorted(methods) == ["DELETE", "GET", "POST", "PUT"]
    assert all(m == m.upper() for m in methods)
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"content-type", "x-request-id"}
    assert response.headers["Access-Control-Max-Age"] == "0"
    assert "origin" in vary(response)


def test_preflight_for_a_method_not_allowed_lists_no_methods(api: FlaskClient) -> None:
    response = api.options(
        "/api/items/7", headers={"Origin": APP, "Access-Control-Request-Method": "PATCH"}
    )
    assert "Access-Control-Allow-Methods" not in response.headers


def test_preflight_does_not_allow_unlisted_headers(api: FlaskClient) -> None:
    response = api.options(
        "/api/items/7",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x-secret",
        },
    )
    assert "x-secret" not in response.headers.get("Access-Control-Allow-Headers", "").lower()


@pytest.mark.parametrize(
    ("path", "router_would"),
    [
        ("/api/nowhere", 404),
        ("/api/slash", 308),  # strict slashes would redirect
        ("/api/items/not-a-number", 404),
    ],
)
def test_preflights_of_covered_paths_are_answered_whatever_the_router_says(
    api: FlaskClient, path: str, router_would: int
) -> None:
    assert api.get(path).status_code == router_would
    response = api.options(path, headers={"Origin": APP, "Access-Control-Request-Method": "PUT"})
    assert response.status_code == 204
    assert acao(response) == [APP]
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]


def test_refused_preflight_is_answered_without_cors_headers(api: FlaskClient) -> None:
    response = api.options(
        "/api/nowhere", headers={"Origin": EVIL, "Access-Control-Request-Method": "PUT"}
    )
    assert response.status_code == 204
    assert acao(response) == []
    assert "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/nowhere", 404),
        ("get", "/api/bad", 400),
        ("post", "/api/status", 405),
        ("get", "/api/error", 500),
        ("post", "/api/foo", 400),
    ],
)
def test_errors_of_covered_paths_carry_the_same_headers(
    api: FlaskClient, method: str, path: str, status: int
) -> None:
    api.application.testing = False  # let the 500 be a response, as in production
    response = getattr(api, method)(path, headers={"Origin": APP})
    assert response.status_code == status
    assert acao(response) == [APP]
    assert "origin" in vary(response)


def test_admin_routes_never_get_cors_headers(api: FlaskClient) -> None:
    """Even though the '/**' policy allows https://app.example everywhere else."""
    assert acao(api.get("/elsewhere", headers={"Origin": APP})) == [APP]
    response = api.get("/corsadmin/ping", headers={"Origin": APP})
    assert response.status_code == 200
    assert not [h for h in response.headers if h[0].lower().startswith("access-control-")]
    preflight = api.options(
        "/corsadmin/ping", headers={"Origin": APP, "Access-Control-Request-Method": "POST"}
    )
    assert acao(preflight) == []


def test_private_network_only_when_the_policy_asks(api: FlaskClient) -> None:
    asking = {
        "Origin": APP,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Private-Network": "true",
    }
    granted = api.options("/devices/1", headers=asking)
    assert granted.headers.get("Access-Control-Allow-Private-Network") == "true"
    refused = api.options("/api/status", headers=asking)
    assert refused.headers.get("Access-Control-Allow-Private-Network") != "true"
    unasked = api.options(
        "/devices/1", headers={"Origin": APP, "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Private-Network" not in unasked.headers


def test_a_view_own_cors_header_is_replaced_not_doubled(api: FlaskClient) -> None:
    response = api.get("/api/own-header", headers={"Origin": APP})
    assert acao(response) == [APP]
    assert vary(response) == {"accept-encoding", "origin"}
    refused = api.get("/api/own-header", headers={"Origin": EVIL})
    assert acao(refused) == []


def test_disabled_and_uncovered_paths_get_nothing(
    api: FlaskClient, app: Flask, cors: CorsAdmin
) -> None:
    with app.app_context():
        cors.store("tester", app).delete_policy("everything")
    for path in ("/off/x", "/elsewhere"):
        response = api.get(path, headers={"Origin": APP})
        assert acao(response) == []
        assert "origin" not in vary(response)


def test_the_more_specific_policy_wins(api: FlaskClient) -> None:
    """/api/account/** (credentials) beats /api/** for its paths, whatever their order."""
    account = api.get("/api/account/me", headers={"Origin": APP})
    assert account.headers.get("Access-Control-Allow-Credentials") == "true"
    plain = api.get("/api/status", headers={"Origin": APP})
    assert "Access-Control-Allow-Credentials" not in plain.headers
    # The '/**' policy has priority -10: it loses to every other pattern.
    assert api.get("/api/status", headers={"Origin": "http://localhost:1"}).status_code == 200
    assert acao(api.get("/public/x", headers={"Origin": APP})) == ["*"]


def test_max_age_is_sent_on_preflights(api: FlaskClient) -> None:
    response = api.options(
        "/api/account/x", headers={"Origin": APP, "Access-Control-Request-Method": "DELETE"}
    )
    assert response.headers["Access-Control-Max-Age"] == "600"


# --------------------------------------------------------------------------- #
# Issue 7: paths the router sees, patterns stored before the limits
# --------------------------------------------------------------------------- #


def test_a_route_with_a_space_is_covered_cve_2024_6844(app: Flask, cors: CorsAdmin) -> None:
    """Flask-CORS's CVE-2024-6844 case: the route '/service path', requested as
    '/service%20path', gets the headers of the policy written for '/service path'."""

    @app.get("/service path")
    def service_path() -> Any:
        return jsonify(ok=True)

    with app.app_context():
        cors.store("tester", app).create_policy(
            {"name": "service", "path": "/service path", "origins": [APP], "methods": ["GET"]}
        )
    client = app.test_client()
    response = client.get("/service%20path", headers={"Origin": APP})
    assert response.status_code == 200
    assert acao(response) == [APP]
    assert "origin" in vary(response)
    preflight = client.options(
        "/service%20path", headers={"Origin": APP, "Access-Control-Request-Method": "GET"}
    )
    assert acao(preflight) == [APP]
    assert acao(client.get("/service+path", headers={"Origin": APP})) == []  # '+' is a plus
    assert acao(client.get("/service%20path", headers={"Origin": EVIL})) == []


def test_the_encoded_form_of_a_space_is_refused_with_the_decoded_pattern(
    app: Flask, cors: CorsAdmin
) -> None:
    from corsadmin import ValidationError

    with app.app_context(), pytest.raises(ValidationError) as raised:
        cors.store("tester", app).create_policy(
            {"name": "service", "path": "/service%20path", "origins": [APP]}
        )
    assert [e.field for e in raised.value.errors] == ["path"]
    assert 'write "/service path"' in str(raised.value)


def test_a_pattern_stored_before_the_double_star_limit_still_loads(
    app: Flask, cors: CorsAdmin
) -> None:
    """A row written when any number of '**' was accepted is still enforced, exported
    and shown; a change to it asks for a pattern within the limit."""
    import sqlalchemy as sa

    from corsadmin import ValidationError
    from corsadmin.db.models import Policy, State

    legacy = "/legacy/" + "/".join(["**"] * 6)
    with app.app_context():
        store = cors.store("tester", app)
        store.create_policy({"name": "legacy", "path": "/legacy/**", "origins": [APP]})
        engine = CorsAdmin.state(app).engine()
        with engine.begin() as connection:  # as an old version wrote it
            connection.execute(sa.update(Policy).values(path=legacy))
            connection.execute(sa.update(State).values(revision=State.revision + 1))
        CorsAdmin.state(app).holder.reload()
        assert cors.snapshot(app).policy_for("/legacy/a/b") is not None
        assert store.export_document()["policies"][0]["path"] == legacy
        with pytest.raises(ValidationError, match=r'path: must not hold more than 4 "\*\*"'):
            store.update_policy("legacy", {"max_age": 5})
    response = app.test_client().get("/legacy/a/b", headers={"Origin": APP})
    assert acao(response) == [APP]


def allow_headers(response: Any) -> list[str]:
    return [h.strip() for h in response.headers.get("Access-Control-Allow-Headers", "").split(",")]


@pytest.mark.parametrize(
    "requested",
    [
        "x-a,,x-b",
        ",x-a,x-b",
        "x-a,x-b,",
        " x-a , , x-b ",
        "x-a,\t,x-b",
        "X-A, x-a, x-b",
        ",,x-a,,,x-b,,",
    ],
)
def test_requested_headers_with_empty_items_are_read_as_fetch_does(
    api: FlaskClient, requested: str
) -> None:
    """allow_headers '*' echoes the requested names: never an empty item among them."""
    response = api.options(
        "/elsewhere",  # the '/**' policy: allow_headers defaults to '*'
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert acao(response) == [APP]
    assert allow_headers(response) == ["x-a", "x-b"]


@pytest.mark.parametrize(
    "requested", ["content-type,,x-request-id", ",content-type, x-request-id,", "x-other,,"]
)
def test_requested_headers_with_empty_items_against_a_named_list(
    api: FlaskClient, requested: str
) -> None:
    response = api.options(
        "/api/items/7",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert acao(response) == [APP]
    listed = response.headers.get("Access-Control-Allow-Headers")
    if "x-other" in requested:
        assert listed is None  # nothing requested is allowed: no list at all
    else:
        assert allow_headers(response) == ["content-type", "x-request-id"]


@pytest.mark.parametrize("requested", [",", " , ,", "\t", "x a, x(b)", "x-a, x(b)", 'x-a,"x-b"'])
def test_requested_headers_with_no_names_get_no_allow_headers(
    api: FlaskClient, requested: str
) -> None:
    response = api.options(
        "/elsewhere",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert acao(response) == [APP]
    assert "Access-Control-Allow-Headers" not in response.headers


def test_star_methods_and_regex_headers_are_refused_before_anything_is_written(
    app: Flask,
    cors: CorsAdmin,
) -> None:
    from corsadmin import ValidationError

    document = {
        "corsadmin": 1,
        "policies": [
            {"name": "stars", "path": "/stars/**", "origins": [APP], "methods": ["*"]},
            {"name": "rx", "path": "/rx/**", "origins": [APP], "allow_headers": ["X-Company-.*"]},
        ],
    }
    with app.app_context():
        store = cors.store("tester", app)
        with pytest.raises(ValidationError) as raised:
            store.import_document(document)
        assert store.export_document()["policies"] == []
    messages = {e.field: e.message for e in raised.value.errors}
    assert messages["policies[0].methods[0]"].startswith("'*' is not a method here")
    assert "header names are matched literally" in messages["policies[1].allow_headers[0]"]
