"""Alerts in the database: finding the events, the outbox that delivers each once,
and the refusals per policy-hour the spike rule compares.

- :func:`detect` reads the tables and applies the rules of
  :mod:`corsadmin.engine.alerts` (at most :data:`MAX_EVENTS_PER_KIND` of each kind).
- :func:`enqueue` inserts events into ``corsadmin_alert``; an event whose key is
  there already is skipped (``ON CONFLICT DO NOTHING``), so an event found again, by
  this process or another, after a restart too, is queued once.
- :func:`claim_next` takes one pending alert with a conditional UPDATE (a lease until
  ``claimed_until``): two processes never post the same alert at once; a process that
  dies while posting leaves the lease to run out, and the alert is tried again.
- :func:`record_success` and :func:`record_failure` end an attempt: delivered, or
  tried again after :func:`corsadmin.engine.alerts.retry_delay`, or failed after the
  last attempt (the row stays, visible in ``corsadmin alerts list``).
- :func:`prune` deletes delivered and failed alerts after :data:`ALERT_RETENTION_DAYS`
  and refusal hours after :data:`REFUSAL_HOURS_KEPT`, a bounded batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa

from ..engine.alerts import (
    KINDS,
    SPIKE_BASELINE_HOURS,
    SPIKE_MIN_REFUSALS,
    AlertEvent,
    expiring_event,
    refusal_spike_event,
    retry_delay,
    review_due_event,
    webhook_body,
    worker_lagging_event,
)
from ..engine.fleet import DEFAULT_HEARTBEAT, expires_after, worker_status
from ..engine.review import PolicyFacts, review_status
from ..limits import MAX_ALERT_ERROR_LENGTH
from .dialects import insert_if_new, limited, upsert
from .fleet import live_workers
from .models import AlertRow, OriginRuleRow, Policy, RefusalHourRow, State

#: Events of one kind one scan finds at most (the soonest first); the rest next time.
MAX_EVENTS_PER_KIND: Final = 500
#: Delivered and failed alerts are deleted this many days after they were detected.
#: An alert scan does not report a review that fell due longer ago than this (it
#: would be queued again once its row is gone); ``corsadmin review --due`` does.
ALERT_RETENTION_DAYS: Final = 90
#: Refusals per policy-hour are kept this many days (the spike rule looks 7 days back).
REFUSAL_HOURS_KEPT: Final = 8
#: Rows one :func:`prune` deletes at most per table (the rest next time).
MAX_PRUNE_ROWS: Final = 10_000
#: Pending alerts one :func:`claim_next` looks at (it takes the first it can).
CLAIM_CANDIDATES: Final = 10

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"


def _table(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s clock hour, in UTC."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --- finding the events --------------------------------------------------------------------------


def detect(
    connection: sa.Connection,
    now: datetime,
    expiring_within_days: int,
    *,
    due_since: datetime | None = None,
    heartbeat: float = DEFAULT_HEARTBEAT,
) -> list[AlertEvent]:
    """Every event there is now, by kind (:data:`KINDS`) then key. ``due_since``: only
    the reviews that fell due since then (the alert scan), else every due review;
    ``heartbeat``: the fleet's (``CORSADMIN_FLEET_HEARTBEAT``), to judge the workers."""
    events = [
        *due_reviews(connection, now, due_since),
        *expiring_rules(connection, now, expiring_within_days),
        *refusal_spikes(connection, now),
        *lagging_workers(connection, now, heartbeat),
    ]
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(events, key=lambda e: (order[e.kind], e.key))


def due_reviews(
    connection: sa.Connection, now: datetime, since: datetime | None = None
) -> list[AlertEvent]:
    """The policies whose review is due (fell due after ``since``, when given)."""
    p = _table(Policy)
    rows = connection.execute(
        sa.select(p.c.name, p.c.path, p.c.created_at, p.c.review_every_days, p.c.reviewed_at)
    )
    found: list[AlertEvent] = []
    for row in rows:
        facts = PolicyFacts(
            name=row.name,
            path=row.path,
            created_at=row.created_at,
            review_every_days=row.review_every_days,
            reviewed_at=row.reviewed_at,
        )
        status = review_status(facts, now)
        if status.due and (since is None or status.due_at >= since):
            found.append(review_due_event(row.name, status.due_at, row.reviewed_at))
    found.sort(key=lambda e: e.details["due_at"])
    return found[:MAX_EVENTS_PER_KIND]


