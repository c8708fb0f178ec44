"""Two operators, one version: the second save of the same version is refused.

Each operator works in its own session, as two admin requests (or a CLI and a
request) do: the session loads the policy first (the view shows it), then
saves. The store must compare the version, and take the audit "before", from
the row it locked, not from the copy the session loaded earlier. The
interleaving is deterministic (one thread, two sessions) on SQLite and on
PostgreSQL; on PostgreSQL a second test runs the two saves in two threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Session

from corsadmin import CorsAdmin, PolicyStore, StaleVersion
from corsadmin.db.models import AuditEvent

WAIT = 10.0  # seconds: the bound on every wait in these tests

PARTNER: dict[str, Any] = {
    "name": "partner",
    "path": "/api/**",
    "description": "v1",
    "origins": ["https://a.example", {"origin": "https://b.example", "note": "ticket 7"}],
}


@pytest.fixture
def engine(app: Flask, cors: CorsAdmin, db: SQLAlchemy) -> Iterator[sa.Engine]:
    with app.app_context():
        cors.store("seed", app).create_policy(PARTNER)
        db.session.remove()
        yield db.engine


def document(engine: sa.Engine) -> dict[str, Any]:
    """The stored policy as ``export`` prints it (read in a fresh session)."""
    with Session(engine) as session:
        (policy,) = PolicyStore(session, actor="inspector").export_document()["policies"]
        return dict(policy)


def events(engine: sa.Engine) -> list[AuditEvent]:
    """Every audit event about the policy after its creation, oldest first."""
    with Session(engine, expire_on_commit=False) as session:
        return list(
            session.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.action != "policy.create")
                .order_by(AuditEvent.id)
            )
        )


def version(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return PolicyStore(session, actor="inspector").policy("partner").version


SECOND_SAVES: dict[str, Callable[[PolicyStore, int], object]] = {
    "update": lambda s, v: s.update_policy("partner", {"description": "bob"}, expected_version=v),
    "add-origin": lambda s, v: s.add_origin("partner", "https://c.example", expected_version=v),
    "remove-origin": lambda s, v: s.remove_origin(
        "partner", "https://a.example", expected_version=v
    ),
    "disable": lambda s, v: s.set_enabled("partner", False, expected_version=v),
    "delete": lambda s, v: s.delete_policy("partner", expected_version=v),
    "review": lambda s, v: s.mark_reviewed("partner", "looked", expected_version=v),
}


@pytest.mark.parametrize("second", list(SECOND_SAVES), ids=list(SECOND_SAVES))
def test_the_second_save_of_one_version_is_refused(engine: sa.Engine, second: str) -> None:
    seen = document(engine)
    with Session(engine) as session_a, Session(engine) as session_b:
        alice = PolicyStore(session_a, actor="alice")
        bob = PolicyStore(session_b, actor="bob")
        # Both open the policy page: each session holds the policy at version v (a view
        # keeps the object it loaded, so the session's identity map keeps it too).
        alices, bobs = alice.policy("partner"), bob.policy("partner")
        v = alices.version
        assert bobs.version == v
        assert [r.origin for r in bobs.origin_rules] == ["https://a.example", "https://b.example"]
        alice.update_policy("partner", {"description": "alice"}, expected_version=v)
        with pytest.raises(StaleVersion) as refused:
            SECOND_SAVES[second](bob, v)
        assert (refused.value.expected, refused.value.actual) == (v, v + 1)
    after = document(engine)
    assert after == {**seen, "description": "alice"}
    assert version(engine) == v + 1
    (change,) = events(engine)
    assert (change.actor, change.action) == ("alice", "policy.update")
    # The event records what changed: the one field, before and after.
    assert change.before == {"description": seen["description"]}
    assert change.after == {"description": after["description"]}


def test_a_save_without_a_version_starts_from_the_committed_row(engine: sa.Engine) -> None:
    with Session(engine) as session_a, Session(engine) as session_b:
        alice = PolicyStore(session_a, actor="alice")
        bob = PolicyStore(session_b, actor="bob")
        stale = bob.policy("partner")  # bob's session loads the policy (rules too) first
        assert [r.origin for r in stale.origin_rules] == ["https://a.example", "https://b.example"]
        alice.update_policy("partner", {"description": "alice"})
        alice.add_origin("partner", "https://c.example", note="alice's")
        alice.remove_origin("partner", "https://a.example")
        alices_result = document(engine)
        bob.update_policy("partner", {"priority": 5})
        # What bob's store returns and what it wrote is alice's result plus bob's change.
        assert [r.origin for r in bob.policy("partner").origin_rules] == [
            "https://b.example",
            "https://c.example",
        ]
    after = document(engine)
    assert after == {**alices_result, "priority": 5}
    last = events(engine)[-1]
    assert (last.actor, last.action) == ("bob", "policy.update")
    assert last.before == {"priority": alices_result["priority"]}
    assert last.after == {"priority": 5}
    assert last.summary == "updated partner: priority: 0 -> 5"


def test_a_note_change_without_a_version_keeps_the_other_writers_rules(engine: sa.Engine) -> None:
    with Session(engine) as session_a, Session(engine) as session_b:
        alice = PolicyStore(session_a, actor="alice")
        bob = PolicyStore(session_b, actor="bob")
        bobs = bob.policy("partner")
        assert len(bobs.origin_rules) == 2
        alice.add_origin("partner", "https://c.example", note="temporary", expires="2099-01-01")
        alice.add_origin("partner", "https://b.example", note="ticket 8")
        bob.add_origin("partner", "https://d.example")
    origins = document(engine)["origins"]
    assert origins == [
        "https://a.example",
        {"origin": "https://b.example", "note": "ticket 8"},
        {"origin": "https://c.example", "note": "temporary", "expires": "2099-01-01T00:00:00Z"},
        "https://d.example",
    ]
    # bob's add is recorded as what it changed: the one rule, absent before.
    assert events(engine)[-1].before == {"origins": []}
    assert events(engine)[-1].after == {"origins": ["https://d.example"]}


def _backend_waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


# PostgreSQL only (SQLite has one writer at a time: the deterministic tests cover it).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_saves_on_postgresql_wait_for_the_lock_then_see_the_new_version(
    engine: sa.Engine,
) -> None:
    assert engine.dialect.name == "postgresql"
    seen = document(engine)
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    session_a, session_b = Session(engine), Session(engine)
    alice = PolicyStore(session_a, actor="alice")
    bob = PolicyStore(session_b, actor="bob")
    alices, bobs = alice.policy("partner"), bob.policy("partner")  # held, as a view holds it
    v = alices.version
    assert bobs.version == v

    @sa.event.listens_for(session_a, "before_commit")
    def hold_the_lock(session: Session) -> None:  # alice's change is written, not committed
        holding.set()
        assert release.wait(WAIT)

    def save(name: str, store: PolicyStore, changes: dict[str, Any]) -> None:
        try:
            outcome[name] = store.update_policy("partner", changes, expected_version=v)
        except Exception as exc:  # the test reads it below
            outcome[name] = exc

    first = threading.Thread(target=save, args=("alice", alice, {"description": "alice"}))
    second = threading.Thread(target=save, args=("bob", bob, {"description": "bob"}))
    try:
        first.start()
        assert holding.wait(WAIT)
        second.start()
        deadline = time.monotonic() + WAIT
        while not _backend_waiting_on_a_lock(engine):
            assert time.monotonic() < deadline, "bob's save never waited for alice's lock"
            time.sleep(0.02)
        assert second.is_alive()  # bob waits while alice holds the lock
        release.set()
        first.join(WAIT)
        second.join(WAIT)
        assert not first.is_alive()
        assert not second.is_alive()
    finally:
        release.set()
        session_a.close()
        session_b.close()
    assert not isinstance(outcome["alice"], Exception), outcome["alice"]
    refused = outcome["bob"]
    assert isinstance(refused, StaleVersion), refused
    assert (refused.expected, refused.actual) == (v, v + 1)
    assert document(engine) == {**seen, "description": "alice"}
    (change,) = events(engine)
    assert change.actor == "alice"
    assert change.before == {"description": seen["description"]}


def test_an_import_compares_with_the_committed_rows(engine: sa.Engine) -> None:
    original = document(engine)
    with Session(engine) as session_a, Session(engine) as session_b:
        alice = PolicyStore(session_a, actor="alice")
        bob = PolicyStore(session_b, actor="bob")
        held = bob.policies()  # bob's session holds every policy as it was
        assert [p.description for p in held] == ["v1"]
        alice.update_policy("partner", {"description": "alice"})
        report = bob.import_document({"corsadmin": 1, "policies": [original]})
        assert (report.updated, report.unchanged) == (["partner"], [])
    assert document(engine) == original
    last = events(engine)[-1]
    assert last.before is not None
    assert last.before["description"] == "alice"
