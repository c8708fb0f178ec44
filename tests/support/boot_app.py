"""A host app for tests/test_boot_load.py, served by gunicorn: it reports, per worker,
whether the snapshot was in force when the worker's first request began."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify

from corsadmin import CorsAdmin
from corsadmin.state import state

#: How often each worker checks the revision.
REFRESH_INTERVAL = 0.5


def create_app() -> Flask:
    app = Flask("boot")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BOOT_DATABASE_URL"]
    app.config["CORSADMIN_REFRESH_INTERVAL"] = REFRESH_INTERVAL
    CorsAdmin(app)
    first: dict[str, Any] = {}

    @app.before_request
    def note_the_first_request() -> None:
        if not first:
            holder = state(app).holder
            first.update(pid=os.getpid(), loaded=holder.snapshot.loaded, loads=holder.loads)

    @app.get("/first")
    def first_request() -> Any:
        return jsonify(first)

    @app.get("/api/<path:rest>")
    def api(rest: str) -> Any:
        return jsonify(ok=True)

    return app
