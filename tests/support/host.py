"""A minimal host application, written as a user of corsadmin writes one.

Each call builds a new application with its own ``SQLAlchemy`` and its own
``CorsAdmin`` (no module globals): the library is tested through it, the way an
application embeds it. The standalone app (``corsadmin.standalone``, ``manage.py``)
is tested on its own (``tests/test_standalone.py``, ``tests/support/standalone.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin

#: The host's fixed secret key (sessions and CSRF tokens of the built-in login).
TEST_SECRET_KEY: Final = "corsadmin-tests-host-secret-key-0123456789abcdef"
#: How often :func:`make_host`'s snapshot follows the database
#: (``CORSADMIN_REFRESH_INTERVAL``); the CLI and the admin UI repeat it
#: ("every worker checks for it within 0.2s").
REFRESH_INTERVAL: Final = 0.2


@dataclass(frozen=True)
class Host:
    """A host application and the extension objects it made for itself."""

    app: Flask
    db: SQLAlchemy
    cors: CorsAdmin


def create_host(config: Mapping[str, Any] | None = None) -> Host:
    """A host app (not migrated): its own db, ``CorsAdmin(db=db)`` with the built-in
    login, a fixed secret key, and a few API routes for policies to cover."""
    app = Flask("corsadmin_test_host")
    app.config.update(SECRET_KEY=TEST_SECRET_KEY, CORSADMIN_BUILTIN_LOGIN=True)
    app.config.update(config or {})
    db = SQLAlchemy()
    cors = CorsAdmin(db=db)
    db.init_app(app)
    cors.init_app(app)
    register_api(app)
    return Host(app=app, db=db, cors=cors)


def make_host(database_url: str, **config: Any) -> Host:
    """A host app on ``database_url``, schema migrated, nothing loaded."""
    host = create_host(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CORSADMIN_REFRESH_INTERVAL": REFRESH_INTERVAL,
            **config,
        }
    )
    with host.app.app_context():
        host.cors.upgrade_schema(host.app)
    return host


def make_app(database_url: str, **config: Any) -> Flask:
    """:func:`make_host`'s app (its db and extension: :func:`host_of`)."""
    return make_host(database_url, **config).app


def close_host(host: Host) -> None:
    """Stop the app's refresh thread and close its connections (before a database is dropped)."""
    host.cors.stop(host.app)
    with host.app.app_context():
        host.db.session.remove()
        host.db.engine.dispose()


def close_app(app: Flask) -> None:
    """:func:`close_host` for an app made by :func:`make_app`."""
    close_host(host_of(app))


def host_of(app: Flask) -> Host:
    """The host made by :func:`create_host` for ``app`` (its db and extension objects)."""
    state = CorsAdmin.state(app)
    assert isinstance(state.extension, CorsAdmin)
    return Host(app=app, db=state.db, cors=state.extension)


def register_api(app: Flask) -> None:
    """The host's own routes, the ones tests send requests to."""

    @app.get("/api/status")
    def status() -> Any:
        return jsonify(status="ok")

    @app.post("/api/foo")
    def foo() -> Any:
        """Doubles inputVar (a JSON body)."""
        data = request.get_json(silent=True)
        value = data.get("inputVar") if isinstance(data, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return jsonify(error="Invalid input"), 400
        return jsonify(result=value * 2)

    @app.route("/api/items/<int:item_id>", methods=["GET", "PUT", "DELETE"])
    def item(item_id: int) -> Any:
        if request.method == "PUT":
            return jsonify(id=item_id, updated=request.get_json(silent=True))
        if request.method == "DELETE":
            return "", 204
        return jsonify(id=item_id, name=f"item {item_id}")

    @app.get("/api/error")
    def error() -> Any:
        raise RuntimeError("a host server error")
