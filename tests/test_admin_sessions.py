"""Built-in login sessions live on the server: logout, idle time, a new password, disabling
or removing the operator end them, whatever copy of the cookie is still around."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin
from corsadmin.admin.access import SESSION_TOKEN
from corsadmin.db import operators
from corsadmin.db.models import OperatorSession, utcnow
from corsadmin.db.operators import MAX_SESSIONS_PER_OPERATOR, SESSION_MAX_LIFETIME
from tests.support.admin import (
    HTML,
    PREFIX,
    add_operator,
    csrf_token,
    flashes,
    log_in,
    logged_in_client,
)
from tests.support.host import close_app, make_app

JSON = {"Accept": "application/json"}


def sql(app: Flask, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run ``query`` on the app's database (committed), the rows it returns."""
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        result = session.execute(sa.text(query), params)
        found = [tuple(row) for row in result] if query.lstrip().startswith("SELECT") else []
        session.commit()
        return found


def session_rows(app: Flask, name: str | None = None) -> list[tuple[Any, ...]]:
    query = (
        "SELECT s.id, o.name, s.token_hash, s.created_at, s.last_seen_at "
        "FROM corsadmin_operator_session s JOIN corsadmin_operator o ON o.id = s.operator_id"
    )
    if name is None:
        return sql(app, query + " ORDER BY s.id")
    return sql(app, query + " WHERE o.name = :name ORDER BY s.id", name=name)


def age_sessions(
    app: Flask, *, idle: timedelta = timedelta(), age: timedelta = timedelta()
) -> None:
    """Move every session's last use back by ``idle`` and its start back by ``age``."""
    now = utcnow()
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        session.execute(
            sa.update(OperatorSession).values(
                last_seen_at=now - idle, created_at=now - max(age, idle)
            )
        )
        session.commit()


def copy_of(client: FlaskClient, app: Flask) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = app.test_client()
    other.set_cookie("session", cookie.value)
    return other


