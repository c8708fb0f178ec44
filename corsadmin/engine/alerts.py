"""Alerts, the pure part: what an event is, the rules that find one, the retry
schedule, and the webhook's signature.

No Flask, no database: the facts come in as plain values and "now" is always an
argument (:mod:`corsadmin.db.alerts` reads the tables and keeps the outbox,
:mod:`corsadmin.runtime.alerts` posts).

The events, each under a key that names it once (an event detected again has the
same key, so it is queued once):

- ``review-due``: a policy's review fell due (:func:`.review.review_status`);
  key ``review-due:<policy>:<due date>``;
- ``expiring``: an origin rule expires within ``CORSADMIN_EXPIRING_WITHIN_DAYS``;
  key ``expiring:<policy>:<origin>:<expires_at>``;
- ``refusal-spike``: a policy refused at least :data:`SPIKE_MIN_REFUSALS` requests
  in one clock hour and at least :data:`SPIKE_FACTOR` times its average hourly
  refusals over the :data:`SPIKE_BASELINE_HOURS` before that hour (hours without
  refusals count as 0); key ``refusal-spike:<policy>:<hour>``;
- ``worker-lagging``: a process in the fleet view that is *lagging* or *stale* by
  the fleet's one test (:func:`corsadmin.engine.fleet.worker_status`: the Workers
  screen and ``corsadmin status`` flag the same processes); key
  ``worker-lagging:<host>:<pid>:<revision>``.

The signature (``X-Corsadmin-Signature``) is ``t=<unix time>,v1=<hex>``, the hex an
HMAC-SHA256 with the shared secret of ``<unix time>.`` followed by the body's bytes.
A receiver checks it with :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, overload

from ..limits import MAX_ALERT_KEY_LENGTH, MAX_ALERT_SUMMARY_LENGTH
from .fleet import WorkerFacts, WorkerStatus

REVIEW_DUE: Final = "review-due"
EXPIRING: Final = "expiring"
REFUSAL_SPIKE: Final = "refusal-spike"
WORKER_LAGGING: Final = "worker-lagging"
#: Every kind of event, in the order ``corsadmin review --due`` lists them.
KINDS: Final = (REVIEW_DUE, EXPIRING, REFUSAL_SPIKE, WORKER_LAGGING)

#: Refusal spike: the fewest refusals in one hour that can be a spike (below it, a
#: few refused requests on a quiet policy are noise, whatever the ratio).
SPIKE_MIN_REFUSALS: Final = 100
#: Refusal spike: how many times its average hourly refusals a policy must refuse.
SPIKE_FACTOR: Final = 10
#: Refusal spike: the hours before an hour its average is taken over (7 days).
SPIKE_BASELINE_HOURS: Final = 7 * 24

#: Delivery: seconds before the second attempt; each next waits RETRY_FACTOR times longer.
FIRST_RETRY_DELAY: Final = 30.0
RETRY_FACTOR: Final = 2.0
#: Delivery: the longest wait between two attempts (seconds).
MAX_RETRY_DELAY: Final = 3600.0
#: Delivery: attempts in all; after the last failed one the alert is marked failed.
MAX_ATTEMPTS: Final = 8

#: A receiver refuses a signature older (or newer) than this many seconds by default.
SIGNATURE_TOLERANCE: Final = 300
SIGNATURE_HEADER: Final = "X-Corsadmin-Signature"
EVENT_ID_HEADER: Final = "X-Corsadmin-Event-Id"
#: Hex digits of the event id (a SHA-256 of the key, cut).
EVENT_ID_LENGTH: Final = 32


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One event: its key (unique), kind, policy (None for a worker), one sentence,
    and the facts (JSON values) the receiver gets as ``details``."""

    key: str
    kind: str
    policy: str | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def event_key(kind: str, *parts: object) -> str:
    """``kind:part:part...``; when longer than :data:`MAX_ALERT_KEY_LENGTH` (a long
    origin rule), ``kind:sha256:<hex of the whole key>`` instead, still one per event."""
    key = ":".join([kind, *(str(p) for p in parts)])
    if len(key) <= MAX_ALERT_KEY_LENGTH:
        return key
    return f"{kind}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def event_id(key: str) -> str:
    """The event's id (``X-Corsadmin-Event-Id``): the same for every attempt, every
    process and every restart, so a receiver can drop a repeat."""
    return hashlib.sha256(key.encode()).hexdigest()[:EVENT_ID_LENGTH]


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime | None) -> str | None:
    """A time as the alerts write it (ISO 8601, ``Z`` for UTC); None stays None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _summary(text: str) -> str:
    return text[:MAX_ALERT_SUMMARY_LENGTH]


# --- the detectors -------------------------------------------------------------------------------


def review_due_event(
    policy: str, due_at: datetime, last_reviewed_at: datetime | None
) -> AlertEvent:
    """A policy's review fell due at ``due_at``."""
    return AlertEvent(
        key=event_key(REVIEW_DUE, policy, due_at.date().isoformat()),
        kind=REVIEW_DUE,
        policy=policy,
        summary=_summary(f"policy {policy!r}: review due since {due_at:%Y-%m-%d}"),
        details={
            "due_at": iso(due_at),
            "last_reviewed_at": iso(last_reviewed_at) if last_reviewed_at else None,
        },
    )


