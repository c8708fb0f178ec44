"""The fleet view, proven with gunicorn (3 workers) on SQLite (a file) and PostgreSQL:
every worker appears; after a change every row reaches the new revision with its
propagation time; a killed worker leaves the view and its replacement appears; with
PostgreSQL stopped the Workers screen says so and shows the worker's own facts, stale;
started again, every worker is current again within seconds."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.db import fleet as fleet_table
from corsadmin.engine.fleet import WorkerFacts, expires_after, stale_after
from corsadmin.state import state
from tests.support import fleet_app
from tests.support.host import close_host, make_host
from tests.support.postgres import halt, resume, start_postgres
from tests.support.servers import (
    LOOPBACK,
    burst,
    free_port,
    gunicorn_command,
    log_tail,
    serve_process,
    until,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
ORIGIN = "https://app.example"
POLICY = {"name": "api", "path": "/api/**", "origins": [ORIGIN], "methods": ["GET"]}
#: How long a test waits for the fleet to reach a state (seconds).
PATIENCE = 30.0

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(port: int, path: str) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}")
    request.add_header("Origin", ORIGIN)
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def served_by(port: int) -> set[int]:
    """The pids of the workers that answered a burst of slow requests sent together
    (each worker then starts its refresh thread, and reports)."""
    answers = burst(lambda: get(port, "/api/slow"), 2 * WORKERS)
    return {json.loads(body)["pid"] for code, body in answers if code == 200}


def status(reader: Flask) -> tuple[int, dict[str, Any]]:
    """``corsadmin status --format json`` run on the reader app: exit code, document."""
    result = reader.test_cli_runner().invoke(args=["corsadmin", "status", "--format", "json"])
    if result.exit_code not in (0, 1) or not result.output.startswith("{"):
        return result.exit_code, {"error": result.output}
    return result.exit_code, json.loads(result.output)


def wait_for(what: str, check: Callable[[], Any], log: Path, patience: float = PATIENCE) -> Any:
    return until(what, check, patience, lambda: log_tail(log))


def fleet_of(reader: Flask, pids: set[int]) -> dict[str, Any] | None:
    """The status document when exactly ``pids`` are listed, all current; else None."""
    code, document = status(reader)
    listed = {w["pid"] for w in document.get("workers", [])}
    return document if code == 0 and listed == pids else None


@contextmanager
def gunicorn(database_url: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "FLEET_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    app = "tests.support.fleet_app:create_app()"
    cmd = gunicorn_command(WORKERS, port, app, "--graceful-timeout", "3")
    with serve_process(cmd, port=port, env=env, cwd=REPO_ROOT, ready_path="/", log_path=log):
        yield port, log


@contextmanager
def reader_of(database_url: str) -> Iterator[Flask]:
    """The schema migrated, a policy, and an app reading the fleet view (it reports
    nothing itself)."""
    host = make_host(database_url, CORSADMIN_FLEET_REPORT=False)
    with host.app.app_context():
        host.cors.store("tester", host.app).create_policy(POLICY)
    reader = fleet_app.create_app(database_url, CORSADMIN_FLEET_REPORT=False)
    try:
        yield reader
    finally:
        close_host(host)
        CorsAdmin.state(reader).extension.stop(reader)  # type: ignore[attr-defined]
        with reader.app_context():
            state(reader).db.engine.dispose()


def all_workers(port: int, log: Path) -> set[int]:
    seen: set[int] = set()

    def more() -> bool:
        seen.update(served_by(port))
        return len(seen) >= WORKERS

    wait_for(f"{WORKERS} workers answer", more, log)
    return seen


def test_every_gunicorn_worker_reports_a_change_and_a_killed_one_leaves(
    database_url: str, tmp_path: Path
) -> None:
    with reader_of(database_url) as reader:
        with gunicorn(database_url, tmp_path) as (port, log):
            pids = all_workers(port, log)
            document = wait_for("all workers current", lambda: fleet_of(reader, pids), log)
            assert document["summary"]["workers"] == WORKERS
            listening = {w["listening"] for w in document["workers"]}
            assert listening == ({True} if database_url.startswith("postgresql") else {None})
            a_change_reaches_every_worker(reader, pids, log)
            victim, live = a_killed_worker_leaves_and_is_replaced(reader, pids, port, log)
        # gunicorn stopped its workers cleanly: each deleted its row; the killed one's
        # stays (out of the view) until WORKER_ROW_TTL.
        with reader.app_context(), state(reader).engine().connect() as connection:
            rows, _ = fleet_table.live_workers(connection, now=time.time(), expiry=3600)
        assert {w.pid for w in rows} == {victim}
        assert not live & {w.pid for w in rows}


def a_change_reaches_every_worker(reader: Flask, pids: set[int], log: Path) -> None:
    with reader.app_context():
        changes = state(reader).store("tester")
        changes.allow_origin("api", "https://new.example")
        revision = changes.revision()

    def on_new_revision() -> dict[str, Any] | None:
        found = fleet_of(reader, pids)
        return found if found and found["summary"]["complete"] else None

    document = wait_for("every worker on the new revision", on_new_revision, log)
    assert document["revision"] == revision
    for row in document["workers"]:
        assert row["revision"] == revision
        assert 0 <= row["propagation"] < PATIENCE
    assert document["summary"]["text"].startswith(
        f"revision {revision}: enforced by {WORKERS} of {WORKERS} workers, "
    )
    assert document["summary"]["text"].endswith(" s after commit")


def a_killed_worker_leaves_and_is_replaced(
    reader: Flask, pids: set[int], port: int, log: Path
) -> tuple[int, set[int]]:
    """SIGKILL one worker: its row leaves the view, gunicorn's new worker appears.
    The victim's pid, and the pids live after."""
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    alive = pids - {victim}

    def replaced() -> dict[str, Any] | None:
        listed = {w["pid"] for w in status(reader)[1].get("workers", [])}
        if victim in listed:
            return None
        fresh = served_by(port) - pids
        return fleet_of(reader, alive | fresh) if len(fresh) == 1 else None

    document = wait_for("the killed worker replaced in the view", replaced, log)
    live = {w["pid"] for w in document["workers"]}
    assert victim not in live
    assert len(live) == WORKERS
    return victim, live


