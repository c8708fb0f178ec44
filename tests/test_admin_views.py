"""Every admin view: what it shows, what it changes (database and audit actor),
validation errors beside their fields with the input kept, CSRF refusals and
stale-version conflicts. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from corsadmin import CorsAdmin
from corsadmin.db.loader import load_snapshot
from corsadmin.db.models import OriginRuleRow, OriginUsage, Policy, utcnow
from corsadmin.engine.explain import explain
from tests.support.admin import (
    PREFIX,
    field_errors,
    flashes,
    form_for,
    form_level_errors,
    in_app,
    log_in,
    logged_in_client,
    partner_client,
    submit,
)
from tests.support.host import close_app, make_app

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def client(app: Flask, cors: CorsAdmin) -> FlaskClient:
    return partner_client(app, cors)


def stored(app: Flask, name: str = "partner") -> dict[str, Any]:
    return in_app(app, lambda s: s.spec(name).to_document())


def origins_of(app: Flask, name: str = "partner") -> list[str]:
    return [o if isinstance(o, str) else o["origin"] for o in stored(app, name)["origins"]]


def last_event(app: Flask, policy: str | None = "partner") -> tuple[str, str, str]:
    event = in_app(app, lambda s: s.audit_events(policy=policy)[0])
    return event.actor, event.action, event.summary


def revision(app: Flask) -> int:
    return int(in_app(app, lambda s: s.revision()))


def input_value(page: str, field_id: str) -> str | None:
    """The value attribute of the input with this id (unescaped), None if absent."""
    match = re.search(rf'<input[^>]*\bid="{field_id}"[^>]*>', page)
    if match is None:
        return None
    value = re.search(r'value="([^"]*)"', match.group(0))
    return html.unescape(value.group(1)) if value else ""


# --- the list ---------------------------------------------------------------------------


def test_policies_list_shows_path_origins_flags_change_and_review(
    app: Flask, client: FlaskClient
) -> None:
    in_app(
        app,
        lambda s: s.create_policy(
            {
                "name": "internal",
                "path": "/internal/**",
                "origins": [],
                "credentials": True,
                "private_network": True,
                "enabled": False,
            }
        ),
    )
    page = client.get(f"{PREFIX}/").text
    assert "<code>/api/**</code>" in page
    assert 'href="/corsadmin/policies/internal"' in page
    for flag in ("disabled", "credentials", "private network"):
        assert f">{flag}</span>" in page
    assert "by bob" in page
    assert "by seed" in page
    assert "due in 89 days" in page or "due in 90 days" in page
    assert "2 of 2 policies" in page


@pytest.mark.parametrize(
    ("query", "found"),
    [("partner", True), ("b.example", True), ("TICKET 7", True), ("/api", True), ("zzz", False)],
)
def test_policies_search(client: FlaskClient, query: str, found: bool) -> None:
    page = client.get(f"{PREFIX}/", query_string={"q": query}).text
    assert ('href="/corsadmin/policies/partner"' in page) is found
    if not found:
        assert "No policy matches" in page


def test_policies_list_empty_state(app: Flask) -> None:
    client = logged_in_client(app)
    page = client.get(f"{PREFIX}/").text
    assert "No policies yet" in page
    assert 'href="/corsadmin/new"' in page


# --- one policy ---------------------------------------------------------------------------


def test_policy_page_shows_settings_and_rules_with_who_when_and_last_seen(
    app: Flask, client: FlaskClient
) -> None:
    seen = utcnow() - timedelta(hours=3)
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        session.execute(
            sa.update(OriginRuleRow)
            .where(OriginRuleRow.origin == "https://a.example")
            .values(last_seen_at=seen)
        )
        session.commit()
    page = client.get(f"{PREFIX}/policies/partner").text
    assert "GET, POST" in page
    assert "ticket 7" in page
    assert "by seed" in page
    assert "3 hours ago" in page  # a.example last seen
    assert ">never</span>" in page  # b.example never seen, never expires
    assert 'name="version" type="hidden" value="1"' in page


def test_unknown_policy_is_404_on_every_policy_route(client: FlaskClient) -> None:
    for path in [
        "/policies/nope",
        "/policies/nope/edit",
        "/policies/nope/delete",
        "/policies/nope/disable",
        "/policies/nope/origins/remove?origin=https://a.example",
        "/refused/allow?policy=nope&origin=https://a.example",
    ]:
        response = client.get(PREFIX + path)
        assert response.status_code == 404, path
        assert "nope" in response.text


# --- adding an origin -----------------------------------------------------------------------------


def test_add_origin_saves_audits_and_is_enforced_at_once(app: Flask, client: FlaskClient) -> None:
    before = client.get("/api/status", headers={"Origin": "https://new.example"})
    assert "Access-Control-Allow-Origin" not in before.headers
    response = submit(
        client,
        f"{PREFIX}/policies/partner",
        f"{PREFIX}/policies/partner/origins",
        origin="HTTPS://New.Example:443/",
        note="ticket 42",
        expires="2099-03-01",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PREFIX}/policies/partner"
    page = client.get(response.headers["Location"]).text
    assert flashes(page) == ["Saved: https://new.example is allowed on partner."]
    entry = next(
        o
        for o in stored(app)["origins"]
        if isinstance(o, dict) and o["origin"] == "https://new.example"
    )
    assert entry == {
        "origin": "https://new.example",
        "note": "ticket 42",
        "expires": "2099-03-01T00:00:00Z",
    }
    assert last_event(app) == (
        "alice",
        "origin.add",
        "allowed origin https://new.example on partner",
    )
    after = client.get("/api/status", headers={"Origin": "https://new.example"})
    assert after.headers["Access-Control-Allow-Origin"] == "https://new.example"


@pytest.mark.parametrize(
    ("values", "field_id", "message"),
    [
        ({"origin": "https://a.example/path"}, "origin", "path"),
        ({"origin": ""}, "origin", ""),
        ({"origin": "https://*.com"}, "origin", "public suffix"),
        ({"origin": "https://c.example", "expires": "next tuesday"}, "expires", "ISO 8601"),
        ({"origin": "https://c.example", "expires": "2001-01-01"}, "expires", "is in the past"),
        ({"origin": "https://c.example", "note": "n" * 501}, "note", "longer than 500"),
    ],
)
def test_add_origin_errors_show_beside_the_field_and_keep_the_input(
    app: Flask, client: FlaskClient, values: dict[str, str], field_id: str, message: str
) -> None:
    before = revision(app)
    typed = {"note": "keep this note", **values}
    response = submit(
        client, f"{PREFIX}/policies/partner", f"{PREFIX}/policies/partner/origins", **typed
    )
    assert response.status_code == 400
    errors = field_errors(response.text, field_id)
    assert errors
    assert message in errors[0]
    for name, value in typed.items():
        assert input_value(response.text, name) == value
    assert revision(app) == before
    assert origins_of(app) == ["https://a.example", "https://b.example"]


def test_add_star_to_a_credentials_policy_is_an_origin_error(
    app: Flask, client: FlaskClient
) -> None:
    in_app(app, lambda s: s.update_policy("partner", {"credentials": True}))
    response = submit(
        client, f"{PREFIX}/policies/partner", f"{PREFIX}/policies/partner/origins", origin="*"
    )
    assert response.status_code == 400
    assert "cannot be used with credentials" in field_errors(response.text, "origin")[0]


def test_add_origin_without_csrf_token_changes_nothing(app: Flask, client: FlaskClient) -> None:
    before = revision(app)
    for drop, token in ((("csrf_token",), None), ((), "forged")):
        values: dict[str, Any] = {"origin": "https://evil.example"}
        if token:
            values["csrf_token"] = token
        response = submit(
            client,
            f"{PREFIX}/policies/partner",
            f"{PREFIX}/policies/partner/origins",
            drop=drop,
            **values,
        )
        assert response.status_code == 400
        assert "security token" in form_level_errors(response.text)[0]
        assert input_value(response.text, "origin") == "https://evil.example"
    assert revision(app) == before
    assert "https://evil.example" not in origins_of(app)


def test_add_origin_on_a_stale_version_is_refused_and_overwrites_nothing(
    app: Flask, client: FlaskClient
) -> None:
    page = client.get(f"{PREFIX}/policies/partner").text
    data = form_for(page, f"{PREFIX}/policies/partner/origins").fields
    # Another operator changes the policy after alice opened the page.
    in_app(app, lambda s: s.remove_origin("partner", "https://a.example"), actor="bob")
    data.update(origin="https://c.example", note="alice's note")
    response = client.post(f"{PREFIX}/policies/partner/origins", data=data)
    assert response.status_code == 409
    message = form_level_errors(response.text)[0]
    assert "someone changed policy 'partner'" in message
    assert "Nothing was overwritten" in message
    assert "removed origin https://a.example from partner (by bob" in message
    assert input_value(response.text, "origin") == "https://c.example"
    assert input_value(response.text, "note") == "alice's note"
    assert origins_of(app) == ["https://b.example"]


def test_add_origin_without_a_version_is_refused(app: Flask, client: FlaskClient) -> None:
    response = submit(
        client,
        f"{PREFIX}/policies/partner",
        f"{PREFIX}/policies/partner/origins",
        drop=("version",),
        origin="https://c.example",
    )
    assert response.status_code == 400
    assert "reload the page" in form_level_errors(response.text)[0]
    assert "https://c.example" not in origins_of(app)


def test_edit_link_opens_the_rule_s_own_form(client: FlaskClient) -> None:
    page = client.get(f"{PREFIX}/policies/partner").text
    assert f'href="{PREFIX}/policies/partner/origins/edit?origin=https://b.example"' in page
    edit = client.get(
        f"{PREFIX}/policies/partner/origins/edit", query_string={"origin": "https://b.example"}
    ).text
    assert input_value(edit, "note") == "ticket 7"
    assert input_value(edit, "expires") == ""
    # The add form is for adding only: it is never filled with a stored rule.
    add = client.get(f"{PREFIX}/policies/partner", query_string={"origin": "https://b.example"})
    assert input_value(add.text, "origin") == ""


def test_changing_a_note_through_the_edit_form(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/origins/edit?origin=https://b.example"
    response = submit(client, url, f"{PREFIX}/policies/partner/origins/edit", note="ticket 8")
    assert response.status_code == 302
    assert {"origin": "https://b.example", "note": "ticket 8"} in stored(app)["origins"]
    assert last_event(app)[2] == (
        "changed origin https://b.example on partner: note 'ticket 7' -> 'ticket 8'"
    )


# --- new policy and settings -------------------------------------------------------------------


def test_new_policy_is_created_with_its_origins(app: Flask, client: FlaskClient) -> None:
    response = submit(
        client,
        f"{PREFIX}/new",
        f"{PREFIX}/new",
        name="files",
        path="/files/*.json",
        description="Static files",
        origins="https://x.example\n\nhttp://localhost:*\n",
        methods="get head",
        allow_headers="",
        credentials=True,
        max_age="600",
    )
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == f"{PREFIX}/policies/files"
    document = stored(app, "files")
    assert document["origins"] == ["http://localhost:*", "https://x.example"]
    assert document["methods"] == ["GET", "HEAD"]
    assert document["allow_headers"] == []
    assert document["credentials"] is True
    assert document["max_age"] == 600
    assert last_event(app, "files")[:2] == ("alice", "policy.create")


@pytest.mark.parametrize(
    ("values", "field_id", "message"),
    [
        ({"name": "Bad Name"}, "name", "not a valid name"),
        ({"path": "api"}, "path", ""),
        ({"path": "/api/**"}, "path", "policy 'partner' already covers"),
        ({"origins": "https://ok.example\nhttps://bad.example/x"}, "origins", "line 2: "),
        ({"methods": "GET, G@T"}, "methods", "not an HTTP method"),
        ({"review_every_days": "0"}, "review_every_days", "from 1 to 3650"),
        ({"review_every_days": "often"}, "review_every_days", "whole number"),
        ({"max_age": "-5"}, "max_age", "0 or more"),
        ({"priority": "high"}, "priority", "whole number"),
    ],
)
def test_new_policy_errors_beside_fields_input_kept(
    app: Flask, client: FlaskClient, values: dict[str, str], field_id: str, message: str
) -> None:
    before = revision(app)
    typed = {"name": "files", "path": "/files/**", "description": XSS, **values}
    response = submit(client, f"{PREFIX}/new", f"{PREFIX}/new", **typed)
    assert response.status_code == 400
    errors = field_errors(response.text, field_id)
    assert errors
    assert message in errors[0], errors
    assert input_value(response.text, "name") == typed["name"]
    assert str(escape(XSS)) in response.text  # the description, kept and escaped
    assert XSS not in response.text
    assert revision(app) == before


def test_new_policy_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    response = submit(
        client,
        f"{PREFIX}/new",
        f"{PREFIX}/new",
        drop=("csrf_token",),
        name="files",
        path="/files/**",
    )
    assert response.status_code == 400
    assert "security token" in form_level_errors(response.text)[0]
    assert in_app(app, lambda s: [p.name for p in s.policies()]) == ["partner"]


def test_edit_settings_saves_and_audits(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    page = client.get(url).text
    assert form_for(page, url).fields["methods"] == "GET, POST"
    response = submit(client, url, url, methods="GET, POST, DELETE", expose_headers="X-Request-Id")
    assert response.status_code == 302
    assert flashes(client.get(response.headers["Location"]).text) == ["Saved."]
    document = stored(app)
    assert document["methods"] == ["GET", "POST", "DELETE"]
    assert document["expose_headers"] == ["X-Request-Id"]
    assert document["origins"][0] == "https://a.example"  # rules untouched
    actor, action, summary = last_event(app)
    assert (actor, action) == ("alice", "policy.update")
    assert "methods" in summary


def test_edit_settings_renames(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    response = submit(client, url, url, name="partner-v2")
    assert response.headers["Location"] == f"{PREFIX}/policies/partner-v2"
    assert stored(app, "partner-v2")["path"] == "/api/**"


def test_edit_settings_without_change_says_so(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    before = revision(app)
    response = submit(client, url, url)
    assert flashes(client.get(response.headers["Location"]).text) == [
        "Nothing to save: the settings are as they were."
    ]
    assert revision(app) == before


def test_edit_settings_errors_keep_input(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    response = submit(client, url, url, path="api/**", methods="GET, PATCH", credentials=True)
    assert response.status_code == 400
    assert field_errors(response.text, "path")
    assert input_value(response.text, "path") == "api/**"
    assert form_for(response.text, url).fields["methods"] == "GET, PATCH"
    checkbox = re.search(r'<input[^>]*id="credentials"[^>]*>', response.text)
    assert checkbox is not None
    assert " checked" in checkbox.group(0)
    assert stored(app)["methods"] == ["GET", "POST"]


def test_edit_settings_on_a_stale_version_overwrites_nothing(
    app: Flask, client: FlaskClient
) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    data = form_for(client.get(url).text, url).fields
    in_app(app, lambda s: s.update_policy("partner", {"methods": ["PUT"]}), actor="bob")
    data["methods"] = "GET, POST, PATCH"
    response = client.post(url, data=data)
    assert response.status_code == 409
    assert "Nothing was overwritten" in form_level_errors(response.text)[0]
    assert form_for(response.text, url).fields["methods"] == "GET, POST, PATCH"
    assert stored(app)["methods"] == ["PUT"]


def test_edit_settings_without_csrf_token(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    response = submit(client, url, url, drop=("csrf_token",), methods="DELETE")
    assert response.status_code == 400
    assert stored(app)["methods"] == ["GET", "POST"]


# --- confirmed changes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "check"),
    [
        ("disable", lambda doc: doc is not None and doc["enabled"] is False),
        ("delete", lambda doc: doc is None),
    ],
)
def test_confirmed_changes(
    app: Flask, client: FlaskClient, action: str, check: Any, cors: CorsAdmin
) -> None:
    url = f"{PREFIX}/policies/partner/{action}"
    before = revision(app)
    page = client.get(url)
    assert page.status_code == 200
    assert "https://a.example" in page.text  # the confirmation names what is at stake
    assert revision(app) == before  # a GET changes nothing
    response = submit(client, url, url)
    assert response.status_code == 302
    with app.app_context():
        names = [p.name for p in cors.store("t", app).policies()]
    document = stored(app) if "partner" in names else None
    assert check(document)
    expected_action = {"disable": "policy.update", "delete": "policy.delete"}[action]
    assert last_event(app)[:2] == ("alice", expected_action)
    said = flashes(client.get(response.headers["Location"]).text)
    disabled = "Saved: policy partner is disabled."
    expected = {"disable": disabled, "delete": "Deleted policy partner."}
    assert said == [expected[action]]


def test_enable_after_disable(app: Flask, client: FlaskClient) -> None:
    in_app(app, lambda s: s.set_enabled("partner", False))
    assert "Enable…" in client.get(f"{PREFIX}/policies/partner").text
    url = f"{PREFIX}/policies/partner/enable"
    assert submit(client, url, url).status_code == 302
    assert stored(app)["enabled"] is True


@pytest.mark.parametrize("action", ["enable", "disable", "delete"])
def test_confirmed_changes_refuse_stale_versions_and_missing_tokens(
    app: Flask, client: FlaskClient, action: str
) -> None:
    url = f"{PREFIX}/policies/partner/{action}"
    no_token = submit(client, url, url, drop=("csrf_token",))
    assert no_token.status_code == 400
    data = form_for(client.get(url).text, url).fields
    in_app(app, lambda s: s.add_origin("partner", "https://c.example"))
    stale = client.post(url, data=data)
    assert stale.status_code == 409
    assert "Nothing was overwritten" in form_level_errors(stale.text)[0]
    document = stored(app)
    assert document["enabled"] is True
    assert last_event(app)[:2] == ("bob", "origin.add")


def test_remove_origin_after_confirmation(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/origins/remove?origin=https://b.example"
    page = client.get(url)
    assert "ticket 7" in page.text
    assert origins_of(app) == ["https://a.example", "https://b.example"]
    response = submit(client, url, f"{PREFIX}/policies/partner/origins/remove")
    assert response.status_code == 302
    assert origins_of(app) == ["https://a.example"]
    assert last_event(app) == (
        "alice",
        "origin.remove",
        "removed origin https://b.example from partner",
    )


def test_remove_origin_refusals(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/origins/remove?origin=https://b.example"
    action = f"{PREFIX}/policies/partner/origins/remove"
    assert (
        client.get(f"{PREFIX}/policies/partner/origins/remove?origin=https://z.example").status_code
        == 404
    )
    assert submit(client, url, action, drop=("csrf_token",)).status_code == 400
    data = form_for(client.get(url).text, action).fields
    in_app(app, lambda s: s.add_origin("partner", "https://c.example"))
    assert client.post(action, data=data).status_code == 409
    assert "https://b.example" in origins_of(app)


# --- review --------------------------------------------------------------------------------------


def _age(app: Flask, days: int) -> None:
    """Make the policy and its rules look ``days`` old."""
    past = utcnow() - timedelta(days=days)
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        session.execute(sa.update(Policy).values(created_at=past))
        session.execute(sa.update(OriginRuleRow).values(created_at=past))
        session.commit()


def test_review_page_lists_what_needs_a_decision(app: Flask, client: FlaskClient) -> None:
    _age(app, 120)
    in_app(app, lambda s: s.add_origin("partner", "null", note="sandboxed widget"))
    in_app(
        app,
        lambda s: s.add_origin(
            "partner", "https://soon.example", expires=utcnow() + timedelta(days=3)
        ),
    )
    page = client.get(f"{PREFIX}/review").text
    assert "Reviews due" in page
    assert "never" in page
    assert "https://soon.example" in page
    assert ">expiring</span>" in page
    assert "Not seen for 30 days" in page
    stale_section = page.split('id="stale"')[1].split('id="risky"')[0]
    assert "https://a.example" in stale_section
    assert "https://b.example" in stale_section
    assert "https://soon.example" not in stale_section  # just added
    risky = page.split('id="risky"')[1]
    assert "null" in risky
    assert ">null</span>" in risky
    assert 'name="back" value="review"' in page


def test_review_page_all_clear(app: Flask) -> None:
    client = logged_in_client(app)
    assert "Nothing to review yet" in client.get(f"{PREFIX}/review").text
    in_app(app, lambda s: s.create_policy({"name": "p", "path": "/p", "origins": []}))
    assert "All clear" in client.get(f"{PREFIX}/review").text


def test_stale_after_days_is_configurable(
    app: Flask, client: FlaskClient, database_url: str
) -> None:
    _age(app, 10)
    assert "https://a.example" not in client.get(f"{PREFIX}/review").text.split('id="stale"')[1]
    # The same database, served by an app configured with a shorter threshold.
    seven = make_app(database_url, CORSADMIN_STALE_AFTER_DAYS=7)
    try:
        seven_client = seven.test_client()
        assert log_in(seven_client).status_code == 302
        page = seven_client.get(f"{PREFIX}/review").text
    finally:
        close_app(seven)
    assert "Not seen for 7 days" in page
    assert "https://a.example" in page.split('id="stale"')[1]


def test_mark_reviewed_from_the_review_page(
    app: Flask, client: FlaskClient, cors: CorsAdmin
) -> None:
    _age(app, 120)
    response = submit(
        client,
        f"{PREFIX}/review",
        f"{PREFIX}/policies/partner/review",
        comment="checked with Acme, still used",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PREFIX}/review"
    with app.app_context():
        policy = cors.store("t", app).policy("partner")
        assert policy.reviewed_by == "alice"
        assert policy.reviewed_at is not None
    assert last_event(app) == (
        "alice",
        "policy.review",
        "reviewed partner: checked with Acme, still used",
    )
    assert "No review is due." in client.get(f"{PREFIX}/review").text


def test_mark_reviewed_refusals(app: Flask, client: FlaskClient, cors: CorsAdmin) -> None:
    url, action = f"{PREFIX}/policies/partner", f"{PREFIX}/policies/partner/review"
    assert submit(client, url, action, drop=("csrf_token",), comment="x").status_code == 400
    data = form_for(client.get(url).text, action).fields
    in_app(app, lambda s: s.add_origin("partner", "https://c.example"))
    data["comment"] = "looked at it"
    response = client.post(action, data=data)
    assert response.status_code == 409
    assert input_value(response.text, "comment") == "looked at it"
    with app.app_context():
        assert cors.store("t", app).policy("partner").reviewed_at is None


# --- usage, refused origins -----------------------------------------------------------------------


def test_last_seen_comes_from_counted_requests(app: Flask, client: FlaskClient) -> None:
    client.get("/api/status", headers={"Origin": "https://a.example"})
    client.get("/api/status", headers={"Origin": "https://refused.example"})
    assert CorsAdmin.state(app).flush_usage(force=True) == 2
    page = client.get(f"{PREFIX}/policies/partner").text
    assert "just now" in page
    refused = client.get(f"{PREFIX}/refused").text
    assert "https://refused.example" in refused
    assert "https://a.example" not in refused


def _refused(app: Flask, origin: str, count: int = 3, policy: str = "partner") -> None:
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        now = utcnow()
        session.add(
            OriginUsage(
                policy_name=policy,
                origin=origin,
                rule=None,
                allowed=False,
                count=count,
                first_seen=now - timedelta(days=2),
                last_seen=now - timedelta(hours=1),
            )
        )
        session.commit()


def test_refused_origins_report(app: Flask, client: FlaskClient) -> None:
    assert "No refused origins" in client.get(f"{PREFIX}/refused").text
    _refused(app, "https://partner-new.example", count=17)
    _refused(app, "https://a.example", count=2)  # refused once, allowed since
    _refused(app, "https://old.example", policy="deleted-policy")
    page = client.get(f"{PREFIX}/refused").text
    assert "https://partner-new.example" in page
    assert ">17</td>" in page
    assert "2 days ago" in page
    assert "1 hour ago" in page
    assert "now allowed" in page
    assert ">deleted</span>" in page
    assert page.count(">Allow…</a>") == 1
    filtered = client.get(f"{PREFIX}/refused", query_string={"policy": "deleted-policy"}).text
    assert "https://old.example" in filtered
    assert "https://partner-new.example" not in filtered


def test_allow_a_refused_origin_after_seeing_exactly_what_changes(
    app: Flask, client: FlaskClient
) -> None:
    _refused(app, "https://partner-new.example", count=17)
    url = f"{PREFIX}/refused/allow?policy=partner&origin=https://partner-new.example"
    before = revision(app)
    page = client.get(url).text
    assert revision(app) == before  # a GET changes nothing
    assert "Origin rules now (2)" in page
    assert "After (3)" in page
    assert "refused 17 times" in page
    assert "corsadmin origin add partner https://partner-new.example --note" in page
    response = submit(client, url, f"{PREFIX}/refused/allow")
    assert response.status_code == 302
    assert "https://partner-new.example" in origins_of(app)
    assert last_event(app)[:2] == ("alice", "origin.add")
    assert "now allowed" in client.get(f"{PREFIX}/refused").text


def test_allow_refused_refusals(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/refused/allow?policy=partner&origin=https://partner-new.example"
    action = f"{PREFIX}/refused/allow"
    assert submit(client, url, action, drop=("csrf_token",)).status_code == 400
    data = form_for(client.get(url).text, action).fields
    in_app(app, lambda s: s.add_origin("partner", "https://c.example"))
    response = client.post(action, data=data)
    assert response.status_code == 409
    assert "https://partner-new.example" not in origins_of(app)
    bad = client.get(f"{PREFIX}/refused/allow?policy=partner&origin=https://x.example/path")
    assert "cannot be allowed as it is" in bad.text
    assert '<button type="submit" class="button">Allow' not in bad.text


# --- audit --------------------------------------------------------------------------------------


def test_audit_log_shows_who_when_before_and_after_with_filters(
    app: Flask, client: FlaskClient
) -> None:
    in_app(app, lambda s: s.update_policy("partner", {"methods": ["GET"]}), actor="bob")
    in_app(
        app,
        lambda s: s.create_policy({"name": "other", "path": "/o", "origins": []}),
        actor="carol",
    )
    page = client.get(f"{PREFIX}/audit").text
    assert page.index("created policy other") < page.index("updated partner")
    assert (
        '<th scope="row">methods</th><td class="before">GET, POST</td><td class="after">GET</td>'
        in page
    )
    by_bob = client.get(f"{PREFIX}/audit", query_string={"actor": "bob"}).text
    assert "updated partner" in by_bob
    assert "created policy other" not in by_bob
    by_policy = client.get(f"{PREFIX}/audit", query_string={"policy": "other"}).text
    assert "created policy other" in by_policy
    assert "updated partner" not in by_policy
    nothing = client.get(f"{PREFIX}/audit", query_string={"actor": "nobody"}).text
    assert "No changes match this filter" in nothing


def test_audit_log_pages(app: Flask, client: FlaskClient, cors: CorsAdmin) -> None:
    from corsadmin.admin import queries

    with app.app_context():
        store = cors.store("bob", app)
        for i in range(5):
            store.add_origin("partner", f"https://n{i}.example")
        session = CorsAdmin.state(app).db.session
        everything = queries.audit_page(session, size=100).events
        assert len(everything) == 7  # alice added, the policy created, 5 origins added
        first = queries.audit_page(session, size=4)
        assert len(first.events) == 4
        assert first.older is not None
        second = queries.audit_page(session, size=4, before=first.older)
        assert [e.id for e in second.events] == sorted(
            {e.id for e in everything} - {e.id for e in first.events},
            reverse=True,
        )
        assert second.older is None


# --- check a request ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "path", "method", "headers", "verdict"),
    [
        ("https://a.example", "/api/items/7", "GET", "", "Allowed"),
        ("https://a.example", "/api/items/7", "PUT", "X-Trace", "Refused"),
        ("https://evil.example", "/api/items/7", "GET", "", "Refused"),
        ("https://a.example", "/elsewhere", "GET", "", "Refused"),
    ],
)
def test_check_a_request_explains_like_the_cli(
    app: Flask,
    client: FlaskClient,
    origin: str,
    path: str,
    method: str,
    headers: str,
    verdict: str,
) -> None:
    page = client.get(
        f"{PREFIX}/check",
        query_string={"origin": origin, "path": path, "method": method, "headers": headers},
    ).text
    assert f'<h2 id="verdict-h">{verdict}</h2>' in page
    with app.app_context():
        explanation = explain(
            load_snapshot(CorsAdmin.state(app).db.engine),
            origin,
            path,
            method,
            [h for h in [headers] if h],
        )
    for line in explanation.lines():
        assert str(escape(line)) in page
    args = ["corsadmin", "check", origin, path, "--method", method]
    if headers:
        args += ["--header", headers]
    cli = app.test_cli_runner().invoke(args=args)
    assert cli.output.strip().splitlines() == explanation.lines()


def test_check_a_request_validates_its_inputs(client: FlaskClient) -> None:
    page = client.get(
        f"{PREFIX}/check", query_string={"origin": "https://a.example", "path": "api"}
    ).text
    assert "must start with" in field_errors(page, "path")[0]
    assert "verdict-h" not in page
    assert "verdict-h" not in client.get(f"{PREFIX}/check").text


# --- escaping -------------------------------------------------------------------------------------


def test_everything_an_operator_typed_is_escaped(app: Flask, client: FlaskClient) -> None:
    in_app(app, lambda s: s.update_policy("partner", {"description": XSS}))
    submit(
        client,
        f"{PREFIX}/policies/partner",
        f"{PREFIX}/policies/partner/origins",
        origin="https://c.example",
        note=XSS,
    )
    submit(client, f"{PREFIX}/policies/partner", f"{PREFIX}/policies/partner/review", comment=XSS)
    pages = [
        client.get(f"{PREFIX}/").text,
        client.get(f"{PREFIX}/", query_string={"q": XSS}).text,
        client.get(f"{PREFIX}/policies/partner").text,
        client.get(f"{PREFIX}/audit").text,
        client.get(
            f"{PREFIX}/check", query_string={"origin": XSS, "path": "/api/x", "headers": XSS}
        ).text,
        client.get(
            f"{PREFIX}/policies/partner/origins/remove",
            query_string={"origin": "https://c.example"},
        ).text,
    ]
    for page in pages:
        assert "<script>" not in page
        assert "<img src=x" not in page
    for page in pages[:5]:
        assert str(escape(XSS)) in page


# --- issue 7: "Add" never edits; "Edit" has its own form ------------------------------------

EDIT = f"{PREFIX}/policies/partner/origins/edit"


def _temporary_b(app: Flask) -> None:
    in_app(
        app,
        lambda s: s.add_origin(
            "partner", "https://b.example", note="ticket 7", expires="2099-01-01"
        ),
    )


def test_adding_an_origin_the_policy_has_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    _temporary_b(app)
    before = revision(app)
    response = submit(
        client,
        f"{PREFIX}/policies/partner",
        f"{PREFIX}/policies/partner/origins",
        origin="HTTPS://B.example:443",
        note="",
        expires="",
    )
    assert response.status_code == 400
    errors = field_errors(response.text, "origin")
    assert errors == [
        "https://b.example is allowed on partner already; "
        "change its note or expiry instead of adding it again"
    ]
    assert f'href="{EDIT}?origin=https://b.example"' in response.text
    assert input_value(response.text, "origin") == "HTTPS://B.example:443"
    assert revision(app) == before
    assert {
        "origin": "https://b.example",
        "note": "ticket 7",
        "expires": "2099-01-01T00:00:00Z",
    } in stored(app)["origins"]


@pytest.mark.parametrize(
    ("values", "expected", "said"),
    [
        (
            {"expires": "2100-02-01"},
            {"origin": "https://b.example", "note": "ticket 7", "expires": "2100-02-01T00:00:00Z"},
            "expires 2099-01-01T00:00:00Z -> 2100-02-01T00:00:00Z",
        ),
        (
            {"expires": ""},
            {"origin": "https://b.example", "note": "ticket 7"},
            "expires 2099-01-01T00:00:00Z -> never",
        ),
        (
            {"note": ""},
            {"origin": "https://b.example", "expires": "2099-01-01T00:00:00Z"},
            "note 'ticket 7' -> ''",
        ),
    ],
    ids=["new-expiry", "never-expires", "no-note"],
)
def test_the_edit_form_shows_and_changes_note_and_expiry(
    app: Flask, client: FlaskClient, values: dict[str, str], expected: dict[str, str], said: str
) -> None:
    _temporary_b(app)
    url = f"{EDIT}?origin=https://b.example"
    page = client.get(url).text
    assert input_value(page, "note") == "ticket 7"
    assert input_value(page, "expires") == "2099-01-01T00:00:00Z"
    response = submit(client, url, EDIT, **values)
    assert response.status_code == 302
    assert flashes(client.get(response.headers["Location"]).text) == [
        f"Saved: https://b.example on partner: {said}."
    ]
    assert expected in stored(app)["origins"]
    assert last_event(app) == (
        "alice",
        "origin.add",
        f"changed origin https://b.example on partner: {said}",
    )


def test_the_edit_form_without_changes_saves_nothing(app: Flask, client: FlaskClient) -> None:
    _temporary_b(app)
    before = revision(app)
    response = submit(client, f"{EDIT}?origin=https://b.example", EDIT)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert flashes(page) == ["Nothing to save: https://b.example on partner is as it was."]
    assert revision(app) == before


def test_the_edit_form_refuses_bad_input_keeping_it(app: Flask, client: FlaskClient) -> None:
    _temporary_b(app)
    before = revision(app)
    response = submit(
        client, f"{EDIT}?origin=https://b.example", EDIT, note="kept", expires="2001-01-01"
    )
    assert response.status_code == 400
    assert field_errors(response.text, "expires") == ["is in the past"]
    assert input_value(response.text, "note") == "kept"
    assert input_value(response.text, "expires") == "2001-01-01"
    assert revision(app) == before


def test_the_edit_form_needs_csrf_and_a_current_version(app: Flask, client: FlaskClient) -> None:
    _temporary_b(app)
    url = f"{EDIT}?origin=https://b.example"
    before = revision(app)
    no_token = submit(client, url, EDIT, drop=("csrf_token",), note="x")
    assert no_token.status_code == 400
    assert "security token" in form_level_errors(no_token.text)[0]
    no_version = submit(client, url, EDIT, drop=("version",), note="x")
    assert no_version.status_code == 400
    assert "reload the page" in form_level_errors(no_version.text)[0]
    assert revision(app) == before
    page = client.get(url).text
    data = form_for(page, EDIT).fields
    in_app(app, lambda s: s.add_origin("partner", "https://b.example", note="bob's"), actor="bob")
    data.update(note="alice's")
    stale = client.post(url, data=data)
    assert stale.status_code == 409
    assert "someone changed policy 'partner'" in form_level_errors(stale.text)[0]
    assert input_value(stale.text, "note") == "alice's"
    assert {
        "origin": "https://b.example",
        "note": "bob's",
        "expires": "2099-01-01T00:00:00Z",
    } in stored(app)["origins"]


def test_the_edit_form_never_adds_a_rule(app: Flask, client: FlaskClient) -> None:
    assert client.get(EDIT, query_string={"origin": "https://z.example"}).status_code == 404
    page = client.get(f"{EDIT}?origin=https://b.example").text
    data = form_for(page, EDIT).fields
    in_app(app, lambda s: s.remove_origin("partner", "https://b.example"))
    data.update(version=str(in_app(app, lambda s: s.policy("partner").version)), note="back?")
    response = client.post(f"{EDIT}?origin=https://b.example", data=data)
    assert response.status_code == 404
    assert origins_of(app) == ["https://a.example"]
