"""Usage is counted in memory and written in batches; counts add up across processes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin
from corsadmin.db.models import OriginRuleRow, OriginUsage
from corsadmin.runtime.usage import OTHER_REFUSED, UsageRecorder
from tests.support.host import host_of

POLICY = {"name": "api", "path": "/api/**", "origins": ["https://app.example"]}


def usage_rows(app: Flask) -> dict[str, tuple[int, bool, str | None]]:
    with app.app_context():
        return {
            u.origin: (u.count, u.allowed, u.rule)
            for u in host_of(app).db.session.scalars(sa.select(OriginUsage))
        }


def test_requests_are_counted_without_writes_then_flushed_once(
    app: Flask, cors: CorsAdmin, db: SQLAlchemy
) -> None:
    with app.app_context():
        cors.store("tester", app).create_policy(POLICY)
        engine = db.engine
    client = app.test_client()
    client.get("/api/status", headers={"Origin": "https://app.example"})  # loads the snapshot
    writes: list[str] = []
    main = threading.get_ident()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == main:
            writes.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(9):
            client.get("/api/status", headers={"Origin": "https://app.example"})
        for _ in range(4):
            client.get("/api/status", headers={"Origin": "https://evil.example"})
        client.get("/api/status")  # no Origin: not counted
        client.get("/elsewhere", headers={"Origin": "https://evil.example"})  # not covered
        assert writes == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    state = CorsAdmin.state(app)
    assert state.flush_usage(force=True) == 2
    assert usage_rows(app) == {
        "https://app.example": (10, True, "https://app.example"),
        "https://evil.example": (4, False, None),
    }
    with app.app_context():
        rule = db.session.scalar(sa.select(OriginRuleRow))
        assert rule is not None
        assert rule.last_seen_at is not None


def test_counts_from_several_processes_add_up(app: Flask, cors: CorsAdmin, db: SQLAlchemy) -> None:
    with app.app_context():
        cors.store("tester", app).create_policy(POLICY)
        engine = db.engine
    first, second = UsageRecorder(), UsageRecorder()
    for _ in range(3):
        first.record("api", "https://evil.example", None, False)
    second.record("api", "https://evil.example", None, False)
    first.flush(engine)
    second.flush(engine)
    assert first.flush(engine) == 0  # nothing new
    assert usage_rows(app)["https://evil.example"] == (4, False, None)


def test_distinct_origins_are_bounded() -> None:
    recorder = UsageRecorder(max_keys=3)
    for i in range(10):
        recorder.record("api", f"https://o{i}.example", None, False)
    recorder.record("api", "https://o0.example", None, False)  # known keys still count
    assert len(recorder) == 4  # and one "other refused origins" bucket
    assert recorder.folded == 7
    counts = recorder.take()
    assert counts[("api", "https://o0.example")].count == 2
    assert counts[("api", OTHER_REFUSED)].count == 7


def test_a_failed_flush_keeps_the_counts(tmp_path: Any) -> None:
    recorder = UsageRecorder()
    recorder.record("api", "https://a.example", None, False)
    broken = sa.create_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite'}")
    with pytest.raises(sa.exc.OperationalError):
        recorder.flush(broken)
    recorder.record("api", "https://a.example", None, False)
    assert recorder.take()[("api", "https://a.example")].count == 2
