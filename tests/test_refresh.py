"""Every process enforces changes within the refresh interval, never queries per request,
and keeps enforcing the last policy it loaded when the database goes away."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin
from corsadmin.engine.snapshot import Snapshot
from corsadmin.runtime.refresh import SnapshotHolder
from tests.support.host import close_app, close_host, create_host, host_of, make_app, make_host
from tests.support.refresh import (
    after_a_notification,
    after_next_check,
    holder_of,
    listeners,
    wait_until,
)

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "https://partner.example"
POLICY = {"name": "api", "path": "/api/**", "origins": ["https://first.example"]}


def allowed(client: FlaskClient, origin: str = ORIGIN) -> bool:
    response = client.get("/api/status", headers={"Origin": origin})
    assert response.status_code == 200
    return response.headers.get("Access-Control-Allow-Origin") == origin


@pytest.fixture
def second_app(database_url: str, app: Flask) -> Iterator[Flask]:
    """Another application on the same database: as another worker would be."""
    other = make_app(database_url)
    yield other
    close_app(other)


def test_a_change_in_this_process_is_enforced_at_once(
    app: Flask, client: FlaskClient, cors: CorsAdmin
) -> None:
    with app.app_context():
        store = cors.store("tester", app)
        store.create_policy(POLICY)
        assert not allowed(client)
        store.add_origin("api", ORIGIN)
    assert allowed(client)
    with app.app_context():
        cors.store("tester", app).remove_origin("api", ORIGIN)
    assert not allowed(client)


def test_a_change_from_another_worker_is_enforced_by_the_next_check(
    app: Flask, client: FlaskClient, second_app: Flask
) -> None:
    """Another worker's change is in force once this worker's refresh thread has made
    one revision check after it (how soon that is: benchmarks/bench.py, propagation)."""
    assert not allowed(client, "https://first.example")  # starts the refresh thread
    with second_app.app_context():
        host_of(second_app).cors.store("worker-2", second_app).create_policy(POLICY)
    after_next_check(app)
    assert allowed(client, "https://first.example")
    assert not allowed(client)
    with second_app.app_context():
        host_of(second_app).cors.store("worker-2", second_app).add_origin("api", ORIGIN)
    after_next_check(app)
    assert allowed(client)


def test_a_change_from_the_cli_process_is_enforced(tmp_path: Path) -> None:
    """A real separate process (the CLI) changes the database; this one follows."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    host = make_host(url, CORSADMIN_REFRESH_INTERVAL=0.5)
    app, cors = host.app, host.cors
    client = app.test_client()
    try:
        with app.app_context():
            cors.store("tester", app).create_policy(POLICY)
        assert not allowed(client)
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run(
            [sys.executable, "manage.py", "corsadmin", "origin", "add", "api", ORIGIN],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        after_next_check(app)
        assert allowed(client)
    finally:
        cors.stop(app)


def test_no_database_query_per_request_in_steady_state(
    app: Flask, client: FlaskClient, cors: CorsAdmin, db: SQLAlchemy
) -> None:
    with app.app_context():
        cors.store("tester", app).create_policy(dict(POLICY, origins=[ORIGIN]))
        engine = db.engine
    assert allowed(client)  # loaded
    main_thread = threading.get_ident()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == main_thread:
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for i in range(300):
            assert allowed(client) is True
            client.options(
                f"/api/items/{i}",
                headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"},
            )
            assert not allowed(client, f"https://other{i}.example")
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert statements == []


def test_without_a_background_thread_requests_check_once_per_interval(
    database_url: str,
) -> None:
    host = make_host(
        database_url, CORSADMIN_REFRESH_IN_BACKGROUND=False, CORSADMIN_REFRESH_INTERVAL=0.3
    )
    app = host.app
    other = make_host(database_url)
    client = app.test_client()
    try:
        with app.app_context():
            host.cors.store("tester", app).create_policy(POLICY)
            engine = host.db.engine
        assert allowed(client, "https://first.example")
        statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        start = time.monotonic()
        while time.monotonic() - start < 0.25:
            allowed(client, "https://first.example")
        checks = [s for s in statements if "corsadmin_state" in s]
        assert len(checks) <= 1, statements
        with other.app.app_context():
            other.cors.store("other", other.app).add_origin("api", ORIGIN)
        # Requests do the checks here, one at a time: the request whose check is the
        # first to end after the change enforces it, and so does every one after.
        holder, first = holder_of(app), holder_of(app).checks
        wait_until(lambda: allowed(client) or holder.checks > first)
        assert allowed(client)
    finally:
        close_host(other)
        close_host(host)


def test_database_outage_keeps_the_last_policy_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite"
    host = make_host(f"sqlite:///{path}", CORSADMIN_REFRESH_INTERVAL=0.05)
    app, cors, db = host.app, host.cors, host.db
    client = app.test_client()
    try:
        with app.app_context():
            cors.store("tester", app).create_policy(dict(POLICY, origins=[ORIGIN]))
        assert allowed(client)
        caplog.set_level(logging.WARNING, logger="corsadmin")
        shutil.move(path, tmp_path / "away.sqlite")  # the database is gone
        path.write_text("this is not a database")
        with app.app_context():
            db.engine.dispose()
        time.sleep(0.5)  # about ten failed checks
        for _ in range(20):
            assert allowed(client)  # still enforcing the last snapshot, no 500
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "keeping revision" in errors[0].getMessage()

        path.unlink()
        shutil.move(tmp_path / "away.sqlite", path)  # back, with a change made meanwhile
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM corsadmin_origin_rule"))
            conn.execute(sa.text("UPDATE corsadmin_state SET revision = revision + 1"))
        engine.dispose()
        with app.app_context():
            # SQLite keeps pooled handles to the replaced file; a server database's pool
            # drops connections that failed on their own.
            db.engine.dispose()
        wait_until(lambda: not allowed(client))
        # The refresh thread logs the recovery just after it swaps the snapshot in.
        wait_until(
            lambda: any("reached the database again" in r.getMessage() for r in caplog.records)
        )
    finally:
        cors.stop(app)


def test_never_loaded_means_no_cross_origin_access_but_the_app_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = create_host(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'none.sqlite'}"}
    )  # no schema at all
    app = host.app

    @app.get("/api/hello")
    def hello() -> Any:
        return jsonify(hello=True)

    client = app.test_client()
    caplog.set_level(logging.ERROR, logger="corsadmin")
    try:
        for _ in range(5):
            response = client.get("/api/hello", headers={"Origin": ORIGIN})
            assert response.status_code == 200
            assert "Access-Control-Allow-Origin" not in response.headers
            preflight = client.options(
                "/api/hello", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}
            )
            assert preflight.status_code < 500
            assert "Access-Control-Allow-Origin" not in preflight.headers
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert "allowing no cross-origin access" in errors[0]
    finally:
        host.cors.stop(app)


