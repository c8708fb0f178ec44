"""A database busy with another writer's change: the CLI and the admin say so and
nothing is changed; once the other change is done, the same change goes through.

The other writer is a real second connection holding the write lock: on SQLite a
``BEGIN IMMEDIATE`` (the app's busy timeout is cut to 0.2 s), on PostgreSQL a
transaction holding the revision row (the app's ``lock_timeout`` is 200 ms).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from corsadmin.db.store import BUSY_MESSAGE, database_busy
from tests.support.admin import (
    PASSWORD,
    PREFIX,
    add_operator,
    csrf_token,
    form_for,
    forms,
    logged_in_client,
)
from tests.support.cli import invoke, ok, policy_doc, seed, view
from tests.support.host import close_app, host_of, make_app

BUSY_TIMEOUT_SECONDS = 0.2

Holder = Callable[[], AbstractContextManager[None]]
LOCK_REVISION = "SELECT revision FROM corsadmin_state WHERE id = 1 FOR UPDATE"
LOCK_OPERATORS = "SELECT id FROM corsadmin_operator FOR UPDATE"


@pytest.fixture
def busy_app(database_url: str) -> Iterator[Flask]:
    """The host app with a short wait for another writer's lock."""
    if database_url.startswith("sqlite"):
        connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_SECONDS}
    elif database_url.startswith("mysql"):  # whole seconds only
        connect_args = {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}
    else:
        connect_args = {"options": f"-c lock_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}"}
    app = make_app(database_url, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": connect_args})
    yield app
    close_app(app)


@pytest.fixture
def write_lock(database_url: str) -> Holder:
    """A context manager: another connection holds the write lock inside it."""

    @contextmanager
    def hold() -> Iterator[None]:
        url = sa.engine.make_url(database_url)
        if url.get_backend_name() == "sqlite":
            other = sqlite3.connect(str(url.database), isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                yield
                other.execute("ROLLBACK")
            finally:
                other.close()
            return
        if url.get_backend_name() == "mysql":
            other_engine = sa.create_engine(url)
            try:
                with other_engine.begin() as connection:
                    connection.execute(sa.text(LOCK_REVISION))
                    connection.execute(sa.text(LOCK_OPERATORS))
                    yield
                    connection.rollback()
            finally:
                other_engine.dispose()
            return
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as pg:
            pg.execute(LOCK_REVISION)
            pg.execute(LOCK_OPERATORS)
            yield
            pg.rollback()

    return hold


def test_the_cli_says_the_database_is_busy_and_changes_nothing(
    busy_app: Flask, write_lock: Holder
) -> None:
    before = seed(busy_app, policy_doc("api", "/api/**", origins=["https://a.example"]))
    runner = busy_app.test_cli_runner()
    args = ["origin", "add", "api", "https://b.example", "--note", "ticket 9"]
    with write_lock():
        result = invoke(runner, *args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert result.stderr == f"error: {BUSY_MESSAGE}\n"
    assert "db upgrade" not in result.stderr
    assert view(busy_app) == before
    ok(runner, *args)  # the lock is gone: trying again works
    assert view(busy_app).origins["api"]["https://b.example"][0] == "ticket 9"


def test_the_admin_answers_503_with_what_was_typed_and_a_retry(
    busy_app: Flask, write_lock: Holder
) -> None:
    seed(busy_app, policy_doc("api", "/api/**", origins=["https://a.example"]))
    client = logged_in_client(busy_app)
    page = client.get(f"{PREFIX}/policies/api").text
    data = dict(form_for(page, f"{PREFIX}/policies/api/origins").fields)
    data.update(origin="https://b.example", note="ticket <9>")
    before = view(busy_app)
    with write_lock():
        busy = client.post(f"{PREFIX}/policies/api/origins", data=data)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert "The database is busy (another change is being written); nothing was changed, " in (
        busy.text
    )
    assert "<code>https://b.example</code>" in busy.text
    assert "<code>ticket &lt;9&gt;</code>" in busy.text
    assert view(busy_app) == before
    # The page re-sends exactly what was posted (token and version included).
    (retry,) = [f for f in forms(busy.text) if f.action == f"{PREFIX}/policies/api/origins"]
    assert retry.fields == data
    saved = client.post(retry.action, data=retry.fields)
    assert saved.status_code == 302
    assert view(busy_app).origins["api"]["https://b.example"][0] == "ticket <9>"


def test_the_admin_edit_form_is_retried_at_its_own_address(
    busy_app: Flask, write_lock: Holder
) -> None:
    seed(
        busy_app,
        policy_doc("api", "/api/**", origins=[{"origin": "https://a.example", "note": "old"}]),
    )
    client = logged_in_client(busy_app)
    url = f"{PREFIX}/policies/api/origins/edit?origin=https://a.example"
    data = dict(form_for(client.get(url).text, f"{PREFIX}/policies/api/origins/edit").fields)
    data["note"] = "new"
    with write_lock():
        busy = client.post(url, data=data)
    assert busy.status_code == 503
    (retry,) = [f for f in forms(busy.text) if f.fields.get("note") == "new"]
    assert re.sub("&amp;", "&", retry.action) == url
    assert client.post(url, data=retry.fields).status_code == 302
    assert view(busy_app).origins["api"]["https://a.example"][0] == "new"


def test_a_busy_login_is_a_503_that_shows_no_password_back(
    busy_app: Flask, write_lock: Holder
) -> None:
    add_operator(busy_app, "alice")
    client = busy_app.test_client()
    token = csrf_token(client.get(f"{PREFIX}/login").text)
    with write_lock():  # a login records its time: a write
        busy = client.post(
            f"{PREFIX}/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token}
        )
    assert busy.status_code == 503
    assert "The database is busy" in busy.text
    assert PASSWORD not in busy.text
    assert all(
        "password" not in f.fields and f.fields.get("name") != "alice" for f in forms(busy.text)
    )


def test_other_database_errors_are_not_called_busy(busy_app: Flask) -> None:
    db = host_of(busy_app).db
    with busy_app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as missing:
            db.session.execute(sa.text("SELECT * FROM corsadmin_no_such_table"))
        db.session.rollback()
    assert not database_busy(missing.value)
