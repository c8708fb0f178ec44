"""``corsadmin token create|list|revoke`` (``corsadmin/cli/tokens.py``), through Flask's
CLI runner against the host app, on SQLite and on PostgreSQL; the effect is checked
in the database and with authenticate()."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin.db.models import utcnow
from corsadmin.db.tokens import MAX_EXPIRES_IN_DAYS, TOKEN_PREFIX
from tests.support.cli import invoke, ok, user_error, view
from tests.support.tokens import authenticated, listed_tokens


def created(runner: FlaskCliRunner, *args: str) -> tuple[str, list[str]]:
    """``token create ARGS`` must succeed: the secret (stdout) and the stderr lines."""
    result = invoke(runner, "--actor", "ops", "token", "create", *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout, result.stderr.splitlines()


def test_create_prints_the_secret_alone_and_warns_it_is_not_shown_again(
    runner: FlaskCliRunner, app: Flask
) -> None:
    out, err = created(runner, "deploy-bot", "--scope", "write")
    secret = out.removesuffix("\n")
    assert out == secret + "\n"
    assert secret.startswith(TOKEN_PREFIX)
    assert err[0] == "created API token deploy-bot (write, never expires)"
    assert err[1].startswith("warning: the secret above is shown only now")
    token = authenticated(app, secret)
    assert token is not None
    assert (token.name, token.scope, token.created_by) == ("deploy-bot", "write", "ops")
    assert view(app).events[-1] == ("ops", "token.create", None)
    # It is not shown again: neither by list nor in the audit log.
    assert secret not in ok(runner, "token", "list").stdout
    assert secret not in ok(runner, "token", "list", "--format", "json").stdout


def test_expires_as_a_time_or_in_days(runner: FlaskCliRunner, app: Flask) -> None:
    _, err = created(runner, "a", "--scope", "read", "--expires", "2999-01-01")
    assert err[0] == "created API token a (read, expires 2999-01-01 00:00 UTC)"
    before = utcnow()
    created(runner, "b", "--scope", "read", "--expires-in-days", "30")
    by_name = {t.name: t for t in listed_tokens(app)}
    expires = by_name["b"].expires_at
    assert expires is not None
    assert before + timedelta(days=30) <= expires <= utcnow() + timedelta(days=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Bad Name", "--scope", "read"), "error: name: 'Bad Name' is not a valid name"),
        (("ci", "--scope", "admin"), "error: scope: 'admin' is not a scope: read or write"),
        (("ci",), "error: Missing option '--scope'"),
        (("ci", "--scope", "read", "--expires", "2001-01-01"), "error: expires: is in the past"),
        (("ci", "--scope", "read", "--expires", "soon"), "error: expires: 'soon' is not an ISO"),
        (
            ("ci", "--scope", "read", "--expires", "2999-01-01", "--expires-in-days", "3"),
            "error: expires: give --expires or --expires-in-days, not both",
        ),
        (("ci", "--scope", "read", "--expires-in-days", "0"), "error: Invalid value for"),
        (
            ("ci", "--scope", "read", "--expires-in-days", str(MAX_EXPIRES_IN_DAYS + 1)),
            "error: Invalid value for",
        ),
    ],
)
def test_create_mistakes_are_one_line_errors_and_create_nothing(
    runner: FlaskCliRunner, app: Flask, args: tuple[str, ...], message: str
) -> None:
    before = view(app)
    lines = user_error(runner, "token", "create", *args)
    assert len(lines) == 1
    assert lines[0].startswith(message), lines
    assert listed_tokens(app) == []
    assert view(app).revision == before.revision


def test_a_name_is_never_used_twice(runner: FlaskCliRunner) -> None:
    created(runner, "ci", "--scope", "read")
    assert user_error(runner, "token", "create", "ci", "--scope", "write") == [
        "error: name: an API token named 'ci' exists already"
    ]
    ok(runner, "token", "revoke", "ci")
    (line,) = user_error(runner, "token", "create", "ci", "--scope", "write")
    assert "was revoked; a name is never used again" in line


def test_list_as_text_and_json(runner: FlaskCliRunner, app: Flask) -> None:
    assert ok(runner, "token", "list").stdout == (
        "no API tokens yet: create one with `corsadmin token create NAME --scope read`\n"
    )
    assert json.loads(ok(runner, "token", "list", "--format", "json").stdout) == []
    secret, _ = created(runner, "reader", "--scope", "read", "--expires", "2999-01-01")
    created(runner, "writer", "--scope", "write")
    authenticated(app, secret.strip())
    ok(runner, "--actor", "bob", "token", "revoke", "writer")
    lines = ok(runner, "token", "list").stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "SCOPE",
        "STATUS",
        "CREATED",
        "EXPIRES",
        "LAST",
        "USED",
        "REVOKED",
    ]
    reader, writer = (line.split() for line in lines[1:])
    assert reader[:3] == ["reader", "read", "active"]
    assert reader[6:9] == ["by", "ops", "2999-01-01"]
    assert "UTC" in lines[1]
    assert reader[-1] == "-"
    assert writer[:3] == ["writer", "write", "revoked"]
    assert "never" in writer  # neither expires nor used
    assert writer[-2:] == ["by", "bob"]
    documents = json.loads(ok(runner, "token", "list", "--format", "json").stdout)
    assert [(d["name"], d["status"], d["revoked_by"]) for d in documents] == [
        ("reader", "active", None),
        ("writer", "revoked", "bob"),
    ]
    assert documents[0]["expires_at"] == "2999-01-01T00:00:00Z"
    assert documents[0]["last_used_at"] is not None
    assert documents[1]["last_used_at"] is None


def test_revoke_refuses_the_secret_from_then_on(runner: FlaskCliRunner, app: Flask) -> None:
    secret, _ = created(runner, "ci", "--scope", "write")
    assert authenticated(app, secret.strip()) is not None
    out = ok(runner, "--actor", "bob", "token", "revoke", "ci").stdout
    assert out == "revoked API token ci: requests with it are refused from now on\n"
    assert authenticated(app, secret.strip()) is None
    assert view(app).events[-1] == ("bob", "token.revoke", None)
    revision = view(app).revision
    again = ok(runner, "token", "revoke", "ci").stdout
    assert again.startswith("API token ci was revoked already (")
    assert again.endswith(" UTC by bob)\n")
    assert view(app).revision == revision


def test_revoking_an_unknown_token_is_a_one_line_error(runner: FlaskCliRunner) -> None:
    assert user_error(runner, "token", "revoke", "nope") == ["error: no API token named 'nope'"]
