"""A host app for tests/test_metrics_gunicorn.py, served by gunicorn with several
workers and PROMETHEUS_MULTIPROC_DIR: metrics on, the scrape at /metrics."""

from __future__ import annotations

import os
import time
from typing import Any, Final

from flask import Flask, jsonify

from corsadmin import CorsAdmin
from corsadmin.metrics import metrics_view

#: How long /api/slow takes (seconds).
SLOW: Final = 0.3


def create_app() -> Flask:
    app = Flask("served")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["METRICS_DATABASE_URL"]
    app.config["CORSADMIN_METRICS"] = True
    app.config["CORSADMIN_REFRESH_INTERVAL"] = 0.2
    CorsAdmin(app)
    app.add_url_rule("/metrics", view_func=metrics_view)

    @app.get("/api/<path:rest>")
    def api(rest: str) -> Any:
        if rest == "slow":  # requests sent together then reach different workers
            time.sleep(SLOW)
        return jsonify(pid=os.getpid())

    return app