def expiring_rules(connection: sa.Connection, now: datetime, within_days: int) -> list[AlertEvent]:
    """The origin rules that expire after now and within ``within_days``, the soonest first."""
    r, p = _table(OriginRuleRow), _table(Policy)
    query = (
        sa.select(p.c.name, r.c.origin, r.c.expires_at)
        .join(p, p.c.id == r.c.policy_id)
        .where(r.c.expires_at > now, r.c.expires_at <= now + timedelta(days=within_days))
        .order_by(r.c.expires_at, p.c.name, r.c.origin)
        .limit(MAX_EVENTS_PER_KIND)
    )
    return [
        expiring_event(row.name, row.origin, row.expires_at, now)
        for row in connection.execute(query)
    ]


def refusal_spikes(connection: sa.Connection, now: datetime) -> list[AlertEvent]:
    """Spikes in the current clock hour (so far) and the one before it."""
    h = _table(RefusalHourRow)
    since = hour_of(now) - timedelta(hours=1)
    candidates = connection.execute(
        sa.select(h.c.policy_name, h.c.hour, h.c.refused)
        .where(h.c.hour >= since, h.c.refused >= SPIKE_MIN_REFUSALS)
        .order_by(h.c.hour, h.c.policy_name)
        .limit(MAX_EVENTS_PER_KIND)
    ).all()
    found: list[AlertEvent] = []
    for policy, hour, refused in candidates:
        baseline = connection.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(h.c.refused), 0)).where(
                h.c.policy_name == policy,
                h.c.hour >= hour - timedelta(hours=SPIKE_BASELINE_HOURS),
                h.c.hour < hour,
            )
        )
        event = refusal_spike_event(policy, hour, int(refused), int(baseline or 0))
        if event is not None:
            found.append(event)
    return found


def current_revision(connection: sa.Connection) -> tuple[int, datetime] | None:
    """The revision and when it committed (None: no revision row yet)."""
    s = _table(State)
    row = connection.execute(sa.select(s.c.revision, s.c.changed_at).where(s.c.id == 1)).first()
    return None if row is None else (int(row.revision), row.changed_at)


def lagging_workers(
    connection: sa.Connection, now: datetime, heartbeat: float = DEFAULT_HEARTBEAT
) -> list[AlertEvent]:
    """The live processes the fleet view flags lagging or stale
    (:func:`corsadmin.engine.fleet.worker_status`, judged with ``heartbeat``)."""
    current = current_revision(connection)
    if current is None:
        return []
    moment = now.timestamp()
    workers, _more = live_workers(connection, now=moment, expiry=expires_after(heartbeat))
    found: list[AlertEvent] = []
    for worker in workers:
        status = worker_status(
            worker,
            revision=current[0],
            committed_at=current[1].timestamp(),
            now=moment,
            heartbeat=heartbeat,
        )
        event = worker_lagging_event(worker, status, current[0])
        if event is not None:
            found.append(event)
    return found[:MAX_EVENTS_PER_KIND]


# --- the outbox ----------------------------------------------------------------------------------


