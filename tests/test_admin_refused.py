"""The refused-origins report offers, and its "Allow" stores, only a serialized
origin as a browser sends it: never a pattern, a bucket or other junk. On SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin
from corsadmin.db.models import OriginUsage, utcnow
from corsadmin.runtime.usage import NOT_AN_ORIGIN, OTHER_REFUSED
from tests.support.admin import PREFIX, form_for, logged_in_client
from tests.support.host import host_of

ACTION = f"{PREFIX}/refused/allow"
GOOD = "https://partner-new.example"
NOT_ALLOWABLE = "cannot be allowed as it is: only a serialized origin"


@pytest.fixture
def client(app: Flask, cors: CorsAdmin) -> FlaskClient:
    with app.app_context():
        cors.store("seed", app).create_policy(
            {
                "name": "partner",
                "path": "/api/**",
                "origins": ["https://a.example"],
                "methods": ["GET", "POST"],
            }
        )
    return logged_in_client(app)


def state_of(app: Flask) -> tuple[list[str], int]:
    """The policy's origin rules and the revision: what a refused allow must not change."""
    with app.app_context():
        store = host_of(app).cors.store("t", app)
        return [e.rule.text for e in store.spec("partner").origins], store.revision()


def refused_row(app: Flask, origin: str, count: int = 3) -> None:
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        now = utcnow()
        session.add(
            OriginUsage(
                policy_name="partner",
                origin=origin,
                rule=None,
                allowed=False,
                count=count,
                first_seen=now - timedelta(days=2),
                last_seen=now - timedelta(hours=1),
            )
        )
        session.commit()


def valid_post_data(client: FlaskClient) -> dict[str, str]:
    """A real CSRF token and the current version, from the allow page of a real origin."""
    page = client.get(ACTION, query_string={"policy": "partner", "origin": GOOD})
    assert page.status_code == 200
    return dict(form_for(page.text, ACTION).fields)


def test_an_origin_re_star_request_never_becomes_a_rule(app: Flask, client: FlaskClient) -> None:
    """The attack: `Origin: re:.*` on a covered path, then one click on "Allow"."""
    response = app.test_client().get("/api/status", headers={"Origin": "re:.*"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert CorsAdmin.state(app).flush_usage(force=True) == 1

    page = client.get(f"{PREFIX}/refused").text
    assert "Not a serialized origin" in page
    assert "re:.*" not in page
    assert "Allow…" not in page

    before = state_of(app)
    forged_get = client.get(ACTION, query_string={"policy": "partner", "origin": "re:.*"})
    assert forged_get.status_code == 400
    assert NOT_ALLOWABLE in forged_get.text
    assert f'action="{ACTION}"' not in forged_get.text  # no form to confirm

    data = valid_post_data(client)
    data["origin"] = "re:.*"
    forged_post = client.post(ACTION, data=data)
    assert forged_post.status_code == 400
    assert NOT_ALLOWABLE in forged_post.text
    assert state_of(app) == before

    evil = app.test_client().get("/api/status", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers


FORGED = [
    "re:.*",
    "re:https?://.*",
    "*",
    "https://*.partner.example",
    "http://localhost:*",
    NOT_AN_ORIGIN,
    OTHER_REFUSED,
    "https://x.example/path",
    "https://x.example/",
    "HTTPS://X.EXAMPLE",
    "https://x.example:443",
    "https://bücher.example",
    " https://x.example",
    "",
]


def test_a_forged_allow_of_anything_but_one_origin_writes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    before = state_of(app)
    data = valid_post_data(client)
    for value in FORGED:
        response = client.post(ACTION, data={**data, "origin": value})
        assert response.status_code == 400, value
        assert NOT_ALLOWABLE in response.text, value
        assert state_of(app) == before, value
        page = client.get(ACTION, query_string={"policy": "partner", "origin": value})
        assert page.status_code == 400, value


def test_the_report_shows_buckets_and_stored_junk_without_allow(
    app: Flask, client: FlaskClient
) -> None:
    refused_row(app, GOOD, count=17)
    refused_row(app, NOT_AN_ORIGIN, count=40)
    refused_row(app, OTHER_REFUSED, count=1234)
    refused_row(app, "re:.*", count=5)  # stored verbatim by an older version
    refused_row(app, "https://*.evil.example", count=6)
    refused_row(app, "null", count=2)
    page = client.get(f"{PREFIX}/refused").text
    assert "Not a serialized origin" in page
    assert "Other refused origins" in page
    assert ">1234</td>" in page
    assert ">40</td>" in page
    assert page.count(">Allow…</a>") == 2  # GOOD and null, nothing else
    assert f'aria-label="Allow {GOOD} on partner"' in page
    assert 'aria-label="Allow null on partner"' in page
    for junk in ("re:.*", "https://*.evil.example", NOT_AN_ORIGIN, OTHER_REFUSED):
        assert f'aria-label="Allow {junk}' not in page


def test_a_real_refused_origin_is_still_allowed_in_two_clicks(
    app: Flask, client: FlaskClient
) -> None:
    app.test_client().get("/api/status", headers={"Origin": GOOD})
    CorsAdmin.state(app).flush_usage(force=True)
    page = client.get(f"{PREFIX}/refused").text
    assert page.count(">Allow…</a>") == 1
    response = client.post(ACTION, data=valid_post_data(client))
    assert response.status_code == 302
    assert state_of(app)[0] == ["https://a.example", GOOD]
    allowed = app.test_client().get("/api/status", headers={"Origin": GOOD})
    assert allowed.headers["Access-Control-Allow-Origin"] == GOOD


def test_allow_null_stores_the_null_rule(app: Flask, client: FlaskClient) -> None:
    refused_row(app, "null")
    page = client.get(ACTION, query_string={"policy": "partner", "origin": "null"})
    assert page.status_code == 200
    data: dict[str, Any] = dict(form_for(page.text, ACTION).fields)
    assert client.post(ACTION, data=data).status_code == 302
    assert "null" in state_of(app)[0]
