"""The store: one transaction per change, its audit event inside it, the revision moving.

Runs on SQLite and on PostgreSQL (the ``store`` fixture is parametrized).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from corsadmin import PolicyStore, StaleVersion, ValidationError
from corsadmin.db.models import AuditEvent, OriginRuleRow, Policy
from corsadmin.errors import OriginRuleNotFound, PolicyNotFound

PARTNER: dict[str, Any] = {
    "name": "partner-api",
    "path": "/api/v1/**",
    "description": "Partner integration API",
    "origins": [
        "https://app.partner.example",
        {
            "origin": "https://*.staging.partner.example",
            "note": "Acme staging",
            "expires": "2099-03-01T00:00:00Z",
        },
        "http://localhost:*",
    ],
    "methods": ["GET", "POST", "PUT"],
    "allow_headers": ["Content-Type", "Authorization"],
    "expose_headers": ["X-Request-Id"],
    "credentials": True,
    "max_age": 600,
    "private_network": False,
    "enabled": True,
    "priority": 0,
    "review_every_days": 90,
}


def counts(store: PolicyStore) -> tuple[int, int, int, int]:
    """(revision, policies, origin rules, audit events)."""
    s = store.session
    return (
        store.revision(),
        s.scalar(sa.select(sa.func.count()).select_from(Policy)) or 0,
        s.scalar(sa.select(sa.func.count()).select_from(OriginRuleRow)) or 0,
        s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0,
    )


def test_create_writes_policy_rules_audit_and_revision(store: PolicyStore) -> None:
    assert counts(store) == (0, 0, 0, 0)
    store.create_policy(PARTNER)
    assert counts(store) == (1, 1, 3, 1)
    event = store.audit_events()[0]
    assert (event.actor, event.action, event.policy_name, event.revision) == (
        "tester",
        "policy.create",
        "partner-api",
        1,
    )
    assert event.before is None
    assert event.after is not None
    assert event.after["path"] == "/api/v1/**"
    policy = store.policy("partner-api")
    assert policy.created_by == "tester"
    assert policy.version == 1
    rules = {r.origin: r for r in policy.origin_rules}
    assert rules["https://*.staging.partner.example"].note == "Acme staging"
    assert rules["https://*.staging.partner.example"].expires_at == datetime(2099, 3, 1, tzinfo=UTC)


def test_export_round_trips_every_field(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    exported = store.export_document()
    assert exported["corsadmin"] == 1
    (policy,) = exported["policies"]
    expected = copy.deepcopy(PARTNER)
    expected["origins"] = sorted(
        expected["origins"], key=lambda o: o if isinstance(o, str) else o["origin"]
    )
    assert policy == expected


def test_export_then_import_replace_changes_nothing(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    store.create_policy({"name": "open", "path": "/public/**", "origins": ["*"]})
    before = counts(store)
    report = store.import_document(store.export_document(), replace=True)
    assert not report.changed
    assert sorted(report.unchanged) == ["open", "partner-api"]
    assert counts(store) == before


def test_import_merges_by_name_and_replace_removes_the_rest(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    store.create_policy({"name": "other", "path": "/other/**", "origins": []})
    changed = dict(PARTNER, origins=["https://new.partner.example"])
    report = store.import_document({"corsadmin": 1, "policies": [changed]})
    assert report.updated == ["partner-api"]
    assert [p.name for p in store.policies()] == ["other", "partner-api"]
    assert [r.origin for r in store.policy("partner-api").origin_rules] == [
        "https://new.partner.example"
    ]
    report = store.import_document({"corsadmin": 1, "policies": [changed]}, replace=True)
    assert report.deleted == ["other"]
    assert [p.name for p in store.policies()] == ["partner-api"]


def test_import_can_swap_paths_between_policies(store: PolicyStore) -> None:
    store.create_policy({"name": "a", "path": "/a/**", "origins": []})
    store.create_policy({"name": "b", "path": "/b/**", "origins": []})
    doc = store.export_document()
    doc["policies"][0]["path"], doc["policies"][1]["path"] = "/b/**", "/a/**"
    report = store.import_document(doc)
    assert sorted(report.updated) == ["a", "b"]
    assert store.policy("a").path == "/b/**"
    assert store.policy("b").path == "/a/**"


def test_a_bad_document_writes_nothing_and_reports_every_problem(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    before = counts(store)
    document = {
        "corsadmin": 1,
        "policies": [
            {"name": "fine", "path": "/fine/**", "origins": ["https://fine.example"]},
            {"name": "bad", "path": "/bad/**", "origins": ["https://x.example/path"]},
            {"name": "Bad Name", "path": "api", "origins": [], "credentialz": True},
        ],
    }
    with pytest.raises(ValidationError) as raised:
        store.import_document(document, replace=True)
    messages = [str(e) for e in raised.value.errors]
    assert "policies[1].origins[0]: a path is not allowed in an origin" in messages
    fields = {e.field for e in raised.value.errors}
    assert {"policies[2].name", "policies[2].path", "policies[2].credentialz"} <= fields
    assert counts(store) == before


def test_import_refuses_a_path_held_by_a_policy_it_leaves_alone(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    before = counts(store)
    with pytest.raises(ValidationError) as raised:
        store.import_document(
            {"corsadmin": 1, "policies": [{"name": "x", "path": "/api/v1/**", "origins": []}]}
        )
    assert raised.value.errors[0].field == "policies[0].path"
    assert "partner-api" in raised.value.errors[0].message
    assert counts(store) == before


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"name": "partner-api", "path": "/elsewhere", "origins": []}, "name", "exists already"),
        ({"name": "second", "path": "/api/v1/**", "origins": []}, "path", "already covers"),
        ({"name": "creds", "path": "/c", "origins": ["*"], "credentials": True}, "origins[0]", "*"),
    ],
)
def test_refused_creates_leave_no_trace(
    store: PolicyStore, data: dict[str, Any], field: str, fragment: str
) -> None:
    store.create_policy(PARTNER)
    before = counts(store)
    with pytest.raises(ValidationError) as raised:
        store.create_policy(data)
    assert raised.value.errors[0].field == field
    assert fragment in raised.value.errors[0].message
    assert counts(store) == before


def test_add_and_remove_origin_are_audited_changes(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    entry = store.add_origin("partner-api", "HTTPS://Partner2.Example:443/", note="ticket 42")
    assert entry.rule.text == "https://partner2.example"
    assert counts(store)[0] == 2
    event = store.audit_events()[0]
    assert event.action == "origin.add"
    assert "https://partner2.example" in event.summary
    assert event.before is not None
    assert event.after is not None
    assert event.before == {"origins": []}
    assert event.after == {"origins": [{"origin": "https://partner2.example", "note": "ticket 42"}]}
    assert store.policy("partner-api").version == 2
    row = next(r for r in store.policy("partner-api").origin_rules if r.note == "ticket 42")
    assert row.created_by == "tester"

    store.remove_origin("partner-api", "https://PARTNER2.example")
    assert "https://partner2.example" not in {
        r.origin for r in store.policy("partner-api").origin_rules
    }
    assert store.audit_events()[0].action == "origin.remove"
    assert counts(store)[0] == 3


def test_adding_the_same_origin_twice_is_no_change(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    before = counts(store)
    store.add_origin("partner-api", "https://app.partner.example/")
    assert counts(store) == before


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.add_origin("nope", "https://a.example"), PolicyNotFound),
        (lambda s: s.remove_origin("partner-api", "https://never.example"), OriginRuleNotFound),
        (lambda s: s.update_policy("nope", {"priority": 1}), PolicyNotFound),
        (lambda s: s.delete_policy("nope"), PolicyNotFound),
    ],
)
def test_missing_things_are_named(store: PolicyStore, call: Any, error: type[Exception]) -> None:
    store.create_policy(PARTNER)
    before = counts(store)
    with pytest.raises(error):
        call(store)
    assert counts(store) == before


@pytest.mark.parametrize(
    ("origin", "expires", "field", "fragment"),
    [
        ("https://*.com", None, "origin", "public suffix"),
        ("*", None, "origin", "credentials"),
        ("https://ok.example", "yesterday", "expires", "ISO 8601"),
        ("https://ok.example", "2001-01-01", "expires", "in the past"),
    ],
)
def test_add_origin_errors_name_the_field(
    store: PolicyStore, origin: str, expires: str | None, field: str, fragment: str
) -> None:
    store.create_policy(PARTNER)
    before = counts(store)
    with pytest.raises(ValidationError) as raised:
        store.add_origin("partner-api", origin, expires=expires)
    assert raised.value.errors[0].field == field
    assert fragment in raised.value.errors[0].message
    assert counts(store) == before


def test_update_with_a_stale_version_is_refused(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    version = store.policy("partner-api").version
    store.update_policy("partner-api", {"max_age": 60}, expected_version=version)
    before = counts(store)
    with pytest.raises(StaleVersion) as raised:
        store.update_policy("partner-api", {"max_age": 30}, expected_version=version)
    assert "changed by someone else" in str(raised.value)
    assert counts(store) == before
    assert store.policy("partner-api").max_age == 60


def test_update_records_before_and_after(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    store.update_policy("partner-api", {"methods": ["get", "delete"], "enabled": False})
    event = store.audit_events()[0]
    assert event.action == "policy.update"
    assert event.before is not None
    assert event.after is not None
    assert event.before == {"methods": ["GET", "POST", "PUT"], "enabled": True}
    assert event.after == {"methods": ["GET", "DELETE"], "enabled": False}
    assert "methods" in event.summary
    assert "enabled" in event.summary


def test_delete_removes_rules_and_keeps_the_audit(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    store.delete_policy("partner-api")
    assert counts(store)[1:3] == (0, 0)
    event = store.audit_events()[0]
    assert event.action == "policy.delete"
    assert event.before is not None
    assert event.before["name"] == "partner-api"


def test_a_failure_inside_a_change_rolls_everything_back(store: PolicyStore) -> None:
    """The revision moved and rows were written before the failure: none of it stays."""
    store.create_policy(PARTNER)
    before = counts(store)

    def explode() -> None:
        raise RuntimeError("disk full")

    original = store._write_rule

    def write_then_fail(policy: Any, entry: Any, *, new: bool) -> None:
        original(policy, entry, new=new)
        store.session.flush()
        explode()

    store._write_rule = write_then_fail  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        store.add_origin("partner-api", "https://late.example")
    store._write_rule = original  # type: ignore[method-assign]
    assert counts(store) == before
    assert "https://late.example" not in {
        r.origin for r in store.policy("partner-api").origin_rules
    }


def test_mark_reviewed_is_an_audit_event(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    store.mark_reviewed("partner-api", "checked with Acme")
    policy = store.policy("partner-api")
    assert policy.reviewed_by == "tester"
    assert policy.reviewed_at is not None
    assert policy.reviewed_at > datetime.now(UTC) - timedelta(minutes=1)
    event = store.audit_events()[0]
    assert event.action == "policy.review"
    assert "checked with Acme" in event.summary


def test_audit_filters_by_policy_and_actor(store: PolicyStore) -> None:
    store.create_policy(PARTNER)
    other = PolicyStore(store.session, actor="alice")
    other.create_policy({"name": "b", "path": "/b", "origins": []})
    assert [e.policy_name for e in store.audit_events(actor="alice")] == ["b"]
    assert [e.actor for e in store.audit_events(policy="partner-api")] == ["tester"]


def test_store_requires_an_actor(store: PolicyStore) -> None:
    with pytest.raises(ValidationError, match="actor"):
        PolicyStore(store.session, actor="")


def test_a_snapshot_never_mixes_two_revisions(
    store: PolicyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that commits while a snapshot is being read must not leave the snapshot
    with one revision's label and another revision's rows."""
    import corsadmin.db.loader as store_module

    store.create_policy(PARTNER)
    old_revision = store.revision()
    engine = store.session.get_bind()
    real_read = store_module._read_specs
    calls = 0

    def read_with_a_change_in_between(connection: Any, cache: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # another worker commits a change mid-read
            with sa.orm.Session(engine) as other:
                PolicyStore(other, actor="other").add_origin("partner-api", "https://mid.example")
        return real_read(connection, cache)

    monkeypatch.setattr(store_module, "_read_specs", read_with_a_change_in_between)
    snapshot = store_module.load_snapshot(engine)
    (spec,) = snapshot.specs
    has_new_origin = spec.origin("https://mid.example") is not None
    assert has_new_origin is (snapshot.revision == old_revision + 1)
    assert snapshot.revision in (old_revision, old_revision + 1)


TEMPORARY = {"origin": "https://x.example", "note": "ACME", "expires": "2099-06-01T00:00:00Z"}


def test_adding_an_existing_origin_keeps_what_is_not_given(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": [TEMPORARY]})
    before = counts(store)
    change = store.allow_origin("p", "HTTPS://x.example:443/")
    assert change.outcome == "unchanged"
    assert (change.entry.note, change.entry.expires) == ("ACME", datetime(2099, 6, 1, tzinfo=UTC))
    assert store.add_origin("p", "https://x.example") == change.entry
    assert counts(store) == before
    assert store.spec("p").to_document()["origins"] == [TEMPORARY]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"note": "renewed"}, {**TEMPORARY, "note": "renewed"}),
        ({"note": ""}, {"origin": "https://x.example", "expires": "2099-06-01T00:00:00Z"}),
        ({"expires": None}, {"origin": "https://x.example", "note": "ACME"}),
        ({"expires": ""}, {"origin": "https://x.example", "note": "ACME"}),
        ({"expires": "2100-01-01"}, {**TEMPORARY, "expires": "2100-01-01T00:00:00Z"}),
    ],
)
def test_adding_an_existing_origin_changes_what_is_given(
    store: PolicyStore, given: dict[str, Any], expected: dict[str, str]
) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": [TEMPORARY]})
    change = store.allow_origin("p", "https://x.example", **given)
    assert change.outcome == "changed"
    assert change.before is not None
    assert change.before.note == "ACME"
    assert store.spec("p").to_document()["origins"] == [expected]
    event = store.audit_events()[0]
    assert event.summary == f"changed origin https://x.example on p: {change.details()}"
    assert event.before is not None
    assert event.before["origins"] == [TEMPORARY]


