"""``corsadmin draft ...`` and ``corsadmin import --dry-run`` (``corsadmin/cli/drafts.py``).

Run through Flask's CLI runner against the host app, on SQLite and on PostgreSQL;
each command's effect is checked in the database afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.cli import STORED_A, ok, policy_doc, seed, user_error, view, write_json

STORED_B = policy_doc("b", "/b/**", origins=["https://b.example", "https://b2.example"])
PROPOSED_B = policy_doc("b", "/b/**", origins=["https://b.example", "https://b3.example"])


def propose(runner: FlaskCliRunner, tmp_path: Path, *args: str) -> str:
    path = write_json(tmp_path / "draft.json", {"corsadmin": 1, "policies": [PROPOSED_B]})
    return ok(runner, "--actor", "alice", "draft", "import", path, *args).stdout


def test_draft_import_writes_nothing_live_and_diff_shows_it(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    before = seed(app, STORED_A, STORED_B)
    out = propose(runner, tmp_path, "--reason", "b3 replaces b2")
    assert out.splitlines()[0] == "draft 1 (version 1) proposes changes to: b"
    assert view(app).document == before.document
    diff = ok(runner, "draft", "diff").stdout.splitlines()
    assert diff == [
        "~ policy b (1 rule added, 1 rule removed)",
        "    - origin https://b2.example",
        "    + origin https://b3.example",
    ]
    shown = ok(runner, "draft", "show").stdout
    assert "draft 1 (version 1) by alice" in shown
    assert "reason: b3 replaces b2" in shown
    assert "policies it changes: b" in shown
    data = json.loads(ok(runner, "draft", "diff", "--format", "json").stdout)
    assert data[0]["origins"] == {
        "added": ["https://b3.example"],
        "removed": ["https://b2.example"],
        "changed": [],
    }


def test_draft_promote_makes_it_live(runner: FlaskCliRunner, app: Flask, tmp_path: Path) -> None:
    seed(app, STORED_A, STORED_B)
    propose(runner, tmp_path)
    out = ok(runner, "--actor", "bob", "draft", "promote", "--version", "1").stdout
    assert out.startswith("promoted draft 1 at revision ")
    assert out.endswith(": changed b\n")
    after = view(app)
    assert next(p for p in after.document["policies"] if p["name"] == "b")["origins"] == [
        "https://b.example",
        "https://b3.example",
    ]
    assert after.events[-2:] == [("bob", "policy.update", "b"), ("bob", "draft.promote", None)]
    assert user_error(runner, "draft", "show") == ["error: there is no active draft"]


def test_draft_discard_leaves_live_alone(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    before = seed(app, STORED_A, STORED_B)
    propose(runner, tmp_path)
    out = ok(runner, "draft", "discard").stdout
    assert out == "discarded draft 1; the live policies are unchanged\n"
    assert view(app).document == before.document
    assert user_error(runner, "draft", "promote") == ["error: there is no active draft"]
    assert user_error(runner, "draft", "discard") == ["error: there is no active draft"]


def test_stale_version_and_conflict_are_one_line_errors(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    seed(app, STORED_A, STORED_B)
    propose(runner, tmp_path)
    lines = user_error(runner, "draft", "promote", "--version", "7")
    assert lines == [
        "error: draft 1 changed since you read it (your version 7, now 1); "
        "look at it again before promoting or discarding it"
    ]
    ok(runner, "--actor", "carol", "origin", "add", "b", "https://z.example")
    [line] = user_error(runner, "draft", "promote")
    assert line.startswith(
        "error: policy 'b' changed since the draft was made (origin.add by carol"
    )
    assert "nothing was promoted" in line


def test_draft_import_refuses_a_bad_document_naming_the_field(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    seed(app, STORED_A)
    bad = policy_doc("b", "/b/**", origins=["https://b.example"], max_age=-1)
    path = write_json(tmp_path / "bad.json", {"corsadmin": 1, "policies": [bad]})
    [line] = user_error(runner, "draft", "import", path)
    assert line.startswith("error: policies[0].max_age:")
    assert user_error(runner, "draft", "diff") == ["error: there is no active draft"]


def test_import_dry_run_prints_the_diff_and_writes_nothing(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    before = seed(app, STORED_A, STORED_B)
    path = write_json(tmp_path / "doc.json", {"corsadmin": 1, "policies": [PROPOSED_B]})
    out = ok(runner, "import", path, "--replace", "--dry-run").stdout.splitlines()
    assert out == [
        "- policy a (1 rule removed)",
        "    - origin https://a.example",
        "~ policy b (1 rule added, 1 rule removed)",
        "    - origin https://b2.example",
        "    + origin https://b3.example",
        "dry run: nothing was written (2 policies would change)",
    ]
    after = view(app)
    assert after.document == before.document
    assert after.revision == before.revision


def test_import_dry_run_of_the_live_document_changes_nothing(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    seed(app, STORED_A)
    path = write_json(tmp_path / "doc.json", {"corsadmin": 1, "policies": [STORED_A]})
    out = ok(runner, "import", path, "--dry-run").stdout.splitlines()
    assert out == [
        f"importing {path} would change nothing",
        "dry run: nothing was written (0 policies would change)",
    ]
