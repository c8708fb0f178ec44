"""Who may enter the admin UI: closed by default, one overridable check, the built-in
login, and the security headers on every admin response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from werkzeug.http import parse_set_header

from corsadmin import CorsAdmin
from corsadmin.admin.security import CONTENT_SECURITY_POLICY
from corsadmin.db import operators
from corsadmin.db.models import Operator
from corsadmin.db.tokens import TokenStore
from tests.support.admin import (
    HTML,
    PASSWORD,
    PREFIX,
    add_operator,
    csrf_token,
    form_level_errors,
    log_in,
    logged_in_client,
)
from tests.support.host import close_app, host_of, make_app

GET_ROUTES = [
    "/",
    "/policies/partner",
    "/new",
    "/policies/partner/edit",
    "/policies/partner/enable",
    "/policies/partner/disable",
    "/policies/partner/delete",
    "/policies/partner/origins/remove?origin=https://a.example",
    "/policies/partner/origins/edit?origin=https://a.example",
    "/review",
    "/refused",
    "/refused/allow?policy=partner&origin=https://x.example",
    "/audit",
    "/check?origin=https://a.example&path=/api/x",
    "/draft",
    "/tokens",
    "/tokens/new",
    "/tokens/partner/revoke",
    "/workers",
]
POST_ROUTES = [
    "/policies/partner/origins",
    "/new",
    "/policies/partner/edit",
    "/policies/partner/enable",
    "/policies/partner/disable",
    "/policies/partner/delete",
    "/policies/partner/origins/remove",
    "/policies/partner/origins/edit",
    "/policies/partner/review",
    "/refused/allow",
    "/refused/dismiss",
    "/draft/promote",
    "/draft/discard",
    "/draft/reason",
    "/tokens/new",
    "/tokens/partner/revoke",
]
PUBLIC = {"corsadmin.static", "corsadmin.login", "corsadmin.logout"}


def _seed(app: Flask) -> None:
    with app.app_context():
        store = host_of(app).cors.store("seed", app)
        store.create_policy(
            {"name": "partner", "path": "/api/**", "origins": ["https://a.example"]}
        )
        TokenStore(store).create("partner", "read")


def _revision(app: Flask) -> int:
    with app.app_context():
        return host_of(app).cors.store("tests", app).revision()


def header_operator() -> str | None:
    """A host application's check: the operator named by a trusted proxy header."""
    return request.headers.get("X-Operator") or None


@pytest.fixture
def seeded(app: Flask) -> Flask:
    _seed(app)
    return app


@pytest.fixture
def host_app(database_url: str) -> Iterator[Flask]:
    """A host application with no built-in login: it must configure a loader itself."""
    app = make_app(database_url, CORSADMIN_BUILTIN_LOGIN=False, SECRET_KEY="k" * 32)
    _seed(app)
    yield app
    close_app(app)


def test_every_admin_route_is_in_these_tests(app: Flask) -> None:
    """A new admin route cannot slip past the access tests below."""
    gets = {path.split("?")[0] for path in GET_ROUTES}
    posts = set(POST_ROUTES)
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("corsadmin.") or rule.endpoint in PUBLIC:
            continue
        path = rule.rule.removeprefix(PREFIX).replace("<name>", "partner")
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        for method in methods:
            assert path in (gets if method == "GET" else posts), (method, rule.rule)


# --- closed until the application says who may enter ------------------------------------------


@pytest.mark.parametrize("path", GET_ROUTES)
def test_without_any_check_configured_every_page_is_403(host_app: Flask, path: str) -> None:
    response = host_app.test_client().get(PREFIX + path, headers=HTML)
    assert response.status_code == 403
    assert "CORSADMIN_OPERATOR_LOADER" in response.text
    assert "partner" not in response.text.replace("/policies/partner", "")


@pytest.mark.parametrize("path", POST_ROUTES)
def test_without_any_check_configured_every_post_is_403_and_changes_nothing(
    host_app: Flask, path: str
) -> None:
    before = _revision(host_app)
    response = host_app.test_client().post(
        PREFIX + path,
        data={"origin": "https://evil.example", "version": "1", "name": "evil", "scope": "write"},
    )
    assert response.status_code == 403
    assert _revision(host_app) == before


def test_without_builtin_login_there_is_no_login_page(host_app: Flask) -> None:
    client = host_app.test_client()
    assert client.get(f"{PREFIX}/login").status_code == 404
    assert client.post(f"{PREFIX}/logout").status_code == 404


