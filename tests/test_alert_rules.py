"""The alerts' pure rules (:mod:`corsadmin.engine.alerts`): keys, the spike and lag
rules, the retry schedule, the signature, and the configuration keys' checks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from corsadmin import CorsAdmin, verify_signature
from corsadmin.config import MIN_WEBHOOK_SECRET_LENGTH, CorsAdminConfig
from corsadmin.engine.alerts import (
    EXPIRING,
    FIRST_RETRY_DELAY,
    LAG_AFTER,
    MAX_ATTEMPTS,
    MAX_RETRY_DELAY,
    MIN_REPORT_WINDOW,
    RETRY_FACTOR,
    SPIKE_BASELINE_HOURS,
    SPIKE_FACTOR,
    SPIKE_MIN_REFUSALS,
    WorkerFacts,
    event_id,
    event_key,
    expiring_event,
    refusal_spike_event,
    retry_delay,
    review_due_event,
    sign,
    worker_lag,
    worker_lagging_event,
)
from corsadmin.limits import MAX_ALERT_KEY_LENGTH

NOW = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
SECRET = "s3cret-s3cret-s3cret"
BODY = b'{"id":"x","kind":"review-due"}'


# --- keys ---------------------------------------------------------------------------------------


def test_keys_name_the_event_and_are_the_same_when_found_again() -> None:
    due = NOW - timedelta(days=2)
    first = review_due_event("partner", due, None)
    again = review_due_event("partner", due + timedelta(hours=3), None)  # same due date
    assert first.key == again.key == "review-due:partner:2026-12-05"
    later = review_due_event("partner", due + timedelta(days=1), None)
    assert later.key != first.key
    rule = expiring_event("partner", "https://a.example", NOW + timedelta(days=3), NOW)
    assert rule.key == "expiring:partner:https://a.example:2026-12-10T12:30:00Z"
    assert rule.details["days_left"] == 3


def test_a_key_too_long_is_its_kind_and_a_hash_still_one_per_event() -> None:
    long_origin = "re:^https://" + "a" * 400 + r"\.example$"
    key = event_key(EXPIRING, "partner", long_origin, "2026-12-10")
    assert len(key) <= MAX_ALERT_KEY_LENGTH
    assert key.startswith("expiring:sha256:")
    assert key != event_key(EXPIRING, "partner", long_origin + "x", "2026-12-10")
    assert key == event_key(EXPIRING, "partner", long_origin, "2026-12-10")


def test_the_event_id_is_a_hash_of_the_key() -> None:
    assert event_id("review-due:p:2026-12-05") == event_id("review-due:p:2026-12-05")
    assert event_id("review-due:p:2026-12-05") != event_id("review-due:p:2026-12-06")
    assert len(event_id("k")) == 32


# --- refusal spikes ------------------------------------------------------------------------------


HOUR = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("refused", "baseline", "spike"),
    [
        (SPIKE_MIN_REFUSALS - 1, 0, False),  # a quiet policy: under the minimum is noise
        (SPIKE_MIN_REFUSALS, 0, True),  # never refused before: the minimum alone
        # averaging 100 an hour: needs 10 x 100 = 1000
        (999, 100 * SPIKE_BASELINE_HOURS, False),
        (1000, 100 * SPIKE_BASELINE_HOURS, True),
        # averaging 5 an hour: 10 x 5 = 50 is under the minimum, so 100 it is
        (99, 5 * SPIKE_BASELINE_HOURS, False),
        (100, 5 * SPIKE_BASELINE_HOURS, True),
    ],
)
def test_a_spike_is_the_minimum_and_ten_times_the_weeks_hourly_average(
    refused: int, baseline: int, spike: bool
) -> None:
    event = refusal_spike_event("partner", HOUR, refused, baseline)
    assert (event is not None) is spike
    if event is not None:
        assert event.key == "refusal-spike:partner:2026-12-07T12:00:00Z"
        assert event.details["refused"] == refused
        assert event.details["factor"] == SPIKE_FACTOR


# --- lagging workers -----------------------------------------------------------------------------


def worker(**changes: object) -> WorkerFacts:
    values: dict[str, object] = {
        "host": "web-1",
        "pid": 42,
        "revision": 7,
        "checked_at": NOW - timedelta(seconds=1),
        "interval": 1.0,
        "reported_at": NOW - timedelta(seconds=1),
    }
    values.update(changes)
    return WorkerFacts(**values)  # type: ignore[arg-type]


LONG_AGO = NOW - timedelta(seconds=LAG_AFTER + 1)
JUST_NOW = NOW - timedelta(seconds=LAG_AFTER - 1)


def test_a_worker_up_to_date_does_not_lag() -> None:
    assert worker_lag(worker(), 7, LONG_AGO, NOW) is None


def test_a_worker_on_an_older_revision_lags_once_the_new_one_is_lag_after_old() -> None:
    assert worker_lag(worker(revision=6), 7, JUST_NOW, NOW) is None  # still catching up
    why = worker_lag(worker(revision=6), 7, LONG_AGO, NOW)
    assert why is not None
    assert "enforces revision 6" in why
    event = worker_lagging_event(worker(revision=6), 7, LONG_AGO, NOW)
    assert event is not None
    assert event.key == "worker-lagging:web-1:42:6"
    assert event.policy is None
    assert event.details["current_revision"] == 7


def test_a_worker_without_a_recent_successful_check_lags() -> None:
    why = worker_lag(worker(checked_at=LONG_AGO), 7, LONG_AGO, NOW)
    assert why is not None
    assert "no successful revision check" in why
    assert worker_lag(worker(checked_at=None), 7, LONG_AGO, NOW) is not None


def test_a_worker_that_stopped_reporting_is_not_lagging_it_is_gone() -> None:
    gone = NOW - timedelta(seconds=MIN_REPORT_WINDOW + 1)
    assert worker_lag(worker(revision=1, reported_at=gone), 7, LONG_AGO, NOW) is None
    # a slow interval widens the window: 3 x 10 s
    slow = worker(revision=1, interval=10.0, reported_at=NOW - timedelta(seconds=25))
    assert worker_lag(slow, 7, LONG_AGO, NOW) is not None


# --- retries -------------------------------------------------------------------------------------


def test_retries_back_off_exponentially_to_the_cap_then_stop() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert delays[0] == FIRST_RETRY_DELAY
    assert delays[1] == FIRST_RETRY_DELAY * RETRY_FACTOR
    assert all(d is not None and d <= MAX_RETRY_DELAY for d in delays[:-1])
    assert delays[-1] is None  # the last attempt failed: no more
    assert [d for d in delays if d is not None] == sorted(d for d in delays if d is not None)


# --- the signature -------------------------------------------------------------------------------


def test_a_signature_verifies_with_the_secret_and_the_exact_body() -> None:
    t = int(NOW.timestamp())
    header = sign(SECRET, BODY, t)
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=t + 10)


@pytest.mark.parametrize(
    "why",
    ["wrong secret", "other body", "too old", "from the future", "no header", "garbled"],
)
def test_a_signature_does_not_verify(why: str) -> None:
    t = int(NOW.timestamp())
    header: str | None = sign(SECRET, BODY, t)
    secret, body, now = SECRET, BODY, float(t)
    if why == "wrong secret":
        secret = "another-secret-of-length"
    elif why == "other body":
        body = BODY + b" "
    elif why == "too old":
        now = t + 301
    elif why == "from the future":
        now = t - 301
    elif why == "no header":
        header = None
    else:
        header = "t=abc,v1=00"
    assert not verify_signature(secret, header, body, now=now)


# --- configuration -------------------------------------------------------------------------------


def test_the_webhook_keys_default_to_off() -> None:
    config = CorsAdminConfig.from_mapping({})
    assert config.alert_webhook_url is None
    assert config.alert_webhook_secret is None
    assert config.alert_interval == 60.0


URL = "CORSADMIN_ALERT_WEBHOOK_URL"
KEY = "CORSADMIN_ALERT_WEBHOOK_SECRET"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({URL: "https://hooks.example/x"}, KEY),
        ({URL: "ftp://hooks.example/x", KEY: SECRET}, URL),
        ({URL: "https://", KEY: SECRET}, URL),
        ({URL: "https://u:p@hooks.example/", KEY: SECRET}, URL),
        ({URL: "https://hooks.example/", KEY: "short"}, KEY),
        ({URL: 42}, URL),
        ({"CORSADMIN_ALERT_INTERVAL": 0}, "CORSADMIN_ALERT_INTERVAL"),
    ],
)
def test_a_bad_webhook_setting_stops_init_app_naming_the_key(
    values: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        CorsAdminConfig.from_mapping(values)
    assert "'short'" not in str(caught.value)  # a secret is never echoed
    app = Flask("bad_webhook")
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **values)
    with pytest.raises(ValueError, match=named):
        CorsAdmin(app)


def test_a_secret_of_the_minimum_length_is_taken() -> None:
    config = CorsAdminConfig.from_mapping(
        {
            "CORSADMIN_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "CORSADMIN_ALERT_WEBHOOK_SECRET": "x" * MIN_WEBHOOK_SECRET_LENGTH,
        }
    )
    assert config.alert_webhook_secret == "x" * MIN_WEBHOOK_SECRET_LENGTH
