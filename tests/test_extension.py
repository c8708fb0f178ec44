"""The extension object: app factories, the host's db or its own, never a 500."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin, CorsAdminNotInitialized
from corsadmin.config import DEFAULT_CONFIG


def host_app(tmp_path: Path, **config: Any) -> Flask:
    app = Flask("host")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'host.sqlite'}",
        CORSADMIN_REFRESH_IN_BACKGROUND=False,
        **config,
    )

    @app.get("/api/thing")
    def thing() -> Any:
        return jsonify(ok=True)

    return app


def allow(cors: CorsAdmin, app: Flask) -> None:
    with app.app_context():
        cors.create_schema(app)
        cors.store("tester", app).create_policy(
            {"name": "api", "path": "/api/**", "origins": ["https://app.example"]}
        )


def test_app_factory_with_the_hosts_db(tmp_path: Path) -> None:
    db = SQLAlchemy()
    cors = CorsAdmin(db=db)
    app = host_app(tmp_path)
    db.init_app(app)
    cors.init_app(app)
    assert CorsAdmin.state(app).db is db
    allow(cors, app)
    response = app.test_client().get("/api/thing", headers={"Origin": "https://app.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert not hasattr(cors, "app")  # never keeps an app


def test_without_db_it_uses_the_registered_one_or_its_own(tmp_path: Path) -> None:
    db = SQLAlchemy()
    app = host_app(tmp_path)
    db.init_app(app)
    CorsAdmin(app)
    assert CorsAdmin.state(app).db is db

    alone = Flask("alone", instance_path=str(tmp_path / "instance"))
    cors = CorsAdmin(alone)
    own = CorsAdmin.state(alone).db
    assert isinstance(own, SQLAlchemy)
    assert alone.extensions["sqlalchemy"] is own
    assert alone.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///corsadmin.sqlite"
    with alone.app_context():
        cors.create_schema(alone)
        assert str(own.engine.url).endswith(str(tmp_path / "instance" / "corsadmin.sqlite"))


def test_one_extension_serves_several_apps(tmp_path: Path) -> None:
    cors = CorsAdmin()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = host_app(tmp_path / "a"), host_app(tmp_path / "b")
    cors.init_app(first)
    cors.init_app(second)
    allow(cors, first)
    with second.app_context():
        cors.create_schema(second)
    origin = {"Origin": "https://app.example"}
    allowed = first.test_client().get("/api/thing", headers=origin)
    refused = second.test_client().get("/api/thing", headers=origin)
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://app.example"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_init_app_twice_is_refused(tmp_path: Path) -> None:
    app = host_app(tmp_path)
    cors = CorsAdmin(app)
    with pytest.raises(RuntimeError, match="already registered"):
        cors.init_app(app)


def test_state_without_init_app_says_so(tmp_path: Path) -> None:
    app = host_app(tmp_path)
    with app.app_context(), pytest.raises(CorsAdminNotInitialized, match="init_app"):
        CorsAdmin.state()


def test_configuration_defaults_are_set_and_respected(tmp_path: Path) -> None:
    app = host_app(tmp_path, CORSADMIN_REFRESH_INTERVAL=3)
    CorsAdmin(app)
    for key, value in DEFAULT_CONFIG.items():
        if key not in ("CORSADMIN_REFRESH_INTERVAL", "CORSADMIN_REFRESH_IN_BACKGROUND"):
            assert app.config[key] == value
    assert CorsAdmin.state(app).holder.interval == 3.0


def test_an_authentication_hook_cannot_refuse_a_preflight(tmp_path: Path) -> None:
    """Preflights carry no credentials: a covered path's preflight is answered anyway."""
    app = host_app(tmp_path)

    @app.before_request
    def require_login() -> Any:
        return jsonify(error="login required"), 401

    cors = CorsAdmin(app)
    allow(cors, app)
    response = app.test_client().options(
        "/api/thing",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_a_failure_inside_corsadmin_never_becomes_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = host_app(tmp_path)
    cors = CorsAdmin(app)
    allow(cors, app)
    holder = CorsAdmin.state(app).holder

    def broken() -> Any:
        raise RuntimeError("snapshot exploded")

    holder.current = broken  # type: ignore[method-assign]
    caplog.set_level(logging.ERROR, logger="corsadmin")
    client = app.test_client()
    for _ in range(3):
        response = client.get("/api/thing", headers={"Origin": "https://app.example"})
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        preflight = client.options(
            "/api/thing",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"},
        )
        assert preflight.status_code < 500
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1  # once per application, not per request
    assert all(r.exc_info and "snapshot exploded" in str(r.exc_info[1]) for r in failures)


def test_answering_preflights_can_be_turned_off(tmp_path: Path) -> None:
    app = host_app(tmp_path, CORSADMIN_ANSWER_PREFLIGHTS=False)
    cors = CorsAdmin(app)
    allow(cors, app)
    response = app.test_client().options(
        "/api/missing",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"},
    )
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"


@pytest.mark.parametrize("own_list", [True, False], ids=["fast-path", "public-api"])
@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], [("Access-Control-Allow-Origin", "https://a.example"), ("Vary", "Origin")]),
        (
            [("Vary", "Accept-Encoding")],
            [
                ("Vary", "Accept-Encoding, Origin"),
                ("Access-Control-Allow-Origin", "https://a.example"),
            ],
        ),
        (
            [("Access-Control-Allow-Origin", "*"), ("Vary", "origin")],
            [("Vary", "origin"), ("Access-Control-Allow-Origin", "https://a.example")],
        ),
    ],
)
def test_header_writing_is_the_same_on_both_paths(
    own_list: bool, existing: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    from werkzeug.datastructures import Headers
    from werkzeug.wrappers import Response

    from corsadmin.runtime.hook import write_headers as _write_headers

    class TupleHeaders(Headers):
        """A Headers whose storage is not a list: corsadmin must use the public API."""

        def __init__(self, defaults: Any = None) -> None:
            super().__init__(defaults)
            self._list = _TupleList(self._list)  # type: ignore[assignment]

    response = Response("x")
    del response.headers["Content-Type"]
    del response.headers["Content-Length"]
    for name, value in existing:
        response.headers.add(name, value)
    if not own_list:
        response.headers = TupleHeaders(response.headers)
    _write_headers(response, (("Access-Control-Allow-Origin", "https://a.example"),), True)
    assert sorted(response.headers.items()) == sorted(expected)


class _TupleList(list):  # type: ignore[type-arg]
    """A list in all but its type, so the fast path's type check refuses it."""