def enqueue(connection: sa.Connection, events: Iterable[AlertEvent], now: datetime) -> int:
    """Queue the events whose key is not queued yet; returns how many were new. The
    keys queued already are read first (one SELECT: a scan finds mostly those), the
    others inserted if still new (another process may queue them meanwhile)."""
    table = _table(AlertRow)
    found = list(events)
    known = set(
        connection.scalars(sa.select(table.c.key).where(table.c.key.in_([e.key for e in found])))
    )
    rows = [
        {
            "key": e.key,
            "kind": e.kind,
            "policy_name": e.policy,
            "summary": e.summary,
            "payload": webhook_body(e, now),
            "created_at": now,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for e in found
        if e.key not in known
    ]
    if not rows:
        return 0
    return sum(insert_if_new(connection, table, "key", row) for row in rows)


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """A pending alert this process holds until ``claimed_until``."""

    id: int
    key: str
    payload: dict[str, Any]
    attempts: int
    claimed_until: datetime


def claim_next(engine: sa.Engine, now: datetime, lease: float) -> ClaimedAlert | None:
    """Take the next alert due for an attempt (committed at once), or None."""
    a = _table(AlertRow)
    free = sa.or_(a.c.claimed_until.is_(None), a.c.claimed_until <= now)
    until = now + timedelta(seconds=lease)
    with engine.begin() as connection:
        ids = connection.scalars(
            sa.select(a.c.id)
            .where(a.c.status == PENDING, a.c.next_attempt_at <= now, free)
            .order_by(a.c.next_attempt_at, a.c.id)
            .limit(CLAIM_CANDIDATES)
        ).all()
    for alert_id in ids:
        with engine.begin() as connection:
            taken = connection.execute(
                sa.update(a)
                .where(a.c.id == alert_id, a.c.status == PENDING, free)
                .values(claimed_until=until)
            ).rowcount
            if taken != 1:
                continue  # another process took it first
            row = connection.execute(
                sa.select(a.c.id, a.c.key, a.c.payload, a.c.attempts).where(a.c.id == alert_id)
            ).one()
        return ClaimedAlert(int(row.id), row.key, dict(row.payload), int(row.attempts), until)
    return None


def _held(alert: ClaimedAlert) -> sa.ColumnElement[bool]:
    a = _table(AlertRow)
    return sa.and_(
        a.c.id == alert.id, a.c.status == PENDING, a.c.claimed_until == alert.claimed_until
    )


def record_success(engine: sa.Engine, alert: ClaimedAlert, now: datetime) -> None:
    """The receiver took ``alert``: delivered."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(_table(AlertRow))
            .where(_held(alert))
            .values(
                status=DELIVERED,
                delivered_at=now,
                attempts=alert.attempts + 1,
                claimed_until=None,
                last_error=None,
            )
        )


def record_failure(engine: sa.Engine, alert: ClaimedAlert, error: str, now: datetime) -> str:
    """An attempt failed: try again after the backoff, or (the last) mark it failed.
    Returns the alert's status."""
    attempts = alert.attempts + 1
    delay = retry_delay(attempts)
    values: dict[str, Any] = {
        "attempts": attempts,
        "claimed_until": None,
        "last_error": error[:MAX_ALERT_ERROR_LENGTH],
    }
    if delay is None:
        values["status"] = FAILED
    else:
        values["next_attempt_at"] = now + timedelta(seconds=delay)
    with engine.begin() as connection:
        connection.execute(sa.update(_table(AlertRow)).where(_held(alert)).values(**values))
    return FAILED if delay is None else PENDING


def prune(connection: sa.Connection, now: datetime, expiring_within_days: int) -> int:
    """Delete delivered and failed alerts detected more than :data:`ALERT_RETENTION_DAYS`
    ago (longer when rules are announced earlier: an expiring rule is never announced
    twice) and refusal hours older than :data:`REFUSAL_HOURS_KEPT` days; returns the
    rows deleted (at most :data:`MAX_PRUNE_ROWS` per table)."""
    a = _table(AlertRow)
    days = max(ALERT_RETENTION_DAYS, expiring_within_days + 1)
    old_alerts = (
        sa.select(a.c.id)
        .where(a.c.status.in_([DELIVERED, FAILED]), a.c.created_at < now - timedelta(days=days))
        .limit(MAX_PRUNE_ROWS)
    )
    deleted = connection.execute(sa.delete(a).where(a.c.id.in_(limited(old_alerts)))).rowcount
    return int(deleted) + prune_refusal_hours(connection, now)


def prune_refusal_hours(connection: sa.Connection, now: datetime) -> int:
    """Delete refusal hours older than :data:`REFUSAL_HOURS_KEPT` days (at most
    :data:`MAX_PRUNE_ROWS`); returns how many."""
    h = _table(RefusalHourRow)
    old = (
        sa.select(h.c.id)
        .where(h.c.hour < now - timedelta(days=REFUSAL_HOURS_KEPT))
        .limit(MAX_PRUNE_ROWS)
    )
    return int(connection.execute(sa.delete(h).where(h.c.id.in_(limited(old)))).rowcount)


def recent_alerts(connection: sa.Connection, limit: int) -> Sequence[Any]:
    """The ``limit`` most recently detected alerts, newest first, with their state."""
    a = _table(AlertRow)
    return connection.execute(
        sa.select(
            a.c.id,
            a.c.key,
            a.c.kind,
            a.c.policy_name,
            a.c.summary,
            a.c.created_at,
            a.c.status,
            a.c.attempts,
            a.c.next_attempt_at,
            a.c.delivered_at,
            a.c.last_error,
        )
        .order_by(a.c.created_at.desc(), a.c.id.desc())
        .limit(limit)
    ).all()


# --- refusals per policy-hour --------------------------------------------------------------------


def add_refusal_hours(
    connection: sa.Connection, refused: Mapping[tuple[str, datetime], int]
) -> None:
    """Add refused counts to their (policy, hour) rows: one upsert statement, one row
    per policy-hour (a flush covers seconds, so mostly one hour per policy)."""
    rows = [
        {"policy_name": policy, "hour": hour, "refused": count}
        for (policy, hour), count in sorted(refused.items())
        if count > 0
    ]
    if not rows:
        return
    table = _table(RefusalHourRow)
    statement = upsert(
        connection.dialect,
        table,
        ["policy_name", "hour"],
        lambda new: {"refused": table.c.refused + new.refused},
    )
    connection.execute(statement, rows)
