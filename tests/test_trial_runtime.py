"""Trying the active draft on live traffic: report-only, counted, bounded.

The live response never depends on the draft; the requests a draft answers otherwise
are counted per outcome and origin and flushed into ``corsadmin_draft_traffic``;
clients cannot grow memory or the table; without a draft nothing of it runs. On
SQLite and PostgreSQL (the ``app`` fixture is parametrized).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin
from corsadmin.db.drafts import DraftStore
from corsadmin.engine.decide import decide
from corsadmin.engine.snapshot import Snapshot
from corsadmin.engine.trial import attach_trial
from corsadmin.limits import (
    MAX_TRIAL_EXAMPLE_METHOD,
    MAX_TRIAL_EXAMPLE_PATH,
    MAX_TRIAL_KEYS,
    MAX_TRIAL_ORIGINS_PER_OUTCOME,
)
from corsadmin.policy.draft import Draft, PolicyDraft
from corsadmin.policy.spec import validate_policy
from corsadmin.runtime import trial as trial_module
from corsadmin.runtime.trial import NOT_AN_ORIGIN, OTHER_ORIGINS, TrialRecorder
from corsadmin.state import CorsAdminState
from tests.support.host import host_of
from tests.support.trial import discard_draft, traffic_rows

A = "https://a.example"  # allowed live; the draft removes it
B = "https://b.example"  # allowed live and in the draft
C = "https://c.example"  # refused live; the draft adds it
PARTNER = "https://shop.partner.example"  # allowed by a '*.' rule
EVIL = "https://evil.example"  # refused by both

API: dict[str, Any] = {
    "name": "api",
    "path": "/api/**",
    "origins": [A, B, "https://*.partner.example"],
    "methods": ["GET", "POST", "PUT"],
    "allow_headers": ["Content-Type"],
    "max_age": 600,
}
WEB: dict[str, Any] = {"name": "web", "path": "/web/**", "origins": [A, B]}


#: No periodic flush takes the counts away while a test looks at them.
NO_PERIODIC_FLUSH: dict[str, Any] = {"CORSADMIN_USAGE_FLUSH_INTERVAL": 3600.0}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(NO_PERIODIC_FLUSH)


def state_of(app: Flask) -> CorsAdminState:
    return CorsAdmin.state(app)


def engine_of(app: Flask) -> sa.Engine:
    with app.app_context():
        return host_of(app).db.engine


@pytest.fixture
def drafts(app: Flask) -> Iterator[DraftStore]:
    """The live policies api and web; a DraftStore acting as 'tester'."""
    with app.app_context():
        store = CorsAdmin.state(app).store("tester")
        store.create_policy(API)
        store.create_policy(WEB)
        yield DraftStore(store)


def preflight(client: FlaskClient, path: str, origin: str, method: str = "PUT") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )


def responses(client: FlaskClient) -> list[tuple[Any, ...]]:
    """Every response of a grid of GETs and preflights, byte for byte."""
    out = []
    paths = ["/api/status", "/api/items/7", "/api/nope", "/web/page", "/elsewhere"]
    origins = [A, B, C, PARTNER, EVIL, "null", "re:.*", "https://" + "x" * 400, None]
    for path in paths:
        for origin in origins:
            headers = {} if origin is None else {"Origin": origin}
            got = client.get(path, headers=headers)
            out.append((path, origin, "GET", got.status, list(got.headers), got.get_data()))
            if origin is not None:
                for method in ("PUT", "DELETE"):
                    got = preflight(client, path, origin, method)
                    out.append((path, origin, method, got.status, list(got.headers), got.data))
    return out


def test_a_draft_refusing_everything_changes_no_live_response(
    app: Flask, drafts: DraftStore
) -> None:
    client = app.test_client()
    before = responses(client)
    assert state_of(app).holder.current().trial is None
    drafts.delete_policy("api", reason="refuse everything")
    drafts.update_policy("web", {"origins": []})
    live = state_of(app).holder.current()
    assert live.trial is not None  # the change in this process was loaded at once
    assert responses(client) == before
    assert responses(client) == before  # memoized answers on both sides
    assert state_of(app).flush_usage(force=True) > 0  # with the usage counts
    rows = traffic_rows(engine_of(app), live.trial.draft.id)
    # Twice the 3 api paths: a GET and a PUT preflight refused, a DELETE preflight
    # (refused live too) answered with other headers.
    for origin in (A, PARTNER):
        assert rows[("api", "newly-refused", origin)][0] == 2 * 3 * 2
        assert rows[("api", "headers", origin)][0] == 2 * 3
    assert ("api", "newly-refused", EVIL) not in rows
    assert rows[("web", "newly-refused", A)][0] == 2 * 3  # its default methods: all three


def test_each_outcome_is_counted_with_its_first_example(app: Flask, drafts: DraftStore) -> None:
    drafts.remove_origin("api", A)
    drafts.add_origin("api", C)
    drafts.update_policy("api", {"methods": ["GET", "POST"], "expose_headers": ["X-Total"]})
    draft = drafts.require_active()
    client = app.test_client()
    for i in range(3):
        client.get(f"/api/items/{i}", headers={"Origin": A})  # newly refused
    client.get("/api/status", headers={"Origin": C})  # newly allowed
    client.get("/api/status", headers={"Origin": B})  # same verdict, X-Total exposed
    preflight(client, "/api/items/1", B)  # PUT no longer allowed: the preflight fails
    preflight(client, "/api/items/1", B, "POST")  # still passes: other headers
    client.get("/api/status", headers={"Origin": EVIL})  # refused by both: the same answer
    client.get("/web/page", headers={"Origin": A})  # a policy the draft leaves alone
    client.get("/api/status")  # no Origin: no CORS request, not tried
    recorder = state_of(app).trial_recorder
    assert len(recorder) == 5
    assert recorder.flush(engine_of(app)) == 5
    assert len(recorder) == 0
    assert traffic_rows(engine_of(app), draft.id) == {
        ("api", "evaluated", ""): (8, "/api/items/0", "GET"),
        ("api", "newly-refused", A): (3, "/api/items/0", "GET"),
        ("api", "newly-allowed", C): (1, "/api/status", "GET"),
        ("api", "headers", B): (2, "/api/status", "GET"),
        ("api", "newly-refused", B): (1, "/api/items/1", "OPTIONS"),
    }
    client.get("/api/other", headers={"Origin": A})  # counts add up, the first example stays
    assert recorder.flush(engine_of(app)) == 2
    rows = traffic_rows(engine_of(app), draft.id)
    assert rows[("api", "newly-refused", A)] == (4, "/api/items/0", "GET")
    assert rows[("api", "evaluated", "")][0] == 9


def test_a_flood_of_origins_stays_bounded_in_memory_and_rows(
    app: Flask, drafts: DraftStore
) -> None:
    drafts.add_origin("api", "https://*.flood.example")  # every flood origin: newly allowed
    draft = drafts.require_active()
    client = app.test_client()
    recorder = state_of(app).trial_recorder
    total = 20_000
    for i in range(total):
        client.get("/api/status", headers={"Origin": f"https://o{i}.flood.example"})
    assert recorder.bounded_keys == MAX_TRIAL_KEYS
    assert len(recorder) <= MAX_TRIAL_KEYS + 2  # + evaluated, + the bucket
    assert recorder.folded == total - MAX_TRIAL_KEYS
    recorder.flush(engine_of(app))
    rows = traffic_rows(engine_of(app), draft.id)
    allowed = {origin: row for (_p, outcome, origin), row in rows.items() if outcome != "evaluated"}
    assert len(allowed) == MAX_TRIAL_ORIGINS_PER_OUTCOME + 1
    assert allowed[OTHER_ORIGINS][0] == total - MAX_TRIAL_ORIGINS_PER_OUTCOME
    assert sum(row[0] for row in allowed.values()) == total
    assert rows[("api", "evaluated", "")][0] == total


def test_values_no_browser_sends_are_never_stored() -> None:
    recorder = TrialRecorder(max_keys=2)
    for origin in ["re:.*", "", "https://ü.example", "https://" + "a" * 400]:
        recorder.record(1, "api", "newly-refused", origin, "/p", "GET")
    long_path, long_method = "/" + "p\x00" * 1000, "M" * 100
    recorder.record(1, "api", "newly-refused", A, long_path, long_method)
    recorder.record(1, "api", "newly-refused", B, "/b", "GET")
    recorder.record(1, "api", "newly-refused", C, "/c", "GET")  # beyond max_keys
    counts = recorder.take()
    assert set(counts) == {
        (1, "api", "evaluated", ""),
        (1, "api", "newly-refused", NOT_AN_ORIGIN),
        (1, "api", "newly-refused", A),
        (1, "api", "newly-refused", B),
        (1, "api", "newly-refused", OTHER_ORIGINS),
    }
    assert counts[(1, "api", "newly-refused", NOT_AN_ORIGIN)].count == 4
    example = counts[(1, "api", "newly-refused", A)]
    assert len(example.path) == MAX_TRIAL_EXAMPLE_PATH
    assert "\x00" not in example.path
    assert len(example.method) == MAX_TRIAL_EXAMPLE_METHOD


def test_no_trial_work_without_a_draft_or_off_its_policies(
    app: Flask, drafts: DraftStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[str] = []
    real = trial_module.decide

    def spy(snapshot: Snapshot, path: str, *args: Any) -> Any:
        tried.append(path)
        return real(snapshot, path, *args)

    monkeypatch.setattr(trial_module, "decide", spy)
    client = app.test_client()
    for origin in (A, EVIL):
        client.get("/api/status", headers={"Origin": origin})
        preflight(client, "/web/page", origin)
    assert state_of(app).holder.current().trial is None
    drafts.add_origin("web", C)  # a draft that leaves api alone
    assert state_of(app).holder.current().trial is not None
    for origin in (A, EVIL):
        client.get("/api/status", headers={"Origin": origin})
        client.get("/elsewhere", headers={"Origin": origin})
    assert tried == []
    assert len(state_of(app).trial_recorder) == 0
    client.get("/web/page", headers={"Origin": C})
    assert tried == ["/web/page"]


def test_counts_of_a_closed_draft_are_dropped(app: Flask, drafts: DraftStore) -> None:
    drafts.remove_origin("api", A)
    first = drafts.require_active().id
    client = app.test_client()
    client.get("/api/status", headers={"Origin": A})
    assert discard_draft(app) == first
    assert state_of(app).holder.current().trial is None
    client.get("/api/status", headers={"Origin": A})  # no draft: not tried
    drafts.remove_origin("api", B)  # a new draft
    second = drafts.require_active().id
    assert second != first
    recorder = state_of(app).trial_recorder
    assert recorder.flush(engine_of(app)) == 0  # made under a draft no longer active
    assert recorder.dropped == 2  # evaluated and newly-refused
    assert traffic_rows(engine_of(app)) == {}
    client.get("/api/status", headers={"Origin": B})
    assert recorder.flush(engine_of(app)) == 2
    assert set(traffic_rows(engine_of(app), second)) == {
        ("api", "evaluated", ""),
        ("api", "newly-refused", B),
    }
    assert traffic_rows(engine_of(app), first) == {}


@pytest.mark.parametrize("app_config", [{**NO_PERIODIC_FLUSH, "CORSADMIN_TRACK_USAGE": False}])
def test_flushed_with_usage_tracking_off(app: Flask, drafts: DraftStore) -> None:
    assert state_of(app).usage is None
    drafts.remove_origin("api", A)
    app.test_client().get("/api/status", headers={"Origin": A})
    assert state_of(app).flush_usage(force=True) == 2
    assert traffic_rows(engine_of(app))[("api", "newly-refused", A)][0] == 1


def test_a_failing_trial_never_changes_the_response(
    app: Flask, drafts: DraftStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    before = responses(client)
    drafts.remove_origin("api", A)
    live = state_of(app).holder.current()
    assert live.trial is not None
    live.trial = object()  # type: ignore[assignment]  # anything trying it raises
    with caplog.at_level(logging.ERROR, logger="corsadmin"):
        assert responses(client) == before
    failures = [r for r in caplog.records if "trying the draft" in r.getMessage()]
    assert len(failures) == 1  # logged once


def test_the_trial_refers_to_its_live_snapshot_weakly_and_survives_a_recompile() -> None:
    """No reference cycle: the live snapshot holds its trial, the trial its live snapshot
    weakly; recompiling the live snapshot (an expiry) tries the draft again with the
    draft's answers carried over."""
    api, web = validate_policy(API), validate_policy(WEB)
    draft = Draft(
        id=1,
        reason="",
        created_by="t",
        created_at=datetime.now(UTC),
        updated_by="t",
        updated_at=datetime.now(UTC),
        version=1,
        policies={"api": PolicyDraft("api", "update", 1, None, {A: None})},
    )
    live = attach_trial(Snapshot(1, [api, web]), draft)
    trial = live.trial
    assert trial is not None
    assert trial.live is live
    assert trial.snapshot.policy_named("web") is live.policy_named("web")
    assert decide(trial.snapshot, "/api/x", "GET", A).decision.allowed is False
    recompiled = live.recompiled()
    again = recompiled.trial
    assert again is not None
    assert again.live is recompiled
    assert again.snapshot.policy_named("api") is trial.snapshot.policy_named("api")
    assert again.snapshot.evaluations == trial.snapshot.evaluations
    del live, recompiled
    assert trial.live is None
    assert again.live is None