def test_an_expired_rule_stops_matching_without_a_change(
    app: Flask, client: FlaskClient, cors: CorsAdmin
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    with app.app_context():
        store = cors.store("tester", app)
        store.create_policy(POLICY)
        store.add_origin("api", ORIGIN, expires=expires.isoformat())
        revision = store.revision()
    assert allowed(client)
    wait_until(lambda: not allowed(client))
    assert datetime.now(UTC) >= expires
    with app.app_context():
        assert cors.store("tester", app).revision() == revision


def test_an_older_snapshot_never_replaces_a_newer_one() -> None:
    old, new = Snapshot(3, ()), Snapshot(5, ())
    loads = iter([new, old])
    holder = SnapshotHolder(
        load=lambda: next(loads), read_revision=lambda: 99, interval=10, background=False
    )
    holder.reload()
    holder.reload()
    assert holder.snapshot is new


def test_a_usage_failure_is_logged_once_until_a_due_write_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ticks with nothing due (False) between failing ones do not make each failure
    log again; a due tick that succeeds does."""
    outcomes = iter([OSError, False, False, OSError, False, OSError, True, OSError])

    def job() -> bool:
        outcome = next(outcomes)
        if outcome is OSError:
            raise OSError("database unreachable")
        return bool(outcome)

    holder = SnapshotHolder(
        load=lambda: Snapshot(1, ()),
        read_revision=lambda: 1,
        interval=10,
        background=False,
        on_tick=job,
    )
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        for _ in range(8):
            holder.tick()
    logged = [r for r in caplog.records if "could not write usage counts" in r.getMessage()]
    assert len(logged) == 2  # the first failure, and the first after the success


def in_a_forked_child(work: Callable[[], str]) -> str:
    """``work()`` run in a forked child (as in a gunicorn worker); what it returned."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, work().encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    return answer


def test_the_holder_restarts_its_thread_in_a_forked_worker() -> None:
    """A gunicorn worker forked after the first request must poll on its own."""
    holder = SnapshotHolder(
        load=lambda: Snapshot(1, ()), read_revision=lambda: 1, interval=0.05, background=True
    )
    holder.current()
    assert holder._thread is not None
    assert holder._thread.is_alive()

    def thread_alive() -> str:
        holder.current()
        return str(holder._thread is not None and holder._thread.is_alive())

    answer = in_a_forked_child(thread_alive)
    holder.stop()
    assert answer == "True"


@pytest.mark.parametrize(("age", "interval", "seen"), [(0.1, 0.05, "2 1"), (0.0, 60.0, "1 0")])
def test_a_forked_worker_checks_an_inherited_snapshot_before_its_first_answer(
    age: float, interval: float, seen: str
) -> None:
    """A preloading gunicorn master loads at boot and serves no request, so its snapshot
    never refreshes; a worker forked after a change (a crash, ``max_requests``) checks
    it in its first request when it is older than the interval, and only then."""
    revision = [1]
    readers: list[int] = []  # the threads that read the revision

    def read_revision() -> int:
        readers.append(threading.get_ident())
        return revision[0]

    holder = SnapshotHolder(
        load=lambda: Snapshot(revision[0], ()),
        read_revision=read_revision,
        interval=interval,
        background=True,
    )
    assert holder.load_at_start()  # the master, at boot
    time.sleep(age)
    revision[0] = 2  # a change, made by another process

    def first_answer() -> str:
        answered = holder.current().revision  # this worker's first request
        return f"{answered} {readers.count(threading.get_ident())}"

    answer = in_a_forked_child(first_answer)
    holder.stop()
    assert answer == seen  # the revision answered with; the request's own reads


def test_postgresql_notifies_every_worker_at_once(
    postgres: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With LISTEN/NOTIFY a change is enforced long before the (here 2.5 s) poll interval,
    and if the listening connection dies, polling carries on and listening comes back."""
    from tests.support.postgres import create_database, drop_database

    url = create_database(postgres, "notify_test")
    app = make_app(url, CORSADMIN_REFRESH_INTERVAL=2.5)
    other = make_app(url, CORSADMIN_LISTEN=False)
    cors, db = host_of(other).cors, host_of(other).db  # the other worker's
    client = app.test_client()
    try:
        with other.app_context():
            cors.store("worker-2", other).create_policy(POLICY)
        assert allowed(client, "https://first.example")  # first load; starts the thread
        wait_until(lambda: listeners(other) > 0)  # the thread is listening
        notified = holder_of(app).notifications
        with other.app_context():
            cors.store("worker-2", other).add_origin("api", ORIGIN)
        after_a_notification(app, notified)  # not the poll: that is 2.5 s away
        assert allowed(client)

        # Kill the listening connection: a warning, then polling (every 2.5 s), a new listener.
        caplog.set_level(logging.WARNING, logger="corsadmin")
        with other.app_context():
            db.session.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN corsadmin_revision%' AND pid <> pg_backend_pid()"
                )
            )
            db.session.commit()
        wait_until(  # noticed when the current 2.5 s wait ends
            lambda: any("lost its change notifications" in r.getMessage() for r in caplog.records)
        )
        with other.app_context():
            cors.store("worker-2", other).remove_origin("api", ORIGIN)
        wait_until(lambda: not allowed(client))  # by polling, or a new listener
        wait_until(lambda: any("notifications again" in r.getMessage() for r in caplog.records))
        notified = holder_of(app).notifications
        with other.app_context():
            cors.store("worker-2", other).add_origin("api", ORIGIN)
        after_a_notification(app, notified)  # listening again
        assert allowed(client)
    finally:
        close_app(app)
        close_app(other)
        drop_database(postgres, "notify_test")
