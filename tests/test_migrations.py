"""corsadmin's migrations, on an empty SQLite file and an empty PostgreSQL database.

* ``python manage.py db upgrade`` (Flask-Migrate, in a subprocess) creates the
  tables, the state row and corsadmin's own version table; again, nothing.
* A database made by an earlier revision upgrades in place, its rows kept.
* The migrated schema is what the models describe (Alembic autogenerate finds
  no difference).
* In a host application with its own Alembic history (``alembic_version``) and
  tables, corsadmin's upgrade and downgrade touch only corsadmin's tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import generate_password_hash

from corsadmin import CorsAdmin
from corsadmin.db.models import Base
from corsadmin.db.schema import VERSION_TABLE, alembic_config, head_revision, upgrade
from corsadmin.db.tokens import TokenStore
from tests.support.admin import PASSWORD, log_in
from tests.support.host import close_app, make_app

REPO = Path(__file__).resolve().parent.parent
HEAD = "0008_refused_examples"
#: The tables the models describe; the four of the policy contract must be among them.
CORSADMIN_TABLES = set(Base.metadata.tables)
assert {
    "corsadmin_policy",
    "corsadmin_origin_rule",
    "corsadmin_audit_event",
    "corsadmin_state",
} <= CORSADMIN_TABLES
assert all(name.startswith("corsadmin_") for name in CORSADMIN_TABLES)
#: The tables of migration 0004 (drafts).
DRAFT_TABLES = {name for name in CORSADMIN_TABLES if name.startswith("corsadmin_draft")}
assert len(DRAFT_TABLES) == 4
#: The tables of migration 0005 (API tokens) and later (0006: the fleet view; 0007: alerts).
TOKEN_TABLES = {
    "corsadmin_api_token",
    "corsadmin_worker",
    "corsadmin_alert",
    "corsadmin_refusal_hour",
}
assert TOKEN_TABLES <= CORSADMIN_TABLES


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def manage_db_upgrade(database_url: str) -> subprocess.CompletedProcess[str]:
    """``python manage.py db upgrade`` on ``database_url``, from the repository root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "CORSADMIN_"))}
    env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "manage.py", "db", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def rows(engine: sa.Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query))]


def schema_fingerprint(engine: sa.Engine) -> dict[str, Any]:
    """Every table with its columns, indexes, unique constraints and foreign keys."""
    inspector = sa.inspect(engine)
    return {
        name: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
            ],
            "indexes": sorted(
                (i["name"] or "", tuple(i["column_names"])) for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(name)
            ),
        }
        for name in sorted(inspector.get_table_names())
    }


# --- python manage.py db upgrade ----------------------------------------------------------


def test_manage_db_upgrade_creates_the_schema_and_again_is_a_no_op(
    database_url: str, engine: sa.Engine
) -> None:
    assert tables(engine) == set()
    manage_db_upgrade(database_url)

    assert tables(engine) == CORSADMIN_TABLES | {VERSION_TABLE}
    assert head_revision() == HEAD
    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert rows(engine, "SELECT id, revision FROM corsadmin_state") == [(1, 0)]
    for table in CORSADMIN_TABLES - {"corsadmin_state"}:
        assert rows(engine, f"SELECT count(*) FROM {table}") == [(0,)]

    # Something written in between must survive the second run untouched.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE corsadmin_state SET revision = 41 WHERE id = 1"))
        conn.execute(
            sa.text(
                "INSERT INTO corsadmin_audit_event (at, actor, action, summary, revision) "
                "VALUES (CURRENT_TIMESTAMP, 'me', 'policy.create', 'kept', 41)"
            )
        )
    state_before = rows(engine, "SELECT * FROM corsadmin_state")
    schema_before = schema_fingerprint(engine)

    manage_db_upgrade(database_url)

    assert schema_fingerprint(engine) == schema_before
    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert rows(engine, "SELECT * FROM corsadmin_state") == state_before
    assert rows(engine, "SELECT revision FROM corsadmin_state") == [(41,)]
    assert rows(engine, "SELECT actor, summary FROM corsadmin_audit_event") == [("me", "kept")]


