"""Bad input to the CLI is a one-line ``error:``, exit 1, never a traceback, and writes
nothing: a user's mistake in any command (``corsadmin/cli/errors.py``), a usage mistake
click finds, files that are not a readable JSON document (deep nesting, huge integers,
bad UTF-8, lone surrogate escapes) and an actor no database can store. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.cli import API, STORED_A, ok, policy_doc, seed, user_error, view

DOCUMENT_START = b'{"corsadmin": 1, "policies": ['
FINE = policy_doc("fine", "/fine", origins=["https://fine.example"])


def with_policy(policy_json: bytes) -> bytes:
    return DOCUMENT_START + policy_json + b"]}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r": is nested too deeply \(more than 32 levels"),
        (
            b'{"corsadmin": 1, "policies": [], "x": ' + b"[" * 40 + b"]" * 40 + b"}",
            r": is nested too deeply \(more than 32 levels",
        ),
        (
            with_policy(
                b'{"name": "n", "path": "/n", "origins": [], "priority": 1' + b"0" * 5000 + b"}"
            ),
            r": has a whole number of more than 4300 digits$",
        ),
        (
            with_policy(b'{"name": "n", "path": "/n", "origins": [], "description": "caf\xe9"}'),
            r": is not UTF-8 text \(byte \d+\); save it as UTF-8 JSON$",
        ),
        (
            # A surrogate encoded as UTF-8 bytes (CESU-8): not valid UTF-8.
            with_policy(
                b'{"name": "n", "path": "/n", "origins": [], "description": "\xed\xa0\x80"}'
            ),
            r": is not UTF-8 text",
        ),
        (
            with_policy(b'{"name": "n", "path": "/n", "origins": [], "description": "x\\ud800y"}'),
            r": policies\[0\]\.description holds a lone surrogate escape \(\\ud800\), "
            r"which is not text$",
        ),
        (
            with_policy(
                b'{"name": "n", "path": "/n", "origins": [{"origin": "https://a.example",'
                b' "note": "\\udfff"}]}'
            ),
            r": policies\[0\]\.origins\[0\]\.note holds a lone surrogate escape \(\\udfff\)",
        ),
        (
            with_policy(b'{"name": "n", "path": "/n", "origins": [], "\\ud83d": 1}'),
            r": policies\[0\]\.\\ud83d holds a lone surrogate escape",
        ),
    ],
    ids=[
        "nesting-past-the-recursion-limit",
        "nesting-past-the-bound",
        "integer-of-5000-digits",
        "latin-1-byte",
        "encoded-surrogate",
        "lone-surrogate-in-description",
        "lone-surrogate-in-note",
        "lone-surrogate-in-a-key",
    ],
)
def test_an_unreadable_document_is_one_error_naming_the_file(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, content: bytes, expected: str
) -> None:
    before = seed(app, STORED_A)
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    for source, name, stdin in ((str(path), str(path), None), ("-", "<stdin>", content)):
        lines = user_error(runner, "import", source, input=stdin)
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {name}: "), lines[0]
        assert re.search(expected, lines[0]), lines[0]
    assert view(app) == before


def test_an_integer_python_can_read_is_left_to_the_validation(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    before = seed(app, STORED_A)
    huge = "9" * 4000
    path = tmp_path / "big.json"
    path.write_text(
        '{"corsadmin": 1, "policies": [{"name": "n", "path": "/n", "origins": [],'
        f' "priority": {huge}, "max_age": {huge}, "review_every_days": -{huge}}}]}}',
        encoding="utf-8",
    )
    lines = user_error(runner, "import", str(path))
    assert lines == [
        "error: policies[0].max_age: is out of range: "
        "0 or more seconds, at most 2147483647, or null",
        "error: policies[0].priority: is out of range: -2147483647 to 2147483647",
        "error: policies[0].review_every_days: is out of range: "
        "a whole number of days from 1 to 3650",
    ]
    assert view(app) == before


def test_a_document_nested_as_deep_as_allowed_is_read(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    document = {"corsadmin": 1, "policies": [FINE]}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    ok(runner, "import", str(path))
    assert view(app).document == document


TOO_LONG = "actor: is longer than 200 characters (201)"
CONTROL = "actor: must not contain control characters (NUL, tab, newline)"


@pytest.mark.parametrize(
    ("actor", "message", "how"),
    [
        ("a" * 201, TOO_LONG, "option"),
        ("a" * 201, TOO_LONG, "env"),
        ("robot\x00deploy", CONTROL, "option"),  # (an environment variable cannot hold NUL)
        ("two\nlines", CONTROL, "option"),
        ("two\nlines", CONTROL, "env"),
    ],
    ids=["too-long", "too-long-env", "nul", "newline", "newline-env"],
)
def test_an_actor_no_database_can_store_is_refused_by_every_command(
    runner: FlaskCliRunner, app: Flask, actor: str, message: str, how: str
) -> None:
    before = seed(app, policy_doc("api", "/api/**", origins=["https://a.example"]))
    commands = [
        ["policy", "add", "new", "/new"],
        ["policy", "update", "api", "--priority", "1"],
        ["policy", "remove", "api"],
        ["origin", "add", "api", "https://b.example"],
        ["origin", "remove", "api", "https://a.example"],
        ["import", "-"],
    ]
    for command in commands:
        args = ["--actor", actor, *command] if how == "option" else command
        env = {"CORSADMIN_ACTOR": actor} if how == "env" else None
        lines = user_error(runner, *args, input='{"corsadmin": 1, "policies": []}', env=env)
        assert lines == [f"error: {message}"], (command, lines)
    assert view(app) == before


def test_an_actor_of_200_characters_is_recorded(runner: FlaskCliRunner, app: Flask) -> None:
    actor = "ü" * 200
    ok(runner, "--actor", actor, "policy", "add", "api", "/api/**")
    assert view(app).events == [(actor, "policy.create", "api")]


@pytest.mark.parametrize(
    "args",
    [
        ["origin", "add", "api", "https://b.example", "--note", "bad \udcff byte"],
        ["policy", "update", "api", "--description", "bad \udcff byte"],
    ],
    ids=["note", "description"],
)
def test_an_undecodable_argument_byte_is_an_error_not_a_traceback(
    runner: FlaskCliRunner, app: Flask, args: list[str]
) -> None:
    # A byte that is not UTF-8 in an argument reaches Python as a lone surrogate,
    # which no database driver can encode.
    before = seed(app, policy_doc("api", "/api/**", origins=["https://a.example"]))
    lines = user_error(runner, *args)
    assert len(lines) == 1, lines
    assert "\\udcff" in lines[0]
    assert view(app) == before


# --- user mistakes ----------------------------------------------------------------------

MISTAKES = [
    (["policy", "show", "nope"], r"^error: no policy named 'nope'$"),
    (["policy", "update", "nope", "--priority", "1"], r"^error: no policy named 'nope'$"),
    (["policy", "remove", "nope"], r"^error: no policy named 'nope'$"),
    (["origin", "add", "nope", "https://a.example"], r"^error: no policy named 'nope'$"),
    (["origin", "remove", "nope", "https://a.example"], r"^error: no policy named 'nope'$"),
    (
        ["origin", "remove", "api", "https://never.example"],
        r"^error: policy 'api' has no origin rule 'https://never.example'$",
    ),
    (["origin", "add", "api", "https://*.com"], r"^error: origin: .*public suffix"),
    (["origin", "add", "api", "https://a.example/path"], r"^error: origin: a path is not allowed"),
    (["origin", "add", "api", "*"], r"^error: origin: '\*' cannot be used with credentials"),
    (["origin", "add", "api", "re:("], r"^error: origin: "),
    (["origin", "add", "api", "https://x.example", "--expires", "soon"], r"not an ISO 8601 time"),
    (
        ["origin", "add", "api", "https://x.example", "--expires", "2030-01-01T00:00:00"],
        r"time zone",
    ),
    (["origin", "add", "api", "https://x.example", "--expires", "2001-01-01"], r"in the past"),
    (["origin", "add", "api", "https://x.example", "--expires", "2030-13-01"], r"expires"),
    (
        ["policy", "add", "new", "/new", "--origin", "https://*.com"],
        r"^error: origins\[0\]: .*public suffix",
    ),
    (
        ["policy", "add", "new", "/new", "--origin", "*", "--credentials"],
        r"^error: origins\[0\]: '\*' cannot be used with credentials",
    ),
    (
        ["policy", "add", "new", "/api/**", "--origin", "https://a.example"],
        r"^error: path: policy 'api' already covers '/api/\*\*'$",
    ),
    (["policy", "add", "api", "/other"], r"^error: name: a policy named 'api' exists already$"),
    (["policy", "add", "Bad Name", "/other"], r"^error: name: 'Bad Name' is not a valid name"),
    (["policy", "add", "new", "no-slash"], r"^error: path: "),
    (["policy", "add", "new", "/new", "--method", "GE T"], r"^error: methods\[0\]: "),
    (["policy", "add", "new", "/new", "--max-age", "-1"], r"^error: max_age: "),
    (["policy", "add", "new", "/new", "--max-age", "99999999999"], r"^error: max_age: "),
    (["policy", "add", "new", "/new", "--review-every-days", "0"], r"^error: review_every_days: "),
    (["policy", "update", "api"], r"^error: nothing to change: give at least one option$"),
    (["policy", "update", "api", "--origin", "*"], r"^error: origins\[0\]: '\*' cannot be used"),
    (
        ["policy", "update", "api", "--path", "/taken/**"],
        r"^error: path: policy 'taken' already covers '/taken/\*\*'$",
    ),
    (["check", "https://app.example", "api/x"], r"^error: path: must start with '/'"),
]


@pytest.mark.parametrize(("args", "expected"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_user_mistake_is_one_error_line_exit_1_and_writes_nothing(
    runner: FlaskCliRunner, app: Flask, args: list[str], expected: str
) -> None:
    before = seed(app, API, policy_doc("taken", "/taken/**"))
    lines = user_error(runner, *args)
    assert len(lines) == 1, lines
    assert re.search(expected, lines[0]), lines[0]
    assert view(app) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("policy", "add", "x", "/x", "--max-age", "soon"), "'soon' is not a valid integer"),
        (("policy", "add", "x"), "Missing argument 'PATH'"),
        (("origin", "add", "api", "https://a.example", "--colour", "red"), "--colour"),
        (("check", "https://a.example", "/x", "--method"), "--method"),
        (("no-such-command",), "No such command"),
    ],
)
def test_usage_mistakes_are_one_line_errors_too(
    runner: FlaskCliRunner, args: tuple[str, ...], fragment: str
) -> None:
    lines = user_error(runner, *args)
    assert len(lines) == 1, lines
    assert fragment in lines[0]
