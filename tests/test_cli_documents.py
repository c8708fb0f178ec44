"""``corsadmin import`` and ``corsadmin export`` (``corsadmin/cli/documents.py``).

Run through Flask's CLI runner against the host app (``runner`` fixture), on SQLite
and on PostgreSQL; each command's effect is checked in the database afterwards: the
policies (every field, every origin row), the revision and the audit log.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.cli import STORED_A, ok, policy_doc, seed, user_error, view, write_json

# --- import -----------------------------------------------------------------------------

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
