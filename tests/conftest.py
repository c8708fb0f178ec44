"""Fixtures: a minimal host application on SQLite and on real PostgreSQL and MariaDB servers.

Tests that take ``app`` (or ``host``, ``cors``, ``db``, ``client``, ``runner``,
``store``) run once per backend (``tests/support/backends.py``): on a fresh SQLite
file, a fresh PostgreSQL database and a fresh MariaDB database, each created through
corsadmin's own migrations. The app is the host in
``tests/support/host.py``, with its own ``SQLAlchemy`` and ``CorsAdmin``; helpers
live in ``tests/support/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy
from playwright.sync_api import Browser, sync_playwright

from corsadmin import CorsAdmin, PolicyStore
from tests.support.backends import BACKENDS, fresh_database
from tests.support.browser import launch_chromium
from tests.support.host import Host, close_host, make_host
from tests.support.mariadb import MariaDBServer, start_mariadb
from tests.support.postgres import PostgresServer, start_postgres

Server = TypeVar("Server", PostgresServer, MariaDBServer)


def _served(start: Callable[[Path], Server], directory: Path) -> Iterator[Server]:
    """A server started in ``directory`` for the whole run, stopped after it."""
    server = start(directory)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run (started here unless
    CORSADMIN_TEST_POSTGRES_URL names one)."""
    yield from _served(start_postgres, tmp_path_factory.mktemp("postgres"))


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A real MariaDB server for the whole run (started here unless
    CORSADMIN_TEST_MARIADB_URL names one)."""
    yield from _served(start_mariadb, tmp_path_factory.mktemp("mariadb"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Real headless Chromium from Debian's package (/usr/bin/chromium)."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh database on the PostgreSQL or
    MariaDB server."""
    with fresh_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Configuration for the ``app`` fixture; a test overrides it with
    ``@pytest.mark.parametrize("app_config", [{...}])`` (init_app reads it once)."""
    return {}


@pytest.fixture
def host(database_url: str, app_config: dict[str, Any]) -> Iterator[Host]:
    """The host app on ``database_url``, migrated, with its own db and extension objects."""
    host = make_host(database_url, **app_config)
    yield host
    close_host(host)


@pytest.fixture
def app(host: Host) -> Flask:
    return host.app


@pytest.fixture
def cors(host: Host) -> CorsAdmin:
    """The ``app``'s own ``CorsAdmin``."""
    return host.cors


@pytest.fixture
def db(host: Host) -> SQLAlchemy:
    """The ``app``'s own ``SQLAlchemy``."""
    return host.db


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def store(host: Host) -> Iterator[PolicyStore]:
    """The policy store, acting as 'tester', inside an app context."""
    with host.app.app_context():
        yield host.cors.store("tester", host.app)
