"""Alerts in a running application: scan for events, queue them, post them.

:class:`AlertRunner` runs from the refresh thread's periodic tick (at most once per
``CORSADMIN_ALERT_INTERVAL``, only with a webhook URL; never on the request path)
and from ``flask corsadmin alerts send``. One run: find the events
(:func:`corsadmin.db.alerts.detect`), queue the new ones, post every alert due for
an attempt, delete old rows. A failure is logged once and never raised into the
refresh thread.

The webhook is a JSON POST over :mod:`urllib.request` (no other dependency), signed
(:func:`corsadmin.engine.alerts.sign`): a 2xx answer delivers the alert; anything
else (an error status, a timeout, a refused connection) is tried again with
backoff. Each alert is queued once (its key is unique), but a process that dies
between the receiver's answer and writing "delivered" posts it again once its lease
runs out: receivers drop repeats by ``X-Corsadmin-Event-Id``.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Final

import sqlalchemy as sa

from ..config import CorsAdminConfig
from ..db import alerts as outbox
from ..engine.alerts import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from ..engine.fleet import DEFAULT_HEARTBEAT
from .http import OPENER

log = logging.getLogger("corsadmin")

#: Seconds the webhook has to answer one POST.
WEBHOOK_TIMEOUT: Final = 10.0
#: Seconds a process holds an alert it is posting (longer than WEBHOOK_TIMEOUT): if it
#: dies meanwhile, another process tries again after that.
CLAIM_LEASE: Final = 60.0
#: Alerts one run posts at most (the others at the next run).
MAX_DELIVERIES_PER_RUN: Final = 100
#: The longest piece of an error answer kept in ``last_error``.
ERROR_BODY_EXCERPT: Final = 200

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _user_agent() -> str:
    try:
        return f"corsadmin/{version('corsadmin')}"
    except PackageNotFoundError:  # pragma: no cover - a checkout without metadata
        return "corsadmin"


class DeliveryError(Exception):
    """The receiver did not take the alert (its status or the network's error)."""


@dataclass(frozen=True)
class Webhook:
    """Where alerts go and the secret that signs them."""

    url: str
    secret: str
    timeout: float = WEBHOOK_TIMEOUT

    def request(self, payload: dict[str, object], unix_time: int) -> urllib.request.Request:
        """The signed POST of ``payload``."""
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return urllib.request.Request(  # noqa: S310 - the URL is checked http(s) in config
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": _user_agent(),
                EVENT_ID_HEADER: str(payload["id"]),
                SIGNATURE_HEADER: sign(self.secret, body, unix_time),
            },
        )

    def post(self, payload: dict[str, object], unix_time: int) -> None:
        """POST ``payload``; raises :class:`DeliveryError` unless the answer is 2xx."""
        try:
            with OPENER.open(self.request(payload, unix_time), timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            try:
                excerpt = error.read(ERROR_BODY_EXCERPT).decode("utf-8", "replace")
            except OSError:
                excerpt = ""
            raise DeliveryError(f"HTTP {error.code}: {excerpt}") from None
        except (OSError, ValueError) as error:  # URLError, timeouts, refused connections
            raise DeliveryError(f"{type(error).__name__}: {error}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}")


@dataclass
class RunResult:
    """What one run did."""

    detected: int = 0
    queued: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    pruned: int = 0


@dataclass
class AlertRunner:
    """Scans, queues and posts alerts for one application's database."""

    webhook: Webhook | None
    expiring_within_days: int
    interval: float
    #: The fleet's heartbeat (``CORSADMIN_FLEET_HEARTBEAT``): how workers are judged.
    heartbeat: float = DEFAULT_HEARTBEAT
    #: Injectable for tests: what "now" is (the backoff is computed from it).
    clock: Clock = utc_now
    last_run: float | None = None
    _failing: bool = field(default=False, repr=False)

    def due(self) -> bool:
        """Has ``interval`` passed since the last periodic run?"""
        return self.last_run is None or time.monotonic() - self.last_run >= self.interval

    def tick(self, engine: Callable[[], sa.Engine]) -> RunResult | None:
        """The periodic run (the refresh thread): when a webhook is set and the interval
        passed; never raises (a failure is logged once until a run succeeds)."""
        if self.webhook is None or not self.due():
            return None
        self.last_run = time.monotonic()
        try:
            result = self.run(engine())
        except Exception as error:
            if not self._failing:
                self._failing = True
                log.warning(
                    "corsadmin could not scan or deliver alerts (%s: %s); retrying every "
                    "%.0fs (logged once)",
                    type(error).__name__,
                    error,
                    self.interval,
                )
            return None
        self._failing = False
        return result

    def run(self, engine: sa.Engine, *, deliver: bool = True) -> RunResult:
        """Find and queue the events, post what is due (``deliver`` and a webhook set),
        delete old rows."""
        now = self.clock()
        since = now - timedelta(days=outbox.ALERT_RETENTION_DAYS)
        result = RunResult()
        with engine.begin() as connection:
            events = outbox.detect(
                connection,
                now,
                self.expiring_within_days,
                due_since=since,
                heartbeat=self.heartbeat,
            )
            result.detected = len(events)
            result.queued = outbox.enqueue(connection, events, now)
            result.pruned = outbox.prune(connection, now, self.expiring_within_days)
        if deliver and self.webhook is not None:
            self.deliver(engine, self.webhook, result)
        return result

    def deliver(self, engine: sa.Engine, webhook: Webhook, result: RunResult) -> None:
        """Post the alerts due for an attempt, one claimed at a time."""
        for _ in range(MAX_DELIVERIES_PER_RUN):
            alert = outbox.claim_next(engine, self.clock(), CLAIM_LEASE)
            if alert is None:
                return
            try:
                webhook.post(alert.payload, int(time.time()))  # signed with the real time
            except DeliveryError as error:
                status = outbox.record_failure(engine, alert, str(error), self.clock())
                if status == outbox.FAILED:
                    result.failed += 1
                    log.warning("corsadmin gave up delivering alert %s: %s", alert.key, error)
                else:
                    result.retrying += 1
                continue
            outbox.record_success(engine, alert, self.clock())
            result.delivered += 1


def alert_runner(config: CorsAdminConfig) -> AlertRunner:
    """The runner ``config`` asks for (its webhook None without a URL: scans only)."""
    webhook = None
    if config.alert_webhook_url is not None and config.alert_webhook_secret is not None:
        webhook = Webhook(config.alert_webhook_url, config.alert_webhook_secret)
    return AlertRunner(
        webhook=webhook,
        expiring_within_days=config.expiring_within_days,
        interval=config.alert_interval,
        heartbeat=config.fleet_heartbeat,
    )
