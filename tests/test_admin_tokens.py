"""The admin UI's API tokens screen: the list, a new token with its secret shown once
(on the answer to the POST only), revoking after a confirmation; CSRF on every form.
Real app, real database (SQLite and PostgreSQL), through Flask's test client."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from corsadmin.db.tokens import TOKEN_PREFIX, TokenStore
from tests.support.admin import (
    HTML,
    PREFIX,
    field_errors,
    flashes,
    form_for,
    form_level_errors,
    logged_in_client,
    submit,
)
from tests.support.host import host_of
from tests.support.tokens import authenticated, listed_tokens

NEW = f"{PREFIX}/tokens/new"
LIST = f"{PREFIX}/tokens"
SECRET_RE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return logged_in_client(app)


def revision(app: Flask) -> int:
    with app.app_context():
        try:
            return host_of(app).cors.store("inspector", app).revision()
        finally:
            host_of(app).db.session.remove()


def create(client: FlaskClient, **values: str) -> str:
    """Create a token through the form; the page that shows its secret."""
    response = submit(client, NEW, NEW, **values)
    assert response.status_code == 201, response.text
    return response.text


def test_an_empty_list_says_how_to_start(client: FlaskClient) -> None:
    page = client.get(LIST)
    assert page.status_code == 200
    assert "No API tokens yet" in page.text
    assert f'href="{NEW}"' in page.text
    assert 'aria-current="page">API tokens</a>' in page.text


def test_create_shows_the_secret_once_and_never_again(client: FlaskClient, app: Flask) -> None:
    page = create(client, name="deploy-bot", scope="write", expires="2999-01-01")
    (secret,) = set(SECRET_RE.findall(page))
    assert "it is not shown again" in page
    assert "token:deploy-bot" in page
    token = authenticated(app, secret)
    assert token is not None
    assert (token.name, token.scope, token.created_by) == ("deploy-bot", "write", "alice")
    assert token.expires_at is not None
    assert token.expires_at.year == 2999
    # Nowhere else: not on the list, the audit log, the revoke page, nor a flash.
    for path in (LIST, f"{PREFIX}/audit", f"{PREFIX}/tokens/deploy-bot/revoke", f"{PREFIX}/"):
        shown = client.get(path)
        assert shown.status_code == 200
        assert TOKEN_PREFIX not in shown.text.replace("cors_…", "")
        assert secret not in shown.text
    assert "deploy-bot" in client.get(LIST).text
    assert "created API token deploy-bot" in client.get(f"{PREFIX}/audit").text


def test_sending_the_form_again_shows_no_secret(client: FlaskClient, app: Flask) -> None:
    page = client.get(NEW)
    data = {**form_for(page.text, NEW).fields, "name": "ci", "scope": "read"}
    assert client.post(NEW, data=data).status_code == 201
    again = client.post(NEW, data=data)  # a reload of the secret's page
    assert again.status_code == 400
    assert TOKEN_PREFIX not in again.text.replace("cors_…", "")
    assert field_errors(again.text, "name") == ["an API token named 'ci' exists already"]
    assert len(listed_tokens(app)) == 1


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"name": ""}, "name", "is required"),
        ({"name": "Bad Name"}, "name", "'Bad Name' is not a valid name"),
        ({"name": "ci", "scope": "admin"}, "scope", "'admin' is not a scope: read or write"),
        ({"name": "ci", "expires": "2001-01-01"}, "expires", "is in the past"),
        ({"name": "ci", "expires": "soon"}, "expires", "'soon' is not an ISO 8601 time"),
    ],
)
def test_refused_values_go_beside_their_field_and_nothing_is_created(
    client: FlaskClient, app: Flask, values: dict[str, str], field: str, message: str
) -> None:
    before = revision(app)
    response = submit(client, NEW, NEW, **values)
    assert response.status_code == 400
    (error,) = field_errors(response.text, field)
    assert message in error
    assert TOKEN_PREFIX not in response.text.replace("cors_…", "")
    if values.get("name"):
        assert f'value="{values["name"]}"' in response.text  # what was typed is kept
    assert listed_tokens(app) == []
    assert revision(app) == before


@pytest.mark.parametrize("path", [NEW, f"{PREFIX}/tokens/ci/revoke"])
def test_every_form_needs_its_csrf_token(client: FlaskClient, app: Flask, path: str) -> None:
    create(client, name="ci", scope="write")
    before = revision(app)
    response = client.post(path, data={"name": "other", "scope": "write"})
    assert response.status_code == 400
    assert form_level_errors(response.text)[0].startswith("This form was not accepted")
    assert [(t.name, t.revoked_at) for t in listed_tokens(app)] == [("ci", None)]
    assert revision(app) == before


def test_revoke_after_a_confirmation(client: FlaskClient, app: Flask) -> None:
    (secret,) = set(SECRET_RE.findall(create(client, name="ci", scope="write")))
    listing = client.get(LIST).text
    revoke_url = f"{PREFIX}/tokens/ci/revoke"
    assert f'href="{revoke_url}"' in listing
    confirm = client.get(revoke_url)
    assert confirm.status_code == 200
    assert "Revoke API token ci?" in confirm.text
    assert authenticated(app, secret) is not None  # the GET changed nothing
    response = submit(client, revoke_url, revoke_url)
    assert response.status_code == 302
    assert response.headers["Location"] == LIST
    assert authenticated(app, secret) is None
    (token,) = listed_tokens(app)
    assert token.revoked_by == "alice"
    after = client.get(LIST).text
    assert flashes(after) == ["Revoked API token ci: requests with it are refused from now on."]
    assert "revoked" in after
    assert f'href="{revoke_url}"' not in after
    audit = client.get(f"{PREFIX}/audit")
    assert audit.status_code == 200
    assert "revoked API token ci (write)" in audit.text
    # A second POST (an old confirmation page) changes nothing.
    before = revision(app)
    page = client.get(revoke_url)
    assert "was revoked" in page.text
    assert (
        client.post(revoke_url, data=form_for(confirm.text, revoke_url).fields).status_code == 302
    )
    assert revision(app) == before


def test_an_unknown_token_is_404(client: FlaskClient) -> None:
    for response in (
        client.get(f"{PREFIX}/tokens/nope/revoke", headers=HTML),
        client.post(f"{PREFIX}/tokens/nope/revoke"),
    ):
        assert response.status_code == 404
        assert "no API token named" in response.text


def test_the_list_shows_scope_status_expiry_and_last_use(client: FlaskClient, app: Flask) -> None:
    (used,) = set(SECRET_RE.findall(create(client, name="reader", scope="read")))
    create(client, name="writer", scope="write", expires="2999-01-01")
    authenticated(app, used)
    with app.app_context():
        try:
            TokenStore(host_of(app).cors.store("bob", app)).revoke("writer")
        finally:
            host_of(app).db.session.remove()
    page = client.get(LIST).text
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)[1:]
    reader, writer = (re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows)
    assert reader.startswith("reader read active")
    assert "by alice" in reader
    assert "just now" in reader  # its last use
    assert writer.startswith("writer write revoked")
    assert "by bob" in writer
    assert "2999-01-01" in writer
    assert "2 tokens" in page
