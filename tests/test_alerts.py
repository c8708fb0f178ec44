"""Alerts against a real database (SQLite and PostgreSQL) and a real webhook receiver
on 127.0.0.1: the detectors, the refusals per policy-hour the usage flush writes,
delivery (signature checked, a retry after a 500, once across a restart and across
two processes), the refresh thread's run, and the CLI (``review --due``, ``alerts
send|list``). Time is a clock the test moves: nothing sleeps through a backoff."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.cli.alerts import EXIT_DUE, EXIT_NOTHING_DUE
from corsadmin.db import alerts as outbox
from corsadmin.db.models import AlertRow, Policy, RefusalHourRow, State, WorkerRow
from corsadmin.engine.alerts import (
    FIRST_RETRY_DELAY,
    LAG_AFTER,
    MAX_ATTEMPTS,
    MAX_RETRY_DELAY,
    SPIKE_BASELINE_HOURS,
    AlertEvent,
    event_id,
)
from corsadmin.runtime.alerts import AlertRunner, RunResult, Webhook
from corsadmin.runtime.usage import UsageRecorder
from tests.support.cli import run_cli
from tests.support.host import TEST_SECRET_KEY, close_host, make_host
from tests.support.receiver import running_receiver

SECRET: Final = "alerts-test-secret-0123456789"
#: How long a test waits for the refresh thread to post (a liveness bound, not a speed one).
THREAD_WAIT: Final = 20.0
BODY_KEYS: Final = {"id", "kind", "key", "policy", "summary", "detected_at", "details"}


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def engine_of(app: Flask) -> sa.Engine:
    return CorsAdmin.state(app).engine()


def runner_for(url: str, clock: Clock, secret: str = SECRET) -> AlertRunner:
    return AlertRunner(Webhook(url, secret), expiring_within_days=14, interval=60, clock=clock)


def add_policy(store: PolicyStore, name: str, **values: Any) -> None:
    store.create_policy({"name": name, "path": f"/{name}/**", "origins": [], **values})


def set_policy(app: Flask, name: str, **values: Any) -> None:
    with engine_of(app).begin() as connection:
        connection.execute(sa.update(Policy).where(Policy.name == name).values(**values))


def due_policy(store: PolicyStore, app: Flask, name: str = "old") -> datetime:
    """A policy created 100 days ago (reviews every 90 days): its review is due; returns
    when it fell due."""
    add_policy(store, name)
    created = datetime.now(UTC) - timedelta(days=100)
    set_policy(app, name, created_at=created)
    return created + timedelta(days=90)


def alert_rows(app: Flask) -> list[Any]:
    with engine_of(app).connect() as connection:
        return list(connection.execute(sa.select(AlertRow.__table__).order_by(AlertRow.id)))


# --- the detectors -------------------------------------------------------------------------------


def test_a_review_falls_due_from_created_at_or_reviewed_at_plus_its_period(
    app: Flask, store: PolicyStore
) -> None:
    now = datetime.now(UTC)
    due_at = due_policy(store, app, "old")
    add_policy(store, "fresh")
    add_policy(store, "reviewed")
    set_policy(
        app, "reviewed", created_at=now - timedelta(days=200), reviewed_at=now - timedelta(days=10)
    )
    add_policy(store, "weekly", review_every_days=7)
    set_policy(app, "weekly", created_at=now - timedelta(days=8))
    with engine_of(app).connect() as connection:
        events = outbox.due_reviews(connection, now)
        recent = outbox.due_reviews(connection, now, since=now - timedelta(days=3))
    assert [e.policy for e in events] == ["old", "weekly"]  # the longest due first
    assert events[0].key == f"review-due:old:{due_at.date().isoformat()}"
    assert [e.policy for e in recent] == ["weekly"]  # fell due 1 day ago; "old" 10


def test_an_origin_rule_expiring_within_the_window_is_an_event(
    app: Flask, store: PolicyStore
) -> None:
    now = datetime.now(UTC)

    def at(days: int) -> str:
        return (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    origins = [
        {"origin": "https://soon.example", "expires": at(3)},
        {"origin": "https://later.example", "expires": at(30)},
        {"origin": "https://gone.example", "expires": at(-1)},
        "https://forever.example",
    ]
    add_policy(store, "partner", origins=origins)
    with engine_of(app).connect() as connection:
        events = outbox.expiring_rules(connection, now, 14)
        wider = outbox.expiring_rules(connection, now, 60)
    assert [e.details["origin"] for e in events] == ["https://soon.example"]
    assert events[0].key.startswith("expiring:partner:https://soon.example:")
    assert [e.details["origin"] for e in wider] == ["https://soon.example", "https://later.example"]


def test_a_refusal_spike_is_against_the_policys_own_week(app: Flask) -> None:
    now = datetime.now(UTC)
    hour = outbox.hour_of(now)
    counts: dict[tuple[str, datetime], int] = {}
    for back in range(1, SPIKE_BASELINE_HOURS + 1):
        counts[("quiet", hour - timedelta(hours=back))] = 10  # 10 an hour: 100 is a spike
        counts[("busy", hour - timedelta(hours=back))] = 100  # 100 an hour: needs 1,000
    counts[("quiet", hour)] = 150
    counts[("busy", hour)] = 150
    counts[("new", hour)] = 99  # no history, but under the minimum
    with engine_of(app).begin() as connection:
        outbox.add_refusal_hours(connection, counts)
    with engine_of(app).connect() as connection:
        events = outbox.refusal_spikes(connection, now)
    assert [e.policy for e in events] == ["quiet"]
    assert events[0].details["refused"] == 150
    assert events[0].details["average_per_hour"] == pytest.approx(10.0)


def test_the_usage_flush_adds_refusals_to_the_policy_hour(app: Flask) -> None:
    recorder = UsageRecorder()
    for _ in range(3):
        recorder.record("partner", "https://evil.example", None, False)
    recorder.record("partner", "https://other.example", None, False)
    recorder.record("partner", "https://ok.example", "https://ok.example", True)
    recorder.flush(engine_of(app))
    recorder.record("partner", "https://evil.example", None, False)
    recorder.flush(engine_of(app))
    with engine_of(app).connect() as connection:
        rows = connection.execute(
            sa.select(RefusalHourRow.policy_name, RefusalHourRow.hour, RefusalHourRow.refused)
        ).all()
    assert len(rows) == 1  # one row per policy-hour, added up
    assert rows[0].policy_name == "partner"
    assert rows[0].refused == 5
    assert rows[0].hour == outbox.hour_of(datetime.now(UTC)) or rows[0].hour == outbox.hour_of(
        datetime.now(UTC) - timedelta(minutes=1)
    )


def test_a_worker_on_an_old_revision_or_not_checking_is_lagging(
    app: Flask, store: PolicyStore
) -> None:
    add_policy(store, "one")
    add_policy(store, "two")
    now = datetime.now(UTC)
    committed = now - timedelta(seconds=LAG_AFTER * 2)
    with engine_of(app).begin() as connection:
        connection.execute(sa.update(State).values(changed_at=committed))
        current = int(connection.scalar(sa.select(State.revision)) or 0)
        fresh = {"interval": 1.0, "reported_at": now, "checked_at": now}
        connection.execute(
            sa.insert(WorkerRow),
            [
                {"host": "web-1", "pid": 1, "revision": current - 1, **fresh},
                {"host": "web-2", "pid": 2, "revision": current, **fresh},
                {"host": "web-3", "pid": 3, "revision": current, **fresh, "checked_at": committed},
                {  # stopped reporting: gone, not lagging
                    "host": "web-4",
                    "pid": 4,
                    "revision": 0,
                    "interval": 1.0,
                    "reported_at": now - timedelta(minutes=5),
                    "checked_at": None,
                },
            ],
        )
    with engine_of(app).connect() as connection:
        events = outbox.lagging_workers(connection, now)
    assert sorted(e.key for e in events) == [
        f"worker-lagging:web-1:1:{current - 1}",
        f"worker-lagging:web-3:3:{current}",
    ]


# --- delivery ------------------------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_event_then_nothing_again_after_a_restart(
    app: Flask, store: PolicyStore, database_url: str
) -> None:
    due_policy(store, app)
    clock = Clock()
    with running_receiver(SECRET, statuses=[500]) as receiver:
        runner = runner_for(receiver.url, clock)
        first = runner.run(engine_of(app))
        assert (first.queued, first.retrying, first.delivered) == (1, 1, 0)
        assert runner.run(engine_of(app)).queued == 0  # found again: not queued again
        assert len(receiver.received) == 1  # and not retried before its delay
        clock.advance(FIRST_RETRY_DELAY)
        assert runner.run(engine_of(app)).delivered == 1
        posts = list(receiver.received)
        assert [p.status for p in posts] == [500, 200]
        assert all(p.verified for p in posts)
        assert posts[0].event_id == posts[1].event_id == event_id(posts[0].body["key"])
        assert posts[0].body == posts[1].body
        assert set(posts[0].body) == BODY_KEYS
        assert posts[0].body["kind"] == "review-due"
        assert posts[0].headers["Content-Type"] == "application/json"
        assert posts[0].headers["User-Agent"].startswith("corsadmin")
        [row] = alert_rows(app)
        assert (row.status, row.attempts) == ("delivered", 2)
        assert row.delivered_at is not None
        # a restart: another app (another process) on the same database
        again = make_host(
            database_url,
            CORSADMIN_ALERT_WEBHOOK_URL=receiver.url,
            CORSADMIN_ALERT_WEBHOOK_SECRET=SECRET,
        )
        try:
            alerts = CorsAdmin.state(again.app).alerts
            assert alerts is not None
            result = alerts.run(engine_of(again.app))
        finally:
            close_host(again)
        assert (result.detected, result.queued, result.delivered) == (1, 0, 0)
        assert len(receiver.received) == 2


def events(count: int) -> list[AlertEvent]:
    return [
        AlertEvent(key=f"test:{i}", kind="review-due", policy=f"p{i}", summary=f"event {i}")
        for i in range(count)
    ]


def test_two_processes_delivering_at_once_post_each_event_once(
    app: Flask, database_url: str
) -> None:
    count = 30
    with engine_of(app).begin() as connection:
        assert outbox.enqueue(connection, events(count), datetime.now(UTC)) == count
    other = make_host(database_url)
    try:
        with running_receiver(SECRET, delay=0.02) as receiver:
            engines = [engine_of(app), engine_of(other.app)]
            runners = [runner_for(receiver.url, Clock()) for _ in engines]
            threads = [
                threading.Thread(target=r.deliver, args=(e, r.webhook, RunResult()))
                for r, e in zip(runners, engines, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            ids = receiver.event_ids()
    finally:
        close_host(other)
    assert len(ids) == count
    assert len(set(ids)) == count
    assert {r.status for r in alert_rows(app)} == {"delivered"}


def test_an_alert_refused_every_time_is_marked_failed_after_the_last_attempt(
    app: Flask, store: PolicyStore, runner: FlaskCliRunner
) -> None:
    due_policy(store, app)
    clock = Clock()
    with running_receiver(SECRET, statuses=[500] * (MAX_ATTEMPTS + 1)) as receiver:
        alerts = runner_for(receiver.url, clock)
        for _ in range(MAX_ATTEMPTS + 2):
            alerts.run(engine_of(app))
            clock.advance(MAX_RETRY_DELAY)
        assert len(receiver.received) == MAX_ATTEMPTS
    [row] = alert_rows(app)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    listed = runner.invoke(args=["corsadmin", "alerts", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.output)
    assert shown["status"] == "failed"
    assert shown["last_error"].startswith("HTTP 500")
    assert shown["next_attempt_at"] is None


def test_a_receiver_with_another_secret_refuses_the_signature(
    app: Flask, store: PolicyStore
) -> None:
    due_policy(store, app)
    with running_receiver("the-receivers-own-secret") as receiver:
        result = runner_for(receiver.url, Clock()).run(engine_of(app))
        [post] = receiver.received
    assert not post.verified
    assert (result.delivered, result.retrying) == (0, 1)
    [row] = alert_rows(app)
    assert row.status == "pending"
    assert row.last_error.startswith("HTTP 401")


def test_old_delivered_alerts_and_refusal_hours_are_deleted(app: Flask) -> None:
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=outbox.ALERT_RETENTION_DAYS + 1)
    with engine_of(app).begin() as connection:
        outbox.enqueue(connection, events(3), long_ago)
        outbox.add_refusal_hours(
            connection,
            {
                ("p", outbox.hour_of(now)): 1,
                ("p", outbox.hour_of(now - timedelta(days=outbox.REFUSAL_HOURS_KEPT + 1))): 1,
            },
        )
        connection.execute(
            sa.update(AlertRow).where(AlertRow.key != "test:2").values(status="delivered")
        )
        deleted = outbox.prune(connection, now, 14)
    assert deleted == 3  # two delivered alerts, one refusal hour; the pending one stays
    assert [r.key for r in alert_rows(app)] == ["test:2"]


# --- the refresh thread --------------------------------------------------------------------------


def test_the_refresh_thread_delivers_and_requests_never_do(
    database_url: str,
) -> None:
    with running_receiver(SECRET) as receiver:
        config = {
            "CORSADMIN_ALERT_WEBHOOK_URL": receiver.url,
            "CORSADMIN_ALERT_WEBHOOK_SECRET": SECRET,
            "CORSADMIN_ALERT_INTERVAL": 1.0,
        }
        quiet = make_host(database_url, CORSADMIN_REFRESH_IN_BACKGROUND=False, **config)
        try:
            with quiet.app.app_context():
                store = quiet.cors.store("tester", quiet.app)
                due_policy(store, quiet.app)
            client = quiet.app.test_client()
            for _ in range(3):  # each request past the interval runs the tick: no alerts
                client.get("/api/status", headers={"Origin": "https://a.example"})
                time.sleep(0.3)
            alerts = CorsAdmin.state(quiet.app).alerts
            assert alerts is not None
            assert alerts.last_run is None
            assert receiver.received == []
        finally:
            close_host(quiet)
        host = make_host(database_url, **config)
        try:
            host.app.test_client().get("/api/status")  # starts the refresh thread
            deadline = time.monotonic() + THREAD_WAIT
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            close_host(host)
        assert [p.body["kind"] for p in receiver.received] == ["review-due"]
        assert receiver.received[0].verified


# --- the CLI -------------------------------------------------------------------------------------


def test_review_due_prints_the_events_as_json_and_exits_3_when_something_is_due(
    app: Flask, store: PolicyStore, runner: FlaskCliRunner
) -> None:
    nothing = runner.invoke(args=["corsadmin", "review", "--due", "--format", "json"])
    assert nothing.exit_code == EXIT_NOTHING_DUE, nothing.output
    assert json.loads(nothing.output)["events"] == []
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    add_policy(store, "partner", origins=[{"origin": "https://soon.example", "expires": soon}])
    due_policy(store, app, "old")
    result = runner.invoke(args=["corsadmin", "review", "--due", "--format", "json"])
    assert result.exit_code == EXIT_DUE, result.output
    document = json.loads(result.output)
    assert set(document) == {"now", "count", "events"}
    assert document["count"] == 2
    assert [e["kind"] for e in document["events"]] == ["review-due", "expiring"]
    assert all(set(e) == BODY_KEYS for e in document["events"])
    assert document["events"][1]["details"]["origin"] == "https://soon.example"
    text = runner.invoke(args=["corsadmin", "review", "--due"])
    assert text.exit_code == EXIT_DUE
    assert text.output.splitlines()[0].startswith("review-due: policy 'old'")
    assert alert_rows(app) == []  # listing queues nothing


def test_alerts_send_needs_a_webhook(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["corsadmin", "alerts", "send"])
    assert result.exit_code == 1
    assert "CORSADMIN_ALERT_WEBHOOK_URL is not set" in result.output


def test_alerts_send_posts_and_alerts_list_shows_it(database_url: str) -> None:
    with running_receiver(SECRET) as receiver:
        host = make_host(
            database_url,
            CORSADMIN_ALERT_WEBHOOK_URL=receiver.url,
            CORSADMIN_ALERT_WEBHOOK_SECRET=SECRET,
        )
        try:
            with host.app.app_context():
                due_policy(host.cors.store("tester", host.app), host.app)
            cli = host.app.test_cli_runner()
            sent = cli.invoke(args=["corsadmin", "alerts", "send"])
            listed = cli.invoke(args=["corsadmin", "alerts", "list"])
            again = cli.invoke(args=["corsadmin", "alerts", "send"])
        finally:
            close_host(host)
        assert len(receiver.received) == 1
    assert sent.exit_code == 0, sent.output
    assert "1 new; 1 delivered" in sent.output
    assert "delivered" in listed.output
    assert "review-due: policy 'old'" in listed.output
    assert "0 new; 0 delivered" in again.output


def test_review_without_due_prints_the_review_screens_counts(
    app: Flask, store: PolicyStore, runner: FlaskCliRunner
) -> None:
    due_policy(store, app)
    result = runner.invoke(args=["corsadmin", "review", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["due"] == 1
    assert document["policies"] == 1


def test_a_redirect_is_not_followed_but_retried(app: Flask, store: PolicyStore) -> None:
    due_policy(store, app)
    with running_receiver(SECRET, statuses=[302]) as receiver:
        result = runner_for(receiver.url, Clock()).run(engine_of(app))
        assert len(receiver.received) == 1
        assert receiver.gets == []  # not followed (a followed 302 comes back as a GET)
    assert (result.delivered, result.retrying) == (0, 1)
    [row] = alert_rows(app)
    assert row.last_error.startswith("HTTP 302")


def test_a_failing_periodic_run_is_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = AlertRunner(Webhook("http://127.0.0.1:9/", SECRET), 14, interval=0.0)

    def no_database() -> sa.Engine:
        raise sa.exc.OperationalError("connect", {}, Exception("database is down"))

    with caplog.at_level("WARNING", logger="corsadmin"):
        assert runner.tick(no_database) is None
        assert runner.tick(no_database) is None
    warnings = [r for r in caplog.records if "could not scan or deliver alerts" in r.message]
    assert len(warnings) == 1


def test_two_processes_one_after_the_other_send_an_event_once(
    app: Flask, store: PolicyStore, database_url: str
) -> None:
    """``python manage.py corsadmin alerts send`` twice: two real processes on the same
    database (the standalone app reads the webhook settings from the environment)."""
    due_policy(store, app)
    with running_receiver(SECRET) as receiver:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "CORSADMIN_"))},
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET_KEY,
            "CORSADMIN_ALERT_WEBHOOK_URL": receiver.url,
            "CORSADMIN_ALERT_WEBHOOK_SECRET": SECRET,
        }
        first = run_cli(env, "alerts", "send")
        second = run_cli(env, "alerts", "send")
        assert [p.verified for p in receiver.received] == [True]
    assert "1 new; 1 delivered" in first.stdout
    assert "0 new; 0 delivered" in second.stdout
