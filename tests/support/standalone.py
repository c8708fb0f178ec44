"""The standalone app (``corsadmin.standalone``, ``manage.py``): as a real server on a
database of its own (SQLite or PostgreSQL), or in this process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from corsadmin import standalone
from tests.support.cli import REPO_ROOT
from tests.support.postgres import PostgresServer, create_database, drop_database
from tests.support.servers import free_port, serve_process


@contextmanager
def fresh_database(kind: str, directory: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``directory``, or a new database on
    the session's PostgreSQL server (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'corsadmin.sqlite'}"  # absolute: sqlite:////...
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres, name)
    try:
        yield url
    finally:
        drop_database(postgres, name)


@contextmanager
def run_standalone(
    env: dict[str, str], log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[Any]]]:
    """``python manage.py run`` on a free loopback port: (base URL, process)."""
    port = free_port()
    with serve_process(
        [sys.executable, "manage.py", "run", "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        env=env,
        cwd=REPO_ROOT,
        ready_path="/",
        log_path=log_path,
    ) as process:
        yield f"http://127.0.0.1:{port}", process


@contextmanager
def standalone_app(database_url: str, **config: Any) -> Iterator[Flask]:
    """``corsadmin.standalone.create_app`` in this process on ``database_url``, schema
    migrated, nothing loaded; its refresh thread stopped and connections closed after."""
    app = standalone.create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, **config}
    )
    try:
        with app.app_context():
            standalone.cors.upgrade_schema(app)
        yield app
    finally:
        standalone.cors.stop(app)
        with app.app_context():
            standalone.db.session.remove()
            standalone.db.engine.dispose()
