"""A worker has its snapshot before it serves (issue 9): ``init_app`` loads it when
corsadmin's tables exist, so no request waits for a full load; a database without
them (``flask db upgrade`` on a fresh one), or one that cannot be reached, still
lets ``init_app`` succeed, and a CLI command loads nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.db.models import Base, ensure_state_row
from corsadmin.state import state
from tests.support.backends import SERVER_BACKENDS, fresh_database
from tests.support.boot_app import REFRESH_INTERVAL
from tests.support.servers import (
    LOOPBACK,
    free_port,
    gunicorn_command,
    log_tail,
    serve_process,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://app.example"
POLICY = {"name": "api", "path": "/api/**", "origins": [ORIGIN], "methods": ["GET"]}


def prepared_database(url: str) -> None:
    """corsadmin's tables and one policy, written by another process's engine."""
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    ensure_state_row(engine)
    with Session(engine) as session:
        PolicyStore(session, actor="tester").create_policy(POLICY)
    engine.dispose()


def host_app(url: str) -> Flask:
    app = Flask("host")
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["CORSADMIN_REFRESH_IN_BACKGROUND"] = False
    CorsAdmin(app)
    return app


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'boot.sqlite'}"


def test_init_app_loads_the_snapshot_before_any_request(sqlite_url: str) -> None:
    prepared_database(sqlite_url)
    app = host_app(sqlite_url)
    holder = state(app).holder
    assert holder.snapshot.loaded  # before any request
    assert holder.loads == 1
    assert holder.snapshot.policy_for("/api/x") is not None
    response = app.test_client().get("/api/x", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert holder.loads == 1  # the request loaded nothing


@pytest.mark.parametrize("kind", SERVER_BACKENDS)
def test_init_app_on_a_database_server_loads_too(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with fresh_database(kind, tmp_path, request) as url:
        prepared_database(url)
        app = host_app(url)
        assert state(app).holder.snapshot.loaded
        with app.app_context():
            state(app).db.engine.dispose()


def test_a_database_without_corsadmin_tables_still_lets_init_app_succeed(
    sqlite_url: str,
) -> None:
    app = host_app(sqlite_url)
    holder = state(app).holder
    assert not holder.snapshot.loaded  # nothing to load: the first request will try
    with app.app_context():
        CorsAdmin.state(app).extension.create_schema(app)  # type: ignore[attr-defined]
        PolicyStore(state(app).db.session, actor="tester").create_policy(POLICY)
    response = app.test_client().get("/api/x", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_an_unreachable_database_still_lets_init_app_succeed() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    app = host_app(f"postgresql+psycopg://nobody@{LOOPBACK}:{port}/none?connect_timeout=2")
    assert not state(app).holder.snapshot.loaded
    assert time.monotonic() - started < 10


def test_a_cli_command_loads_no_snapshot(sqlite_url: str) -> None:
    prepared_database(sqlite_url)
    with click.Context(click.Command("corsadmin")):
        app = host_app(sqlite_url)
    assert not state(app).holder.snapshot.loaded


def test_flask_db_upgrade_builds_the_app_on_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    done = subprocess.run(
        [sys.executable, "manage.py", "db", "upgrade"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sa.inspect(sa.create_engine(url)).has_table("corsadmin_state")


# Gunicorn ---------------------------------------------------------------------------------


def get(port: int, path: str, origin: str | None = None) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}")
    if origin is not None:
        request.add_header("Origin", origin)
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(response.headers), response.read()


def first_requests(port: int, workers: int, deadline: float = 20.0) -> dict[int, dict[str, Any]]:
    """What each worker saw when its first request began, by pid."""
    seen: dict[int, dict[str, Any]] = {}
    end = time.monotonic() + deadline
    while len(seen) < workers and time.monotonic() < end:
        _headers, body = get(port, "/first")
        record = json.loads(body)
        seen[record["pid"]] = record
    return seen


@pytest.fixture
def gunicorn_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'served.sqlite'}"
    prepared_database(url)
    return {**os.environ, "BOOT_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("preload", [False, True], ids=["import-per-worker", "preload"])
def test_a_fresh_gunicorn_worker_answers_its_first_request_without_loading(
    tmp_path: Path, gunicorn_env: dict[str, str], preload: bool
) -> None:
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    options = ["--preload"] if preload else []
    cmd = gunicorn_command(2, port, "tests.support.boot_app:create_app()", *options)
    with serve_process(
        cmd, port=port, env=gunicorn_env, cwd=REPO_ROOT, ready_path="/first", log_path=log_path
    ) as proc:
        seen = first_requests(port, 2)
        assert len(seen) == 2, log_tail(log_path)
        for record in seen.values():
            assert record["loaded"], f"a worker loaded inside its first request: {record}"
            assert record["loads"] >= 1
        # A worker forked later (this one is killed; the master starts another) too.
        victim = next(iter(seen))
        os.kill(victim, signal.SIGKILL)
        end = time.monotonic() + 20
        fresh: dict[str, Any] = {}
        while time.monotonic() < end and not fresh:
            try:
                for pid, record in first_requests(port, 2, deadline=2).items():
                    if pid not in seen:
                        fresh = record
            except OSError:
                time.sleep(0.1)
        assert fresh, log_tail(log_path)
        assert fresh["loaded"], f"the new worker loaded inside its first request: {fresh}"
        headers, _ = get(port, "/api/x", ORIGIN)
        assert headers.get("Access-Control-Allow-Origin") == ORIGIN
        assert proc.poll() is None


def test_a_worker_forked_after_a_change_answers_its_first_request_with_it(
    tmp_path: Path, gunicorn_env: dict[str, str]
) -> None:
    """``--preload``: the master loads at boot and serves nothing, so its snapshot stays
    the boot one. A worker the master forks after a change (here after a crash) must
    not answer its first request with that: the origin removed meanwhile is refused."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    cmd = gunicorn_command(1, port, "tests.support.boot_app:create_app()", "--preload")
    with serve_process(
        cmd, port=port, env=gunicorn_env, cwd=REPO_ROOT, ready_path="/first", log_path=log_path
    ):
        _headers, body = get(port, "/first")
        victim = json.loads(body)["pid"]
        engine = sa.create_engine(gunicorn_env["BOOT_DATABASE_URL"])
        with Session(engine) as session:
            PolicyStore(session, actor="tester").remove_origin("api", ORIGIN)
        engine.dispose()
        # Older than the refresh interval, a snapshot must be checked: within it, it is
        # as fresh as any worker's is promised to be.
        time.sleep(REFRESH_INTERVAL + 0.1)
        os.kill(victim, signal.SIGKILL)
        headers = first_answer_of_a_new_worker(port, victim, log_path)
        assert "Access-Control-Allow-Origin" not in headers, log_tail(log_path)
        _headers, body = get(port, "/first")
        assert json.loads(body)["pid"] != victim  # it was the new worker's first request


def first_answer_of_a_new_worker(port: int, victim: int, log_path: Path) -> dict[str, str]:
    """The headers of the first CORS request that gets an answer after ``victim`` (the
    only worker) was killed: the answer of the worker the master forks next."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            headers, _ = get(port, "/api/x", ORIGIN)
        except OSError:  # refused or reset while the master forks the new worker
            time.sleep(0.05)
            continue
        return headers
    raise AssertionError(f"no new worker answered\n{log_tail(log_path)}")