def expiring_event(policy: str, origin: str, expires_at: datetime, now: datetime) -> AlertEvent:
    """An origin rule of ``policy`` expires at ``expires_at``."""
    days = (expires_at - now).days
    return AlertEvent(
        key=event_key(EXPIRING, policy, origin, iso(expires_at)),
        kind=EXPIRING,
        policy=policy,
        summary=_summary(
            f"policy {policy!r}: origin rule {origin} expires {expires_at:%Y-%m-%d %H:%M} UTC "
            f"(in {days} day{'s' if days != 1 else ''})"
        ),
        details={"origin": origin, "expires_at": iso(expires_at), "days_left": days},
    )


def spike_threshold(baseline_refused: int) -> float:
    """The refusals one hour needs to be a spike, given the refusals of the
    :data:`SPIKE_BASELINE_HOURS` before it: SPIKE_FACTOR times their hourly average,
    and at least SPIKE_MIN_REFUSALS."""
    return max(float(SPIKE_MIN_REFUSALS), SPIKE_FACTOR * baseline_refused / SPIKE_BASELINE_HOURS)


def refusal_spike_event(
    policy: str, hour: datetime, refused: int, baseline_refused: int
) -> AlertEvent | None:
    """The spike event of ``policy`` in ``hour`` (its start), or None when ``refused``
    is under :func:`spike_threshold`."""
    if refused < spike_threshold(baseline_refused):
        return None
    average = baseline_refused / SPIKE_BASELINE_HOURS
    return AlertEvent(
        key=event_key(REFUSAL_SPIKE, policy, iso(hour)),
        kind=REFUSAL_SPIKE,
        policy=policy,
        summary=_summary(
            f"policy {policy!r}: {refused} requests refused in the hour from {hour:%Y-%m-%d %H:00} "
            f"UTC, against {average:.1f} an hour on average over the 7 days before"
        ),
        details={
            "hour": iso(hour),
            "refused": refused,
            "average_per_hour": round(average, 3),
            "min_refusals": SPIKE_MIN_REFUSALS,
            "factor": SPIKE_FACTOR,
        },
    )


def worker_lagging_event(
    worker: WorkerFacts, status: WorkerStatus, current: int
) -> AlertEvent | None:
    """The lagging event of ``worker``, whose fleet status is ``status``
    (:func:`corsadmin.engine.fleet.worker_status`), or None when it is current."""
    if status is WorkerStatus.CURRENT:
        return None
    if status is WorkerStatus.LAGGING:
        why = f"enforces revision {worker.revision}, the current one is {current}"
    else:
        last = iso(_moment(worker.checked_at)) if worker.checked_at else "never"
        why = f"no successful revision check since {last}"
    return AlertEvent(
        key=event_key(WORKER_LAGGING, worker.host, worker.pid, worker.revision),
        kind=WORKER_LAGGING,
        policy=None,
        summary=_summary(f"worker {worker.host}:{worker.pid} lags: {why}"),
        details={
            "host": worker.host,
            "pid": worker.pid,
            "revision": worker.revision,
            "current_revision": current,
            "status": status.value,
            "checked_at": iso(_moment(worker.checked_at)) if worker.checked_at else None,
            "reported_at": iso(_moment(worker.reported_at)),
        },
    )


# --- delivery ------------------------------------------------------------------------------------


def retry_delay(attempts: int) -> float | None:
    """Seconds to wait after ``attempts`` failed attempts (1 the first), or None when
    that was the last (:data:`MAX_ATTEMPTS`)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return float(min(FIRST_RETRY_DELAY * RETRY_FACTOR ** (attempts - 1), MAX_RETRY_DELAY))


def webhook_body(event: AlertEvent, detected_at: datetime) -> dict[str, Any]:
    """The JSON body of ``event``: id, kind, key, policy, summary, detected_at, details."""
    return {
        "id": event_id(event.key),
        "kind": event.kind,
        "key": event.key,
        "policy": event.policy,
        "summary": event.summary,
        "detected_at": iso(detected_at),
        "details": event.details,
    }


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Corsadmin-Signature`` header of ``body`` sent at ``timestamp`` (Unix)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: float = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """For receivers: is ``header`` (``X-Corsadmin-Signature``) a valid signature of
    ``body`` (the raw request body, as received) with ``secret``, made within
    ``tolerance`` seconds of ``now`` (default: the clock)? Compared in constant time;
    a missing or malformed header is False."""
    if not header:
        return False
    fields_ = dict(part.strip().partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields_.get("t", ""))
    except ValueError:
        return False
    signature = fields_.get("v1", "")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature, _mac(secret, timestamp, body))
