"""A host app for tests/test_fleet_gunicorn.py, served by gunicorn with several workers:
each worker reports to the fleet view every FLEET_HEARTBEAT seconds; the admin UI lets
every request in as operator "ops" (no login: its pages work with the database down)."""

from __future__ import annotations

import os
import time
from typing import Any, Final

from flask import Flask, jsonify

from corsadmin import CorsAdmin

#: The workers' refresh interval and fleet heartbeat (seconds): short, for the tests.
REFRESH_INTERVAL: Final = 0.2
HEARTBEAT: Final = 0.5
#: How long /slow takes: requests sent together then reach different workers.
SLOW: Final = 0.3


def create_app(database_url: str | None = None, **config: Any) -> Flask:
    app = Flask("fleet")
    app.config.update(
        SECRET_KEY="fleet-tests-secret-key-0123456789abcdef",
        SQLALCHEMY_DATABASE_URI=database_url or os.environ["FLEET_DATABASE_URL"],
        CORSADMIN_REFRESH_INTERVAL=REFRESH_INTERVAL,
        CORSADMIN_FLEET_HEARTBEAT=HEARTBEAT,
        CORSADMIN_OPERATOR_LOADER=lambda: "ops",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": _connect_args(database_url)},
        **config,
    )
    CorsAdmin(app)

    @app.get("/api/slow")
    def slow() -> Any:
        time.sleep(SLOW)
        return jsonify(pid=os.getpid())

    return app


def _connect_args(url: str | None) -> dict[str, Any]:
    url = url or os.environ["FLEET_DATABASE_URL"]
    return {"connect_timeout": 2} if url.startswith("postgresql") else {}
