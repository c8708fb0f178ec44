"""The standalone app (``corsadmin.standalone``, ``manage.py``): as a real server on a
database of its own (tests/support/backends.py), or in this process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from corsadmin import standalone
from tests.support.cli import REPO_ROOT
from tests.support.servers import free_port, serve_process


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