def test_migrations_match_the_models(database_url: str, engine: sa.Engine) -> None:
    manage_db_upgrade(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_compare_metadata_would_see_a_difference(database_url: str, engine: sa.Engine) -> None:
    """The comparison above is not vacuous: a column the models lack is reported."""
    manage_db_upgrade(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE corsadmin_policy ADD COLUMN surprise INTEGER"))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, Base.metadata)
    assert [(d[0], d[2], d[3].name) for d in differences] == [
        ("remove_column", "corsadmin_policy", "surprise")
    ]


# --- a host application with its own migrations -------------------------------------------

HOST_ENV = """
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""

HOST_REVISION = '''
"""host tables"""
from alembic import op
import sqlalchemy as sa

revision = "host0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "widget",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_table(
        "policy",  # a host table whose name looks like corsadmin's business
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("text", sa.String(50), nullable=False),
    )
    op.execute("INSERT INTO widget (id, name) VALUES (1, 'sprocket')")
    op.execute("INSERT INTO policy (id, text) VALUES (1, 'the host''s own')")


def downgrade():
    op.drop_table("policy")
    op.drop_table("widget")
'''

HOST_TABLES = {"widget", "policy", "alembic_version"}


def host_alembic(engine: sa.Engine, directory: Path, revision: str = "head") -> None:
    """The host's own Alembic history (version table ``alembic_version``)."""
    if not (directory / "env.py").exists():
        (directory / "versions").mkdir(parents=True)
        (directory / "env.py").write_text(HOST_ENV)
        (directory / "script.py.mako").write_text("")
        (directory / "versions" / "host0001_tables.py").write_text(HOST_REVISION)
    config = Config()
    config.set_main_option("script_location", str(directory))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def host_state(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        host_version = MigrationContext.configure(conn).get_current_revision()
    return {
        "version": host_version,
        "alembic_version": rows(engine, "SELECT version_num FROM alembic_version"),
        "widget": rows(engine, "SELECT id, name FROM widget"),
        "policy": rows(engine, "SELECT id, text FROM policy"),
        "schema": {k: v for k, v in schema_fingerprint(engine).items() if k in HOST_TABLES},
    }


@pytest.fixture
def host_app(database_url: str) -> Iterator[Flask]:
    """A host application: its own Flask-SQLAlchemy ``db``, corsadmin registered on it."""
    host_db = SQLAlchemy()
    app = Flask("hostapp")
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    host_db.init_app(app)
    CorsAdmin(app, db=host_db)
    yield app
    CorsAdmin.state(app).holder.stop()
    with app.app_context():
        host_db.session.remove()
        host_db.engine.dispose()


@pytest.mark.parametrize("how", ["flask corsadmin db-upgrade", "CorsAdmin.upgrade_schema"])
def test_host_application_keeps_its_version_table_and_tables(
    host_app: Flask, engine: sa.Engine, tmp_path: Path, how: str
) -> None:
    host_alembic(engine, tmp_path / "host_migrations")
    assert tables(engine) == HOST_TABLES
    host_before = host_state(engine)
    assert host_before["version"] == "host0001"
    assert host_before["widget"] == [(1, "sprocket")]

    if how == "flask corsadmin db-upgrade":
        result = host_app.test_cli_runner().invoke(args=["corsadmin", "db-upgrade"])
        assert result.exit_code == 0, (result.output, result.exception)
        assert result.stdout == f"created corsadmin's tables (revision {head_revision()})\n"
    else:
        with host_app.app_context():
            CorsAdmin.state(host_app).extension.upgrade_schema(host_app)

    assert tables(engine) == HOST_TABLES | CORSADMIN_TABLES | {VERSION_TABLE}
    assert host_state(engine) == host_before
    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert rows(engine, "SELECT id, revision FROM corsadmin_state") == [(1, 0)]

    # corsadmin works on the host's db, and the host's migrations still see only theirs.
    with host_app.app_context():
        store = CorsAdmin.state(host_app).extension.store("host-admin", host_app)
        store.create_policy({"name": "api", "path": "/api/**", "origins": ["https://a.example"]})
        assert store.revision() == 1
    host_alembic(engine, tmp_path / "host_migrations")
    assert host_state(engine) == host_before
    assert rows(engine, "SELECT name FROM corsadmin_policy") == [("api",)]

    # Downgrading corsadmin to base removes its tables and nothing of the host's.
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    remaining = tables(engine)
    assert remaining & CORSADMIN_TABLES == set()
    assert remaining - {VERSION_TABLE} == HOST_TABLES
    if VERSION_TABLE in remaining:
        assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == []
    assert host_state(engine) == host_before

    # And it can come back.
    result = host_app.test_cli_runner().invoke(args=["corsadmin", "db-upgrade"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert tables(engine) == HOST_TABLES | CORSADMIN_TABLES | {VERSION_TABLE}
    assert host_state(engine) == host_before


# --- upgrading a database made by an earlier revision ------------------------------------


def test_0002_adds_login_sessions_to_a_database_made_by_0001(
    database_url: str, engine: sa.Engine
) -> None:
    upgrade(engine, "0001_initial")
    assert tables(engine) == CORSADMIN_TABLES - {
        "corsadmin_operator_session",
        "corsadmin_change",
        *DRAFT_TABLES,
        *TOKEN_TABLES,
    } | {VERSION_TABLE}
    with engine.begin() as conn:  # an operator and a policy made under 0001
        conn.execute(
            sa.text(
                "INSERT INTO corsadmin_operator (name, password_hash, created_at, created_by, "
                "disabled) VALUES ('alice', :hash, CURRENT_TIMESTAMP, 'tests', :no)"
            ),
            {"hash": generate_password_hash(PASSWORD), "no": False},
        )
        conn.execute(sa.text("UPDATE corsadmin_state SET revision = 7 WHERE id = 1"))

    manage_db_upgrade(database_url)

    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert tables(engine) == CORSADMIN_TABLES | {VERSION_TABLE}
    assert rows(engine, "SELECT name FROM corsadmin_operator") == [("alice",)]
    assert rows(engine, "SELECT revision FROM corsadmin_state") == [(7,)]
    app = make_app(database_url)
    try:
        assert log_in(app.test_client()).status_code == 302  # the old operator logs in
    finally:
        close_app(app)
    assert rows(
        engine,
        "SELECT o.name FROM corsadmin_operator_session s "
        "JOIN corsadmin_operator o ON o.id = s.operator_id",
    ) == [("alice",)]

    # Down to 0001 again: only the sessions table goes.
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001_initial")
    assert tables(engine) == CORSADMIN_TABLES - {
        "corsadmin_operator_session",
        "corsadmin_change",
        *DRAFT_TABLES,
        *TOKEN_TABLES,
    } | {VERSION_TABLE}
    assert rows(engine, "SELECT name FROM corsadmin_operator") == [("alice",)]
    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [("0001_initial",)]


def test_0003_adds_the_change_log_to_a_database_made_by_0002(
    database_url: str, engine: sa.Engine
) -> None:
    upgrade(engine, "0002_operator_sessions")
    assert tables(engine) == CORSADMIN_TABLES - {
        "corsadmin_change",
        *DRAFT_TABLES,
        *TOKEN_TABLES,
    } | {VERSION_TABLE}
    with engine.begin() as conn:  # a policy written by the previous release (revision 3)
        conn.execute(
            sa.text(
                "INSERT INTO corsadmin_policy (id, name, path, description, methods, "
                "allow_headers, expose_headers, credentials, private_network, enabled, "
                "priority, review_every_days, version, created_at, created_by, updated_at, "
                "updated_by) VALUES (1, 'shop', '/api/**', '', '[\"GET\"]', '[\"*\"]', '[]', "
                ":no, :no, :yes, 0, 90, 1, CURRENT_TIMESTAMP, 'old', CURRENT_TIMESTAMP, 'old')"
            ),
            {"no": False, "yes": True},
        )
        conn.execute(
            sa.text(
                "INSERT INTO corsadmin_origin_rule (policy_id, origin, note, created_at, "
                "created_by) VALUES (1, 'https://old.example', '', CURRENT_TIMESTAMP, 'old')"
            )
        )
        conn.execute(sa.text("UPDATE corsadmin_state SET revision = 3 WHERE id = 1"))

    manage_db_upgrade(database_url)

    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert tables(engine) == CORSADMIN_TABLES | {VERSION_TABLE}
    assert rows(engine, "SELECT count(*) FROM corsadmin_change") == [(0,)]
    app = make_app(database_url)
    try:
        cors = CorsAdmin.state(app).extension
        with app.app_context():
            first = cors.snapshot(app)  # revisions 1-3 are not in the log: a full load
            assert first.revision == 3
            assert [e.rule.text for e in first.specs[0].origins] == ["https://old.example"]
            cors.store("tester", app).add_origin("shop", "https://new.example")
            latest = cors.snapshot(app)  # revision 4 is: only that rule was read
            assert latest.revision == 4
            assert [e.rule.text for e in latest.specs[0].origins] == [
                "https://new.example",
                "https://old.example",
            ]
    finally:
        close_app(app)
    assert rows(engine, "SELECT revision, kind, origin FROM corsadmin_change") == [
        (4, "origin", "https://new.example")
    ]

    # Down to 0002 again: only the change log goes.
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002_operator_sessions")
    assert tables(engine) == CORSADMIN_TABLES - {
        "corsadmin_change",
        *DRAFT_TABLES,
        *TOKEN_TABLES,
    } | {VERSION_TABLE}
    assert rows(engine, "SELECT revision FROM corsadmin_state") == [(4,)]


def test_0004_adds_the_draft_tables_and_takes_them_away(
    database_url: str, engine: sa.Engine
) -> None:
    upgrade(engine, "0003_change_log")
    assert tables(engine) == CORSADMIN_TABLES - DRAFT_TABLES - TOKEN_TABLES | {VERSION_TABLE}
    upgrade(engine, "0004_drafts")
    assert tables(engine) == CORSADMIN_TABLES - TOKEN_TABLES | {VERSION_TABLE}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO corsadmin_draft (id, status, reason, created_at, created_by, "
                "updated_at, updated_by, version) VALUES (1, 'active', 'why', "
                "CURRENT_TIMESTAMP, 'a', CURRENT_TIMESTAMP, 'a', 1)"
            )
        )
        command.downgrade(alembic_config(conn), "0003_change_log")
    assert tables(engine) == CORSADMIN_TABLES - DRAFT_TABLES - TOKEN_TABLES | {VERSION_TABLE}


def test_0005_adds_the_api_token_table_and_takes_it_away(
    database_url: str, engine: sa.Engine
) -> None:
    upgrade(engine, "0004_drafts")
    assert tables(engine) == CORSADMIN_TABLES - TOKEN_TABLES | {VERSION_TABLE}
    with engine.begin() as conn:  # a draft made under 0004 survives the round trip
        conn.execute(
            sa.text(
                "INSERT INTO corsadmin_draft (id, status, reason, created_at, created_by, "
                "updated_at, updated_by, version) VALUES (1, 'active', 'why', "
                "CURRENT_TIMESTAMP, 'a', CURRENT_TIMESTAMP, 'a', 1)"
            )
        )
    manage_db_upgrade(database_url)
    assert tables(engine) == CORSADMIN_TABLES | {VERSION_TABLE}
    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    app = make_app(database_url)
    try:
        with app.app_context():
            tokens = TokenStore(CorsAdmin.state(app).extension.store("tester", app))
            _, secret = tokens.create("ci", "write")
    finally:
        close_app(app)
    assert rows(engine, "SELECT name, scope, created_by FROM corsadmin_api_token") == [
        ("ci", "write", "tester")
    ]
    assert secret not in str(rows(engine, "SELECT * FROM corsadmin_api_token"))
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004_drafts")
    assert tables(engine) == CORSADMIN_TABLES - TOKEN_TABLES | {VERSION_TABLE}
    assert rows(engine, "SELECT reason FROM corsadmin_draft") == [("why",)]
    assert rows(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [("0004_drafts",)]
