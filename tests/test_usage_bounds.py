"""The usage table stays bounded whatever Origin values clients send, and one row
the database refuses never stops the others. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin
from corsadmin.db.models import OriginRuleRow, OriginUsage, utcnow
from corsadmin.policy.origins import OriginRule, parse_origin_rule
from corsadmin.runtime.usage import (
    BUCKETS,
    MAX_KEYS,
    MAX_USAGE_ORIGIN_LENGTH,
    MAX_USAGE_ORIGINS_PER_POLICY,
    NOT_AN_ORIGIN,
    OTHER_ALLOWED,
    OTHER_REFUSED,
    UsageRecorder,
    _Count,
    usage_origin,
)
from tests.support.host import close_app, host_of, make_app

POLICY = {
    "name": "api",
    "path": "/api/**",
    "origins": ["https://app.example", "https://*.partner.example"],
}
EXACT = parse_origin_rule("https://app.example")
BROAD = parse_origin_rule("https://*.partner.example")


def hit(
    recorder: UsageRecorder, origin: str, rule: OriginRule | None = None, policy: str = "api"
) -> None:
    """Count one request as the hook does (the evaluation computes usage_origin once)."""
    recorder.record(
        policy, usage_origin(origin, rule), rule.text if rule else None, rule is not None
    )


def engine_of(app: Flask) -> sa.Engine:
    host = host_of(app)
    with app.app_context():
        host.cors.store("tester", app).create_policy(POLICY)
        return host.db.engine


def rows(engine: sa.Engine, policy: str = "api") -> dict[str, tuple[int, bool, str | None]]:
    table = OriginUsage.__table__
    with engine.connect() as connection:
        return {
            origin: (int(count), allowed, rule)
            for origin, count, allowed, rule in connection.execute(
                sa.select(table.c.origin, table.c.count, table.c.allowed, table.c.rule).where(
                    table.c.policy_name == policy
                )
            )
        }


def row_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(OriginUsage)) or 0)


def junk(i: int) -> str:
    """Origin values no browser sends, 2 KB and non-ASCII ones among them."""
    kind = i % 5
    if kind == 0:
        return f"re:.*{i}"
    if kind == 1:
        return f"https://x{i}.example/path"
    if kind == 2:
        return f"https://ü{i}.example"
    if kind == 3:
        return "https://" + "a" * 2040 + str(i)
    return f"HTTPS://X{i}.EXAMPLE"


def test_junk_values_are_one_bucket_in_memory() -> None:
    recorder = UsageRecorder()
    for i in range(1_000):
        hit(recorder, junk(i))
        hit(recorder, junk(i), parse_origin_rule("*"))  # allowed by '*': still junk
    assert len(recorder) == 1
    [(key, count)] = recorder.take().items()
    assert key == ("api", NOT_AN_ORIGIN)
    assert count.count == 2_000


def test_the_request_hook_keeps_no_junk_key(app: Flask) -> None:
    engine_of(app)
    client = app.test_client()
    for i in range(50):
        client.get("/api/x", headers={"Origin": junk(i).encode("utf-8").decode("latin-1")})
    client.get("/api/x", headers={"Origin": "https://app.example"})
    usage = CorsAdmin.state(app).usage
    assert usage is not None
    counts = usage.take()
    assert counts[("api", NOT_AN_ORIGIN)].count == 50
    assert set(counts) == {("api", NOT_AN_ORIGIN), ("api", "https://app.example")}


def test_record_keeps_no_long_or_non_ascii_key_even_when_given_one() -> None:
    recorder = UsageRecorder()
    recorder.record("api", "https://" + "a" * 2040, None, False)
    recorder.record("api", "https://ü.example", None, False)
    assert list(recorder.take()) == [("api", NOT_AN_ORIGIN)]


def test_distinct_origins_beyond_the_memory_bound_are_counted_in_other() -> None:
    recorder = UsageRecorder(max_keys=3)
    for i in range(10):
        hit(recorder, f"https://o{i}.example")
    hit(recorder, "https://o0.example")  # known keys still count
    hit(recorder, "https://app.example", EXACT)  # exact rules are always kept
    hit(recorder, "https://t9.partner.example", BROAD)  # beyond the bound, allowed
    assert recorder.folded == 8
    counts = recorder.take()
    assert counts[("api", "https://o0.example")].count == 2
    assert counts[("api", OTHER_REFUSED)].count == 7
    assert counts[("api", OTHER_ALLOWED)].count == 1
    assert counts[("api", "https://app.example")].count == 1
    assert len(counts) == 6


def test_100000_distinct_junk_and_refused_origins_end_in_bounded_rows(app: Flask) -> None:
    engine = engine_of(app)
    recorder = UsageRecorder()
    total = 100_000
    for i in range(total):
        hit(recorder, junk(i) if i % 2 else f"https://r{i}.example")
        if i % 10_000 == 9_999:  # one flush interval
            assert len(recorder) <= MAX_KEYS + len(BUCKETS)
            recorder.flush(engine)
    stored = rows(engine)
    assert row_count(engine) <= MAX_USAGE_ORIGINS_PER_POLICY + len(BUCKETS)
    assert sum(count for count, _, _ in stored.values()) == total  # nothing lost
    assert stored[NOT_AN_ORIGIN] == (total // 2, False, None)
    assert stored[OTHER_REFUSED][0] == total // 2 - MAX_USAGE_ORIGINS_PER_POLICY
    assert max(len(origin) for origin in stored) <= MAX_USAGE_ORIGIN_LENGTH


def test_the_most_frequent_origins_survive_the_fold(app: Flask) -> None:
    engine = engine_of(app)
    recorder = UsageRecorder()
    hot = [f"https://hot{i}.example" for i in range(50)]
    for i in range(20):  # the oldest of the rarest: folded into "other allowed"
        hit(recorder, f"https://t{i}.partner.example", BROAD)
    for i in range(1_500):
        hit(recorder, f"https://cold{i}.example")
    for origin in hot:
        for _ in range(2):
            hit(recorder, origin)
    recorder.flush(engine)
    hit(recorder, "https://app.example", EXACT)  # rare, but an exact rule: always kept
    for i in range(1_500, 3_000):
        hit(recorder, f"https://cold{i}.example")
    for origin in hot:
        for _ in range(3):
            hit(recorder, origin)
    recorder.flush(engine)

    stored = rows(engine)
    for origin in hot:
        assert stored[origin] == (5, False, None)
    assert stored["https://app.example"] == (1, True, "https://app.example")
    foldable = [o for o, (_, allowed, rule) in stored.items() if o not in BUCKETS and rule != o]
    assert len(foldable) == MAX_USAGE_ORIGINS_PER_POLICY
    assert stored[OTHER_ALLOWED] == (20, True, None)
    kept_cold = MAX_USAGE_ORIGINS_PER_POLICY - len(hot)
    assert stored[OTHER_REFUSED] == (3_000 - kept_cold, False, None)
    assert all(f"https://cold{i}.example" in stored for i in range(3_000 - kept_cold, 3_000))
    assert sum(count for count, _, _ in stored.values()) == 20 + 3_000 + 50 * 5 + 1


def test_expired_rows_are_deleted_at_a_flush(app: Flask) -> None:
    engine = engine_of(app)
    now = utcnow()
    with engine.begin() as connection:
        for origin, days in (("https://old.example", 91), ("https://recent.example", 10)):
            connection.execute(
                sa.insert(OriginUsage.__table__).values(
                    policy_name="api",
                    origin=origin,
                    allowed=False,
                    count=3,
                    first_seen=now - timedelta(days=days + 1),
                    last_seen=now - timedelta(days=days),
                )
            )
    recorder = UsageRecorder()
    hit(recorder, "https://new.example")
    recorder.flush(engine)
    assert set(rows(engine)) == {"https://recent.example", "https://new.example"}

    short = UsageRecorder(retention_days=5)
    hit(short, "https://new.example")
    short.flush(engine)
    assert set(rows(engine)) == {"https://new.example"}


def test_retention_is_configured_per_app(database_url: str) -> None:
    app = make_app(database_url, CORSADMIN_USAGE_RETENTION_DAYS=7)
    try:
        engine = engine_of(app)
        with engine.begin() as connection:
            connection.execute(
                sa.insert(OriginUsage.__table__).values(
                    policy_name="api",
                    origin="https://week-old.example",
                    allowed=False,
                    count=1,
                    first_seen=utcnow() - timedelta(days=8),
                    last_seen=utcnow() - timedelta(days=8),
                )
            )
        app.test_client().get("/api/x", headers={"Origin": "https://app.example"})
        assert CorsAdmin.state(app).flush_usage(force=True) == 1
        assert set(rows(engine)) == {"https://app.example"}
    finally:
        close_app(app)


@pytest.mark.parametrize("value", [0, -1, "90", True, 10**9])
def test_a_bad_retention_says_which_key(tmp_path: Any, value: Any) -> None:
    with pytest.raises(ValueError, match="CORSADMIN_USAGE_RETENTION_DAYS must be"):
        make_app(f"sqlite:///{tmp_path / 'x.sqlite'}", CORSADMIN_USAGE_RETENTION_DAYS=value)


def _poison(dialect: str) -> str:
    """An origin value the database refuses: on PostgreSQL 2,048 incompressible
    non-ASCII characters (over the index row size), on SQLite a lone surrogate."""
    if dialect == "postgresql":
        rng = random.Random(7)
        return "".join(chr(rng.randrange(0x400, 0x4FF)) for _ in range(2048))
    return "https://\ud800.example"


def test_a_row_the_database_refuses_does_not_poison_the_batch(
    app: Flask, caplog: pytest.LogCaptureFixture, db: SQLAlchemy
) -> None:
    engine = engine_of(app)
    with app.app_context():
        rule_id = db.session.scalar(
            sa.select(OriginRuleRow.id).where(OriginRuleRow.origin == "https://app.example")
        )
    recorder = UsageRecorder()
    for i in range(600):  # more than one INSERT chunk
        hit(recorder, f"https://r{i}.example")
    hit(recorder, "https://app.example", EXACT)
    poison = _poison(engine.dialect.name)
    now = time.time()
    recorder._counts[("api", poison)] = _Count(None, False, 1, now, now)  # past the bucketing

    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        assert recorder.flush(engine) == 601
    stored = rows(engine)
    assert len(stored) == 601
    assert poison not in stored
    assert stored["https://app.example"] == (1, True, "https://app.example")
    assert recorder.failed_rows == 1
    assert len(recorder) == 0  # not merged back: it would fail at every flush
    assert [r.message for r in caplog.records if "usage row" in r.message] != []
    with app.app_context():
        seen = db.session.get(OriginRuleRow, rule_id)
        assert seen is not None
        assert seen.last_seen_at is not None  # "last seen" moved

    hit(recorder, "https://after.example")  # the next flush works
    assert recorder.flush(engine) == 1
    assert rows(engine)["https://after.example"] == (1, False, None)


def test_an_unreachable_database_keeps_the_counts(database_url: str) -> None:
    """No tables (as before `db upgrade`; PostgreSQL says ProgrammingError): the rows
    are not dropped as bad rows, they wait for the next flush."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        recorder = UsageRecorder()
        hit(recorder, "https://a.example")
        with pytest.raises(sa.exc.DBAPIError):
            recorder.flush(engine)
        assert recorder.failed_rows == 0
        assert recorder.take()[("api", "https://a.example")].count == 1
    finally:
        engine.dispose()


def test_last_seen_moves_for_rules_with_the_bounds(app: Flask, db: SQLAlchemy) -> None:
    engine = engine_of(app)
    recorder = UsageRecorder(max_keys=2)
    for i in range(5):
        hit(recorder, f"https://r{i}.example")
    hit(recorder, "https://app.example", EXACT)
    hit(recorder, "https://t.partner.example", BROAD)
    recorder.flush(engine)
    with app.app_context():
        seen = {r.origin: r.last_seen_at for r in db.session.scalars(sa.select(OriginRuleRow))}
    assert seen["https://app.example"] is not None
    assert seen["https://*.partner.example"] is not None  # its origin went to "other allowed"
    assert rows(engine)[OTHER_ALLOWED] == (1, True, None)
