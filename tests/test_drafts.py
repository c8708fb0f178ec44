"""Drafts: saving proposed changes, read back as a Draft; the live policies untouched.

Runs on SQLite and on PostgreSQL (the ``store`` fixture is parametrized).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from corsadmin import PolicyStore, StaleVersion, ValidationError
from corsadmin.db.drafts import DraftStore, read_draft
from corsadmin.db.models import AuditEvent, ChangeLogEntry, DraftOriginRow, OriginRuleRow
from corsadmin.engine.snapshot import Snapshot, decide_origin
from corsadmin.engine.trial import build_trial
from corsadmin.errors import OriginRuleNotFound, PolicyNotFound
from corsadmin.policy.diff import diff_draft, format_diff
from corsadmin.policy.document import canonical
from corsadmin.policy.spec import PolicySpec, validate_policy

API: dict[str, Any] = {
    "name": "api",
    "path": "/api/**",
    "origins": ["https://a.example", "https://b.example"],
    "methods": ["GET", "POST"],
}


def live_state(store: PolicyStore) -> tuple[Any, ...]:
    """What the live policies are: their documents and rule rows."""
    rules = store.session.execute(
        sa.select(OriginRuleRow.origin, OriginRuleRow.note).order_by(OriginRuleRow.origin)
    ).all()
    return (store.export_document(), [tuple(r) for r in rules])


@pytest.fixture
def drafts(store: PolicyStore) -> DraftStore:
    store.create_policy(API)
    return DraftStore(store)


def test_saving_writes_only_the_draft(store: PolicyStore, drafts: DraftStore) -> None:
    before = live_state(store)
    revision = store.revision()
    drafts.remove_origin("api", "https://a.example", reason="a.example leaves")
    drafts.add_origin("api", "https://c.example", note="partner C")
    drafts.update_policy("api", {"methods": ["GET"]})
    assert live_state(store) == before
    assert store.revision() == revision + 3
    draft = read_draft(store.session)
    assert draft is not None
    assert draft.reason == "a.example leaves"
    assert draft.created_by == "tester"
    assert draft.version == 3
    change = draft.policies["api"]
    assert change.action == "update"
    assert set(change.origins) == {"https://a.example", "https://c.example"}
    live = store.spec("api")
    proposed = change.proposed(live)
    assert proposed is not None
    assert list(proposed.origins.texts()) == ["https://b.example", "https://c.example"]
    assert proposed.methods == ("GET",)
    kinds = store.session.scalars(
        sa.select(ChangeLogEntry.kind).where(ChangeLogEntry.revision > revision)
    ).all()
    assert set(kinds) == {"draft"}
    actions = store.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.revision > revision)
    ).all()
    assert actions == ["draft.save"] * 3


def test_a_change_undone_leaves_the_draft(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.add_origin("api", "https://c.example")
    drafts.remove_origin("api", "https://c.example")
    draft = read_draft(store.session)
    assert draft is not None
    assert draft.policies == {}
    drafts.update_policy("api", {"methods": ["GET"]})
    drafts.update_policy("api", {"methods": ["GET", "POST"]})
    draft = read_draft(store.session)
    assert draft is not None
    assert draft.policies == {}


def test_new_and_deleted_policies(store: PolicyStore, drafts: DraftStore) -> None:
    drafts.create_policy({"name": "web", "path": "/web/**", "origins": ["https://w.example"]})
    drafts.add_origin("web", "https://x.example")
    drafts.remove_origin("web", "https://w.example")
    drafts.delete_policy("api")
    draft = read_draft(store.session)
    assert draft is not None
    assert draft.policies["web"].action == "create"
    proposed = draft.proposed({"api": store.spec("api")})
    assert proposed["api"] is None
    web = proposed["web"]
    assert web is not None
    assert list(web.origins.texts()) == ["https://x.example"]
    with pytest.raises(ValidationError, match="exists already"):
        drafts.create_policy({"name": "api", "path": "/other/**", "origins": []})
    with pytest.raises(PolicyNotFound):
        drafts.add_origin("api", "https://z.example")  # the draft deletes it


def test_bad_input_is_refused_and_nothing_written(store: PolicyStore, drafts: DraftStore) -> None:
    revision = store.revision()
    with pytest.raises(ValidationError, match="origin"):
        drafts.add_origin("api", "https://a.example/path")
    with pytest.raises(OriginRuleNotFound):
        drafts.remove_origin("api", "https://nope.example")
    with pytest.raises(PolicyNotFound):
        drafts.add_origin("nope", "https://a.example")
    with pytest.raises(ValidationError, match="rename"):
        drafts.update_policy("api", {"name": "renamed"})
    with pytest.raises(StaleVersion):
        drafts.update_policy("api", {"methods": ["GET"]}, expected_version=99)
    with pytest.raises(ValidationError, match="path"):
        drafts.create_policy({"name": "dup", "path": "/api/**", "origins": []})
    with pytest.raises(ValidationError, match="reason"):
        drafts.add_origin("api", "https://c.example", reason="x" * 2001)
    # '*' with credentials, as the draft would have it
    drafts.update_policy("api", {"credentials": True})
    revision_now = store.revision()
    with pytest.raises(ValidationError, match="credentials"):
        drafts.add_origin("api", "*")
    assert store.revision() == revision_now == revision + 1
    assert store.session.scalar(sa.select(sa.func.count()).select_from(DraftOriginRow)) == 0


def test_import_into_the_draft_by_difference(store: PolicyStore, drafts: DraftStore) -> None:
    document = {
        "corsadmin": 1,
        "policies": [
            {**API, "origins": ["https://b.example", "https://c.example"]},
            {"name": "web", "path": "/web/**", "origins": ["https://w.example"]},
        ],
    }
    assert drafts.import_document(document) == ["api", "web"]
    draft = read_draft(store.session)
    assert draft is not None
    assert dict(draft.policies["api"].origins) == {
        "https://a.example": None,
        "https://c.example": draft.policies["api"].origins["https://c.example"],
    }
    assert draft.policies["api"].settings is None
    proposed = draft.proposed({"api": store.spec("api")})
    assert {n: canonical(s) for n, s in proposed.items() if s} == {
        s["name"]: canonical(_spec(s)) for s in document["policies"]
    }
    lines = format_diff([diff_draft(draft.policies["api"], store.spec("api"))])
    assert lines == [
        "~ policy api (1 rule added, 1 rule removed)",
        "    - origin https://a.example",
        "    + origin https://c.example",
    ]


def _spec(data: dict[str, Any]) -> PolicySpec:
    return validate_policy(data)


def test_the_trial_snapshot_shares_every_policy_the_draft_leaves_alone(
    store: PolicyStore, drafts: DraftStore
) -> None:
    store.create_policy({"name": "web", "path": "/web/**", "origins": ["https://w.example"]})
    drafts.remove_origin("api", "https://a.example")
    draft = read_draft(store.session)
    assert draft is not None
    live = Snapshot(store.revision(), [store.spec("api"), store.spec("web")])
    trial = build_trial(live, draft)
    assert trial.snapshot.policy_named("web") is live.policy_named("web")
    changed = trial.snapshot.policy_named("api")
    assert changed is not None
    assert changed is not live.policy_named("api")
    live_api = live.policy_named("api")
    assert live_api is not None
    assert decide_origin(live_api, "https://a.example").allowed
    assert not decide_origin(changed, "https://a.example").allowed
    assert decide_origin(changed, "https://b.example").allowed
    assert trial.snapshot.revision == live.revision


def test_origin_proposals_on_an_older_live_version_are_refused(
    store: PolicyStore, drafts: DraftStore
) -> None:
    seen = store.policy("api").version
    store.add_origin("api", "https://z.example")
    with pytest.raises(StaleVersion):
        drafts.add_origin("api", "https://c.example", expected_version=seen)
    with pytest.raises(StaleVersion):
        drafts.change_origin("api", "https://a.example", note="n", expected_version=seen)
    with pytest.raises(StaleVersion):
        drafts.remove_origin("api", "https://a.example", expected_version=seen)
    assert read_draft(store.session) is None
    drafts.remove_origin("api", "https://a.example", expected_version=seen + 1)
    draft = read_draft(store.session)
    assert draft is not None
    assert draft.policies["api"].origins == {"https://a.example": None}
