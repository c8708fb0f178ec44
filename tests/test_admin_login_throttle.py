"""Password guessing on the built-in login page is throttled."""

from __future__ import annotations

import pytest
from flask import Flask

from corsadmin.admin.throttle import LoginThrottle
from tests.support.admin import add_operator, log_in


def test_a_sliding_window_per_key() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert throttle.retry_after(["a"], t) == 0
        throttle.failed(["a"], t)
    assert throttle.retry_after(["a"], 3.0) == pytest.approx(57.0)
    assert throttle.retry_after(["b"], 3.0) == 0  # other keys are not affected
    assert throttle.retry_after(["a"], 60.5) == 0  # the first failure left the window
    throttle.succeeded(["a"])
    assert throttle.retry_after(["a"], 3.0) == 0


def test_memory_stays_bounded() -> None:
    throttle = LoginThrottle(limit=1, window=60, max_keys=100)
    for i in range(1000):
        throttle.failed([f"k{i}"], float(i % 10))
    assert len(throttle._failures) <= 100
    assert throttle.retry_after(["k999"], 10.0) > 0  # the newest are kept


@pytest.mark.parametrize("app_config", [{"CORSADMIN_LOGIN_ATTEMPTS": 3}])
def test_the_login_page_refuses_after_too_many_failures(app: Flask) -> None:
    add_operator(app)
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, password="wrong-password").status_code == 401
    refused = log_in(client)  # the right password, but too late
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in refused.text
    assert client.get("/corsadmin/").status_code == 401  # still not logged in
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    assert log_in(other).status_code == 302  # another client is not locked out


@pytest.mark.parametrize("app_config", [{"CORSADMIN_LOGIN_ATTEMPTS": 2}])
def test_guessing_across_names_is_throttled_too(app: Flask) -> None:
    add_operator(app)
    client = app.test_client()
    for i in range(8):  # four times the per-name allowance, spread over names
        assert log_in(client, name=f"guess{i}", password="x" * 12).status_code == 401
    assert log_in(client).status_code == 429