def test_the_fleet_view_through_a_postgresql_outage(tmp_path: Path) -> None:
    server = start_postgres(tmp_path / "pg")  # its own server: the session's keeps running
    try:
        with reader_of(server.url) as reader, gunicorn(server.url, tmp_path) as (port, log):
            pids = all_workers(port, log)
            wait_for("all workers current", lambda: fleet_of(reader, pids), log)
            with reader.app_context():
                state(reader).db.engine.dispose()
            halt(server)
            # Longer than the stale threshold (and than the expiry of the rows).
            facts = fleet_app.HEARTBEAT
            time.sleep(max(expires_after(facts, 0.2), stale_after_of_a_worker()) + 1.0)
            code, page = get(port, "/corsadmin/workers")
            assert code == 200, page
            assert "The database cannot be read" in page
            rows = page.count('<tr class="worker worker-')
            assert rows == 1, page
            assert '<tr class="worker worker-stale">' in page
            code, down = status(reader)
            assert code == 1
            assert down["error"].startswith("error: ")
            resume(server)
            started = time.monotonic()
            wait_for("every worker current again", lambda: fleet_of(reader, pids), log, 15)
            assert time.monotonic() - started < 15
    finally:
        server.stop()


def stale_after_of_a_worker() -> float:
    """How old a worker's last check may be before it is stale (seconds)."""
    worker = WorkerFacts(
        host="",
        pid=0,
        started_at=0.0,
        revision=0,
        loaded_at=None,
        committed_at=None,
        checked_at=None,
        listening=None,
        interval=fleet_app.REFRESH_INTERVAL,
        reported_at=0.0,
    )
    return stale_after(worker, fleet_app.HEARTBEAT)
