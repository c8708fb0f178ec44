"""A draft reaches every worker as a policy change does, and leaves it on discard.

Two applications on one database stand for two workers (SQLite and PostgreSQL), and
a real separate process makes the draft in one test; on PostgreSQL the worker is
woken by LISTEN/NOTIFY, not by its poll. A reload that only the draft
changed re-reads the draft alone, and a live change keeps the draft's answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.db import loader
from corsadmin.db.drafts import DraftStore
from corsadmin.engine.snapshot import Snapshot
from tests.support.host import close_app, make_app
from tests.support.refresh import (
    after_a_notification,
    after_next_check,
    holder_of,
    listeners,
    wait_until,
)
from tests.support.trial import discard_draft, traffic_rows

REPO = Path(__file__).resolve().parent.parent
A = "https://a.example"
B = "https://b.example"
API = {"name": "api", "path": "/api/**", "origins": [A, B]}
WEB = {"name": "web", "path": "/web/**", "origins": [A]}


def drafts_of(app: Flask) -> DraftStore:
    return DraftStore(CorsAdmin.state(app).store("worker-2"))


def tried(app: Flask) -> bool:
    """Does ``app`` try a draft on a request refused by it (A on api)? Counted if so."""
    recorder = CorsAdmin.state(app).trial_recorder
    recorder.take()
    response = app.test_client().get("/api/status", headers={"Origin": A})
    assert response.headers.get("Access-Control-Allow-Origin") == A  # live: always allowed
    return any(key[2] == "newly-refused" for key in recorder.take())


def current(app: Flask) -> Snapshot:
    return CorsAdmin.state(app).holder.current()


@pytest.fixture
def second_app(database_url: str, app: Flask) -> Iterator[Flask]:
    """Another application on the same database: as another worker would be."""
    with app.app_context():
        store = CorsAdmin.state(app).store("tester")
        store.create_policy(API)
        store.create_policy(WEB)
    other = make_app(database_url)
    yield other
    close_app(other)


def test_a_draft_made_by_another_worker_is_tried_then_dropped_on_discard(
    app: Flask, second_app: Flask
) -> None:
    assert not tried(app)  # loads; starts the refresh thread
    with second_app.app_context():
        drafts_of(second_app).remove_origin("api", A, reason="A leaves")
    after_next_check(app)
    assert tried(app)
    discard_draft(second_app)
    after_next_check(app)
    assert current(app).trial is None
    assert not tried(app)


def test_a_draft_made_by_another_process_is_tried(tmp_path: Path, database_url: str) -> None:
    """A real separate process saves the draft; this worker's counts reach the table
    through its periodic flush (no flush forced here)."""
    app = make_app(database_url, CORSADMIN_USAGE_FLUSH_INTERVAL=0.2)
    try:
        with app.app_context():
            CorsAdmin.state(app).store("tester").create_policy(API)
        client = app.test_client()
        client.get("/api/status", headers={"Origin": A})
        script = (
            "from corsadmin import CorsAdmin\n"
            "from corsadmin.db.drafts import DraftStore\n"
            "from tests.support.host import close_app, make_app\n"
            f"app = make_app({database_url!r}, CORSADMIN_REFRESH_IN_BACKGROUND=False)\n"
            "with app.app_context():\n"
            "    DraftStore(CorsAdmin.state(app).store('cli')).remove_origin("
            f"'api', {A!r})\n"
            "close_app(app)\n"
        )
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env=dict(os.environ),
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(lambda: current(app).trial is not None)
        engine = CorsAdmin.state(app).engine()

        def reported() -> bool:
            client.get("/api/status", headers={"Origin": A})
            return ("api", "newly-refused", A) in traffic_rows(engine)

        wait_until(reported)
    finally:
        close_app(app)


def test_a_draft_change_re_reads_the_draft_only_and_a_live_change_keeps_its_answers(
    app: Flask, second_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app.test_client()
    client.get("/api/status", headers={"Origin": A})
    full_loads: list[int] = []
    real = loader.load_specs

    def spy(*args: Any, **kwargs: Any) -> Any:
        full_loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "load_specs", spy)
    with second_app.app_context():
        drafts_of(second_app).remove_origin("api", A)
    wait_until(lambda: current(app).trial is not None)
    client.get("/api/status", headers={"Origin": A})
    trial = current(app).trial
    assert trial is not None
    drafted = trial.snapshot.policy_named("api")
    answers = {k: v for k, v in trial.snapshot.evaluations.items() if k[0] is drafted}
    assert answers  # the draft's answer to that request, memoized
    with second_app.app_context():
        CorsAdmin.state(second_app).store("worker-2").add_origin("web", B)
    revision = current(second_app).revision
    wait_until(lambda: current(app).revision == revision)
    after = current(app).trial
    assert after is not None
    assert after is not trial
    assert after.snapshot.policy_named("api") is drafted  # taken over, not compiled again
    assert after.snapshot.policy_named("web") is current(app).policy_named("web")
    for key, value in answers.items():
        assert after.snapshot.evaluations[key] is value
    assert after.live is current(app)
    with second_app.app_context():  # the draft changes again, api's proposal stays
        drafts_of(second_app).remove_origin("web", A)
    revision = current(second_app).revision
    wait_until(lambda: current(app).revision == revision)
    latest = current(app).trial
    assert latest is not None
    assert set(latest.draft.policies) == {"api", "web"}
    assert latest.snapshot.policy_named("api") is drafted
    assert latest.snapshot.policy_named("web") is not current(app).policy_named("web")
    assert full_loads == []


def test_a_rule_the_draft_adds_expires_on_time(app: Flask) -> None:
    with app.app_context():
        store = CorsAdmin.state(app).store("tester")
        store.create_policy(API)
        expires = datetime.now(UTC) + timedelta(seconds=1.5)
        DraftStore(store).add_origin("api", "https://c.example", expires=expires.isoformat())
    client = app.test_client()
    recorder = CorsAdmin.state(app).trial_recorder

    def newly_allowed() -> bool:
        client.get("/api/status", headers={"Origin": "https://c.example"})
        return any(key[2] == "newly-allowed" for key in recorder.take())

    assert newly_allowed()
    assert current(app).valid_until <= expires.timestamp()
    wait_until(lambda: not newly_allowed())
    assert datetime.now(UTC) >= expires
    assert current(app).trial is not None  # the same draft, its rule expired


def test_postgresql_notifies_every_worker_of_a_draft(postgres: Any) -> None:
    """With LISTEN/NOTIFY a draft is tried, and dropped on discard, by the check a
    notification wakes the refresh thread for (its poll is 2.5 s apart)."""
    from tests.support.postgres import create_database, drop_database

    url = create_database(postgres, "trial_notify_test")
    app = make_app(url, CORSADMIN_REFRESH_INTERVAL=2.5)
    other = make_app(url, CORSADMIN_LISTEN=False)
    try:
        with other.app_context():
            CorsAdmin.state(other).store("worker-2").create_policy(API)
        assert not tried(app)  # first load; starts the thread
        wait_until(lambda: listeners(other) > 0)  # the thread is listening
        notified = holder_of(app).notifications
        with other.app_context():
            drafts_of(other).remove_origin("api", A)
        after_a_notification(app, notified)  # not the poll: that is 2.5 s away
        assert tried(app)
        notified = holder_of(app).notifications
        discard_draft(other)
        after_a_notification(app, notified)
        assert current(app).trial is None
    finally:
        close_app(app)
        close_app(other)
        drop_database(postgres, "trial_notify_test")
