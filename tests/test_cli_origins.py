"""``corsadmin origin add|remove`` (``corsadmin/cli/origins.py``).

Run through Flask's CLI runner against the host app (``runner`` fixture), on SQLite
and on PostgreSQL; each command's effect is checked in the database afterwards: the
policies (every field, every origin row), the revision and the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin
from tests.support.cli import API, invoke, ok, policy_doc, seed, user_error, view

#: What the CLI says after a change (of CORSADMIN_REFRESH_INTERVAL 0.2 in tests): a fact
#: of configuration; who enforces it is an observation (``corsadmin status``).
CHECKED = "every worker checks for it within 0.2s, the fleet view shows who enforces it"

# --- origin add / remove ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://Bücher.example:443/", "https://xn--bcher-kva.example"),
        ("HTTP://App.Example:80", "http://app.example"),
        ("https://app.example:8443/", "https://app.example:8443"),
        ("https://*.Partner.example", "https://*.partner.example"),
        ("http://localhost:*", "http://localhost:*"),
        ("null", "null"),
        (r"re:^https://[a-z]{2}\.partner\.example$", r"re:^https://[a-z]{2}\.partner\.example$"),
    ],
)
def test_origin_add_stores_the_normalized_rule(
    runner: FlaskCliRunner, app: Flask, typed: str, stored: str
) -> None:
    before = seed(app, policy_doc("api", "/api/**", origins=["https://first.example"]))
    result = ok(runner, "--actor", "dave", "origin", "add", "api", typed)
    assert result.stdout == f"allowed {stored} on api; {CHECKED}\n"
    after = view(app)
    assert after.origins["api"] == {
        "https://first.example": ("", None, "seed"),
        stored: ("", None, "dave"),
    }
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("dave", "origin.add", "api")]


def test_origin_add_with_note_and_expiry_then_change_them(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, policy_doc("api", "/api/**"))
    ok(
        runner,
        "origin",
        "add",
        "api",
        "https://x.example",
        "--note",
        "ACME, ticket 12",
        "--expires",
        "2030-06-01T12:30:00+02:00",
    )
    after = view(app)
    assert after.origins["api"]["https://x.example"][:2] == (
        "ACME, ticket 12",
        datetime(2030, 6, 1, 10, 30, tzinfo=UTC),
    )
    assert after.document["policies"][0]["origins"] == [
        {
            "origin": "https://x.example",
            "note": "ACME, ticket 12",
            "expires": "2030-06-01T10:30:00Z",
        }
    ]
    # A date alone is midnight UTC; adding the same rule again changes its note and expiry.
    ok(
        runner,
        "origin",
        "add",
        "api",
        "HTTPS://X.example",
        "--note",
        "renewed",
        "--expires",
        "2031-01-01",
    )
    again = view(app)
    assert again.origins["api"]["https://x.example"][:2] == (
        "renewed",
        datetime(2031, 1, 1, tzinfo=UTC),
    )
    assert again.revision == after.revision + 1
    assert again.events[-1][1:] == ("origin.add", "api")


def test_origin_add_of_a_rule_already_there_changes_nothing(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, API)
    ok(runner, "origin", "add", "api", "https://APP.example:443")
    assert view(app) == before


@pytest.mark.parametrize("typed", ["https://other.example", "HTTPS://Other.Example:443/"])
def test_origin_remove_takes_the_rule_as_stored_or_as_typed(
    runner: FlaskCliRunner, app: Flask, typed: str
) -> None:
    before = seed(
        app, policy_doc("api", "/api/**", origins=["https://app.example", "https://other.example"])
    )
    result = ok(runner, "--actor", "erin", "origin", "remove", "api", typed)
    assert result.stdout == f"removed {typed} from api\n"
    after = view(app)
    assert list(after.origins["api"]) == ["https://app.example"]
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("erin", "origin.remove", "api")]
    refused = invoke(runner, "check", "https://other.example", "/api/x")
    assert refused.exit_code == 2


# --- origin add of a rule that exists ----------------------------------------------------

TEMPORARY = policy_doc(
    "api",
    "/api/**",
    origins=[{"origin": "https://x.example", "note": "ACME", "expires": "2099-06-01T00:00:00Z"}],
)


def test_origin_add_of_an_existing_rule_keeps_its_note_and_expiry(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, TEMPORARY)
    result = ok(runner, "origin", "add", "api", "HTTPS://X.example:443")
    assert result.stdout == (
        "https://x.example is allowed on api already; left as it was "
        "(note 'ACME', expires 2099-06-01T00:00:00Z); "
        "--note, --expires or --no-expires change it\n"
    )
    assert view(app) == before  # a temporary grant stays temporary, nothing recorded


@pytest.mark.parametrize(
    ("args", "note", "expires", "said"),
    [
        (
            ["--note", "renewed"],
            "renewed",
            datetime(2099, 6, 1, tzinfo=UTC),
            "note 'ACME' -> 'renewed'",
        ),
        (
            ["--expires", "2100-01-01"],
            "ACME",
            datetime(2100, 1, 1, tzinfo=UTC),
            "expires 2099-06-01T00:00:00Z -> 2100-01-01T00:00:00Z",
        ),
        (["--no-expires"], "ACME", None, "expires 2099-06-01T00:00:00Z -> never"),
        (["--note", ""], "", datetime(2099, 6, 1, tzinfo=UTC), "note 'ACME' -> ''"),
    ],
    ids=["note", "expires", "no-expires", "empty-note"],
)
def test_origin_add_of_an_existing_rule_changes_only_what_is_given(
    runner: FlaskCliRunner,
    app: Flask,
    args: list[str],
    note: str,
    expires: datetime | None,
    said: str,
    cors: CorsAdmin,
    db: SQLAlchemy,
) -> None:
    before = seed(app, TEMPORARY)
    result = ok(runner, "--actor", "dave", "origin", "add", "api", "https://x.example", *args)
    assert result.stdout == (f"changed https://x.example on api: {said}; {CHECKED}\n")
    after = view(app)
    assert after.origins["api"] == {"https://x.example": (note, expires, "seed")}
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("dave", "origin.add", "api")]
    with app.app_context():
        try:
            event = cors.store("x", app).audit_events(policy="api")[0]
            assert event.summary == f"changed origin https://x.example on api: {said}"
        finally:
            db.session.remove()


def test_origin_add_with_expires_and_no_expires_is_refused(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, TEMPORARY)
    lines = user_error(
        runner,
        "origin",
        "add",
        "api",
        "https://x.example",
        "--expires",
        "2100-01-01",
        "--no-expires",
    )
    assert lines == ["error: expires: give --expires or --no-expires, not both"]
    assert view(app) == before
