"""``corsadmin operator ...``: add, list, passwd, disable, enable, remove."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import CorsAdmin
from corsadmin.db import operators
from tests.support.admin import PASSWORD, log_in


def invoke(runner: FlaskCliRunner, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(args=["corsadmin", "--actor", "ops", "operator", *args], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.stdout, result.stderr


def test_add_with_password_stdin_then_log_in(
    app: Flask, runner: FlaskCliRunner, cors: CorsAdmin
) -> None:
    code, out, _ = invoke(runner, "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert (code, out) == (0, "added operator alice\n")
    assert log_in(app.test_client(), "alice", PASSWORD).status_code == 302
    with app.app_context():
        operator = operators.get_operator(CorsAdmin.state(app).db.session, "alice")
        assert operator.created_by == "ops"
        assert PASSWORD not in operator.password_hash
        event = cors.store("t", app).audit_events(actor="ops")[0]
        assert (event.action, event.summary) == ("operator.add", "added operator alice")
        assert event.after == {"name": "alice", "disabled": False}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "alice", "--password-stdin"), "short\n", "error: password: is shorter than 8"),
        (("add", "alice", "--password-stdin"), "", "error: password: standard input was empty"),
        (("add", "alice"), None, "error: password: no terminal to ask on"),
        (("add", "bad name!", "--password-stdin"), PASSWORD, "error: name: 'bad name!' is not"),
        (("passwd", "nobody", "--password-stdin"), PASSWORD, "error: no operator named 'nobody'"),
        (("remove", "nobody"), None, "error: no operator named 'nobody'"),
        (("disable", "nobody"), None, "error: no operator named 'nobody'"),
    ],
)
def test_mistakes_are_one_line_errors_with_exit_1(
    runner: FlaskCliRunner, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    code, out, err = invoke(runner, *args, stdin=stdin)
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(message), err


def test_adding_the_same_name_twice_is_refused(runner: FlaskCliRunner) -> None:
    assert invoke(runner, "add", "alice", "--password-stdin", stdin=PASSWORD)[0] == 0
    code, _, err = invoke(runner, "add", "alice", "--password-stdin", stdin=PASSWORD)
    assert code == 1
    assert err == "error: name: an operator named 'alice' exists already\n"


def test_list_passwd_disable_enable_remove(
    app: Flask, runner: FlaskCliRunner, cors: CorsAdmin
) -> None:
    assert (
        invoke(runner, "list")[1]
        == "no operators yet: add one with `corsadmin operator add NAME`\n"
    )
    invoke(runner, "add", "alice", "--password-stdin", stdin=PASSWORD)
    invoke(runner, "add", "bob", "--password-stdin", stdin=PASSWORD)
    log_in(app.test_client(), "bob", PASSWORD)
    lines = invoke(runner, "list")[1].splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "LAST", "LOGIN", "STATUS"]
    assert lines[1].split() == ["alice", *lines[1].split()[1:3], "ops", "never", "enabled"]
    assert lines[2].split()[0] == "bob"
    assert "UTC" in lines[2]

    assert invoke(runner, "passwd", "alice", "--password-stdin", stdin="a new password\n")[1] == (
        "changed the password of alice\n"
    )
    assert log_in(app.test_client(), "alice", PASSWORD).status_code == 401
    assert log_in(app.test_client(), "alice", "a new password").status_code == 302

    assert invoke(runner, "disable", "alice")[1] == "disabled operator alice\n"
    assert invoke(runner, "list")[1].splitlines()[1].endswith("disabled")
    assert log_in(app.test_client(), "alice", "a new password").status_code == 401
    assert invoke(runner, "enable", "alice")[1] == "enabled operator alice\n"
    assert log_in(app.test_client(), "alice", "a new password").status_code == 302

    assert invoke(runner, "remove", "alice")[1] == "removed operator alice\n"
    assert log_in(app.test_client(), "alice", "a new password").status_code == 401
    with app.app_context():
        actions = [e.action for e in cors.store("t", app).audit_events(actor="ops")]
    assert actions == [
        "operator.remove",
        "operator.enable",
        "operator.disable",
        "operator.passwd",
        "operator.add",
        "operator.add",
    ]


def test_password_stdin_keeps_spaces_and_drops_only_the_newline(
    app: Flask, runner: FlaskCliRunner
) -> None:
    invoke(runner, "add", "alice", "--password-stdin", stdin="  spaced out  \r\nsecond line\n")
    assert log_in(app.test_client(), "alice", "  spaced out  ").status_code == 302
