"""Audit events record what changed (issue 9), and old events still read the same.

An origin add, change or remove keeps that rule only; a policy update keeps the
fields that changed (of ``origins``, the rules added, removed or changed);
creation and deletion keep the whole document. Events written by earlier releases
(the whole policy before and after) display as they did, in the admin audit page.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin
from corsadmin.admin.audit import changes
from corsadmin.db.audit import field_diff, origins_diff
from corsadmin.db.models import AuditEvent, utcnow
from corsadmin.db.store import PolicyStore
from tests.support.admin import PREFIX, logged_in_client

NOTED = {"origin": "https://b.example", "note": "ticket 7"}


def _last(store: PolicyStore) -> AuditEvent:
    return store.audit_events(limit=1)[0]


def _rows(event: AuditEvent) -> list[tuple[str, str, str]]:
    return [(c.field, c.before, c.after) for c in changes(event.before, event.after)]


def test_origin_add_change_remove_record_the_rule_only(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": ["https://a.example", NOTED]})
    store.add_origin("p", "https://c.example")
    event = _last(store)
    assert (event.before, event.after) == ({"origins": []}, {"origins": ["https://c.example"]})
    assert _rows(event) == [("origin https://c.example", "", "allowed")]

    store.change_origin("p", "https://b.example", note="ticket 8", expires="2099-01-01")
    event = _last(store)
    assert event.before == {"origins": [NOTED]}
    changed = {"origin": "https://b.example", "note": "ticket 8", "expires": "2099-01-01T00:00:00Z"}
    assert event.after == {"origins": [changed]}
    assert _rows(event) == [
        (
            "origin https://b.example",
            "note: ticket 7",
            "note: ticket 8; expires 2099-01-01T00:00:00Z",
        )
    ]

    store.remove_origin("p", "https://a.example")
    event = _last(store)
    assert (event.before, event.after) == ({"origins": ["https://a.example"]}, {"origins": []})
    assert _rows(event) == [("origin https://a.example", "allowed", "")]


def test_an_update_records_the_changed_fields_and_rules(store: PolicyStore) -> None:
    store.create_policy(
        {"name": "p", "path": "/p", "origins": ["https://a.example", NOTED, "https://c.example"]}
    )
    store.update_policy(
        "p",
        {
            "max_age": 60,
            "origins": ["https://a.example", "https://b.example", "https://d.example"],
        },
    )
    event = _last(store)
    assert event.before == {"origins": [NOTED, "https://c.example"], "max_age": None}
    assert event.after == {"origins": ["https://b.example", "https://d.example"], "max_age": 60}
    assert (
        event.summary
        == "updated p: allowed https://d.example; removed https://c.example; max_age: None -> 60"
    )
    assert _rows(event) == [
        ("max_age", "-", "60"),
        ("origin https://b.example", "note: ticket 7", "(no note, no expiry)"),
        ("origin https://c.example", "allowed", ""),
        ("origin https://d.example", "", "allowed"),
    ]


def test_creation_and_deletion_keep_the_whole_document(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": [NOTED, "https://a.example"]})
    created = _last(store)
    whole = store.export_document()["policies"][0]
    assert (created.before, created.after) == (None, whole)
    store.delete_policy("p")
    deleted = _last(store)
    assert (deleted.before, deleted.after) == (whole, None)


def test_a_large_update_summary_names_a_bounded_number_of_rules(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p", "origins": []})
    store.update_policy("p", {"origins": [f"https://s{i:03d}.example" for i in range(100)]})
    summary = _last(store).summary
    assert summary.startswith("updated p: allowed https://s000.example, https://s001.example")
    assert summary.endswith("https://s019.example and 80 more")


def test_the_diff_helpers() -> None:
    old = {"name": "p", "enabled": True, "origins": ["a", {"origin": "b", "note": "x"}, "c"]}
    new = {"name": "p", "enabled": False, "origins": ["a", "b", "d"]}
    assert field_diff(old, new) == (
        {"enabled": True, "origins": [{"origin": "b", "note": "x"}, "c"]},
        {"enabled": False, "origins": ["b", "d"]},
    )
    assert origins_diff(["a"], ["a"]) == ([], [])
    assert field_diff(old, old) == ({}, {})


def _old_style_event(app: Flask, cors: CorsAdmin) -> None:
    """An event as a release before this one wrote it: both whole documents."""
    with app.app_context():
        store = cors.store("seed", app)
        before: dict[str, Any] = store.export_document()["policies"][0]
        after = {**before, "origins": [*before["origins"], "https://old-style.example"]}
        store.session.add(
            AuditEvent(
                at=utcnow(),
                actor="olduser",
                action="origin.add",
                policy_name="partner",
                summary="allowed origin https://old-style.example on partner",
                before=before,
                after=after,
                revision=1,
            )
        )
        store.session.commit()


def test_the_audit_page_shows_old_and_new_events_alike(app: Flask, cors: CorsAdmin) -> None:
    with app.app_context():
        store = cors.store("seed", app)
        store.create_policy(
            {"name": "partner", "path": "/api/**", "origins": ["https://a.example"]}
        )
        store.add_origin("partner", "https://new-style.example")
    _old_style_event(app, cors)
    client: FlaskClient = logged_in_client(app)
    page = client.get(f"{PREFIX}/audit").text
    for origin in ("https://old-style.example", "https://new-style.example"):
        row = (
            f'<th scope="row">origin {origin}</th>'
            '<td class="before"></td><td class="after">allowed</td>'
        )
        assert row in page
    assert page.count("1 change: before and after") == 2
    with app.app_context():
        count = cors.store("seed", app).session.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent)
        )
    assert count == 4  # with the operator added for the login