def test_change_origin_refuses_a_rule_the_policy_does_not_have(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": [TEMPORARY]})
    before = counts(store)
    with pytest.raises(OriginRuleNotFound):
        store.change_origin("p", "https://y.example", note="x")
    change = store.change_origin("p", "https://X.example", expires=None)
    assert (change.outcome, change.entry.note, change.entry.expires) == ("changed", "ACME", None)
    assert counts(store)[0] == before[0] + 1


def test_allow_origin_new_only_refuses_a_rule_that_exists(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": [TEMPORARY]})
    before = counts(store)
    with pytest.raises(ValidationError) as refused:
        store.allow_origin("p", "https://x.example", note="other", new_only=True)
    assert refused.value.errors[0].field == "origin"
    assert "allowed on p already" in refused.value.errors[0].message
    assert counts(store) == before
    assert store.allow_origin("p", "https://y.example", new_only=True).outcome == "allowed"


@pytest.mark.parametrize(
    ("actor", "message"),
    [
        ("", "is required"),
        ("   ", "is required"),
        ("a" * 201, "longer than 200 characters"),
        ("robot\x00", "control characters"),
        ("line\nbreak", "control characters"),
        ("bad\udcff", "lone surrogate"),
    ],
    ids=["empty", "blank", "too-long", "nul", "newline", "surrogate"],
)
def test_an_actor_every_backend_cannot_store_is_refused(
    store: PolicyStore, actor: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        PolicyStore(store.session, actor=actor)
    assert refused.value.errors[0].field == "actor"
    assert message in refused.value.errors[0].message


def test_an_actor_of_200_characters_is_stored_on_every_backend(store: PolicyStore) -> None:
    actor = "é" * 200
    PolicyStore(store.session, actor=actor).create_policy(
        {"name": "p", "path": "/p", "origins": []}
    )
    assert store.audit_events()[0].actor == actor
    assert store.policy("p").created_by == actor
