"""The admin's one save flow on its own: what it calls, and what it does not, on each way
out. (What the operator sees is tested through the views in test_admin_views.py.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, get_flashed_messages

from corsadmin.admin.forms import ConfirmForm
from corsadmin.admin.saving import CSRF_MESSAGE, VERSION_MESSAGE, Flash, Page, save
from corsadmin.errors import ValidationError


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=False)
    return app


def run(
    app: Flask,
    data: dict[str, str],
    change: Callable[[], str],
    *,
    versioned: bool = True,
) -> tuple[Page, list[int], list[tuple[str, str]], ConfirmForm]:
    pages: list[int] = []

    def page(status: int) -> Page:
        pages.append(status)
        return "page", status

    with app.test_request_context("/", method="POST", data=data):
        form = ConfirmForm()
        answer = save(
            form,
            change,
            page=page,
            saved=lambda result: Flash(f"saved {result}"),
            redirect_to=lambda result: f"/done/{result}",
            versioned=versioned,
        )
        return answer, pages, get_flashed_messages(with_categories=True), form


def never() -> str:
    raise AssertionError("the store must not be called")


def test_a_saved_change_is_flashed_and_redirected(app: Flask) -> None:
    answer, pages, flashed, _ = run(app, {"version": "3"}, lambda: "x")
    assert pages == []
    assert flashed == [("success", "saved x")]
    assert not isinstance(answer, str | tuple)
    assert (answer.status_code, answer.location) == (302, "/done/x")


def test_a_missing_version_stops_before_the_store(app: Flask) -> None:
    _, pages, flashed, form = run(app, {}, never)
    assert (pages, flashed, form.form_errors) == ([400], [], [VERSION_MESSAGE])
    _, pages, _, _ = run(app, {}, lambda: "x", versioned=False)
    assert pages == []


def test_a_missing_csrf_token_stops_before_the_store(app: Flask) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    _, pages, flashed, form = run(app, {"version": "3"}, never)
    assert (pages, flashed, form.form_errors) == ([400], [], [CSRF_MESSAGE])


def test_refused_values_go_beside_their_fields(app: Flask) -> None:
    def change() -> str:
        raise ValidationError.single("origin", "is not an origin")

    _, pages, flashed, form = run(app, {"version": "3"}, change)
    assert (pages, flashed, form.origin.errors) == ([400], [], ["is not an origin"])


def test_other_errors_are_not_swallowed(app: Flask) -> None:
    def change() -> str:
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError):
        run(app, {"version": "3"}, change)
