"""Who the audit log names for a CLI change: ``--actor``, ``CORSADMIN_ACTOR``, else
``cli:<login>`` (``corsadmin/cli/__init__.py``, ``corsadmin/cli/context.py``). On SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import getpass

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin
from tests.support.cli import ok, view


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
    runner: FlaskCliRunner,
    app: Flask,
    args: list[str],
    env: dict[str, str],
    actor: str,
    cors: CorsAdmin,
    db: SQLAlchemy,
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