# --- the built-in login ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_ROUTES)
def test_logged_out_browser_is_sent_to_the_login_page(seeded: Flask, path: str) -> None:
    response = seeded.test_client().get(PREFIX + path, headers=HTML)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{PREFIX}/login?next=")
    assert "https://a.example" not in response.text


@pytest.mark.parametrize("path", GET_ROUTES)
def test_logged_out_script_gets_401(seeded: Flask, path: str) -> None:
    response = seeded.test_client().get(PREFIX + path, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert "https://a.example" not in response.text


@pytest.mark.parametrize("path", POST_ROUTES)
def test_logged_out_post_is_401_and_changes_nothing(seeded: Flask, path: str) -> None:
    client = seeded.test_client()
    login_page = client.get(f"{PREFIX}/login")  # a valid CSRF token: access is still refused
    before = _revision(seeded)
    response = client.post(
        PREFIX + path,
        data={
            "csrf_token": csrf_token(login_page.text),
            "origin": "https://evil.example",
            "version": "1",
            "policy": "partner",
            "name": "evil",
            "scope": "write",
        },
        headers=HTML,
    )
    assert response.status_code == 401
    assert _revision(seeded) == before


def test_login_then_every_page_answers(seeded: Flask) -> None:
    client = logged_in_client(seeded)
    for path in GET_ROUTES:
        response = client.get(PREFIX + path)
        assert response.status_code == 200, (path, response.text)
        assert "alice" in response.text


def test_login_redirects_to_next_and_records_the_login(seeded: Flask) -> None:
    add_operator(seeded)
    client = seeded.test_client()
    page = client.get(f"{PREFIX}/login?next={PREFIX}/review")
    response = client.post(
        f"{PREFIX}/login",
        data={
            "name": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
            "next": f"{PREFIX}/review",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PREFIX}/review"
    with seeded.app_context():
        operator = operators.get_operator(CorsAdmin.state(seeded).db.session, "alice")
        assert operator.last_login_at is not None


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/api/foo", "/\\evil.example", "javascript:x"],
)
def test_login_never_redirects_off_the_admin(seeded: Flask, target: str) -> None:
    add_operator(seeded)
    client = seeded.test_client()
    page = client.get(f"{PREFIX}/login")
    response = client.post(
        f"{PREFIX}/login",
        data={
            "name": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
            "next": target,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PREFIX}/"


@pytest.mark.parametrize(
    ("name", "password"), [("alice", "wrong password"), ("mallory", PASSWORD), ("", "")]
)
def test_wrong_name_or_password_is_refused_alike(seeded: Flask, name: str, password: str) -> None:
    add_operator(seeded)
    client = seeded.test_client()
    response = log_in(client, name, password)
    assert response.status_code == 401
    assert form_level_errors(response.text) == ["Unknown operator name or wrong password."]
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 302


def test_login_form_keeps_the_name_not_the_password(seeded: Flask) -> None:
    add_operator(seeded)
    response = log_in(seeded.test_client(), "alice", "s3cr3t-typo")
    assert 'value="alice"' in response.text
    assert "s3cr3t-typo" not in response.text


def test_login_without_csrf_token_is_refused(seeded: Flask) -> None:
    add_operator(seeded)
    client = seeded.test_client()
    response = client.post(f"{PREFIX}/login", data={"name": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 302


def test_disabled_operator_cannot_log_in_and_is_logged_out(seeded: Flask) -> None:
    client = logged_in_client(seeded)
    assert client.get(f"{PREFIX}/").status_code == 200
    with seeded.app_context():
        operators.set_disabled(CorsAdmin.state(seeded).db.session, "alice", True, actor="tests")
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 302
    assert log_in(seeded.test_client()).status_code == 401


@pytest.mark.parametrize("change", ["passwd", "remove"])
def test_new_password_or_removal_ends_open_sessions(seeded: Flask, change: str) -> None:
    client = logged_in_client(seeded)
    assert client.get(f"{PREFIX}/").status_code == 200
    with seeded.app_context():
        session = CorsAdmin.state(seeded).db.session
        if change == "passwd":
            operators.set_password(session, "alice", "another password", actor="tests")
        else:
            operators.remove_operator(session, "alice", actor="tests")
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 302


def test_logout_is_a_post_with_csrf(seeded: Flask) -> None:
    client = logged_in_client(seeded)
    page = client.get(f"{PREFIX}/")
    assert client.get(f"{PREFIX}/logout").status_code == 405
    assert client.post(f"{PREFIX}/logout").status_code == 400  # no token: still logged in
    assert client.get(f"{PREFIX}/").status_code == 200
    response = client.post(f"{PREFIX}/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 302


# --- a host application's own check ------------------------------------------------------------


@pytest.mark.parametrize("loader", [header_operator, "tests.test_admin_access:header_operator"])
def test_host_loader_lets_in_whom_it_names(host_app: Flask, loader: Any) -> None:
    host_app.config["CORSADMIN_OPERATOR_LOADER"] = loader
    client = host_app.test_client()
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 401  # no one named
    response = client.get(f"{PREFIX}/", headers={**HTML, "X-Operator": "carol"})
    assert response.status_code == 200
    assert "carol" in response.text


def test_host_loader_name_is_the_audit_actor(host_app: Flask) -> None:
    host_app.config["CORSADMIN_OPERATOR_LOADER"] = header_operator
    client = host_app.test_client()
    headers = {"X-Operator": "carol"}
    page = client.get(f"{PREFIX}/policies/partner", headers=headers)
    response = client.post(
        f"{PREFIX}/policies/partner/origins",
        data={
            "csrf_token": csrf_token(page.text),
            "version": "1",
            "origin": "https://b.example",
        },
        headers=headers,
    )
    assert response.status_code == 302, response.text
    with host_app.app_context():
        event = host_of(host_app).cors.store("tests", host_app).audit_events(policy="partner")[0]
        assert (event.actor, event.action) == ("carol", "origin.add")


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [("/accounts/login", "/accounts/login"), ("account_login", "/accounts/login")],
)
def test_host_login_url_receives_logged_out_browsers(
    host_app: Flask, login_url: str, expected: str
) -> None:
    host_app.add_url_rule("/accounts/login", "account_login", lambda: "log in here")
    host_app.config["CORSADMIN_OPERATOR_LOADER"] = header_operator
    host_app.config["CORSADMIN_LOGIN_URL"] = login_url
    response = host_app.test_client().get(f"{PREFIX}/review", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{expected}?next=%2Fcorsadmin%2Freview"


def test_a_loader_returning_something_else_than_a_name_is_an_error(host_app: Flask) -> None:
    host_app.config["CORSADMIN_OPERATOR_LOADER"] = lambda: 42
    with pytest.raises(TypeError, match="operator name"):
        host_app.test_client().get(f"{PREFIX}/")


# --- security headers ----------------------------------------------------------------------


def _assert_security_headers(response: Any) -> None:
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "no-store" in parse_set_header(headers["Cache-Control"])


def test_security_headers_on_every_admin_response(seeded: Flask) -> None:
    anonymous = seeded.test_client()
    for response in [
        anonymous.get(f"{PREFIX}/login"),
        anonymous.get(f"{PREFIX}/", headers=HTML),  # redirect
        anonymous.get(f"{PREFIX}/review", headers={"Accept": "application/json"}),  # 401
        anonymous.get(f"{PREFIX}/static/corsadmin.css"),
        anonymous.get(f"{PREFIX}/no-such-page"),  # 404 outside the blueprint's routes
    ]:
        _assert_security_headers(response)
    client = logged_in_client(seeded)
    for path in GET_ROUTES:
        _assert_security_headers(client.get(PREFIX + path))
    _assert_security_headers(client.get(f"{PREFIX}/policies/nope"))  # 404 inside


def test_security_headers_stay_off_the_host_applications_pages(seeded: Flask) -> None:
    response = seeded.test_client().get("/api/status")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response.headers
    assert "X-Frame-Options" not in response.headers


def test_pages_hold_no_inline_script_or_style(seeded: Flask) -> None:
    client = logged_in_client(seeded)
    for path in [*GET_ROUTES, "/login"]:
        html = client.get(PREFIX + path).text
        assert "<script" not in html
        assert "<style" not in html
        assert " style=" not in html
        assert " onclick=" not in html


def test_the_stylesheet_is_small_and_local(seeded: Flask) -> None:
    response = seeded.test_client().get(f"{PREFIX}/static/corsadmin.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert len(response.data) < 20_000
    assert b"http" not in response.data  # no fonts or images from elsewhere
    response.close()


def test_operator_table_keeps_only_a_hash(seeded: Flask) -> None:
    add_operator(seeded)
    with seeded.app_context():
        stored = CorsAdmin.state(seeded).db.session.query(Operator).one()
        assert PASSWORD not in stored.password_hash
        assert stored.password_hash.startswith(("scrypt:", "pbkdf2:"))
