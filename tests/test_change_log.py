"""The change log: a reload after a change reads and compiles only what changed.

Every change writes, in its own transaction, which policies (and, for an origin
add, change or removal, which rule) its revision changed; a process at revision R
re-reads only those. Runs on SQLite and PostgreSQL (the ``app``/``store``/``db``
fixtures). Each incremental snapshot is compared with a fresh full load.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.db import changelog, loader
from corsadmin.db.loader import RuleCache, load_snapshot
from corsadmin.engine.snapshot import Snapshot

FAR: str = "2099-01-01T00:00:00Z"


def policy(name: str, path: str, origins: list[Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "path": path, "origins": origins, "methods": ["GET", "PUT"], **more}


def tenants(count: int, start: int = 0) -> list[str]:
    return [f"https://shop{i}.tenant.example" for i in range(start, start + count)]


@contextmanager
def sql_log(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement this thread runs on ``engine`` meanwhile."""
    thread = threading.get_ident()
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == thread:
            statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


@contextmanager
def counted(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> Iterator[list[int]]:
    """How often ``module.name`` is called meanwhile (it still runs)."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(module, name, spy)
        yield calls


def assert_same(incremental: Snapshot, full: Snapshot) -> None:
    """The incremental snapshot is the full load's: same revision, same specs, same
    compiled rules and answers."""
    assert incremental.revision == full.revision
    assert incremental.specs == full.specs
    assert set(incremental._compiled) == set(full._compiled)
    for name, compiled in full._compiled.items():
        mine = incremental._compiled[name]
        assert mine.spec == compiled.spec
        assert mine.origins.rules == compiled.origins.rules, name
        assert mine.any_origin == compiled.any_origin
        for rule in compiled.origins.rules[:20]:
            if rule.kind == "exact":
                assert mine.origins.match(rule.text) == rule
    assert incremental.valid_until == full.valid_until
    assert len(incremental) == len(full)


def log_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text(
                    "SELECT revision, kind, policy_name, origin FROM corsadmin_change "
                    "ORDER BY revision, id"
                )
            )
        ]


# --- what the store writes -----------------------------------------------------------


def test_every_change_writes_what_its_revision_changed(store: PolicyStore, db: SQLAlchemy) -> None:
    store.create_policy(policy("shop", "/api/**", tenants(2)))
    store.add_origin("shop", "https://new.tenant.example")
    store.remove_origin("shop", "https://shop0.tenant.example")
    store.change_origin("shop", "https://shop1.tenant.example", note="vip")
    store.update_policy("shop", {"name": "store"})
    store.mark_reviewed("store")
    store.add_origin("store", "https://new.tenant.example")  # unchanged: no revision
    store.delete_policy("store")
    assert log_rows(db.engine) == [
        (1, "policy", "shop", None),
        (2, "origin", "shop", "https://new.tenant.example"),
        (3, "origin", "shop", "https://shop0.tenant.example"),
        (4, "origin", "shop", "https://shop1.tenant.example"),
        (5, "policy", "shop", None),
        (5, "policy", "store", None),
        (6, "none", None, None),
        (7, "policy", "store", None),
    ]
    assert store.revision() == 7


def test_the_log_keeps_the_last_revisions_only(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changelog, "CHANGE_LOG_REVISIONS", 3)
    store.create_policy(policy("shop", "/api/**", []))
    for origin in tenants(6):
        store.add_origin("shop", origin)
    assert [row[0] for row in log_rows(db.engine)] == [5, 6, 7]


def test_an_import_of_many_policies_is_logged_as_reload_everything(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changelog, "MAX_CHANGE_ENTRIES", 2)
    document = {
        "corsadmin": 1,
        "policies": [policy(f"p{i}", f"/p{i}/**", tenants(1, i)) for i in range(3)],
    }
    store.import_document(document)
    assert log_rows(db.engine) == [(1, "all", None, None)]
    cache = RuleCache()
    first = Snapshot.empty()
    with counted(monkeypatch, loader, "load_specs") as full_loads:
        loaded = load_snapshot(db.engine, cache, previous=first)
    assert full_loads == [1]
    assert [s.name for s in loaded.specs] == ["p0", "p1", "p2"]


# --- a reload reads only what changed -------------------------------------------------


@pytest.mark.parametrize("rules", [50, 2000])
def test_a_reload_after_one_origin_add_reads_only_that_rule(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch, rules: int
) -> None:
    store.create_policy(policy("shop", "/api/**", tenants(rules)))
    store.create_policy(policy("other", "/other/**", tenants(rules, 10_000)))
    cache = RuleCache()
    before = load_snapshot(db.engine, cache)
    store.add_origin("shop", "https://brand-new.tenant.example")
    with sql_log(db.engine) as statements, counted(monkeypatch, loader, "_entry") as rows:
        after = load_snapshot(db.engine, cache, previous=before)
    assert rows == [1]  # one origin rule row read, whatever the number of rules
    # revision, log, policy id, the rule, revision, and when that revision committed
    assert len(statements) == 6, statements
    assert all(" WHERE " in s for s in statements), statements
    assert after.revision == before.revision + 1
    assert_same(after, load_snapshot(db.engine))
    shop = after.policy_for("/api/x")
    assert shop is not None
    assert shop.origins.match("https://brand-new.tenant.example") is not None
    # The other policy was taken over as it was, memo and all.
    assert after.policy_for("/other/x") is before.policy_for("/other/x")


def test_a_reload_after_a_policy_update_reads_that_policy_only(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_policy(policy("shop", "/api/**", tenants(300)))
    store.create_policy(policy("small", "/small/**", tenants(3, 500)))
    cache = RuleCache()
    before = load_snapshot(db.engine, cache)
    store.update_policy("small", {"methods": ["GET"], "origins": tenants(3, 600)})
    with counted(monkeypatch, loader, "_entry") as rows:
        after = load_snapshot(db.engine, cache, previous=before)
    assert rows == [1] * 3
    assert_same(after, load_snapshot(db.engine))
    assert after.policy_for("/api/x") is before.policy_for("/api/x")


def test_a_reload_after_a_settings_change_reads_no_rule(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enabling, disabling or changing the methods of a policy of a million rules must
    not make every worker re-read its rules: the log says ``settings``."""
    store.create_policy(policy("shop", "/api/**", tenants(300)))
    store.create_policy(policy("small", "/small/**", tenants(3, 500)))
    cache = RuleCache()
    before = load_snapshot(db.engine, cache)
    for changes in ({"methods": ["GET"]}, {"enabled": False}, {"enabled": True}):
        store.update_policy("shop", changes)
        with (
            counted(monkeypatch, loader, "_entry") as rows,
            counted(monkeypatch, loader, "load_specs") as full_loads,
        ):
            after = load_snapshot(db.engine, cache, previous=before)
        assert rows == []
        assert full_loads == []
        assert_same(after, load_snapshot(db.engine))
        before = after
    assert latest_changes(db, 3) == [("settings", "shop")] * 3


def latest_changes(db: SQLAlchemy, count: int) -> list[tuple[str, str]]:
    """The (kind, policy) of the last ``count`` change log entries, newest first."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT kind, policy_name FROM corsadmin_change ORDER BY id DESC LIMIT :n"),
            {"n": count},
        ).all()
    return [(row.kind, row.policy_name) for row in rows]


def test_a_rename_or_settings_with_rules_reads_the_policy_whole() -> None:
    delta = changelog.Delta()
    delta.add(changelog.Change("settings", "a"))
    delta.add(changelog.Change("origin", "a", "https://x.example"))
    delta.add(changelog.Change("origin", "b", "https://x.example"))
    delta.add(changelog.Change("settings", "b"))
    delta.add(changelog.Change("settings", "c"))
    delta.add(changelog.Change("policy", "d"))
    delta.add(changelog.Change("settings", "d"))
    assert delta.policies == {"a", "b", "d"}
    assert delta.settings == {"c"}
    assert delta.origins == {}


def test_a_rename_logs_both_names_as_policies(store: PolicyStore, db: SQLAlchemy) -> None:
    store.create_policy(policy("shop", "/api/**", tenants(3)))
    cache = RuleCache()
    before = load_snapshot(db.engine, cache)
    store.update_policy("shop", {"name": "store"})
    assert sorted(latest_changes(db, 2)) == [("policy", "shop"), ("policy", "store")]
    assert_same(load_snapshot(db.engine, cache, previous=before), load_snapshot(db.engine))


def test_a_gap_in_the_log_falls_back_to_a_full_load(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_policy(policy("shop", "/api/**", tenants(5)))
    cache = RuleCache()
    before = load_snapshot(db.engine, cache)
    monkeypatch.setattr(changelog, "CHANGE_LOG_REVISIONS", 2)
    for origin in tenants(4, 100):
        store.add_origin("shop", origin)  # revisions 2-5; the log keeps 4 and 5
    with counted(monkeypatch, loader, "load_specs") as full_loads:
        after = load_snapshot(db.engine, cache, previous=before)
    assert full_loads == [1]
    assert_same(after, load_snapshot(db.engine))
    assert len(after.specs[0].origins) == 9


def test_a_change_written_without_the_log_falls_back_to_a_full_load(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release without the log (during a rolling upgrade) moves the revision only."""
    store.create_policy(policy("shop", "/api/**", tenants(5)))
    before = load_snapshot(db.engine)
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM corsadmin_origin_rule WHERE origin LIKE '%shop0.%'"))
        conn.execute(sa.text("UPDATE corsadmin_state SET revision = revision + 1"))
    with counted(monkeypatch, loader, "load_specs") as full_loads:
        after = load_snapshot(db.engine, previous=before)
    assert full_loads == [1]
    assert len(after.specs[0].origins) == 4
    # Without the log table at all (not migrated yet): a full load, no error.
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE corsadmin_change"))
        conn.execute(sa.text("DELETE FROM corsadmin_origin_rule WHERE origin LIKE '%shop1.%'"))
        conn.execute(sa.text("UPDATE corsadmin_state SET revision = revision + 1"))
    with counted(monkeypatch, loader, "load_specs") as full_loads:
        latest = load_snapshot(db.engine, previous=after)
    assert full_loads == [1]
    assert len(latest.specs[0].origins) == 3


def test_an_expired_rule_is_gone_after_an_incremental_reload(
    store: PolicyStore, db: SQLAlchemy
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    store.create_policy(
        policy(
            "shop", "/api/**", [*tenants(3), {"origin": "https://brief.example", "expires": soon}]
        )
    )
    cache = RuleCache()
    before = load_snapshot(db.engine, cache)
    assert before.valid_until < time.time() + 2
    time.sleep(1.6)
    store.add_origin("shop", "https://later.example", expires=FAR)
    after = load_snapshot(db.engine, cache, previous=before)
    assert_same(after, load_snapshot(db.engine))
    shop = after.policy_for("/api/x")
    assert shop is not None
    assert shop.origins.match("https://brief.example") is None
    assert after.valid_until == datetime(2099, 1, 1, tzinfo=UTC).timestamp()


# --- a random walk: every incremental snapshot equals a full load -----------------------


def random_step(store: PolicyStore, rng: random.Random, step: int) -> None:
    names = [p.name for p in store.policies()]
    kinds = ["add", "add", "remove", "change", "create", "update", "delete", "import", "review"]
    kind = rng.choice(kinds if names else ["create"])
    name = rng.choice(names) if names else ""
    soon = (datetime.now(UTC) + timedelta(days=rng.randint(1, 30))).isoformat()
    origins = [o.origin for p in store.policies() if p.name == name for o in p.origin_rules]
    rules = [
        "https://*.wild.example",
        "http://localhost:*",
        "re:^https://[a-z]+\\.re\\.example$",
        "null",
        "*",
    ]
    if kind == "add":
        origin = rng.choice([*tenants(1, rng.randint(0, 30)), *rules])
        store.add_origin(name, origin, expires=rng.choice([None, soon]))
    elif kind == "remove" and origins:
        store.remove_origin(name, rng.choice(origins))
    elif kind == "change" and origins:
        store.change_origin(name, rng.choice(origins), note=f"note {step}")
    elif kind == "create":
        new = f"p{step}"
        store.create_policy(policy(new, f"/{new}/**", tenants(rng.randint(0, 5), step)))
    elif kind == "update":
        changes = rng.choice(
            [
                {"methods": rng.sample(["GET", "PUT", "POST"], 2)},
                {"name": f"{name}-r{step}"},
                {"enabled": not store.spec(name).enabled},
                {"credentials": True, "origins": tenants(2, step)},
                {"path": f"/moved{step}/**"},
            ]
        )
        store.update_policy(name, changes)
    elif kind == "delete":
        store.delete_policy(name)
    elif kind == "import":
        kept = [store.spec(n).to_document() for n in names if rng.random() < 0.7]
        kept.append(policy(f"i{step}", f"/i{step}/**", tenants(3, step)))
        store.import_document({"corsadmin": 1, "policies": kept}, replace=True)
    elif kind == "review":
        store.mark_reviewed(name)


def test_a_random_walk_of_changes_loads_as_a_full_load_does(
    store: PolicyStore, db: SQLAlchemy, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.on_commit = None  # this process's holder would load too: count these loads only
    rng = random.Random(9)
    cache = RuleCache()
    snapshot = load_snapshot(db.engine, cache)
    with counted(monkeypatch, loader, "load_specs") as full_loads:
        for step in range(60):
            for _ in range(rng.choice([1, 1, 1, 2, 3])):  # sometimes several revisions behind
                random_step(store, rng, step)
            snapshot = load_snapshot(db.engine, cache, previous=snapshot)
            assert_same(snapshot, load_snapshot(db.engine))
    assert len(full_loads) == 60  # the comparison loads only: every reload was incremental
    assert store.revision() > 60


# --- steady state ----------------------------------------------------------------------


def test_steady_state_costs_one_revision_poll_per_interval(
    app: Flask, client: FlaskClient, cors: CorsAdmin, db: SQLAlchemy
) -> None:
    """No change: the refresh thread reads the revision every interval (0.2 s) and
    nothing else, even when a rule expires meanwhile."""
    soon = (datetime.now(UTC) + timedelta(seconds=1.2)).isoformat()
    with app.app_context():
        cors.store("tester", app).create_policy(
            policy(
                "shop",
                "/api/**",
                [*tenants(3), {"origin": "https://brief.example", "expires": soon}],
            )
        )
        engine = db.engine
    origin = "https://shop1.tenant.example"
    assert (
        client.get("/api/status", headers={"Origin": origin}).headers.get(
            "Access-Control-Allow-Origin"
        )
        == origin
    )  # loaded, the thread started
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            client.get("/api/status", headers={"Origin": origin})
            time.sleep(0.05)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    polls = [s for s in statements if s.startswith("SELECT corsadmin_state.revision")]
    # The fleet view (every CORSADMIN_FLEET_HEARTBEAT, 5 s): at most one report in 2 s,
    # the first after the thread started: an UPDATE of this process's row, an INSERT
    # when there was none, the DELETE of rows expired long ago.
    reports = [s for s in statements if "corsadmin_worker" in s]
    assert len(reports) <= 3, reports
    assert all(
        s.startswith(
            (
                "UPDATE corsadmin_worker",
                "INSERT INTO corsadmin_worker",
                "DELETE FROM corsadmin_worker",
            )
        )
        for s in reports
    )
    others = [s for s in statements if s not in polls and s not in reports]
    assert others == [], set(others)
    assert 5 <= len(polls) <= 12  # one per 0.2 s interval
    assert (
        client.get("/api/status", headers={"Origin": "https://brief.example"}).headers.get(
            "Access-Control-Allow-Origin"
        )
        is None
    )  # the rule expired without a load


def test_an_expired_rule_recompiles_its_policy_only(store: PolicyStore, db: SQLAlchemy) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    store.create_policy(
        policy(
            "brief",
            "/api/**",
            [
                *tenants(3),
                "https://*.wild.example",
                {"origin": "https://brief.example", "expires": soon},
            ],
        )
    )
    store.create_policy(policy("other", "/other/**", tenants(3, 100)))
    before = load_snapshot(db.engine)
    time.sleep(1.1)
    after = before.recompiled()
    assert after.policy_for("/other/x") is before.policy_for("/other/x")
    brief = after.policy_for("/api/x")
    assert brief is not None
    assert brief is not before.policy_for("/api/x")
    assert brief.origins.match("https://brief.example") is None
    old_brief = before.policy_for("/api/x")
    assert old_brief is not None
    # The expired rule was taken out; the other rules were not compiled again.
    assert brief.origins._subdomain is old_brief.origins._subdomain
    assert_same(after, load_snapshot(db.engine))


def test_the_admin_check_page_reads_only_what_changed(
    app: Flask, cors: CorsAdmin, db: SQLAlchemy
) -> None:
    from tests.support.admin import PREFIX, logged_in_client

    with app.app_context():
        cors.store("tester", app).create_policy(policy("shop", "/api/**", tenants(50)))
        engine = db.engine
    client = logged_in_client(app)
    url = f"{PREFIX}/check?origin=https://shop3.tenant.example&path=/api/x"
    assert "allowed" in client.get(url).text.lower()
    with app.app_context():
        cors.store("tester", app).add_origin("shop", "https://late.tenant.example")
    with sql_log(engine) as statements:
        page = client.get(url.replace("shop3", "late"))
    assert page.status_code == 200
    rule_reads = [s for s in statements if "FROM corsadmin_origin_rule" in s]
    assert all(" WHERE " in s for s in rule_reads), rule_reads
    assert "https://late.tenant.example" in page.text
