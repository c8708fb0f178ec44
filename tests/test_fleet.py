"""The fleet view: the status of one process (pure), the table (SQLite and PostgreSQL),
and this process's reports from its refresh thread."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from corsadmin import CorsAdmin, standalone
from corsadmin.db import fleet as fleet_table
from corsadmin.engine.fleet import (
    EXPIRY_HEARTBEATS,
    FLEET_MARGIN,
    LAGGING_INTERVALS,
    STALE_HEARTBEATS,
    WorkerFacts,
    expires_after,
    fleet_summary,
    stale_after,
    worker_status,
)
from corsadmin.engine.snapshot import Snapshot
from corsadmin.runtime.fleet import host_name
from corsadmin.runtime.refresh import SnapshotHolder
from corsadmin.state import state

NOW = 1_800_000_000.0
POLICY = {"name": "api", "path": "/api/**", "origins": ["https://a.example"]}


def facts(**changes: Any) -> WorkerFacts:
    base = WorkerFacts(
        host="web-1",
        pid=100,
        started_at=NOW - 600,
        revision=7,
        loaded_at=NOW - 60,
        committed_at=NOW - 60.04,
        checked_at=NOW - 0.5,
        listening=True,
        interval=1.0,
        reported_at=NOW - 0.5,
    )
    return replace(base, **changes)


def status(worker: WorkerFacts, revision: int = 7, committed_at: float = NOW - 60.04) -> str:
    return worker_status(
        worker, revision=revision, committed_at=committed_at, now=NOW, heartbeat=5.0
    ).value


# The status of one process (pure) ------------------------------------------------------


def test_a_process_on_the_current_revision_that_checked_lately_is_current() -> None:
    assert status(facts()) == "current"


def test_a_process_whose_last_check_is_two_heartbeats_old_is_stale() -> None:
    limit = STALE_HEARTBEATS * 5.0 + FLEET_MARGIN
    assert stale_after(facts(), 5.0) == limit
    assert status(facts(checked_at=NOW - limit + 0.1)) == "current"
    assert status(facts(checked_at=NOW - limit - 0.1)) == "stale"
    assert status(facts(checked_at=None)) == "stale"  # never checked


def test_a_process_polling_slower_than_the_heartbeat_is_judged_by_its_interval() -> None:
    slow = facts(interval=30.0, checked_at=NOW - 40)
    assert status(slow) == "current"  # 40 s < 2 x 30 s + margin
    assert stale_after(slow, 5.0) == STALE_HEARTBEATS * 30.0 + FLEET_MARGIN


def test_a_process_on_an_older_revision_lags_only_once_the_change_is_not_young() -> None:
    old = facts(revision=6)
    grace = LAGGING_INTERVALS * 1.0 + FLEET_MARGIN
    assert status(old, revision=7, committed_at=NOW - grace + 0.1) == "current"
    assert status(old, revision=7, committed_at=NOW - grace - 0.1) == "lagging"
    assert status(old, revision=7, committed_at=0.0) == "lagging"  # commit time unknown
    assert status(facts(revision=8), revision=7) == "current"  # ahead of the reader's read


def test_stale_wins_over_lagging() -> None:
    assert status(facts(revision=6, checked_at=NOW - 600), revision=7) == "stale"


def test_the_summary_counts_the_processes_on_the_revision_and_the_slowest_load() -> None:
    workers = [
        facts(pid=1, loaded_at=NOW - 59.99),  # 0.05 s after the commit
        facts(pid=2, loaded_at=NOW - 60.0),  # 0.04 s
        facts(pid=3, revision=8, committed_at=NOW - 1, loaded_at=NOW - 0.5),
    ]
    summary = fleet_summary(workers, 7)
    assert (summary.enforcing, summary.workers, summary.complete) == (3, 3, True)
    assert summary.seconds == pytest.approx(0.05)
    assert summary.text() == "revision 7: enforced by 3 of 3 workers, 0.05 s after commit"
    partial = fleet_summary([*workers, facts(pid=4, revision=6)], 7)
    assert partial.text() == "revision 7: enforced by 3 of 4 workers so far"
    assert fleet_summary([facts()], 7).text().startswith("revision 7: enforced by 1 of 1 worker,")
    assert fleet_summary([], 7).text() == "revision 7: enforced by 0 of 0 workers so far"
    unknown = fleet_summary([facts(committed_at=None)], 7)
    assert unknown.seconds is None
    assert unknown.text() == "revision 7: enforced by 1 of 1 worker"


def test_expiry_is_three_heartbeats() -> None:
    assert expires_after(5.0) == EXPIRY_HEARTBEATS * 5.0 + FLEET_MARGIN
    assert expires_after(0.5, interval=2.0) == EXPIRY_HEARTBEATS * 2.0 + FLEET_MARGIN


# The table -----------------------------------------------------------------------------


def engine_of(app: Flask) -> sa.Engine:
    return state(app).engine()


def live(app: Flask, now: float, expiry: float = 10.0) -> list[WorkerFacts]:
    with engine_of(app).connect() as connection:
        found, truncated = fleet_table.live_workers(connection, now=now, expiry=expiry)
    assert not truncated
    return found


def test_report_inserts_then_updates_one_row_per_process(app: Flask) -> None:
    now = time.time()
    fleet_table.report(engine_of(app), facts(reported_at=now, revision=3))
    fleet_table.report(engine_of(app), facts(reported_at=now + 1, revision=4, listening=None))
    rows = live(app, now + 1)
    assert len(rows) == 1
    row = rows[0]
    assert (row.host, row.pid, row.revision, row.listening) == ("web-1", 100, 4, None)
    assert row.reported_at == pytest.approx(now + 1, abs=1e-3)
    assert row.loaded_at == pytest.approx(NOW - 60, abs=1e-3)
    assert row.propagation == pytest.approx(0.04, abs=1e-3)


def test_live_workers_leaves_out_the_silent_and_orders_by_host_and_pid(app: Flask) -> None:
    now = time.time()
    engine = engine_of(app)
    for host, pid, age in [("web-2", 5, 1), ("web-1", 9, 2), ("web-1", 3, 3), ("web-3", 1, 30)]:
        fleet_table.report(engine, facts(host=host, pid=pid, reported_at=now - age))
    assert [(w.host, w.pid) for w in live(app, now)] == [("web-1", 3), ("web-1", 9), ("web-2", 5)]
    assert fleet_table.delete_expired(engine, now=now, ttl=20) == 1
    assert len(live(app, now, expiry=100)) == 3
    fleet_table.remove(engine, "web-1", 9)
    assert [(w.host, w.pid) for w in live(app, now)] == [("web-1", 3), ("web-2", 5)]


def test_live_workers_is_a_bounded_read(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    monkeypatch.setattr(fleet_table, "MAX_WORKERS_LISTED", 3)  # the bound, not the database
    for pid in range(5):
        fleet_table.report(engine_of(app), facts(pid=pid, reported_at=now))
    with engine_of(app).connect() as connection:
        found, truncated = fleet_table.live_workers(connection, now=now, expiry=10)
    assert truncated
    assert [w.pid for w in found] == [0, 1, 2]


# This process's reports ----------------------------------------------------------------

QUIET = {"CORSADMIN_FLEET_HEARTBEAT": 60.0}  # a report now is due to a change, not the beat


def own_row(app: Flask) -> WorkerFacts | None:
    rows = [w for w in live(app, time.time()) if w.pid == os.getpid() and w.host == host_name()]
    return rows[0] if rows else None


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s")


@pytest.mark.parametrize("app_config", [QUIET])
def test_the_refresh_thread_reports_at_once_after_a_new_revision(
    app: Flask, cors: CorsAdmin, database_url: str
) -> None:
    app.test_client().get("/api/status")  # the first request starts the refresh thread
    first = wait_for(lambda: own_row(app))
    holder = state(app).holder
    assert first.revision == holder.snapshot.revision
    assert first.checked_at is not None
    assert first.interval == holder.interval
    assert first.listening is (True if database_url.startswith("postgresql") else None)
    with app.app_context():
        changes = cors.store("tester", app)
        changes.create_policy(POLICY)
        revision = changes.revision()
    row = wait_for(lambda: (r := own_row(app)) and r.revision == revision and r)
    assert row.committed_at is not None
    assert row.loaded_at is not None
    assert 0 <= row.propagation < 60
    view = state(app).fleet_view()
    assert view.unreachable is None
    assert view.all_current
    assert view.summary.text().startswith(f"revision {revision}: enforced by 1 of 1 worker, ")


@pytest.mark.parametrize("app_config", [{"CORSADMIN_FLEET_HEARTBEAT": 0.3}])
def test_an_idle_process_reports_every_heartbeat_and_leaves_on_a_clean_stop(
    app: Flask, cors: CorsAdmin
) -> None:
    app.test_client().get("/api/status")
    first = wait_for(lambda: own_row(app))
    later = wait_for(lambda: (r := own_row(app)) and r.reported_at > first.reported_at + 0.2 and r)
    assert later.checked_at is not None
    assert later.checked_at > first.checked_at
    cors.stop(app)
    assert own_row(app) is None


@pytest.mark.parametrize("app_config", [{"CORSADMIN_FLEET_REPORT": False}])
def test_reporting_can_be_turned_off(app: Flask) -> None:
    app.test_client().get("/api/status")
    time.sleep(0.6)  # three refresh intervals
    assert state(app).holder.checked_at is not None
    assert own_row(app) is None


def test_a_database_without_the_table_is_skipped_quietly(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with engine_of(app).begin() as connection:
        connection.execute(sa.text("DROP TABLE corsadmin_worker"))
    reporter = state(app).fleet
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        assert not reporter.step(force=True)
        assert not reporter.step(force=True)
    said = [r.getMessage() for r in caplog.records if "fleet" in r.getMessage()]
    assert said == ["corsadmin's fleet view is off until the database is upgraded (0006)"]
    assert all(r.levelno < logging.WARNING for r in caplog.records)


# What the holder knows -----------------------------------------------------------------


class _Waiter:
    """A change waiter whose connection is down (every wait fails), or up (it times out)."""

    def __init__(self, up: bool) -> None:
        self.up = up

    def wait(self, timeout: float) -> bool:
        if not self.up:
            raise OSError("connection lost")
        time.sleep(timeout)
        return False

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("waiter", "expected"),
    [
        (None, None),
        (lambda: None, None),
        (lambda: _Waiter(True), True),
        (lambda: _Waiter(False), False),
    ],
    ids=["no-waiter", "no-notifications", "listening", "connection-down"],
)
def test_the_holder_says_whether_it_listens_when_it_checked_and_installed(
    waiter: Any, expected: bool | None
) -> None:
    holder = SnapshotHolder(
        load=lambda: Snapshot(1, ()),
        read_revision=lambda: 1,
        interval=0.05,
        change_waiter=waiter,
    )
    assert (holder.installed_at, holder.checked_at, holder.listening) == (None, None, None)
    before = time.time()
    holder.current()  # the first load, and the thread
    try:
        assert holder.installed_at is not None
        assert holder.installed_at >= before
        first_check = holder.checked_at
        assert first_check is not None
        wait_for(lambda: holder.listening is expected and (holder.checked_at or 0) > first_check)
    finally:
        holder.stop()
    assert holder.stopped
    assert holder.listening is None  # the thread is gone


def test_a_process_that_never_served_writes_no_row_when_it_stops(
    app: Flask, cors: CorsAdmin
) -> None:
    cors.stop(app)
    assert own_row(app) is None
    assert not state(app).fleet.step(force=True)  # stopped: no more reports


def test_the_standalone_app_reads_the_heartbeat_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'standalone.sqlite'}")
    monkeypatch.setenv("CORSADMIN_FLEET_HEARTBEAT", "2.5")
    app = standalone.create_app({"SECRET_KEY": "x" * 32})
    try:
        assert state(app).config.fleet_heartbeat == 2.5
        assert state(app).fleet.heartbeat == 2.5
    finally:
        state(app).holder.stop()
        with app.app_context():
            state(app).db.engine.dispose()
