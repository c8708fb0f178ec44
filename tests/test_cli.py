"""The ``corsadmin`` command group, on SQLite and on PostgreSQL.

Every command is run through Flask's CLI runner against the standalone app
(``runner`` fixture), and its effect is checked in the database afterwards:
the policies (every field, every origin row), the revision and the audit log.
One test runs the real entry points (``python manage.py`` and ``flask --app
manage``) in subprocesses.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from manage import cors, create_app, db

REPO = Path(__file__).resolve().parent.parent

# --- helpers ----------------------------------------------------------------------------


def invoke(
    runner: FlaskCliRunner,
    *args: str,
    input: str | bytes | None = None,
    env: dict[str, str | None] | None = None,
) -> Result:
    """``flask corsadmin ARGS`` in this process; CORSADMIN_ACTOR unset unless given."""
    full_env: dict[str, str | None] = {"CORSADMIN_ACTOR": None}
    full_env.update(env or {})
    return runner.invoke(args=["corsadmin", *args], input=input, env=full_env)


def ok(runner: FlaskCliRunner, *args: str, **kwargs: Any) -> Result:
    """Run a command that must succeed (exit 0, nothing on stderr)."""
    result = invoke(runner, *args, **kwargs)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr == ""
    return result


def user_error(runner: FlaskCliRunner, *args: str, **kwargs: Any) -> list[str]:
    """Run a command that must fail as a user mistake: ``error:`` lines, exit 1,
    no traceback, nothing on stdout. Returns the stderr lines."""
    result = invoke(runner, *args, **kwargs)
    assert result.exit_code == 1, (result.output, result.exception)
    # An exception other than SystemExit means click caught a crash (a traceback).
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


@dataclass
class DbView:
    """What the database holds, read in a fresh app context (a fresh session)."""

    revision: int
    document: dict[str, Any]
    events: list[tuple[str, str, str | None]]  # (actor, action, policy), oldest first
    event_revisions: list[int]  # the revision each event recorded, oldest first
    origins: dict[str, dict[str, tuple[str, datetime | None, str]]]
    # policy -> origin -> (note, expires_at, created_by)
    rows: dict[str, dict[str, Any]]  # policy -> columns not in the document


def view(app: Flask) -> DbView:
    with app.app_context():
        try:
            store = cors.store("inspector", app)
            policies = store.policies()
            return DbView(
                revision=store.revision(),
                document=store.export_document(),
                events=[(e.actor, e.action, e.policy_name) for e in reversed(store.audit_events())],
                event_revisions=[e.revision for e in reversed(store.audit_events())],
                origins={
                    p.name: {r.origin: (r.note, r.expires_at, r.created_by) for r in p.origin_rules}
                    for p in policies
                },
                rows={
                    p.name: {
                        "version": p.version,
                        "created_by": p.created_by,
                        "updated_by": p.updated_by,
                    }
                    for p in policies
                },
            )
        finally:
            db.session.remove()


def seed(app: Flask, *policies: dict[str, Any]) -> DbView:
    """Store policies through the store (not the CLI under test); returns the view after."""
    with app.app_context():
        try:
            cors.store("seed", app).import_document({"corsadmin": 1, "policies": list(policies)})
        finally:
            db.session.remove()
    return view(app)


def policy_doc(name: str, path: str, **fields: Any) -> dict[str, Any]:
    """A policy as ``export`` prints it: every field, defaults filled in."""
    document = {
        "name": name,
        "path": path,
        "description": "",
        "origins": [],
        "methods": ["GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"],
        "allow_headers": ["*"],
        "expose_headers": [],
        "credentials": False,
        "max_age": None,
        "private_network": False,
        "enabled": True,
        "priority": 0,
        "review_every_days": 90,
    }
    unknown = set(fields) - set(document)
    assert not unknown, unknown
    document.update(fields)
    return document


def by_name(view_: DbView) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in view_.document["policies"]}


def write_json(path: Path, document: object) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


API = policy_doc(
    "api",
    "/api/**",
    origins=["https://app.example"],
    credentials=True,
    description="the api",
)


@pytest.fixture
def bare_app(database_url: str) -> Iterator[Flask]:
    """The standalone app on an empty database: no migrations were run."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CORSADMIN_REFRESH_INTERVAL": 0.2,
        }
    )
    yield app
    cors.stop(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- policy list / show / add -----------------------------------------------------------


def test_policy_list_on_an_empty_database_says_how_to_add_one(
    runner: FlaskCliRunner, app: Flask
) -> None:
    result = ok(runner, "policy", "list")
    assert result.stdout == (
        "no policies yet: add one with `corsadmin policy add NAME PATH --origin ...`\n"
    )
    assert view(app).revision == 0


def test_policy_add_with_every_option_stores_every_field(
    runner: FlaskCliRunner, app: Flask
) -> None:
    result = ok(
        runner,
        "--actor",
        "alice",
        "policy",
        "add",
        "partner-api",
        "/api/v1/**",
        "--origin",
        "https://app.partner.example",
        "--origin",
        "https://*.staging.partner.example",
        "--origin",
        "HTTP://LOCALHOST:*",
        "--method",
        "get",
        "--method",
        "PUT",
        "--allow-header",
        "Content-Type",
        "--allow-header",
        "Authorization",
        "--expose-header",
        "X-Request-Id",
        "--credentials",
        "--max-age",
        "600",
        "--private-network",
        "--disable",
        "--priority",
        "7",
        "--description",
        "Partner integration API",
        "--review-every-days",
        "30",
    )
    assert result.stdout == "added policy partner-api for /api/v1/** with 3 origin(s)\n"
    after = view(app)
    assert after.document == {
        "corsadmin": 1,
        "policies": [
            policy_doc(
                "partner-api",
                "/api/v1/**",
                description="Partner integration API",
                origins=[
                    "http://localhost:*",
                    "https://*.staging.partner.example",
                    "https://app.partner.example",
                ],
                methods=["GET", "PUT"],
                allow_headers=["Content-Type", "Authorization"],
                expose_headers=["X-Request-Id"],
                credentials=True,
                max_age=600,
                private_network=True,
                enabled=False,
                priority=7,
                review_every_days=30,
            )
        ],
    }
    assert after.revision == 1
    assert after.events == [("alice", "policy.create", "partner-api")]
    assert after.rows["partner-api"] == {"version": 1, "created_by": "alice", "updated_by": "alice"}
    assert {o: r[2] for o, r in after.origins["partner-api"].items()} == {
        "http://localhost:*": "alice",
        "https://*.staging.partner.example": "alice",
        "https://app.partner.example": "alice",
    }


def test_policy_add_without_options_takes_the_documented_defaults(
    runner: FlaskCliRunner, app: Flask
) -> None:
    result = ok(runner, "policy", "add", "plain", "/plain")
    assert result.stdout == "added policy plain for /plain with 0 origin(s)\n"
    assert view(app).document["policies"] == [policy_doc("plain", "/plain")]


def test_policy_list_shows_name_path_origin_count_and_flags_sorted(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(
        app,
        policy_doc("zeta", "/z/**", origins=["https://a.example", "https://b.example"]),
        policy_doc(
            "alpha",
            "/alpha/long/path/*",
            origins=["https://a.example"],
            credentials=True,
            private_network=True,
            enabled=False,
            priority=-2,
        ),
        policy_doc("mid", "/m"),
    )
    result = ok(runner, "policy", "list")
    assert result.stdout.splitlines() == [
        "NAME   PATH                ORIGINS  FLAGS",
        "alpha  /alpha/long/path/*  1        disabled,credentials,private-network,priority=-2",
        "mid    /m                  0        -",
        "zeta   /z/**               2        -",
    ]


def test_policy_show_prints_every_setting_and_origin_details(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(
        app,
        policy_doc(
            "api",
            "/api/**",
            description="the api",
            origins=[
                "https://app.example",
                {
                    "origin": "https://x.example",
                    "note": "ticket 7",
                    "expires": "2031-02-03T04:05:00Z",
                },
            ],
            methods=["GET", "POST"],
            allow_headers=["X-Token"],
            expose_headers=["X-Request-Id"],
            credentials=True,
            max_age=600,
            priority=3,
            review_every_days=30,
        ),
    )
    result = ok(runner, "policy", "show", "api")
    lines = result.stdout.splitlines()
    assert lines[0] == "policy api (version 1)"
    assert lines[1:12] == [
        "  path:              /api/**",
        "  description:       the api",
        "  enabled:           true",
        "  priority:          3",
        "  methods:           GET, POST",
        "  allow headers:     X-Token",
        "  expose headers:    X-Request-Id",
        "  credentials:       true",
        "  max age:           600",
        "  private network:   false",
        "  review every:      30 days",
    ]
    stamp = r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC by seed"
    created = re.fullmatch(r"  created:           " + stamp, lines[12])
    updated = re.fullmatch(r"  updated:           " + stamp, lines[13])
    assert created, lines[12]
    assert updated, lines[13]
    with app.app_context():
        try:
            stored = cors.store("inspector", app).policy("api")
            assert created.group(1) == f"{stored.created_at:%Y-%m-%d %H:%M}"
            assert updated.group(1) == f"{stored.updated_at:%Y-%m-%d %H:%M}"
            added = {r.origin: f"{r.created_at:%Y-%m-%d}" for r in stored.origin_rules}
        finally:
            db.session.remove()
    assert abs(datetime.now(UTC) - stored.created_at) < timedelta(minutes=5)
    assert lines[14:] == [
        "  origins (2):",
        f"    https://app.example  (added {added['https://app.example']} by seed)",
        "    https://x.example  (note: ticket 7; expires 2031-02-03 04:05 UTC; "
        f"added {added['https://x.example']} by seed)",
    ]


# --- policy update / remove -------------------------------------------------------------

UPDATE_BASE = policy_doc(
    "api",
    "/api/**",
    origins=["https://app.example", "https://b.example"],
    methods=["GET", "POST"],
    credentials=True,
    max_age=60,
    priority=1,
    description="before",
    review_every_days=90,
)


@pytest.mark.parametrize(
    ("options", "changed"),
    [
        (["--path", "/v2/**"], {"path": "/v2/**"}),
        (
            ["--origin", "https://New.example:443", "--origin", "http://localhost:*"],
            {"origins": ["http://localhost:*", "https://new.example"]},
        ),
        (["--method", "put", "--method", "DELETE"], {"methods": ["PUT", "DELETE"]}),
        (["--allow-header", "X-A", "--allow-header", "X-B"], {"allow_headers": ["X-A", "X-B"]}),
        (["--expose-header", "X-Request-Id"], {"expose_headers": ["X-Request-Id"]}),
        (["--no-credentials"], {"credentials": False}),
        (["--max-age", "0"], {"max_age": 0}),
        (["--private-network"], {"private_network": True}),
        (["--disable"], {"enabled": False}),
        (["--priority", "-5"], {"priority": -5}),
        (["--description", "after"], {"description": "after"}),
        (["--review-every-days", "7"], {"review_every_days": 7}),
        (
            ["--no-credentials", "--origin", "*", "--priority", "2"],
            {"credentials": False, "origins": ["*"], "priority": 2},
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_policy_update_changes_only_the_given_options(
    runner: FlaskCliRunner, app: Flask, options: list[str], changed: dict[str, Any]
) -> None:
    before = seed(app, UPDATE_BASE)
    result = ok(runner, "--actor", "bob", "policy", "update", "api", *options)
    assert result.stdout == "updated policy api\n"
    after = view(app)
    assert after.document["policies"] == [{**UPDATE_BASE, **changed}]
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("bob", "policy.update", "api")]
    assert after.rows["api"] == {"version": 2, "created_by": "seed", "updated_by": "bob"}


def test_policy_update_enable_and_credentials_turn_flags_on(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, policy_doc("off", "/off", origins=["https://a.example"], enabled=False))
    ok(runner, "policy", "update", "off", "--enable", "--credentials")
    assert by_name(view(app))["off"] == policy_doc(
        "off", "/off", origins=["https://a.example"], credentials=True
    )


def test_policy_update_to_the_same_values_records_no_change(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, UPDATE_BASE)
    ok(runner, "policy", "update", "api", "--priority", "1", "--method", "get", "--method", "POST")
    after = view(app)
    assert after == before


def test_policy_remove_deletes_the_policy_and_its_origins(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, API, policy_doc("keep", "/keep", origins=["https://k.example"]))
    result = ok(runner, "--actor", "carol", "policy", "remove", "api")
    assert result.stdout == "removed policy api\n"
    after = view(app)
    assert list(by_name(after)) == ["keep"]
    assert list(after.origins) == ["keep"]
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("carol", "policy.delete", "api")]
    # The rows are really gone: the same name and path can be added again.
    ok(runner, "policy", "add", "api", "/api/**")


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
    assert result.stdout == f"allowed {stored} on api; every worker enforces it within 0.2s\n"
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


# --- import -----------------------------------------------------------------------------

STORED_A = policy_doc("a", "/a", origins=["https://a.example"])
STORED_B = policy_doc("b", "/b", origins=["https://b.example"])
INCOMING_B = policy_doc("b", "/b/**", origins=["https://b2.example"], priority=4)
INCOMING_C = policy_doc("c", "/c", origins=["https://c.example"], credentials=True)


@pytest.mark.parametrize(
    ("replace", "report", "expected", "new_events"),
    [
        (
            False,
            "1 created, 1 updated, 0 deleted, 0 unchanged",
            [STORED_A, INCOMING_B, INCOMING_C],
            [("policy.update", "b"), ("policy.create", "c")],
        ),
        (
            True,
            "1 created, 1 updated, 1 deleted, 0 unchanged",
            [INCOMING_B, INCOMING_C],
            [("policy.delete", "a"), ("policy.update", "b"), ("policy.create", "c")],
        ),
    ],
    ids=["merge", "replace"],
)
def test_import_merges_by_name_or_replaces(
    runner: FlaskCliRunner,
    app: Flask,
    tmp_path: Path,
    replace: bool,
    report: str,
    expected: list[dict[str, Any]],
    new_events: list[tuple[str, str]],
) -> None:
    before = seed(app, STORED_A, STORED_B)
    path = write_json(tmp_path / "doc.json", {"corsadmin": 1, "policies": [INCOMING_C, INCOMING_B]})
    args = ["import", path, *(["--replace"] if replace else [])]
    result = ok(runner, "--actor", "importer", *args)
    assert result.stdout == f"imported {path}: {report}\n"
    after = view(app)
    assert after.document["policies"] == expected
    # One transaction: the revision moves once, every event carries it.
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, *(("importer", *e) for e in new_events)]
    assert after.event_revisions == [*before.event_revisions] + [after.revision] * len(new_events)


def test_import_reads_standard_input_with_dash(runner: FlaskCliRunner, app: Flask) -> None:
    document = {"corsadmin": 1, "policies": [INCOMING_C, STORED_A]}
    result = ok(runner, "import", "-", input=json.dumps(document))
    assert result.stdout == "imported <stdin>: 2 created, 0 updated, 0 deleted, 0 unchanged\n"
    after = view(app)
    assert after.document == {"corsadmin": 1, "policies": [STORED_A, INCOMING_C]}
    assert after.revision == 1


def test_import_with_several_errors_reports_each_and_writes_nothing(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    before = seed(app, STORED_A)
    document = {
        "corsadmin": 1,
        "policies": [
            policy_doc("fine", "/fine", origins=["https://fine.example"]),
            {
                "name": "two",
                "path": "/two",
                "origins": ["https://app.example/path", "https://*.com"],
            },
            {"name": "three", "path": "/three", "origins": ["*"], "credentials": True},
            {"name": "four", "path": "/four", "origins": [], "colour": "red"},
        ],
    }
    lines = user_error(runner, "import", write_json(tmp_path / "bad.json", document))
    assert len(lines) == 4
    assert lines[0] == "error: policies[1].origins[0]: a path is not allowed in an origin"
    assert lines[1].startswith("error: policies[1].origins[1]: ")
    assert "public suffix" in lines[1]
    assert lines[2].startswith("error: policies[2].origins[0]: ")
    assert "credentials" in lines[2]
    assert lines[3] == "error: policies[3].colour: unknown field"
    assert view(app) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"corsadmin": 1, "policies": [', r"is not valid JSON: .* at line 1 column \d+$"),
        (b"", r"is not valid JSON"),
        (b"\xff\xfe{\x00}\x00", r"UTF-8|utf-8"),
        (b"[]", r"^error: a policy document must be a JSON object$"),
        (b'{"corsadmin": 2, "policies": []}', r"^error: corsadmin: must be 1"),
        (b'{"corsadmin": 1}', r"^error: policies: must be a list of policies$"),
        (b'{"corsadmin": 1, "policies": [], "extra": 1}', r"^error: extra: unknown field$"),
        (
            b'{"corsadmin": 1, "policies": [{"name": "x", "path": "/a", "origins": []},'
            b' {"name": "x", "path": "/b", "origins": []}]}',
            r"^error: policies\[1\]\.name: 'x' is used by policies\[0\] too$",
        ),
        (
            # The path is held by a stored policy that this (merged) document leaves alone.
            b'{"corsadmin": 1, "policies": [{"name": "other", "path": "/a", "origins": []}]}',
            r"^error: policies\[0\]\.path: policy 'a' \(not in this document\) already covers",
        ),
    ],
    ids=[
        "truncated-json",
        "empty-file",
        "not-utf8",
        "not-an-object",
        "wrong-format",
        "no-policies",
        "unknown-top-field",
        "duplicate-name",
        "path-held-by-another",
    ],
)
def test_import_of_a_bad_file_is_one_error_line_and_writes_nothing(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path, content: bytes, expected: str
) -> None:
    before = seed(app, STORED_A)
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    lines = user_error(runner, "import", str(path))
    assert len(lines) == 1, lines
    assert re.search(expected, lines[0]), lines[0]
    assert view(app) == before


def test_import_of_a_missing_file_is_one_error_line_exit_1(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    before = seed(app, STORED_A)
    lines = user_error(runner, "import", str(tmp_path / "missing.json"))
    assert len(lines) == 1, lines
    assert "missing.json" in lines[0]
    assert view(app) == before


# --- export -----------------------------------------------------------------------------


def test_export_prints_every_field_of_every_policy_sorted_by_name(
    runner: FlaskCliRunner, app: Flask
) -> None:
    ok(runner, "policy", "add", "zeta", "/z/**", "--origin", "https://z.example")
    ok(
        runner,
        "policy",
        "add",
        "alpha",
        "/a/*",
        "--origin",
        "https://b.example",
        "--origin",
        "https://a.example",
        "--method",
        "GET",
        "--allow-header",
        "X-Token",
        "--expose-header",
        "X-Id",
        "--credentials",
        "--max-age",
        "30",
        "--private-network",
        "--disable",
        "--priority",
        "2",
        "--description",
        "Ä description",
        "--review-every-days",
        "10",
    )
    ok(runner, "policy", "add", "mid", "/m")
    ok(
        runner,
        "origin",
        "add",
        "mid",
        "https://m.example",
        "--note",
        "n",
        "--expires",
        "2032-01-02",
    )
    result = ok(runner, "export")
    assert "Ä description" in result.stdout  # UTF-8, not \u escapes
    assert json.loads(result.stdout) == {
        "corsadmin": 1,
        "policies": [
            policy_doc(
                "alpha",
                "/a/*",
                description="Ä description",
                origins=["https://a.example", "https://b.example"],
                methods=["GET"],
                allow_headers=["X-Token"],
                expose_headers=["X-Id"],
                credentials=True,
                max_age=30,
                private_network=True,
                enabled=False,
                priority=2,
                review_every_days=10,
            ),
            policy_doc(
                "mid",
                "/m",
                origins=[
                    {"origin": "https://m.example", "note": "n", "expires": "2032-01-02T00:00:00Z"}
                ],
            ),
            policy_doc("zeta", "/z/**", origins=["https://z.example"]),
        ],
    }
    # Every field, in the document's order.
    assert list(json.loads(result.stdout)["policies"][0]) == list(policy_doc("x", "/x"))


def test_export_of_an_empty_database(runner: FlaskCliRunner) -> None:
    assert json.loads(ok(runner, "export").stdout) == {"corsadmin": 1, "policies": []}


def test_export_then_import_replace_changes_nothing(runner: FlaskCliRunner, app: Flask) -> None:
    before = seed(
        app,
        policy_doc(
            "partner",
            "/api/v1/**",
            description="Partner integration API",
            origins=[
                "https://app.partner.example",
                {
                    "origin": "https://*.staging.partner.example",
                    "note": "Acme staging",
                    "expires": "2037-03-01T00:00:00Z",
                },
                {"origin": "https://noted.example", "note": "just a note"},
                "http://localhost:*",
                r"re:^https://[a-z]{2}\.partner\.example$",
                "null",
            ],
            methods=["GET", "POST", "PUT"],
            allow_headers=["Content-Type", "Authorization"],
            expose_headers=["X-Request-Id"],
            credentials=True,
            max_age=600,
            private_network=True,
            priority=-3,
            review_every_days=45,
        ),
        policy_doc("any", "/public/**", origins=["*"], enabled=False, max_age=0),
        policy_doc("empty", "/nothing"),
    )
    exported = ok(runner, "export").stdout
    result = ok(runner, "import", "--replace", "-", input=exported)
    assert "0 created, 0 updated, 0 deleted" in result.stdout
    assert result.stdout == "imported <stdin>: 0 created, 0 updated, 0 deleted, 3 unchanged\n"
    after = view(app)
    assert after.revision == before.revision
    assert after.events == before.events
    assert after == before
    assert ok(runner, "export").stdout == exported


# --- check ------------------------------------------------------------------------------

CHECK_POLICIES = (
    policy_doc(
        "api",
        "/api/**",
        origins=["https://app.example", "https://*.partner.example"],
        methods=["GET", "PUT"],
        allow_headers=["X-Token", "Content-Type"],
        expose_headers=["X-Request-Id"],
        credentials=True,
        max_age=600,
    ),
    policy_doc("items", "/api/items/*", origins=["https://app.example"]),
    policy_doc("boosted", "/api/*/x", origins=["https://app.example"], priority=5),
    policy_doc("off", "/off/**", origins=["https://app.example"], enabled=False),
    policy_doc("public", "/public/**", origins=["*"]),
    policy_doc("lan", "/lan/**", origins=["https://app.example"], private_network=True),
)


def check(runner: FlaskCliRunner, *args: str) -> tuple[int, list[str]]:
    result = invoke(runner, "check", *args)
    assert isinstance(result.exception, SystemExit) or result.exception is None
    assert result.stderr == ""
    return result.exit_code, result.stdout.splitlines()


def test_check_allowed_request_names_policy_rule_and_exact_headers(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://app.example", "/api/status")
    assert code == 0
    assert lines == [
        "request: GET /api/status from https://app.example (revision 1)",
        "policy: api (path /api/**, priority 0)",
        "origin: origin allowed by rule 'https://app.example' (exact) of policy 'api'",
        "response headers:",
        "  Access-Control-Allow-Origin: https://app.example",
        "  Access-Control-Expose-Headers: X-Request-Id",
        "  Access-Control-Allow-Credentials: true",
        "  Vary: Origin",
        "verdict: ALLOWED",
    ]


def test_check_preflight_section_when_method_or_headers_need_one(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(
        runner, "https://a.partner.example", "/api/z", "--method", "put", "--header", "X-Token"
    )
    assert code == 0
    assert lines[0] == "request: PUT /api/z from https://a.partner.example (revision 1)"
    assert (
        "origin: origin allowed by rule 'https://*.partner.example' (subdomain) of policy 'api'"
        in lines
    )
    start = lines.index(
        "preflight: a browser sends one first, because PUT is not a simple method; it sets X-Token"
    )
    end = lines.index("response headers:")
    assert lines[start + 1] == "preflight response headers:"
    assert sorted(lines[start + 2 : end]) == sorted(
        [
            "  Access-Control-Allow-Origin: https://a.partner.example",
            "  Access-Control-Allow-Credentials: true",
            "  Access-Control-Expose-Headers: X-Request-Id",
            "  Access-Control-Allow-Headers: x-token",
            "  Access-Control-Allow-Methods: GET, PUT",
            "  Access-Control-Max-Age: 600",
            "  Vary: Origin",
        ]
    )
    assert lines[end + 1] == "  Access-Control-Allow-Origin: https://a.partner.example"
    assert lines[-1] == "verdict: ALLOWED"


ALLOWED_API_HEADERS = [
    "  Access-Control-Allow-Origin: https://app.example",
    "  Access-Control-Expose-Headers: X-Request-Id",
    "  Access-Control-Allow-Credentials: true",
    "  Vary: Origin",
]


@pytest.mark.parametrize(
    ("args", "expected", "response"),
    [
        (
            ["https://evil.example", "/api/x"],
            ["origin: refused: no origin rule of policy 'api' matches 'https://evil.example'"],
            ["  Vary: Origin"],
        ),
        (
            ["https://app.example", "/nothing/here"],
            ["policy: none - no enabled policy covers this path; no CORS headers are sent"],
            ["  (none)"],
        ),
        (
            ["https://app.example", "/off/z"],
            ["policy: none - no enabled policy covers this path; no CORS headers are sent"],
            ["  (none)"],
        ),
        (
            ["https://app.example", "/api/x", "--method", "DELETE"],
            [
                "preflight: a browser sends one first, because DELETE is not a simple method",
                "preflight refused: the method DELETE is not allowed",
            ],
            ALLOWED_API_HEADERS,
        ),
        (
            ["https://app.example", "/api/x", "--header", "X-Other"],
            [
                "preflight: a browser sends one first, because it sets X-Other",
                "preflight refused: the header(s) X-Other are not allowed",
            ],
            ALLOWED_API_HEADERS,
        ),
        (
            ["https://app.example", "/api/x", "--method", "PATCH", "--header", "X-Other"],
            [
                "preflight: a browser sends one first, because PATCH is not a simple method; "
                "it sets X-Other",
                "preflight refused: the method PATCH is not allowed; "
                "the header(s) X-Other are not allowed",
            ],
            ALLOWED_API_HEADERS,
        ),
    ],
    ids=[
        "origin-not-listed",
        "path-not-covered",
        "policy-disabled",
        "method",
        "header",
        "method-and-header",
    ],
)
def test_check_refused_exits_2_and_says_why(
    runner: FlaskCliRunner,
    app: Flask,
    args: list[str],
    expected: list[str],
    response: list[str],
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, *args)
    assert code == 2
    assert lines[-1] == "verdict: REFUSED"
    for line in expected:
        assert line in lines
    assert lines[lines.index("response headers:") + 1 : -1] == response


def test_check_lists_the_other_candidates_and_why_they_lose(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://app.example", "/api/items/x")
    assert code == 0
    assert lines[1:4] == [
        "policy: boosted (path /api/*/x, priority 5)",
        "  also matched: items (path /api/items/*, priority 0) - loses to boosted on priority",
        "  also matched: api (path /api/**, priority 0) - loses to boosted on priority",
    ]
    code, lines = check(runner, "https://app.example", "/api/items/7")
    assert code == 0
    assert lines[1:3] == [
        "policy: items (path /api/items/*, priority 0)",
        "  also matched: api (path /api/**, priority 0) - loses to items on specificity",
    ]
    assert "  Access-Control-Allow-Origin: https://app.example" in lines


@pytest.mark.parametrize(
    ("path", "verdict", "code"),
    [("/lan/printer", "ALLOWED", 0), ("/api/printer", "REFUSED", 2)],
    ids=["policy-allows-private-network", "policy-does-not"],
)
def test_check_private_network_preflight(
    runner: FlaskCliRunner, app: Flask, path: str, verdict: str, code: int
) -> None:
    """A private network preflight passes only with Access-Control-Allow-Private-Network: true."""
    seed(app, *CHECK_POLICIES)
    exit_code, lines = check(runner, "https://app.example", path, "--private-network")
    assert "preflight: a browser sends one first, because it reaches a private network" in lines
    preflight = lines[lines.index("preflight response headers:") : lines.index("response headers:")]
    granted = "  Access-Control-Allow-Private-Network: true" in preflight
    assert granted is (verdict == "ALLOWED")
    assert lines[-1] == f"verdict: {verdict}"
    assert exit_code == code


def test_check_any_origin_policy_answers_star(runner: FlaskCliRunner, app: Flask) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://anyone.example", "/public/file")
    assert code == 0
    assert "  Access-Control-Allow-Origin: *" in lines
    assert "  Vary: Origin" not in lines


@pytest.mark.parametrize(
    ("header", "preflight"),
    [
        ("Content-Type: text/plain", False),
        ("Accept", False),
        ("Content-Type: application/json", True),
        ("X-Token", True),
    ],
)
def test_check_preflight_only_for_non_safelisted_headers(
    runner: FlaskCliRunner, app: Flask, header: str, preflight: bool
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://app.example", "/api/x", "--header", header)
    assert code == 0
    assert ("preflight response headers:" in lines) is preflight


# --- actor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "actor"),
    [
        (["--actor", "alice"], {}, "alice"),
        ([], {"CORSADMIN_ACTOR": "robot:deploy"}, "robot:deploy"),
        (["--actor", "alice"], {"CORSADMIN_ACTOR": "robot:deploy"}, "alice"),
        ([], {}, f"cli:{getpass.getuser()}"),
    ],
    ids=["option", "env", "option-beats-env", "default"],
)
def test_actor_is_recorded_in_the_audit_log(
    runner: FlaskCliRunner, app: Flask, args: list[str], env: dict[str, str], actor: str
) -> None:
    ok(runner, *args, "policy", "add", "api", "/api/**", env=env)
    ok(runner, *args, "origin", "add", "api", "https://a.example", env=env)
    ok(runner, *args, "policy", "update", "api", "--priority", "1", env=env)
    ok(runner, *args, "origin", "remove", "api", "https://a.example", env=env)
    ok(runner, *args, "import", "-", input='{"corsadmin": 1, "policies": []}', env=env)
    ok(runner, *args, "import", "--replace", "-", input='{"corsadmin": 1, "policies": []}', env=env)
    after = view(app)
    assert after.events == [
        (actor, "policy.create", "api"),
        (actor, "origin.add", "api"),
        (actor, "policy.update", "api"),
        (actor, "origin.remove", "api"),
        (actor, "policy.delete", "api"),
    ]
    with app.app_context():
        try:
            assert [e.actor for e in cors.store("x", app).audit_events(actor=actor)] == [actor] * 5
        finally:
            db.session.remove()


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
    "args",
    [
        ["policy", "list"],
        ["policy", "show", "api"],
        ["policy", "add", "api", "/api/**", "--origin", "https://a.example"],
        ["policy", "update", "api", "--priority", "1"],
        ["policy", "remove", "api"],
        ["origin", "add", "api", "https://a.example"],
        ["origin", "remove", "api", "https://a.example"],
        ["export"],
        ["import", "-"],
        ["check", "https://a.example", "/api/x"],
    ],
    ids=lambda a: " ".join(a),
)
def test_missing_schema_is_an_error_that_says_to_upgrade(bare_app: Flask, args: list[str]) -> None:
    runner = bare_app.test_cli_runner()
    lines = user_error(runner, *args, input='{"corsadmin": 1, "policies": []}')
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: the database is not ready (")
    assert "db upgrade" in lines[0]
    assert "corsadmin_" in lines[0]  # names the missing table


def test_db_upgrade_creates_the_schema_and_is_idempotent(bare_app: Flask) -> None:
    runner = bare_app.test_cli_runner()
    assert invoke(runner, "policy", "list").exit_code == 1
    result = ok(runner, "db-upgrade")
    assert result.stdout == "corsadmin schema is at head\n"
    assert ok(runner, "policy", "list").stdout.startswith("no policies yet")
    ok(runner, "policy", "add", "api", "/api/**", "--origin", "https://a.example")
    again = ok(runner, "db-upgrade")
    assert again.stdout == "corsadmin schema is at head\n"
    after = view(bare_app)
    assert after.revision == 1
    assert list(by_name(after)) == ["api"]
    from corsadmin.db.schema import current_revision, head_revision

    with bare_app.app_context():
        assert current_revision(db.engine) == head_revision() == "0002_operator_sessions"


# --- the real entry points --------------------------------------------------------------


def test_entry_points_in_subprocesses(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "CORSADMIN_")) and k != "DATABASE_URL"
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    env["CORSADMIN_ACTOR"] = "subprocess"
    bindir = Path(sys.executable).parent

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    upgrade = run(sys.executable, "manage.py", "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "cli.sqlite").is_file()

    empty = run(sys.executable, "manage.py", "corsadmin", "policy", "list")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("no policies yet")

    added = run(
        sys.executable, "manage.py", "corsadmin", "policy", "add", "api", "/api/**",
        "--origin", "https://app.example",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = run(sys.executable, "manage.py", "corsadmin", "policy", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "NAME  PATH     ORIGINS  FLAGS",
        "api   /api/**  1        -",
    ]

    exported = run(str(bindir / "flask"), "--app", "manage", "corsadmin", "export")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {
        "corsadmin": 1,
        "policies": [policy_doc("api", "/api/**", origins=["https://app.example"])],
    }

    refused = run(
        str(bindir / "flask"), "--app", "manage", "corsadmin", "check",
        "https://evil.example", "/api/x",
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stdout.splitlines()[-1] == "verdict: REFUSED"

    shown = run(sys.executable, "manage.py", "corsadmin", "policy", "show", "api")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "policy api (version 1)"
    assert any(line.endswith("UTC by subprocess") for line in shown.stdout.splitlines())

    mistake = run(sys.executable, "manage.py", "corsadmin", "policy", "show", "nope")
    assert mistake.returncode == 1
    assert mistake.stderr == "error: no policy named 'nope'\n"
    assert mistake.stdout == ""


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
) -> None:
    before = seed(app, TEMPORARY)
    result = ok(runner, "--actor", "dave", "origin", "add", "api", "https://x.example", *args)
    assert result.stdout == (
        f"changed https://x.example on api: {said}; every worker enforces it within 0.2s\n"
    )
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
