"""``corsadmin db-upgrade`` (``corsadmin/cli/schema.py``), and every command on a database
with no schema yet: one error line that says to upgrade. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from corsadmin.db.schema import current_revision, head_revision
from tests.support.cli import by_name, invoke, ok, user_error, view
from tests.support.host import REFRESH_INTERVAL, close_host, create_host, host_of


@pytest.fixture
def bare_app(database_url: str) -> Iterator[Flask]:
    """The host app on an empty database: no migrations were run."""
    host = create_host(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CORSADMIN_REFRESH_INTERVAL": REFRESH_INTERVAL,
        }
    )
    yield host.app
    close_host(host)


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
    assert result.stdout == f"created corsadmin's tables (revision {head_revision()})\n"
    assert ok(runner, "policy", "list").stdout.startswith("no policies yet")
    ok(runner, "policy", "add", "api", "/api/**", "--origin", "https://a.example")
    again = ok(runner, "db-upgrade")
    assert again.stdout == f"corsadmin's tables are already at {head_revision()}, nothing to do\n"
    after = view(bare_app)
    assert after.revision == 1
    assert list(by_name(after)) == ["api"]
    with bare_app.app_context():
        engine = host_of(bare_app).db.engine
        assert current_revision(engine) == head_revision() == "0008_refused_examples"