def logout(client: FlaskClient) -> None:
    page = client.get(f"{PREFIX}/")
    assert page.status_code == 200
    response = client.post(f"{PREFIX}/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302


def refused(client: FlaskClient) -> bool:
    """The admin UI sends this browser to the login page (and a script gets 401)."""
    page = client.get(f"{PREFIX}/", headers=HTML)
    if page.status_code != 302:
        assert page.status_code == 200, page.text
        return False
    assert page.headers["Location"].startswith(f"{PREFIX}/login")
    assert client.get(f"{PREFIX}/review", headers=JSON).status_code == 401
    return True


# --- logout ends the session on the server --------------------------------------------------


def test_a_cookie_copied_before_logout_is_refused_after_logout(app: Flask) -> None:
    client = logged_in_client(app)
    stolen = copy_of(client, app)
    assert not refused(stolen)  # the copy works while the session lives...
    logout(client)
    assert refused(client)
    assert refused(stolen)  # ...and is dead the moment its owner logs out
    assert session_rows(app) == []


def test_the_database_keeps_only_a_hash_of_the_token(app: Flask) -> None:
    client = logged_in_client(app)
    with client.session_transaction() as flask_session:
        token = flask_session[SESSION_TOKEN]
        assert set(flask_session) <= {SESSION_TOKEN, "csrf_token", "_flashes", "_permanent"}
        assert not flask_session.permanent
    assert isinstance(token, str)
    assert len(token) >= 43  # 32 random bytes
    [(_, name, token_hash, _, _)] = session_rows(app)
    assert name == "alice"
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    dump = repr(sql(app, "SELECT * FROM corsadmin_operator_session"))
    assert token not in dump


def test_a_forged_token_is_refused(app: Flask) -> None:
    logged_in_client(app)
    forger = app.test_client()
    with forger.session_transaction() as flask_session:
        flask_session[SESSION_TOKEN] = "x" * 43
    assert refused(forger)


def test_logging_in_again_replaces_the_browsers_session(app: Flask) -> None:
    client = logged_in_client(app)
    [(_, _, first, _, _)] = session_rows(app)
    stolen = copy_of(client, app)
    assert log_in(client).status_code == 302
    [(_, _, second, _, _)] = session_rows(app)  # one row: the first one went
    assert second != first
    assert refused(stolen)
    assert not refused(client)


def test_the_session_cookie_ends_with_the_browser(app: Flask) -> None:
    add_operator(app)
    response = log_in(app.test_client())
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    attributes = [part.strip().split("=")[0].lower() for part in cookie.split(";")]
    assert "expires" not in attributes
    assert "max-age" not in attributes


# --- idle time and the absolute lifetime ----------------------------------------------------


def test_an_idle_session_ends_with_a_message(app: Flask) -> None:
    client = logged_in_client(app)
    stolen = copy_of(client, app)
    age_sessions(app, idle=timedelta(minutes=31))  # the default allows 30
    response = client.get(f"{PREFIX}/review", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PREFIX}/login?next=%2Fcorsadmin%2Freview"
    login_page = client.get(response.headers["Location"])
    assert flashes(login_page.text) == [
        "Your session ended after 30 minutes without activity; log in again."
    ]
    assert session_rows(app) == []
    assert refused(stolen)
    assert log_in(client).status_code == 302  # and logging in again works
    assert not refused(client)


@pytest.mark.parametrize("app_config", [{"CORSADMIN_SESSION_IDLE_MINUTES": 5}])
def test_an_idle_script_gets_401_saying_why(app: Flask) -> None:
    client = logged_in_client(app)
    age_sessions(app, idle=timedelta(minutes=5, seconds=30))
    response = client.get(f"{PREFIX}/review", headers=JSON)
    assert response.status_code == 401
    assert "Your session ended after 5 minutes without activity; log in again." in response.text


def test_a_session_in_use_stays_and_is_written_at_most_once_a_minute(app: Flask) -> None:
    client = logged_in_client(app)
    [(_, _, _, _, seen_at_login)] = session_rows(app)
    for _ in range(3):
        assert not refused(client)
    [(_, _, _, _, seen)] = session_rows(app)
    assert seen == seen_at_login  # no write for requests within the minute

    age_sessions(app, idle=timedelta(minutes=29))  # almost idle: still in
    [(_, _, _, _, moved_back)] = session_rows(app)
    assert not refused(client)
    [(_, _, _, _, seen)] = session_rows(app)
    assert seen > moved_back
    assert sql(app, "SELECT count(*) FROM corsadmin_operator_session") == [(1,)]
    age_sessions(app, idle=timedelta(minutes=20))
    assert not refused(client)  # used 20 minutes ago: the idle clock started again


def test_a_session_ends_after_its_maximum_lifetime_however_busy(app: Flask) -> None:
    client = logged_in_client(app)
    age_sessions(app, age=SESSION_MAX_LIFETIME + timedelta(minutes=1))
    response = client.get(f"{PREFIX}/", headers=HTML)
    assert response.status_code == 302
    hours = int(SESSION_MAX_LIFETIME.total_seconds() // 3600)
    assert flashes(client.get(response.headers["Location"]).text) == [
        f"Your session ended {hours} hours after you logged in; log in again."
    ]
    assert session_rows(app) == []


@pytest.mark.parametrize("value", [0, -5, "30", True, 1.5, 100_000])
def test_a_bad_idle_setting_is_refused_at_startup(database_url: str, value: Any) -> None:
    with pytest.raises(ValueError, match="CORSADMIN_SESSION_IDLE_MINUTES must be"):
        make_app(database_url, CORSADMIN_SESSION_IDLE_MINUTES=value)


# --- a new password, disabling, removing end every session of the operator -----------------


@pytest.mark.parametrize("change", ["passwd", "disable", "remove"])
def test_operator_changes_end_that_operators_sessions(app: Flask, change: str) -> None:
    alice = logged_in_client(app, "alice")
    alice_elsewhere = app.test_client()
    assert log_in(alice_elsewhere, "alice").status_code == 302
    bob = logged_in_client(app, "bob")
    assert len(session_rows(app, "alice")) == 2
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        if change == "passwd":
            operators.set_password(session, "alice", "another password", actor="tests")
        elif change == "disable":
            operators.set_disabled(session, "alice", True, actor="tests")
        else:
            operators.remove_operator(session, "alice", actor="tests")
    assert session_rows(app, "alice") == []
    assert sql(app, "SELECT count(*) FROM corsadmin_operator_session") == [(1,)]
    assert refused(alice)
    assert refused(alice_elsewhere)
    assert not refused(bob)
    if change == "disable":  # enabling again does not bring the old sessions back
        with app.app_context():
            operators.set_disabled(CorsAdmin.state(app).db.session, "alice", False, actor="tests")
        assert refused(alice)


def test_a_changed_password_hash_ends_the_session_even_without_the_operators_module(
    app: Flask,
) -> None:
    """The password fingerprint is still checked (a hash changed by hand, say)."""
    client = logged_in_client(app)
    sql(app, "UPDATE corsadmin_operator SET password_hash = 'scrypt:changed' WHERE name = 'alice'")
    assert refused(client)


# --- the table stays bounded ----------------------------------------------------------------


def test_each_operator_keeps_at_most_the_newest_sessions(app: Flask) -> None:
    add_operator(app)
    clients = []
    for _ in range(MAX_SESSIONS_PER_OPERATOR + 2):
        client = app.test_client()
        assert log_in(client).status_code == 302
        clients.append(client)
    assert len(session_rows(app, "alice")) == MAX_SESSIONS_PER_OPERATOR
    assert refused(clients[0])
    assert refused(clients[1])
    for client in clients[2:]:
        assert not refused(client)


def test_expired_sessions_are_deleted_at_the_next_login(app: Flask) -> None:
    logged_in_client(app, "alice")
    logged_in_client(app, "bob")
    age_sessions(app, idle=timedelta(hours=1))
    assert len(session_rows(app)) == 2  # nobody came back yet
    logged_in_client(app, "carol")
    assert [row[1] for row in session_rows(app)] == ["carol"]


# --- a host application's own login is left alone --------------------------------------------


@pytest.fixture
def host_app(database_url: str) -> Iterator[Flask]:
    app = make_app(
        database_url,
        CORSADMIN_BUILTIN_LOGIN=False,
        CORSADMIN_OPERATOR_LOADER=lambda: "carol",
        CORSADMIN_SESSION_IDLE_MINUTES=1,
    )
    yield app
    close_app(app)


def test_host_loader_sessions_are_the_hosts_business(host_app: Flask) -> None:
    client = host_app.test_client()
    assert client.get(f"{PREFIX}/").status_code == 200
    assert sql(host_app, "SELECT count(*) FROM corsadmin_operator_session") == [(0,)]
    assert client.get(f"{PREFIX}/").status_code == 200
