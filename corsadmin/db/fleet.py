"""The fleet view's table (``corsadmin_worker``): each process's row, written by the
process itself, read by the admin UI and ``corsadmin status``.

:func:`report` writes one process's :class:`~corsadmin.engine.fleet.WorkerFacts`
(an UPDATE, then an INSERT when there was no row: portable, no dialect's upsert);
:func:`live_workers` reads the rows reported within the expiry, a bounded read;
:func:`delete_expired` deletes the rows of processes silent for
:data:`WORKER_ROW_TTL`; :func:`remove` deletes one process's row (clean shutdown).
A database not upgraded to 0006 yet has no such table: :func:`table_missing` tells.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from ..engine.fleet import WorkerFacts
from .models import WorkerRow

#: The most rows :func:`live_workers` reads (a fleet this large is listed in part,
#: and says so).
MAX_WORKERS_LISTED: Final = 1000
#: Rows of processes that stopped reporting this many seconds ago are deleted (a
#: process that stopped cleanly deletes its own at once).
WORKER_ROW_TTL: Final = 3600.0
#: The longest host name kept (the column's size).
MAX_HOST_LENGTH: Final = 255

_TABLE: Final[sa.Table] = WorkerRow.__table__  # type: ignore[assignment]


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _values(facts: WorkerFacts) -> dict[str, Any]:
    return {
        "started_at": _when(facts.started_at),
        "revision": facts.revision,
        "loaded_at": _when(facts.loaded_at),
        "committed_at": _when(facts.committed_at or None),
        "checked_at": _when(facts.checked_at),
        "listening": facts.listening,
        "interval": facts.interval,
        "reported_at": _when(facts.reported_at),
    }


def _key(host: str, pid: int) -> sa.ColumnElement[bool]:
    return sa.and_(_TABLE.c.host == host[:MAX_HOST_LENGTH], _TABLE.c.pid == pid)


def report(engine: sa.Engine, facts: WorkerFacts) -> None:
    """Write ``facts`` as its process's row: UPDATE, else INSERT (a concurrent INSERT of
    the same row, a reused pid, is met by the UPDATE once more). Raises on database
    errors (the caller logs them once)."""
    values = _values(facts)
    key = _key(facts.host, facts.pid)
    with engine.begin() as connection:
        if connection.execute(sa.update(_TABLE).where(key).values(**values)).rowcount:
            return
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(_TABLE).values(host=facts.host[:MAX_HOST_LENGTH], pid=facts.pid, **values)
            )
    except sa.exc.IntegrityError:
        with engine.begin() as connection:
            connection.execute(sa.update(_TABLE).where(key).values(**values))


def live_workers(
    connection: sa.Connection, *, now: float, expiry: float
) -> tuple[list[WorkerFacts], bool]:
    """The processes that reported within ``expiry`` seconds of ``now``, by host and pid
    (at most :data:`MAX_WORKERS_LISTED`), and whether more were left out."""
    since = _when(now - expiry)
    rows = connection.execute(
        sa.select(_TABLE)
        .where(_TABLE.c.reported_at >= since)
        .order_by(_TABLE.c.host, _TABLE.c.pid)
        .limit(MAX_WORKERS_LISTED + 1)
    ).all()
    return [facts_of(row) for row in rows[:MAX_WORKERS_LISTED]], len(rows) > MAX_WORKERS_LISTED


def facts_of(row: Any) -> WorkerFacts:
    """A table row as :class:`WorkerFacts`."""
    return WorkerFacts(
        host=row.host,
        pid=row.pid,
        started_at=row.started_at.timestamp(),
        revision=row.revision,
        loaded_at=_epoch(row.loaded_at),
        committed_at=_epoch(row.committed_at),
        checked_at=_epoch(row.checked_at),
        listening=row.listening,
        interval=row.interval,
        reported_at=row.reported_at.timestamp(),
    )


def delete_expired(engine: sa.Engine, *, now: float, ttl: float = WORKER_ROW_TTL) -> int:
    """Delete the rows of processes silent for ``ttl`` seconds; how many were deleted."""
    with engine.begin() as connection:
        done = connection.execute(sa.delete(_TABLE).where(_TABLE.c.reported_at < _when(now - ttl)))
        return int(done.rowcount or 0)


def remove(engine: sa.Engine, host: str, pid: int) -> None:
    """Delete one process's row (it stops cleanly: it leaves the view at once)."""
    with engine.begin() as connection:
        connection.execute(sa.delete(_TABLE).where(_key(host, pid)))


def table_missing(engine: sa.Engine) -> bool:
    """True when the database has no fleet table (not upgraded to 0006 yet)."""
    with engine.connect() as connection:
        return not sa.inspect(connection).has_table(WorkerRow.__tablename__)
