"""Fixtures: the standalone app on SQLite and on a real PostgreSQL server.

Tests that take ``app`` (or ``client``, ``runner``, ``store``) run twice: once
on a fresh SQLite file and once on a fresh PostgreSQL database, both created
through corsadmin's own migrations.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from playwright.sync_api import Browser, sync_playwright

from corsadmin import PolicyStore
from manage import cors, create_app, db
from tests.support.browser import launch_chromium
from tests.support.postgres import (
    PostgresServer,
    create_database,
    drop_database,
    start_postgres,
)

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run (started here unless
    CORSADMIN_TEST_POSTGRES_URL names one)."""
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Real headless Chromium from Debian's package (/usr/bin/chromium)."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'corsadmin.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"t{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}"
    url = create_database(server, name)
    try:
        yield url
    finally:
        drop_database(server, name)


def make_app(database_url: str, **config: Any) -> Flask:
    """The standalone app on ``database_url``, schema migrated, nothing loaded."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CORSADMIN_REFRESH_INTERVAL": 0.2,
            **config,
        }
    )
    with app.app_context():
        cors.upgrade_schema(app)
    return app


def close_app(app: Flask) -> None:
    """Stop the app's refresh thread and close its connections (before a database is dropped)."""
    cors.stop(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Configuration for the ``app`` fixture; a test overrides it with
    ``@pytest.mark.parametrize("app_config", [{...}])`` (init_app reads it once)."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(database_url, **app_config)
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def store(app: Flask) -> Iterator[PolicyStore]:
    """The policy store, acting as 'tester', inside an app context."""
    with app.app_context():
        yield cors.store("tester", app)
