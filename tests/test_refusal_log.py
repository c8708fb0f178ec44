"""The DEBUG refusal log (logger corsadmin.refusals): one line per refused CORS
request, the origin sanitised, the fields also as ``extra``; nothing otherwise."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from corsadmin import CorsAdmin
from corsadmin.runtime.refusals import (
    CUT_MARK,
    MAX_LOGGED_ORIGIN,
    REFUSAL_LOGGER,
    sanitised,
)

ORIGIN = "https://app.example"
POLICY = {"name": "api", "path": "/api/**", "origins": [ORIGIN], "methods": ["GET"]}


@pytest.fixture
def policy_app(app: Flask) -> Flask:
    with app.app_context():
        CorsAdmin.state(app).store("tester").create_policy(POLICY)
    return app


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == REFUSAL_LOGGER]


def test_a_refused_request_writes_one_debug_line(
    policy_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=REFUSAL_LOGGER)
    policy_app.test_client().get("/api/status", headers={"Origin": "https://evil.example"})
    (record,) = refusals(caplog)
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "refused policy=api reason=origin-not-allowed origin=https://evil.example method=GET"
    )
    assert record.policy == "api"  # type: ignore[attr-defined]
    assert record.reason == "origin-not-allowed"  # type: ignore[attr-defined]
    assert record.origin == "https://evil.example"  # type: ignore[attr-defined]
    assert record.method == "GET"  # type: ignore[attr-defined]


def test_a_refused_preflight_names_the_requested_method(
    policy_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=REFUSAL_LOGGER)
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}
    policy_app.test_client().options("/api/items/1", headers=headers)
    (record,) = refusals(caplog)
    assert record.getMessage() == (
        f"refused policy=api reason=method-not-allowed origin={ORIGIN} method=OPTIONS "
        "requested=DELETE"
    )


def test_allowed_requests_and_requests_without_origin_write_nothing(
    policy_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=REFUSAL_LOGGER)
    client = policy_app.test_client()
    client.get("/api/status", headers={"Origin": ORIGIN})
    client.get("/api/status")
    assert refusals(caplog) == []
    client.get("/elsewhere", headers={"Origin": ORIGIN})  # no policy: the browser refuses
    (record,) = refusals(caplog)
    assert record.getMessage() == f"refused policy= reason=no-policy origin={ORIGIN} method=GET"


def test_nothing_is_written_per_request_at_info(
    policy_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = policy_app.test_client()
    client.get("/api/status", headers={"Origin": "https://evil.example"})
    client.get("/api/status", headers={"Origin": ORIGIN})
    assert [r for r in caplog.records if r.name.startswith("corsadmin")] == []


def test_the_origin_is_sanitised(policy_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=REFUSAL_LOGGER)
    hostile = "https://evil.example\r\nrefused policy=forged\x1b[31m" + "x" * 400
    client = policy_app.test_client()
    client.get("/api/status", environ_overrides={"HTTP_ORIGIN": hostile})
    (record,) = refusals(caplog)
    line = record.getMessage()
    for raw in ("\r", "\n", "\x1b"):
        assert raw not in line
    assert "evil.example\\r\\nrefused policy=forged\\x1b[31m" in line
    assert record.origin.endswith(CUT_MARK)  # type: ignore[attr-defined]
    assert record.reason == "not-a-serialized-origin"  # type: ignore[attr-defined]


def test_sanitised() -> None:
    assert sanitised("https://a.example", 300) == "https://a.example"
    assert sanitised("a\\nb", 300) == "a\\\\nb"  # a typed backslash stays distinguishable
    assert sanitised("a\nb\u2028", 300) == "a\\nb\\u2028"
    long = "x" * (MAX_LOGGED_ORIGIN + 1)
    assert sanitised(long, MAX_LOGGED_ORIGIN) == "x" * MAX_LOGGED_ORIGIN + CUT_MARK


@given(st.text(max_size=2 * MAX_LOGGED_ORIGIN))
def test_any_origin_becomes_one_printable_bounded_value(origin: str) -> None:
    value = sanitised(origin, MAX_LOGGED_ORIGIN)
    assert value.isprintable()  # no line break, no escape sequence: one line, as written
    assert len(value) <= len(r"\U0010ffff") * MAX_LOGGED_ORIGIN + len(CUT_MARK)
    assert value.endswith(CUT_MARK) == (len(origin) > MAX_LOGGED_ORIGIN) or origin.endswith(
        CUT_MARK
    )
    if origin.isprintable() and "\\" not in origin and len(origin) <= MAX_LOGGED_ORIGIN:
        assert value == origin
