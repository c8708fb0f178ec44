"""Helpers for the HTTP API tests: tokens, a client that sends one, what the database holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from corsadmin import CorsAdmin
from corsadmin.db.drafts import DraftStore, read_draft
from corsadmin.db.export import export_text
from corsadmin.db.tokens import TokenStore

PREFIX = "/corsadmin/api/v1"
PROBLEM = "application/problem+json"


def new_token(
    app: Flask, name: str = "ci", scope: str = "write", expires: datetime | None = None
) -> str:
    """A new token's secret (made by the operator 'admin-tests')."""
    with app.app_context():
        store = CorsAdmin.state(app).store("admin-tests")
        _, secret = TokenStore(store).create(name, scope, expires=expires)
    return secret


@dataclass
class Api:
    """The app's test client, sending ``Authorization: Bearer <secret>`` (if any)."""

    client: FlaskClient
    secret: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = dict(self.headers)
        if self.secret is not None:
            headers["Authorization"] = f"Bearer {self.secret}"
        headers.update(kwargs.pop("headers", {}) or {})
        return self.client.open(PREFIX + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("DELETE", path, **kwargs)


def writer(app: Flask, name: str = "ci") -> Api:
    """A client with a new write token."""
    return Api(app.test_client(), new_token(app, name, "write"))


def reader(app: Flask, name: str = "reader") -> Api:
    """A client with a new read token."""
    return Api(app.test_client(), new_token(app, name, "read"))


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The problem details of a refusal with ``status`` (checked to be well-formed)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status
    assert body["type"].startswith("urn:corsadmin:problem:")
    return dict(body)


def fields(response: TestResponse, status: int = 400) -> dict[str, str]:
    """A problem's errors, field: message."""
    return {e["field"]: e["message"] for e in problem(response, status)["errors"]}


def seed(app: Flask, *policies: dict[str, Any]) -> None:
    """Create policies directly through the store (actor 'seed')."""
    with app.app_context():
        store = CorsAdmin.state(app).store("seed")
        for data in policies:
            store.create_policy(data)


PARTNER: dict[str, Any] = {
    "name": "partner",
    "path": "/api/**",
    "origins": ["https://a.example"],
}


def stored(app: Flask) -> tuple[str, int, int, tuple[int, int] | None]:
    """What the database holds: the exported document, the revision, the audit events,
    the active draft's id and version (to prove a refused request changed nothing)."""
    with app.app_context():
        state = CorsAdmin.state(app)
        session = state.db.session
        text = "".join(export_text(session))
        store = state.store("tests")
        revision = store.revision()
        events = len(store.audit_events(limit=1_000_000))
        draft = read_draft(session)
        session.remove()
    return text, revision, events, None if draft is None else (draft.id, draft.version)


def seed_draft(app: Flask, document: dict[str, Any], *, replace: bool = False) -> None:
    """Save ``document`` into the active draft (actor 'seed')."""
    with app.app_context():
        store = CorsAdmin.state(app).store("seed")
        DraftStore(store).import_document(document, replace=replace, reason="seeded")


def audit_actors(app: Flask, limit: int = 100) -> list[tuple[str, str]]:
    """(actor, action) of the newest audit events, newest first."""
    with app.app_context():
        events = CorsAdmin.state(app).store("tests").audit_events(limit=limit)
        return [(e.actor, e.action) for e in events]
