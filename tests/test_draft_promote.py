"""Promoting and discarding the draft: one transaction, audit events, conflicts refused.

Runs on SQLite and on PostgreSQL (the ``store`` fixture is parametrized).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from corsadmin import PolicyStore
from corsadmin.db.drafts import DraftStore, read_draft
from corsadmin.db.models import (
    AuditEvent,
    ChangeLogEntry,
    DraftRow,
    DraftTrafficRow,
    OriginRuleRow,
    Policy,
)
from corsadmin.db.promote import MAX_PROMOTION_TRAFFIC_ORIGINS, live_policies
from corsadmin.errors import DraftConflict, NoActiveDraft, StaleDraft, ValidationError

API: dict[str, Any] = {
    "name": "api",
    "path": "/api/**",
    "origins": ["https://a.example", "https://b.example"],
    "methods": ["GET", "POST"],
}
OTHER: dict[str, Any] = {"name": "other", "path": "/other/**", "origins": ["https://o.example"]}


@pytest.fixture
def drafts(store: PolicyStore) -> DraftStore:
    store.create_policy(API)
    store.create_policy(OTHER)
    return DraftStore(store)


def rules(store: PolicyStore, policy: str) -> dict[str, str]:
    query = (
        sa.select(OriginRuleRow.origin, OriginRuleRow.note)
        .join(Policy, Policy.id == OriginRuleRow.policy_id)
        .where(Policy.name == policy)
    )
    return {row.origin: row.note for row in store.session.execute(query)}


def events(store: PolicyStore) -> list[AuditEvent]:
    return list(store.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)))


def test_promote_writes_what_the_draft_names(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.remove_origin("api", "https://a.example", reason="a leaves")
    drafts.add_origin("api", "https://c.example", note="partner C")
    drafts.update_policy("other", {"methods": ["GET"]})
    drafts.create_policy({"name": "new", "path": "/new/**", "origins": ["https://n.example"]})
    before = len(events(store))

    promotion = drafts.promote()

    assert promotion.policies == ("api", "new", "other")
    assert rules(store, "api") == {"https://b.example": "", "https://c.example": "partner C"}
    assert store.spec("other").methods == ("GET",)
    assert rules(store, "new") == {"https://n.example": ""}
    assert read_draft(store.session) is None
    added = events(store)[before:]
    assert [e.action for e in added] == [
        "policy.update",
        "policy.create",
        "policy.update",
        "draft.promote",
    ]
    assert all(e.revision == promotion.revision for e in added)
    assert added[0].summary.startswith(f"draft {promotion.draft_id} promoted: updated api")
    assert added[0].after == {"origins": [{"note": "partner C", "origin": "https://c.example"}]}
    assert added[0].before == {"origins": ["https://a.example"]}
    final = added[-1]
    assert final.actor == "tester"
    assert final.after is not None
    assert final.after["reason"] == "a leaves"
    assert [d["name"] for d in final.after["diff"]] == ["api", "new", "other"]
    assert final.after["diff"][0]["origins"]["removed"] == ["https://a.example"]


def test_promote_closes_the_draft_and_logs_a_draft_change(
    store: PolicyStore, drafts: DraftStore
) -> None:
    drafts.add_origin("api", "https://c.example")
    draft_id = drafts.require_active().id
    promotion = drafts.promote()
    row = store.session.get(DraftRow, draft_id)
    assert row is not None
    assert row.status == "promoted"
    assert row.closed_by == "tester"
    assert row.promoted_revision == promotion.revision
    kinds = {
        (e.kind, e.policy_name, e.origin)
        for e in store.session.scalars(
            sa.select(ChangeLogEntry).where(ChangeLogEntry.revision == promotion.revision)
        )
    }
    assert kinds == {("draft", None, None), ("origin", "api", "https://c.example")}
    with pytest.raises(NoActiveDraft):
        drafts.promote()


def test_promote_deletes_a_policy(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.delete_policy("other")
    drafts.promote()
    assert [p.name for p in store.policies()] == ["api"]
    deleted = [e for e in events(store) if e.action == "policy.delete"]
    assert deleted[-1].before is not None
    assert deleted[-1].before["origins"] == ["https://o.example"]


def test_a_live_change_since_the_draft_refuses_promotion(
    store: PolicyStore, drafts: DraftStore
) -> None:
    drafts.add_origin("api", "https://c.example")
    drafts.add_origin("other", "https://p.example")
    store.add_origin("api", "https://z.example")  # a live change after the draft's
    revision = store.revision()
    with pytest.raises(DraftConflict) as caught:
        drafts.promote()
    message = str(caught.value)
    assert "policy 'api' changed since the draft was made" in message
    assert "origin.add by tester" in message
    assert "allowed origin https://z.example on api" in message
    assert store.revision() == revision
    assert "https://p.example" not in rules(store, "other")
    assert read_draft(store.session) is not None


def test_a_policy_created_live_since_the_draft_refuses_promotion(
    store: PolicyStore, drafts: DraftStore
) -> None:
    drafts.create_policy({"name": "new", "path": "/new/**", "origins": []})
    store.create_policy({"name": "new", "path": "/elsewhere/**", "origins": []})
    with pytest.raises(DraftConflict, match="policy 'new' changed since"):
        drafts.promote()


def test_a_stale_draft_version_is_refused(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.add_origin("api", "https://c.example")
    seen = drafts.require_active().version
    drafts.add_origin("api", "https://d.example")
    with pytest.raises(StaleDraft, match="changed since you read it"):
        drafts.promote(expected_version=seen)
    with pytest.raises(StaleDraft):
        drafts.discard(expected_version=seen)
    drafts.promote(expected_version=seen + 1)
    assert set(rules(store, "api")) >= {"https://c.example", "https://d.example"}


def test_a_path_taken_live_since_refuses_promotion_naming_the_field(
    store: PolicyStore, drafts: DraftStore
) -> None:
    drafts.create_policy({"name": "new", "path": "/new/**", "origins": []})
    store.create_policy({"name": "third", "path": "/new/**", "origins": []})
    with pytest.raises(ValidationError, match="path"):
        drafts.promote()
    assert read_draft(store.session) is not None


def test_discard_leaves_live_untouched(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.remove_origin("api", "https://a.example", reason="try it")
    document = store.export_document()
    draft_id = drafts.discard()
    assert store.export_document() == document
    assert read_draft(store.session) is None
    row = store.session.get(DraftRow, draft_id)
    assert row is not None
    assert row.status == "discarded"
    last = events(store)[-1]
    assert last.action == "draft.discard"
    assert last.summary == f"discarded draft {draft_id} (try it)"
    with pytest.raises(NoActiveDraft):
        drafts.discard()


def test_the_traffic_report_goes_into_the_event_and_its_rows_go(
    store: PolicyStore, drafts: DraftStore
) -> None:
    drafts.remove_origin("api", "https://a.example")
    draft_id = drafts.require_active().id
    now = datetime.now(UTC)
    rows = [
        DraftTrafficRow(
            draft_id=draft_id,
            policy_name="api",
            outcome="newly-refused",
            origin=f"https://{i}.a.example",
            count=100 - i,
            first_seen=now,
            last_seen=now,
        )
        for i in range(MAX_PROMOTION_TRAFFIC_ORIGINS + 5)
    ]
    rows.append(
        DraftTrafficRow(
            draft_id=draft_id, policy_name="api", outcome="evaluated", origin="", count=900
        )
    )
    store.session.add_all(rows)
    store.session.commit()
    drafts.promote()
    after = events(store)[-1].after
    assert after is not None
    api = after["traffic"]["api"]
    assert api["evaluated"] == 900
    assert len(api["newly-refused"]["origins"]) == MAX_PROMOTION_TRAFFIC_ORIGINS
    assert api["newly-refused"]["origins"]["https://0.a.example"] == 100
    assert api["newly-refused"]["requests"] == sum(100 - i for i in range(len(rows) - 1))
    left = store.session.scalar(sa.select(sa.func.count()).select_from(DraftTrafficRow))
    assert left == 0


def test_live_policies_reads_only_the_named_rules(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.add_origin("api", "https://c.example")
    drafts.delete_policy("other")
    draft = drafts.require_active()
    live = live_policies(store.session, draft)
    assert [e.rule.text for e in live["api"].origins] == []
    assert [e.rule.text for e in live["other"].origins] == ["https://o.example"]
