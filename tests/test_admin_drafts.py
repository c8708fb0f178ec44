"""Drafts in the admin UI: "Save as draft" on every edit form, the draft page (diff,
impact, promote, discard, reason) and the review screen's draft section. What the
operator sees, what is written (the live policies untouched until promotion), CSRF,
access, stale versions and escaping. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from corsadmin import CorsAdmin
from corsadmin.db.drafts import DraftStore, read_draft
from corsadmin.db.models import AuditEvent, DraftTrafficRow, OriginUsage, utcnow
from corsadmin.policy.draft import Draft
from tests.support.admin import (
    HTML,
    PREFIX,
    field_errors,
    flashes,
    form_for,
    form_level_errors,
    in_app,
    partner_client,
    submit,
)
from tests.support.host import host_of

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
DRAFT = {"save_as_draft": "1"}  # the "Save as draft" button
PAGE = f"{PREFIX}/policies/partner"
DRAFT_PAGE = f"{PREFIX}/draft"


@pytest.fixture
def client(app: Flask, cors: CorsAdmin) -> FlaskClient:
    return partner_client(app, cors)


def in_draft(app: Flask, action: Callable[[DraftStore], Any], actor: str = "bob") -> Any:
    return in_app(app, lambda s: action(DraftStore(s)), actor)


def live(app: Flask, name: str = "partner") -> dict[str, Any] | None:
    """The live policy's document (None: there is none)."""
    policies = in_app(app, lambda s: s.export_document())["policies"]
    return next((p for p in policies if p["name"] == name), None)


def origins_of(app: Flask, name: str = "partner") -> list[str]:
    policy = live(app, name)
    assert policy is not None
    return [o if isinstance(o, str) else o["origin"] for o in policy["origins"]]


def active(app: Flask) -> Draft | None:
    return in_app(app, lambda s: read_draft(s.session))


def the_draft(app: Flask) -> Draft:
    found = active(app)
    assert found is not None
    return found


def events(app: Flask, action: str) -> list[AuditEvent]:
    return [e for e in in_app(app, lambda s: s.audit_events(limit=50)) if e.action == action]


def add_row(app: Flask, row: Any) -> None:
    with app.app_context():
        session = host_of(app).db.session
        session.add(row)
        session.commit()


# --- save as draft ------------------------------------------------------------------------------


def _check_added(draft: Draft) -> None:
    entry = draft.policies["partner"].origins["https://c.example"]
    assert entry is not None
    assert entry.note == "partner C"


def _check_edited(draft: Draft) -> None:
    entry = draft.policies["partner"].origins["https://b.example"]
    assert entry is not None
    assert entry.note == "ticket 8"


def _check_removed(draft: Draft) -> None:
    assert draft.policies["partner"].origins == {"https://a.example": None}


def _check_settings(draft: Draft) -> None:
    settings = draft.policies["partner"].settings
    assert settings is not None
    assert settings.methods == ("GET",)


def _check_created(draft: Draft) -> None:
    change = draft.policies["files"]
    assert change.action == "create"
    assert set(change.origins) == {"https://files.example"}


def _check_deleted(draft: Draft) -> None:
    assert draft.policies["partner"].action == "delete"


def _check_disabled(draft: Draft) -> None:
    settings = draft.policies["partner"].settings
    assert settings is not None
    assert settings.enabled is False


FORMS: list[tuple[str, str, str, dict[str, str], Callable[[Draft], None]]] = [
    (
        "add origin",
        PAGE,
        f"{PAGE}/origins",
        {"origin": "https://c.example", "note": "partner C"},
        _check_added,
    ),
    (
        "edit origin",
        f"{PAGE}/origins/edit?origin=https://b.example",
        f"{PAGE}/origins/edit",
        {"note": "ticket 8"},
        _check_edited,
    ),
    (
        "remove origin",
        f"{PAGE}/origins/remove?origin=https://a.example",
        f"{PAGE}/origins/remove",
        {},
        _check_removed,
    ),
    ("settings", f"{PAGE}/edit", f"{PAGE}/edit", {"methods": "GET"}, _check_settings),
    (
        "new policy",
        f"{PREFIX}/new",
        f"{PREFIX}/new",
        {"name": "files", "path": "/files/**", "origins": "https://files.example"},
        _check_created,
    ),
    ("delete", f"{PAGE}/delete", f"{PAGE}/delete", {}, _check_deleted),
    ("disable", f"{PAGE}/disable", f"{PAGE}/disable", {}, _check_disabled),
]


