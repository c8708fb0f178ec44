"""Issue 13, the admin UI's wording and forms: due dates, plurals, change summaries
without Python reprs, every field's error on one submit, methods as checkboxes, the
"check a request" reasons. On SQLite and PostgreSQL (the pure parts without a database)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin
from corsadmin.admin.blueprint import Formatting
from corsadmin.db.models import OriginUsage
from corsadmin.engine.review import PolicyFacts, review_status
from corsadmin.errors import ValidationError
from corsadmin.limits import MAX_EXAMPLE_METHOD, MAX_EXAMPLE_PATH
from corsadmin.policy.document import shown_value
from corsadmin.policy.fields import STANDARD_METHODS
from corsadmin.policy.spec import validate_policy
from tests.support.admin import PREFIX, field_errors, form_for, in_app, partner_client, submit
from tests.support.admin import forms as all_forms

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(app: Flask, cors: CorsAdmin) -> FlaskClient:
    return partner_client(app, cors)


# --- wording ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reviewed_ago", "days_left"),
    [
        (timedelta(minutes=1), 90),  # right after a review: the whole interval
        (timedelta(hours=23), 90),
        (timedelta(days=1, minutes=1), 89),
        (timedelta(days=89, hours=23), 1),
        (timedelta(days=90), 0),
    ],
)
def test_due_in_counts_a_part_of_a_day_as_a_day(reviewed_ago: timedelta, days_left: int) -> None:
    facts = PolicyFacts(
        name="p",
        path="/p",
        created_at=NOW - timedelta(days=400),
        reviewed_at=NOW - reviewed_ago,
        reviewed_by="alice",
        review_every_days=90,
    )
    assert review_status(facts, NOW).days_left(NOW) == days_left


@pytest.mark.parametrize(
    ("n", "args", "text"),
    [
        (1, ("day",), "1 day"),
        (0, ("day",), "0 days"),
        (2, ("time",), "2 times"),
        (1200, ("request",), "1,200 requests"),
        (1, ("policy", "policies"), "1 policy"),
        (3, ("policy", "policies"), "3 policies"),
    ],
)
def test_counts_agree_with_their_noun(n: int, args: tuple[str, ...], text: str) -> None:
    assert Formatting.count(n, *args) == text


def test_pages_say_1_day_not_1_days(app: Flask, client: FlaskClient) -> None:
    in_app(app, lambda s: s.update_policy("partner", {"review_every_days": 1}))
    page = client.get(f"{PREFIX}/policies/partner").text
    assert "every 1 day." in page
    assert "1 days" not in page
    assert "due in 1 day<" in page


def test_review_page_does_not_say_never_seen_rules_were_used(
    app: Flask, client: FlaskClient
) -> None:
    page = client.get(f"{PREFIX}/review").text
    stale = page.split('id="stale"')[1].split('id="risky"')[0]
    assert "was used within" not in stale
    assert "No rule of an enabled policy went 30 days without a matching request" in stale
    assert "never seen counts from when it was added" in stale


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (["GET", "POST"], "GET, POST"),
        ([], "(none)"),
        ("/api/**", "'/api/**'"),
        (None, "None"),
        (60, "60"),
    ],
)
def test_summary_values_are_not_python_reprs(value: object, text: str) -> None:
    assert shown_value(value) == text


def test_audit_line_and_conflict_banner_list_methods_plainly(
    app: Flask, client: FlaskClient
) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    opened = client.get(url)  # the operator opens the form, then someone saves first
    assert opened.status_code == 200
    in_app(app, lambda s: s.update_policy("partner", {"methods": ["GET"]}))
    summary = in_app(app, lambda s: s.audit_events(policy="partner")[0].summary)
    assert summary == "updated partner: methods: GET, POST -> GET"
    assert "methods: GET, POST -&gt; GET" in client.get(f"{PREFIX}/audit").text
    data = dict(form_for(opened.text, url).fields)
    data["description"] = "late"
    banner = client.post(url, data=data)
    assert banner.status_code == 409
    assert "Last change: updated partner: methods: GET, POST -&gt; GET" in banner.text
    assert "[&#39;" not in banner.text
    assert "['" not in banner.text


# --- every field's error ----------------------------------------------------------------


def test_one_submit_shows_every_bad_field(app: Flask, client: FlaskClient) -> None:
    response = submit(
        client,
        f"{PREFIX}/new",
        f"{PREFIX}/new",
        name="Bad Name",
        path="api",
        max_age="-5",
        priority="high",
    )
    assert response.status_code == 400
    for field_id in ("name", "path", "max_age", "priority"):
        assert field_errors(response.text, field_id), field_id


# --- methods as checkboxes ---------------------------------------------------------------


def _method_boxes(page: str) -> dict[str, bool]:
    """The methods checkboxes on a page: value -> checked."""
    boxes = re.findall(r'<input[^>]*name="methods"[^>]*>', page)
    assert boxes, "no methods checkboxes"
    found = {}
    for box in boxes:
        assert 'type="checkbox"' in box
        value = re.search(r'value="([^"]*)"', box)
        assert value is not None
        found[value.group(1)] = " checked" in box
    return found


def test_the_policy_form_offers_the_standard_methods_as_checkboxes(
    app: Flask, client: FlaskClient
) -> None:
    boxes = _method_boxes(client.get(f"{PREFIX}/policies/partner/edit").text)
    assert list(boxes) == list(STANDARD_METHODS)
    assert [m for m, on in boxes.items() if on] == ["GET", "POST"]
    new = _method_boxes(client.get(f"{PREFIX}/new").text)
    assert all(new.values())  # a new policy starts from the defaults


def test_ticked_methods_are_saved(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    data: dict[str, Any] = dict(form_for(client.get(url).text, url).fields)
    data["methods"] = ["GET", "PUT", "DELETE"]  # what a browser posts: one value a box
    response = client.post(url, data=data)
    assert response.status_code == 302, response.text
    assert in_app(app, lambda s: s.spec("partner").to_document()["methods"]) == [
        "GET",
        "PUT",
        "DELETE",
    ]


def test_a_method_set_elsewhere_is_shown_and_kept(app: Flask, client: FlaskClient) -> None:
    in_app(app, lambda s: s.update_policy("partner", {"methods": ["GET", "PROPFIND"]}))
    url = f"{PREFIX}/policies/partner/edit"
    boxes = _method_boxes(client.get(url).text)
    assert boxes["PROPFIND"] is True
    assert submit(client, url, url, description="kept").status_code == 302
    assert in_app(app, lambda s: s.spec("partner").methods) == ("GET", "PROPFIND")


def test_no_method_ticked_is_an_error_beside_the_methods(app: Flask, client: FlaskClient) -> None:
    url = f"{PREFIX}/policies/partner/edit"
    data = dict(form_for(client.get(url).text, url).fields)
    del data["methods"]
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert field_errors(response.text, "methods") == ["must name at least one method"]


@pytest.mark.parametrize("method", ["CONNECT", "trace", "TRACK"])
def test_forbidden_methods_are_refused_by_the_validation_layer(method: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_policy({"name": "p", "path": "/p", "origins": [], "methods": ["GET", method]})
    (problem,) = caught.value.errors
    assert problem.field == "methods[1]"
    assert "forbidden method" in problem.message


@pytest.mark.parametrize("method", ["FETCH", "PROPFIND", "purge"])
def test_other_token_methods_stay_valid(method: str) -> None:
    spec = validate_policy({"name": "p", "path": "/p", "origins": [], "methods": [method]})
    assert spec.methods == (method.upper(),)


# --- check a request --------------------------------------------------------------------


def _reasons(page: str) -> list[str]:
    block = re.search(r'<ul class="problems">(.*?)</ul>', page, re.S)
    assert block is not None, "no list of reasons"
    return [html.unescape(r) for r in re.findall(r"<li>(.*?)</li>", block.group(1), re.S)]


def test_check_lists_every_reason_a_request_fails(client: FlaskClient) -> None:
    page = client.get(
        f"{PREFIX}/check",
        query_string={
            "origin": "https://new.example",
            "path": "/api/items",
            "method": "DELETE",
            "headers": "Authorization",  # not covered by the policy's '*'
            "private_network": "y",
        },
    ).text
    assert "refused, for 4 reasons:" in page
    reasons = _reasons(page)
    assert len(reasons) == 4, reasons
    assert reasons[0] == (
        "The origin is not allowed: no origin rule of policy 'partner' matches "
        "'https://new.example'"
    )
    assert reasons[1:] == [
        "The method DELETE is not allowed",
        "The header(s) Authorization are not allowed",
        "Private network access is not allowed",
    ]


def test_check_of_an_allowed_origin_lists_only_the_preflight_problems(
    client: FlaskClient,
) -> None:
    page = client.get(
        f"{PREFIX}/check",
        query_string={"origin": "https://a.example", "path": "/api/x", "method": "PATCH"},
    ).text
    assert _reasons(page) == ["The method PATCH is not allowed"]
    assert "Allow this origin" not in page


def test_a_refused_check_offers_allow_with_the_refused_origins_confirmation(
    app: Flask, client: FlaskClient
) -> None:
    page = client.get(
        f"{PREFIX}/check", query_string={"origin": "https://new.example", "path": "/api/x"}
    ).text
    link = re.search(r'<a class="button-secondary" href="([^"]+)">Allow this origin…</a>', page)
    assert link is not None
    url = html.unescape(link.group(1))
    assert url.startswith(f"{PREFIX}/refused/allow?")
    confirmation = client.get(url).text
    assert 'aria-label="Breadcrumb"><a href="' in confirmation
    crumb = re.search(r'Breadcrumb"><a href="([^"]+)">Check a request</a>', confirmation)
    assert crumb is not None  # and Cancel: back to this check, not to the refused report
    check_url = html.unescape(crumb.group(1))
    assert check_url.startswith(f"{PREFIX}/check?")
    assert "origin=https" in check_url
    response = submit(client, url, f"{PREFIX}/refused/allow", note="asked in ticket 9")
    assert response.status_code == 302, response.text
    assert response.location == check_url  # the same check, now answered "allowed"
    origins = in_app(app, lambda s: s.spec("partner").to_document())["origins"]
    assert {"origin": "https://new.example", "note": "asked in ticket 9"} in origins
    again = client.get(response.location).text
    assert "Allow this origin" not in again
    assert "The origin is not allowed" not in again


@pytest.mark.parametrize(
    "back",
    [
        "https://evil.example/admin/check",
        "//evil.example" + PREFIX + "/check",
        PREFIX + "/policies",
        "/elsewhere/check",
        PREFIX + "/check\\@evil.example",
        PREFIX + "/check?" + "x" * 9000,
    ],
)
def test_allow_returns_only_to_this_admins_check_page(
    app: Flask, client: FlaskClient, back: str
) -> None:
    url = f"{PREFIX}/refused/allow?policy=partner&origin=https://new.example"
    url += "&back=" + quote(back)
    page = client.get(url).text
    assert 'name="back"' not in page
    assert "evil" not in page
    assert "x" * 100 not in page
    response = submit(client, url, f"{PREFIX}/refused/allow")
    assert response.status_code == 302, response.text
    assert response.location == f"{PREFIX}/refused"


def test_a_check_refused_for_a_pattern_like_origin_offers_no_allow(client: FlaskClient) -> None:
    page = client.get(
        f"{PREFIX}/check", query_string={"origin": "https://*.example", "path": "/api/x"}
    ).text
    assert "Allow this origin" not in page


# --- refused origins: an example call, and dismissing noise -----------------------------


def _refuse(app: Flask, origin: str, path: str = "/api/items/7", method: str = "DELETE") -> None:
    """A real refused call through the request hook, and the usage flush after it."""
    with app.test_client() as caller:
        caller.open(path, method=method, headers={"Origin": origin})
    CorsAdmin.state(app).flush_usage(force=True)


def _refused_row(app: Flask, origin: str) -> OriginUsage:
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        row = session.scalar(sa.select(OriginUsage).where(OriginUsage.origin == origin))
        assert row is not None
        session.expunge(row)
        return row


def test_the_usage_flush_keeps_the_latest_refused_call(app: Flask, client: FlaskClient) -> None:
    _refuse(app, "https://noisy.example", "/api/items/7", "DELETE")
    _refuse(app, "https://noisy.example", "/api/status", "GET")
    row = _refused_row(app, "https://noisy.example")
    assert (row.count, row.example_method, row.example_path) == (2, "GET", "/api/status")
    page = client.get(f"{PREFIX}/refused").text
    assert '<code class="example-call">GET /api/status</code>' in page


def test_an_example_path_is_cut_to_its_bound(app: Flask) -> None:
    with app.app_context():  # the flush cuts what it writes, whatever the caller passed
        recorder = CorsAdmin.state(app).usage
        assert recorder is not None
        recorder.record("partner", "https://cut.example", None, False, "/" + "p" * 2000, "M" * 99)
    CorsAdmin.state(app).flush_usage(force=True)
    row = _refused_row(app, "https://cut.example")
    assert (len(row.example_path), len(row.example_method)) == (
        MAX_EXAMPLE_PATH,
        MAX_EXAMPLE_METHOD,
    )


def _dismiss(client: FlaskClient, origin: str) -> str:
    page = client.get(f"{PREFIX}/refused").text
    forms = [
        f
        for f in all_forms(page)
        if f.action == f"{PREFIX}/refused/dismiss" and f.fields.get("origin") == origin
    ]
    assert len(forms) == 1
    response = client.post(forms[0].action, data=forms[0].fields)
    assert response.status_code == 302
    return client.get(response.headers["Location"]).text


def test_a_dismissed_origin_is_hidden_until_it_is_refused_again(
    app: Flask, client: FlaskClient
) -> None:
    _refuse(app, "https://scanner.example")
    _refuse(app, "https://partner-new.example")
    page = _dismiss(client, "https://scanner.example")
    assert "Dismissed https://scanner.example on partner: hidden until it is refused again." in (
        html.unescape(page)
    )
    assert "https://scanner.example" not in page.split("</h1>")[1].split('class="flash')[0]
    listed = page.split("<table")[1] if "<table" in page else ""
    assert "https://scanner.example" not in listed
    assert "https://partner-new.example" in listed
    assert "1 dismissed origin hidden" in page
    row = _refused_row(app, "https://scanner.example")
    assert row.dismissed_by == "alice"
    assert row.dismissed_at is not None
    _refuse(app, "https://scanner.example")  # refused again after the dismissal: back
    again = client.get(f"{PREFIX}/refused").text.split("<table")[1]
    assert "https://scanner.example" in again


def test_dismissing_needs_the_csrf_token(app: Flask, client: FlaskClient) -> None:
    _refuse(app, "https://scanner.example")
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post(
        f"{PREFIX}/refused/dismiss",
        data={"policy": "partner", "origin": "https://scanner.example"},
    )
    assert response.status_code == 302
    assert "security token" in client.get(response.headers["Location"]).text
    assert _refused_row(app, "https://scanner.example").dismissed_at is None
