"""The CLI tests' helpers: ``flask corsadmin ...`` through Flask's CLI runner and what the
database holds afterwards, and the operator's real entry point, ``python manage.py
corsadmin ...``, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.host import host_of

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py corsadmin ARGS`` with ``env``; it must succeed (exit 0)."""
    cmd = [sys.executable, "manage.py", "corsadmin", *args]
    result = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd[1:])} exited with {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


# --- flask corsadmin ... in this process ---------------------------------------------


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
    host = host_of(app)
    with app.app_context():
        try:
            store = host.cors.store("inspector", app)
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
            host.db.session.remove()


def seed(app: Flask, *policies: dict[str, Any]) -> DbView:
    """Store policies through the store (not the CLI under test); returns the view after."""
    host = host_of(app)
    with app.app_context():
        try:
            host.cors.store("seed", app).import_document(
                {"corsadmin": 1, "policies": list(policies)}
            )
        finally:
            host.db.session.remove()
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
STORED_A = policy_doc("a", "/a", origins=["https://a.example"])