@pytest.mark.parametrize(
    ("page_url", "action", "values", "check"),
    [pytest.param(*row[1:], id=row[0]) for row in FORMS],
)
def test_save_as_draft_leaves_live_untouched_and_the_draft_holds_the_change(
    app: Flask,
    client: FlaskClient,
    page_url: str,
    action: str,
    values: dict[str, str],
    check: Callable[[Draft], None],
) -> None:
    before = in_app(app, lambda s: s.export_document())
    page = client.get(page_url).text
    assert 'name="save_as_draft"' in page
    response = submit(client, page_url, action.split("?")[0], **values, **DRAFT)
    assert response.status_code == 302, response.text
    assert response.location.endswith(DRAFT_PAGE)
    assert in_app(app, lambda s: s.export_document()) == before
    draft = the_draft(app)
    assert draft.created_by == "alice"
    check(draft)
    shown = client.get(DRAFT_PAGE).text
    assert any(m.startswith("Saved in the draft:") for m in flashes(shown))
    assert "Live traffic is answered as before" in flashes(shown)[0]


def test_the_usual_button_still_saves_live(app: Flask, client: FlaskClient) -> None:
    response = submit(client, PAGE, f"{PAGE}/origins", origin="https://c.example")
    assert response.status_code == 302
    assert response.location.endswith(PAGE)
    assert "https://c.example" in origins_of(app)
    assert active(app) is None


def test_settings_saved_as_draft_twice_keep_both_changes(app: Flask, client: FlaskClient) -> None:
    edit = f"{PAGE}/edit"
    assert submit(client, edit, edit, methods="GET", **DRAFT).status_code == 302
    page = client.get(edit).text
    assert "Draft 1</a> proposes changes to this policy" in page
    assert submit(client, edit, edit, max_age="60", **DRAFT).status_code == 302
    settings = the_draft(app).policies["partner"].settings
    assert settings is not None
    assert (settings.methods, settings.max_age) == (("GET",), 60)
    response = submit(client, edit, edit, **DRAFT)
    assert response.status_code == 400
    assert "no setting differs from the live policy" in form_level_errors(response.text)[0]
    assert the_draft(app).version == 2
    assert "Draft 1</a> proposes changes to this policy" in client.get(PAGE).text


def test_draft_errors_are_shown_beside_their_fields(app: Flask, client: FlaskClient) -> None:
    response = submit(client, PAGE, f"{PAGE}/origins", origin="not an origin", **DRAFT)
    assert response.status_code == 400
    assert field_errors(response.text, "origin")
    response = submit(client, f"{PAGE}/edit", f"{PAGE}/edit", max_age="soon", **DRAFT)
    assert response.status_code == 400
    assert field_errors(response.text, "max_age")
    response = submit(client, f"{PAGE}/edit", f"{PAGE}/edit", name="renamed", **DRAFT)
    assert response.status_code == 400
    assert "cannot rename" in field_errors(response.text, "name")[0]
    assert active(app) is None


def test_a_draft_on_a_stale_version_is_refused(app: Flask, client: FlaskClient) -> None:
    stale = [
        (PAGE, f"{PAGE}/origins", {"origin": "https://c.example"}),
        (f"{PAGE}/edit", f"{PAGE}/edit", {"methods": "GET"}),
        (f"{PAGE}/origins/remove?origin=https://b.example", f"{PAGE}/origins/remove", {}),
    ]
    for age, (page_url, action, values) in enumerate(stale, start=60):
        data = {**form_for(client.get(page_url).text, action).fields, **values, **DRAFT}
        in_app(app, lambda s, age=age: s.update_policy("partner", {"max_age": age}))
        response = client.post(action, data=data)
        assert response.status_code == 409, action
        assert "someone changed policy 'partner'" in form_level_errors(response.text)[0]
    assert active(app) is None


def test_a_draft_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    response = submit(
        client,
        PAGE,
        f"{PAGE}/origins",
        drop=("csrf_token",),
        origin="https://c.example",
        **DRAFT,
    )
    assert response.status_code == 400
    assert "security token" in form_level_errors(response.text)[0]
    assert active(app) is None


def test_proposing_for_a_policy_the_draft_deletes_says_so(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.delete_policy("partner"))
    response = submit(client, PAGE, f"{PAGE}/origins", origin="https://c.example", **DRAFT)
    assert response.status_code == 400
    assert "The draft deletes policy 'partner'" in form_level_errors(response.text)[0]


# --- the draft page --------------------------------------------------------------------------


def test_without_a_draft_the_page_says_how_to_make_one(client: FlaskClient) -> None:
    page = client.get(DRAFT_PAGE).text
    assert "No active draft" in page
    assert "Save as draft" in page
    assert "corsadmin draft import FILE" in page
    assert "nav-badge" not in page


