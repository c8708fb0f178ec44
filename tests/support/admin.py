"""Helpers for the admin UI tests: log in, read forms off a page, submit them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.db import operators

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html,application/xhtml+xml"}
PREFIX = "/corsadmin"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    # Checkboxes sharing a name (the methods) as one comma-separated
                    # value, which the server splits (a real multi-value POST is
                    # tested on its own, and in Chromium).
                    fields = self.forms[-1].fields
                    value = a.get("value", "y")
                    name = a["name"]
                    fields[name] = f"{fields[name]}, {value}" if name in fields else value
            else:
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "textarea" and "name" in a:
            self._textarea = a["name"]
            self.forms[-1].fields[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.forms:
            self.forms[-1].fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def form_for(html: str, action: str) -> Form:
    """The form posting to ``action`` (a path, or the page's own URL when '')."""
    found = [f for f in forms(html) if f.action.split("?")[0] == action]
    assert found, f"no form with action {action!r} in page: {[f.action for f in forms(html)]}"
    return found[0]


def field_value(html: str, action: str, name: str) -> str:
    return form_for(html, action).fields[name]


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def add_operator(app: Flask, name: str = "alice", password: str = PASSWORD) -> None:
    with app.app_context():
        operators.add_operator(CorsAdmin.state(app).db.session, name, password, actor="tests")


def log_in(client: FlaskClient, name: str = "alice", password: str = PASSWORD) -> TestResponse:
    page = client.get(f"{PREFIX}/login")
    assert page.status_code == 200
    return client.post(
        f"{PREFIX}/login",
        data={"name": name, "password": password, "csrf_token": csrf_token(page.text)},
    )


def logged_in_client(app: Flask, name: str = "alice") -> FlaskClient:
    add_operator(app, name)
    client = app.test_client()
    response = log_in(client, name)
    assert response.status_code == 302, response.text
    return client


def submit(
    client: FlaskClient,
    page_url: str,
    action: str,
    *,
    drop: tuple[str, ...] = (),
    **values: Any,
) -> TestResponse:
    """GET ``page_url``, fill the form posting to ``action`` with ``values``, POST it."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    data = dict(form_for(page.text, action).fields)
    for key, value in values.items():
        if value is None or value is False:
            data.pop(key, None)
        elif value is True:
            data[key] = "y"
        else:
            data[key] = str(value)
    for key in drop:
        data.pop(key, None)
    return client.post(action, data=data)


def field_errors(html: str, field_id: str) -> list[str]:
    """The error messages shown beside a field (in its ``<id>-error`` block)."""
    match = re.search(
        rf'<div class="field-error" id="{re.escape(field_id)}-error">(.*?)</div>', html, re.S
    )
    if not match:
        return []
    return [_unescape(m) for m in re.findall(r"<p>(.*?)</p>", match.group(1), re.S)]


def form_level_errors(html: str) -> list[str]:
    blocks = re.findall(r'<div class="alert alert-error" role="alert">(.*?)</div>', html, re.S)
    return [_unescape(m) for block in blocks for m in re.findall(r"<p>(.*?)</p>", block, re.S)]


def flashes(html: str) -> list[str]:
    return [
        _unescape(m)
        for m in re.findall(r'<div class="flash[^"]*" role="status"[^>]*>(.*?)</div>', html, re.S)
    ]


def _unescape(text: str) -> str:
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", text)).strip()


#: The policy the admin view tests start from: two origins, one with a note.
PARTNER: dict[str, Any] = {
    "name": "partner",
    "path": "/api/**",
    "origins": ["https://a.example", {"origin": "https://b.example", "note": "ticket 7"}],
    "methods": ["GET", "POST"],
}


def partner_client(app: Flask, cors: CorsAdmin) -> FlaskClient:
    """A logged-in client of an app holding :data:`PARTNER`."""
    with app.app_context():
        cors.store("seed", app).create_policy(PARTNER)
    return logged_in_client(app)


def in_app(app: Flask, action: Callable[[PolicyStore], Any], actor: str = "bob") -> Any:
    """``action`` on the app's store acting as ``actor``, in an app context."""
    with app.app_context():
        return action(CorsAdmin.state(app).store(actor))
