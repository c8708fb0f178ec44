"""The database backends the tests run on, and an empty database on each.

``BACKENDS`` is every backend a database test runs on: SQLite (a file), PostgreSQL and
MariaDB (real servers the session's fixtures start, ``tests/support/postgres.py`` and
``tests/support/mariadb.py``). ``CORSADMIN_TEST_BACKENDS`` (a comma list) narrows it,
for the version matrix's quick runs (``noxfile.py``); CI runs all three.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest

from tests.support import mariadb, postgres

ENV_BACKENDS: Final = "CORSADMIN_TEST_BACKENDS"
ALL_BACKENDS: Final = ("sqlite", "postgresql", "mariadb")
#: The session fixture (tests/conftest.py) that starts each server backend.
SERVER_FIXTURES: Final = {"postgresql": "postgres", "mariadb": "mariadb"}


def selected_backends() -> tuple[str, ...]:
    """The backends named by CORSADMIN_TEST_BACKENDS (all three when unset)."""
    named = os.environ.get(ENV_BACKENDS, "").strip()
    if not named:
        return ALL_BACKENDS
    chosen = tuple(part.strip() for part in named.split(",") if part.strip())
    unknown = sorted(set(chosen) - set(ALL_BACKENDS))
    if unknown or not chosen:
        raise ValueError(f"{ENV_BACKENDS}: unknown backend(s) {unknown}; known: {ALL_BACKENDS}")
    return chosen


BACKENDS: Final = selected_backends()
#: The server backends among BACKENDS (a test of a server-only feature runs on these).
SERVER_BACKENDS: Final = tuple(kind for kind in BACKENDS if kind != "sqlite")


@contextmanager
def fresh_database(kind: str, directory: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``directory``, or a new database on
    the session's PostgreSQL or MariaDB server (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'corsadmin.sqlite'}"  # absolute: sqlite:////...
        return
    server = request.getfixturevalue(SERVER_FIXTURES[kind])
    name = f"t_{uuid.uuid4().hex[:16]}"
    module = postgres if kind == "postgresql" else mariadb
    url = module.create_database(server, name)
    try:
        yield url
    finally:
        module.drop_database(server, name)