def test_the_page_shows_who_when_why_and_the_diff(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example", reason="TICKET-812"))
    in_draft(app, lambda d: d.add_origin("partner", "https://c.example", note="partner C"))
    in_draft(app, lambda d: d.update_policy("partner", {"methods": ["GET"]}), actor="carol")
    page = client.get(DRAFT_PAGE)
    assert page.status_code == 200
    text = page.text
    assert "Draft 1" in text
    assert "Proposed by <strong>bob</strong>" in text
    assert "last changed by <strong>carol</strong>" in text
    assert "TICKET-812" in text
    assert '<span class="nav-badge"' in text
    assert "1 rule added, 1 rule removed" in text
    assert '<td class="before">GET, POST</td>' in text
    assert '<td class="after">GET</td>' in text
    assert '<tr class="rule-removed">' in text
    assert '<code class="origin">https://a.example</code>' in text
    assert '<tr class="rule-added">' in text
    assert "partner C" in text
    assert form_for(text, f"{DRAFT_PAGE}/promote").fields["version"] == "3"
    assert form_for(text, f"{DRAFT_PAGE}/discard").fields["version"] == "3"


def test_new_and_deleted_policies_on_the_page(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.delete_policy("partner"))
    in_draft(
        app,
        lambda d: d.create_policy(
            {"name": "files", "path": "/files/**", "origins": ["https://f.example"]}
        ),
    )
    text = client.get(DRAFT_PAGE).text
    assert '<span class="tag tag-ok">new policy</span>' in text
    assert '<span class="tag tag-danger">deleted</span>' in text
    assert "Its 2 origin rules go with it." in text
    assert "https://f.example" in text


def test_promote_makes_the_draft_live_with_its_audit_event(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example", reason="a leaves"))
    response = submit(client, DRAFT_PAGE, f"{DRAFT_PAGE}/promote")
    assert response.status_code == 302
    assert response.location.endswith(PAGE)
    assert origins_of(app) == ["https://b.example"]
    assert active(app) is None
    promoted = events(app, "draft.promote")
    assert len(promoted) == 1
    assert promoted[0].actor == "alice"
    assert promoted[0].after["reason"] == "a leaves"
    page = client.get(PAGE).text
    assert "Promoted draft 1: changed partner." in flashes(page)[0]


def test_discard_leaves_live_untouched(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    before = in_app(app, lambda s: s.export_document())
    response = submit(client, DRAFT_PAGE, f"{DRAFT_PAGE}/discard")
    assert response.status_code == 302
    assert in_app(app, lambda s: s.export_document()) == before
    assert active(app) is None
    assert [e.actor for e in events(app, "draft.discard")] == ["alice"]
    page = client.get(response.location).text
    assert "Discarded draft 1" in flashes(page)[0]
    assert "No active draft" in page


@pytest.mark.parametrize("action", ["promote", "discard"])
def test_a_stale_draft_version_is_refused(app: Flask, client: FlaskClient, action: str) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    data = form_for(client.get(DRAFT_PAGE).text, f"{DRAFT_PAGE}/{action}").fields
    in_draft(app, lambda d: d.add_origin("partner", "https://c.example"), actor="carol")
    response = client.post(f"{DRAFT_PAGE}/{action}", data=data)
    assert response.status_code == 409
    message = form_level_errors(response.text)[0]
    assert "the draft changed since you loaded this page" in message
    assert "version 1, it is now at version 2" in message
    assert origins_of(app) == ["https://a.example", "https://b.example"]
    assert the_draft(app).version == 2
    # The page shows the draft as it is now, with its version in the forms.
    assert form_for(response.text, f"{DRAFT_PAGE}/{action}").fields["version"] == "2"
    assert "https://c.example" in response.text


def test_a_conflicting_live_change_refuses_promotion_naming_it(
    app: Flask, client: FlaskClient
) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    in_app(app, lambda s: s.add_origin("partner", "https://d.example"), actor="dave")
    page = client.get(DRAFT_PAGE).text
    assert "changed live since the draft was saved (version 1, now 2)" in page
    response = submit(client, DRAFT_PAGE, f"{DRAFT_PAGE}/promote")
    assert response.status_code == 409
    message = form_level_errors(response.text)[0]
    assert message.startswith("Not promoted: policy 'partner' changed since the draft was made")
    assert "https://d.example" in message
    assert origins_of(app) == ["https://a.example", "https://b.example", "https://d.example"]
    assert active(app) is not None


def test_promote_when_the_draft_is_gone(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    data = form_for(client.get(DRAFT_PAGE).text, f"{DRAFT_PAGE}/promote").fields
    in_draft(app, lambda d: d.discard())
    response = client.post(f"{DRAFT_PAGE}/promote", data=data)
    assert response.status_code == 404
    assert "There is no active draft any more" in form_level_errors(response.text)[0]
    assert origins_of(app) == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("action", ["promote", "discard", "reason"])
def test_missing_csrf_token_is_refused(app: Flask, client: FlaskClient, action: str) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    response = submit(
        client, DRAFT_PAGE, f"{DRAFT_PAGE}/{action}", drop=("csrf_token",), reason="x"
    )
    assert response.status_code == 400
    assert "security token" in form_level_errors(response.text)[0]
    draft = the_draft(app)
    assert draft.version == 1
    assert draft.reason == ""


@pytest.mark.parametrize("action", ["promote", "discard"])
def test_missing_version_is_refused(app: Flask, client: FlaskClient, action: str) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    response = submit(client, DRAFT_PAGE, f"{DRAFT_PAGE}/{action}", drop=("version",))
    assert response.status_code == 400
    assert the_draft(app).version == 1


def test_unauthenticated_visitors_are_refused(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    data = form_for(client.get(DRAFT_PAGE).text, f"{DRAFT_PAGE}/promote").fields
    stranger = app.test_client()
    page = stranger.get(DRAFT_PAGE, headers=HTML)
    assert page.status_code == 302
    assert "/login" in page.location
    for action in ("promote", "discard", "reason"):
        assert stranger.post(f"{DRAFT_PAGE}/{action}", data=data).status_code == 401
    assert the_draft(app).version == 1
    assert origins_of(app) == ["https://a.example", "https://b.example"]


def test_the_reason_is_saved_and_bounded(app: Flask, client: FlaskClient) -> None:
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    response = submit(client, DRAFT_PAGE, f"{DRAFT_PAGE}/reason", reason="TICKET-9: a leaves")
    assert response.status_code == 302
    assert the_draft(app).reason == "TICKET-9: a leaves"
    response = submit(client, DRAFT_PAGE, f"{DRAFT_PAGE}/reason", reason="x" * 2001)
    assert response.status_code == 400
    assert "longer than 2000" in field_errors(response.text, "reason")[0]
    assert the_draft(app).reason == "TICKET-9: a leaves"


def test_everything_typed_is_escaped(app: Flask, client: FlaskClient) -> None:
    response = submit(
        client, PAGE, f"{PAGE}/origins", origin="https://c.example", note=XSS, **DRAFT
    )
    assert response.status_code == 302
    in_draft(app, lambda d: d.set_reason(XSS))
    for url in (DRAFT_PAGE, f"{PREFIX}/review"):
        page = client.get(url).text
        assert "<script>" not in page
        assert "<img src=x" not in page
        assert str(escape(XSS)) in page


# --- impact and the review screen -------------------------------------------------------------


def seen(app: Flask, origin: str, count: int, *, allowed: bool = True) -> None:
    now = utcnow()
    add_row(
        app,
        OriginUsage(
            policy_name="partner",
            origin=origin,
            rule=origin if allowed else None,
            allowed=allowed,
            count=count,
            first_seen=now - timedelta(days=3),
            last_seen=now - timedelta(hours=1),
        ),
    )


def counted(app: Flask, outcome: str, origin: str, count: int) -> None:
    now = utcnow()
    add_row(
        app,
        DraftTrafficRow(
            draft_id=the_draft(app).id,
            policy_name="partner",
            outcome=outcome,
            origin=origin,
            count=count,
            first_seen=now - timedelta(minutes=5),
            last_seen=now,
            example_path="/api/orders",
            example_method="GET",
        ),
    )


def test_the_page_shows_the_impact_from_history_and_traffic(
    app: Flask, client: FlaskClient
) -> None:
    seen(app, "https://a.example", 41200)
    seen(app, "https://b.example", 7)
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example"))
    counted(app, "evaluated", "", 1204)
    counted(app, "newly-refused", "https://a.example", 1180)
    text = client.get(DRAFT_PAGE).text
    history = text.split('id="history-h"')[1].split('id="traffic-h"')[0]
    assert 'Would have refused <code class="origin">https://a.example</code> on partner' in history
    assert "seen 41,200 times" in history
    assert "https://b.example" not in history
    traffic = text.split('id="traffic-h"')[1]
    assert "1,204" in traffic
    assert "1,180" in traffic
    assert "<code>GET /api/orders</code>" in traffic


def test_review_lists_the_draft_and_what_it_would_break(app: Flask, client: FlaskClient) -> None:
    assert 'id="draft"' not in client.get(f"{PREFIX}/review").text
    seen(app, "https://a.example", 41200)
    in_draft(app, lambda d: d.remove_origin("partner", "https://a.example", reason="a leaves"))
    counted(app, "newly-refused", "https://a.example", 1180)
    page = client.get(f"{PREFIX}/review").text
    section = page.split('id="draft"')[1].split("</section>")[0]
    assert "Draft 1 is waiting for a decision" in section
    assert "Proposed by <strong>bob</strong>" in section
    assert "<q>a leaves</q>" in section
    assert '<code class="origin">https://a.example</code> on partner: seen 41,200 times' in section
    assert "<strong>1,180</strong> requests would have been refused" in section
    assert f'href="{DRAFT_PAGE}"' in section
