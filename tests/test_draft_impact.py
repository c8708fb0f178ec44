"""What a draft would do: from history (the usage table replayed against it) and from
live traffic (``corsadmin_draft_traffic``), through ``corsadmin.db.impact``.

Runs on SQLite and on PostgreSQL (the ``store`` fixture is parametrized). Usage is
counted by the real usage recorder and flushed to the table; traffic rows are written
as the runtime's writer writes them.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

from corsadmin import PolicyStore
from corsadmin.db import impact as db_impact
from corsadmin.db.drafts import DraftStore, read_draft
from corsadmin.db.impact import (
    draft_report,
    history_impact,
    live_specs,
    relevant_specs,
    traffic_report,
)
from corsadmin.db.loader import load_snapshot
from corsadmin.engine.counting import NOT_AN_ORIGIN
from corsadmin.engine.impact import (
    EVALUATED,
    HEADERS,
    NEWLY_ALLOWED,
    NEWLY_REFUSED,
    Beyond,
    Impact,
    is_bucket,
)
from corsadmin.errors import NoActiveDraft
from corsadmin.policy.draft import Draft
from corsadmin.runtime.usage import OTHER_ALLOWED, OTHER_REFUSED, UsageRecorder
from tests.support.impact import add_traffic, allowed_by_itself, count_usage

A, B, C = "https://a.example", "https://b.example", "https://c.example"
PARTNER = "https://app.partner.example"

API: dict[str, Any] = {"name": "api", "path": "/api/**", "origins": [A, B, PARTNER]}
WEB: dict[str, Any] = {"name": "web", "path": "/web/**", "origins": [A, "https://*.w.example"]}


@pytest.fixture
def drafts(store: PolicyStore) -> DraftStore:
    store.create_policy(API)
    store.create_policy(WEB)
    return DraftStore(store)


@pytest.fixture
def engine(db: SQLAlchemy, store: PolicyStore) -> sa.Engine:
    return db.engine


def active(store: PolicyStore) -> Draft:
    draft = read_draft(store.session)
    assert draft is not None
    # End the read, as a request does: under MariaDB's REPEATABLE READ the session would
    # go on reading this moment's snapshot, not the traffic rows written after it.
    store.session.rollback()
    return draft


def impact_of(store: PolicyStore, **kwargs: Any) -> Impact:
    return history_impact(store.session, active(store), **kwargs)


def origins(seen: tuple[Any, ...]) -> list[tuple[str, str, int]]:
    return [(s.policy, s.origin, s.count) for s in seen]


# --- From history -----------------------------------------------------------------------


def test_a_removed_origin_would_have_been_refused_with_its_count(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    allowed_by_itself(engine, "api", PARTNER, 412)
    allowed_by_itself(engine, "api", A, 7)
    count_usage(engine, "api", C, 3)  # refused, and still refused
    drafts.remove_origin("api", PARTNER, reason="partner leaves")
    impact = impact_of(store)
    assert origins(impact.newly_refused) == [("api", PARTNER, 412)]
    refused = impact.newly_refused[0]
    assert refused.live_rule == PARTNER
    assert refused.draft_rule is None
    assert refused.first_seen <= refused.last_seen
    assert impact.newly_allowed == ()
    assert impact.policies == ("api",)
    # Read: the refused origin, and the one exact rule the draft names (not A's row).
    assert impact.seen == 2
    assert impact.unlisted == ()
    assert impact.unread == {}
    assert not impact.beyond[NEWLY_REFUSED]


def test_an_added_origin_seen_refused_would_have_been_allowed(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    count_usage(engine, "api", C, 30)
    count_usage(engine, "web", "https://x.partner.example", 5)
    count_usage(engine, "web", "https://y.partner.example", 9)
    count_usage(engine, "web", "https://evil.example", 50)
    drafts.add_origin("api", C)
    drafts.add_origin("web", "https://*.partner.example")
    impact = impact_of(store)
    assert origins(impact.newly_allowed) == [
        ("api", C, 30),
        ("web", "https://y.partner.example", 9),
        ("web", "https://x.partner.example", 5),
    ]
    assert [s.draft_rule for s in impact.newly_allowed] == [
        C,
        "https://*.partner.example",
        "https://*.partner.example",
    ]
    assert impact.newly_refused == ()
    assert impact.policies == ("api", "web")


def test_a_removed_broad_rule_refuses_the_origins_it_allowed(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    rule = "https://*.w.example"
    count_usage(engine, "web", "https://one.w.example", 11, rule=rule, allowed=True)
    count_usage(engine, "web", "https://two.w.example", 4, rule=rule, allowed=True)
    allowed_by_itself(engine, "web", A, 100)  # its own rule stays
    drafts.remove_origin("web", rule)
    impact = impact_of(store)
    assert origins(impact.newly_refused) == [
        ("web", "https://one.w.example", 11),
        ("web", "https://two.w.example", 4),
    ]
    assert {s.live_rule for s in impact.newly_refused} == {rule}


def test_a_deleted_policy_refuses_every_origin_it_allowed(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    allowed_by_itself(engine, "api", A, 20)
    allowed_by_itself(engine, "api", B, 10)
    count_usage(engine, "api", C, 99)  # refused already: nothing changes for it
    allowed_by_itself(engine, "web", A, 1000)  # another policy, untouched
    drafts.delete_policy("api")
    impact = impact_of(store)
    assert origins(impact.newly_refused) == [("api", A, 20), ("api", B, 10)]
    assert impact.newly_allowed == ()
    assert impact.policies == ("api",)


def test_a_disabled_policy_too(store: PolicyStore, drafts: DraftStore, engine: sa.Engine) -> None:
    allowed_by_itself(engine, "api", B, 2)
    drafts.update_policy("api", {"enabled": False})
    assert origins(impact_of(store).newly_refused) == [("api", B, 2)]


def test_a_new_policy_has_no_history(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    # Rows left by an earlier policy of that name are not the new one's history.
    count_usage(engine, "fresh", C, 8)
    drafts.create_policy({"name": "fresh", "path": "/fresh/**", "origins": [C]})
    impact = impact_of(store)
    assert impact.newly_allowed == ()
    assert impact.seen == 0
    assert impact.policies == ("fresh",)


def test_bucket_rows_are_reported_not_replayed(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    count_usage(engine, "api", NOT_AN_ORIGIN, 6)
    count_usage(engine, "api", OTHER_REFUSED, 40)
    count_usage(engine, "api", OTHER_ALLOWED, 12, allowed=True)
    count_usage(engine, "api", C, 1)
    drafts.add_origin("api", "*")  # allows any origin: a bucket's would be too
    impact = impact_of(store)
    assert origins(impact.newly_allowed) == [("api", C, 1)]
    assert origins(impact.unlisted) == [
        ("api", OTHER_REFUSED, 40),
        ("api", OTHER_ALLOWED, 12),
        ("api", NOT_AN_ORIGIN, 6),
    ]
    assert all(is_bucket(s.origin) for s in impact.unlisted)
    assert not is_bucket("null")


def test_folded_usage_stays_in_its_bucket(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    recorder = UsageRecorder(max_origins_per_policy=2)
    for i, times in enumerate((5, 4, 3, 2)):
        for _ in range(times):
            recorder.record("api", f"https://o{i}.example", None, False)
    recorder.flush(engine)
    drafts.add_origin("api", "https://o3.example")  # folded into "other refused origins"
    drafts.add_origin("api", "https://o0.example")
    impact = impact_of(store)
    assert origins(impact.newly_allowed) == [("api", "https://o0.example", 5)]
    assert origins(impact.unlisted) == [("api", OTHER_REFUSED, 5)]


def test_the_listing_is_bounded_and_says_how_much_more(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    for i, times in enumerate((9, 7, 5, 3)):
        count_usage(engine, "api", f"https://r{i}.r.example", times)
    drafts.add_origin("api", "https://*.r.example")
    impact = impact_of(store, limit=2)
    assert origins(impact.newly_allowed) == [
        ("api", "https://r0.r.example", 9),
        ("api", "https://r1.r.example", 7),
    ]
    assert impact.beyond[NEWLY_ALLOWED] == Beyond(2, 8)
    assert impact.seen == 4


def test_rows_read_per_policy_are_bounded(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_impact, "MAX_IMPACT_ROWS_PER_POLICY", 2)
    for origin, times in ((A, 8), (B, 6), (PARTNER, 1)):
        allowed_by_itself(engine, "api", origin, times)
    drafts.delete_policy("api")
    impact = impact_of(store)
    assert origins(impact.newly_refused) == [("api", A, 8), ("api", B, 6)]
    assert impact.unread == {"api": Beyond(1, 1)}


def test_live_given_as_snapshot_or_specs_answers_the_same(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    allowed_by_itself(engine, "api", PARTNER, 3)
    count_usage(engine, "api", C, 2)
    drafts.remove_origin("api", PARTNER)
    drafts.add_origin("api", C)
    from_db = impact_of(store)
    from_snapshot = impact_of(store, live=load_snapshot(engine))
    from_specs = impact_of(store, live=live_specs(store.session, ["api", "web"]))
    assert from_db == from_snapshot == from_specs
    assert origins(from_db.newly_refused) == [("api", PARTNER, 3)]
    assert origins(from_db.newly_allowed) == [("api", C, 2)]


def test_no_draft_is_a_clear_error(store: PolicyStore) -> None:
    with pytest.raises(NoActiveDraft):
        draft_report(store.session)


# --- From live traffic ------------------------------------------------------------------


def test_traffic_report_orders_and_totals(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    drafts.remove_origin("api", PARTNER)
    draft = active(store)
    add_traffic(engine, draft.id, "api", EVALUATED, "", 1234, path="", method="")
    add_traffic(engine, draft.id, "api", HEADERS, A, 4)
    add_traffic(engine, draft.id, "api", NEWLY_REFUSED, PARTNER, 41, path="/api/orders")
    add_traffic(engine, draft.id, "api", NEWLY_REFUSED, B, 77, method="POST")
    add_traffic(engine, draft.id, "api", NEWLY_ALLOWED, C, 2)
    add_traffic(engine, draft.id, "web", EVALUATED, "", 10, path="", method="")
    report = traffic_report(store.session, draft.id)
    assert report.evaluated == {"api": 1234, "web": 10}
    assert [(r.policy, r.outcome, r.origin, r.count) for r in report.rows] == [
        ("api", NEWLY_REFUSED, B, 77),
        ("api", NEWLY_REFUSED, PARTNER, 41),
        ("api", NEWLY_ALLOWED, C, 2),
        ("api", HEADERS, A, 4),
    ]
    partner = report.rows[1]
    assert (partner.example_method, partner.example_path) == ("GET", "/api/orders")
    assert report.answered_otherwise("api") == 77 + 41 + 2 + 4
    assert report.answered_otherwise("web") == 0
    assert report.policies == ("api", "web")
    assert not report.beyond("api", NEWLY_REFUSED)


def test_traffic_rows_are_bounded_per_policy_and_outcome(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    drafts.remove_origin("api", PARTNER)
    draft = active(store)
    for i in range(5):
        add_traffic(engine, draft.id, "api", NEWLY_REFUSED, f"https://r{i}.example", 10 + i)
        add_traffic(engine, draft.id, "api", NEWLY_ALLOWED, f"https://n{i}.example", 1)
    report = traffic_report(store.session, draft.id, limit=2)
    refused = report.rows_of("api", NEWLY_REFUSED)
    assert [(r.origin, r.count) for r in refused] == [
        ("https://r4.example", 14),
        ("https://r3.example", 13),
    ]
    assert len(report.rows_of("api", NEWLY_ALLOWED)) == 2
    assert report.beyond("api", NEWLY_REFUSED) == Beyond(3, 10 + 11 + 12)
    assert report.beyond("api", NEWLY_ALLOWED) == Beyond(3, 3)
    assert report.answered_otherwise("api") == sum(range(10, 15)) + 5


def test_traffic_of_another_draft_is_not_reported(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    drafts.remove_origin("api", PARTNER)
    draft = active(store)
    add_traffic(engine, draft.id, "api", NEWLY_REFUSED, PARTNER, 5)
    report = traffic_report(store.session, draft.id + 1)
    assert report.empty
    assert report.rows == ()
    assert report.evaluated == {}


def test_draft_report_bundles_both(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    allowed_by_itself(engine, "api", PARTNER, 3)
    drafts.remove_origin("api", PARTNER, reason="partner leaves")
    draft = active(store)
    add_traffic(engine, draft.id, "api", NEWLY_REFUSED, PARTNER, 5)
    report = draft_report(store.session)
    assert report.draft == draft
    assert origins(report.history.newly_refused) == [("api", PARTNER, 3)]
    document = report.as_document()
    assert list(document) == ["draft", "history", "traffic"]
    assert document["draft"]["reason"] == "partner leaves"
    assert document["draft"]["policies"] == {"api": "update"}
    assert document["history"]["newly_refused"][0]["origin"] == PARTNER
    assert document["traffic"]["rows"][0]["count"] == 5


def test_an_origin_another_rule_allows_is_not_refused(
    store: PolicyStore, drafts: DraftStore, engine: sa.Engine
) -> None:
    store.allow_origin("web", "https://one.w.example")
    allowed_by_itself(engine, "web", "https://one.w.example", 5)
    drafts.remove_origin("web", "https://one.w.example")  # https://*.w.example stays
    impact = impact_of(store)
    assert impact.newly_refused == ()
    assert impact.seen == 1


def test_only_the_rules_that_can_allow_the_origins_seen_are_read(
    store: PolicyStore, drafts: DraftStore
) -> None:
    for i in range(20):
        store.allow_origin("web", f"https://n{i}.example")
    drafts.remove_origin("web", A)
    specs = relevant_specs(store.session, active(store), {"web": {"https://n3.example", C}})
    assert list(specs) == ["web"]
    assert list(specs["web"].origins.texts()) == ["https://*.w.example", "https://n3.example"]
    assert specs["web"].path == store.spec("web").path
