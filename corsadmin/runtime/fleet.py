"""This process's part of the fleet view: what it enforces, written to the
``corsadmin_worker`` table from the refresh thread's periodic step.

:class:`FleetReporter` reports at most once per refresh interval: at once when
something changed (a new revision installed, LISTEN going up or down, the first
good check after a failure, a new pid after a fork) and otherwise every heartbeat
(``CORSADMIN_FLEET_HEARTBEAT``, at least the interval), so a fleet of hundreds of
idle workers writes a few rows a second, not one per worker per interval. It
deletes the rows of processes long gone (:data:`~corsadmin.db.fleet.WORKER_ROW_TTL`)
now and then, and its own row when the process stops cleanly. A database without
the table (not upgraded yet) is skipped quietly, logged once.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from ..db import fleet as fleet_table
from ..db.loader import read_committed_at, read_revision
from ..engine.fleet import (
    FleetSummary,
    WorkerFacts,
    WorkerStatus,
    expires_after,
    fleet_summary,
    worker_status,
)
from .refresh import SnapshotHolder

log = logging.getLogger("corsadmin")

#: Expired rows are deleted at most this often by one process (seconds).
PURGE_EVERY: Final = 600.0

#: What, in a process's facts, makes it report before its heartbeat is due.
_Marks = tuple[int, float | None, bool | None, bool, int]


def host_name() -> str:
    """This machine's name, as the fleet view shows it (cut to the column's size)."""
    return socket.gethostname()[: fleet_table.MAX_HOST_LENGTH]


def facts_now(holder: SnapshotHolder, started_at: float, now: float | None = None) -> WorkerFacts:
    """What this process enforces now, from memory (no database access)."""
    snapshot = holder.snapshot
    return WorkerFacts(
        host=host_name(),
        pid=os.getpid(),
        started_at=started_at,
        revision=snapshot.revision if snapshot.loaded else -1,
        loaded_at=holder.installed_at if snapshot.loaded else None,
        committed_at=(snapshot.committed_at or None) if snapshot.loaded else None,
        checked_at=holder.checked_at,
        listening=holder.listening,
        interval=holder.interval,
        reported_at=time.time() if now is None else now,
    )


class FleetReporter:
    """Reports one application's facts, in one process (see the module's doc)."""

    def __init__(
        self,
        holder: SnapshotHolder,
        engine: Callable[[], sa.Engine],
        *,
        heartbeat: float,
        enabled: bool = True,
    ) -> None:
        self.holder = holder
        self._engine = engine
        self.heartbeat = max(heartbeat, holder.interval)
        self.enabled = enabled
        self._lock = threading.Lock()
        self._pid = 0  # the process the fields below belong to (reset after a fork)
        self.started_at = time.time()
        self._last_report = 0.0  # time.monotonic()
        self._last_purge = 0.0
        self._marks: _Marks | None = None
        self._no_table = False  # logged once
        self._failing = False  # logged once
        self._closed = False  # this process's row was deleted: no more reports
        self.reports = 0
        _new_lock_after_fork(self)

    def _this_process(self) -> None:
        pid = os.getpid()
        if pid != self._pid:  # first use, or a forked worker: it starts now
            self._pid = pid
            self.started_at = time.time()
            self._marks = None
            self._last_report = self._last_purge = 0.0
            self.reports = 0
            self._closed = False
            _remove_at_exit(self)

    @property
    def pid(self) -> int:
        """The process this reporter last reported for (0: none yet)."""
        return self._pid

    def facts(self) -> WorkerFacts:
        """This process's facts now, from memory."""
        self._this_process()
        return facts_now(self.holder, self.started_at)

    def _marks_now(self) -> _Marks:
        h = self.holder
        return (h.snapshot.revision, h.installed_at, h.listening, h.checked_at is None, self._pid)

    def due(self) -> bool:
        """Something changed, or the heartbeat is due; never twice within one interval."""
        since = time.monotonic() - self._last_report
        if self._last_report and since < self.holder.interval:
            return False
        return self._marks != self._marks_now() or since >= self.heartbeat or self._failing

    def step(self, force: bool = False) -> bool:
        """Report if due (or ``force``); True when a row was written. Never raises: a
        failure is logged once (and the recovery once), the next step tries again."""
        if not self.enabled or self.holder.stopped:
            return False  # a process shutting down reports no more (it deletes its row)
        with self._lock:
            self._this_process()
            if self._closed or not (force or self.due()):
                return False
            return self._write()

    def _write(self) -> bool:
        self._last_report = time.monotonic()
        try:
            engine = self._engine()
            facts = facts_now(self.holder, self.started_at)
            fleet_table.report(engine, facts)
            self._purge(engine, facts.reported_at)
        except Exception as exc:
            self._failed(exc)
            return False
        self._marks = self._marks_now()
        self.reports += 1
        if self._failing:
            self._failing = False
            log.warning("corsadmin reports to the fleet view again")
        return True

    def _purge(self, engine: sa.Engine, now: float) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY or not self._last_purge:
            self._last_purge = time.monotonic()
            fleet_table.delete_expired(engine, now=now)

    def _failed(self, exc: Exception) -> None:
        try:
            missing = fleet_table.table_missing(self._engine())
        except Exception:
            missing = False
        if missing:
            if not self._no_table:
                self._no_table = True
                log.info("corsadmin's fleet view is off until the database is upgraded (0006)")
            return
        if not self._failing:
            self._failing = True
            log.warning(
                "corsadmin could not report to the fleet view (%s); retrying",
                type(exc).__name__,
            )

    def remove(self) -> None:
        """Delete this process's row (a clean stop); never raises."""
        with self._lock:
            if not self.enabled or self._pid != os.getpid() or not self.reports:
                return
            self._closed = True
            self.reports = 0
            try:
                fleet_table.remove(self._engine(), host_name(), self._pid)
            except Exception as exc:
                log.info("corsadmin could not remove its fleet row (%s)", type(exc).__name__)


def _new_lock_after_fork(reporter: FleetReporter) -> None:
    """A forked child gets a lock of its own (a thread of the parent may have held it)."""
    ref = weakref.ref(reporter)

    def after_fork_in_child() -> None:
        alive = ref()
        if alive is not None:
            alive._lock = threading.Lock()

    os.register_at_fork(after_in_child=after_fork_in_child)


def _remove_at_exit(reporter: FleetReporter) -> None:
    """Delete the reporter's row when the process exits normally (a gunicorn worker
    stopped by the master); a killed process's row expires instead."""
    ref = weakref.ref(reporter)

    def at_exit() -> None:
        alive = ref()
        if alive is not None:
            alive.remove()

    atexit.register(at_exit)


@dataclass(frozen=True)
class FleetView:
    """The live processes as one reader sees them at ``now`` (see :func:`read_fleet`)."""

    now: float
    revision: int  # the database's current revision (this process's own when unreachable)
    committed_at: float  # when it committed (0.0 unknown)
    workers: list[tuple[WorkerFacts, WorkerStatus]]
    summary: FleetSummary
    truncated: bool = False  # more than MAX_WORKERS_LISTED processes: the first ones
    #: Why the table could not be read (then ``workers`` is this process alone, from memory).
    unreachable: str | None = None

    @property
    def all_current(self) -> bool:
        """True when no process is lagging or stale (and the table could be read)."""
        return self.unreachable is None and all(
            status is WorkerStatus.CURRENT for _, status in self.workers
        )

    def counts(self) -> dict[str, int]:
        """How many processes have each status."""
        found = {status.value: 0 for status in WorkerStatus}
        for _, status in self.workers:
            found[status.value] += 1
        return found

    def to_document(self) -> dict[str, Any]:
        """The view as JSON-ready data (times in ISO 8601, UTC, to the millisecond)."""
        return {
            "revision": self.revision,
            "committed_at": iso_time(self.committed_at or None),
            "now": iso_time(self.now),
            "reachable": self.unreachable is None,
            "error": self.unreachable,
            "all_current": self.all_current,
            "truncated": self.truncated,
            "counts": self.counts(),
            "summary": self.summary.to_document(),
            "workers": [worker_document(w, s) for w, s in self.workers],
        }


def iso_time(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC with a ``Z``, to the millisecond (None: None)."""
    if epoch is None:
        return None
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def worker_document(worker: WorkerFacts, status: WorkerStatus) -> dict[str, Any]:
    """One process of the view as JSON-ready data."""
    return {
        "host": worker.host,
        "pid": worker.pid,
        "status": status.value,
        "revision": worker.revision,
        "started_at": iso_time(worker.started_at),
        "loaded_at": iso_time(worker.loaded_at),
        "committed_at": iso_time(worker.committed_at),
        "propagation": worker.propagation,
        "checked_at": iso_time(worker.checked_at),
        "listening": worker.listening,
        "interval": worker.interval,
        "reported_at": iso_time(worker.reported_at),
    }


def _judged(
    workers: list[WorkerFacts], revision: int, committed_at: float, now: float, heartbeat: float
) -> list[tuple[WorkerFacts, WorkerStatus]]:
    return [
        (
            w,
            worker_status(
                w, revision=revision, committed_at=committed_at, now=now, heartbeat=heartbeat
            ),
        )
        for w in workers
    ]


def read_fleet(
    engine: sa.Engine, reporter: FleetReporter, heartbeat: float, *, fallback: bool = True
) -> FleetView:
    """The live processes from the table, each with its status, and the summary of the
    current revision. When the table cannot be read, this process alone, from memory
    (its own last check tells whether it is stale), with the reason; without
    ``fallback`` (a CLI command enforces nothing), the error is raised."""
    now = time.time()
    try:
        with engine.connect() as connection:
            revision = read_revision(connection)
            committed_at = read_committed_at(connection, revision)
            workers, truncated = fleet_table.live_workers(
                connection, now=now, expiry=expires_after(heartbeat, reporter.holder.interval)
            )
    except Exception as exc:
        if not fallback:
            raise
        own = reporter.facts()
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        revision, committed_at = own.revision, own.committed_at or 0.0
        return FleetView(
            now=now,
            revision=revision,
            committed_at=committed_at,
            workers=_judged([own], revision, committed_at, now, heartbeat),
            summary=fleet_summary([own], revision),
            unreachable=f"{type(exc).__name__}: {first}" if first else type(exc).__name__,
        )
    workers = _with_own(workers, reporter)
    return FleetView(
        now=now,
        revision=revision,
        committed_at=committed_at,
        workers=_judged(workers, revision, committed_at, now, heartbeat),
        summary=fleet_summary(workers, revision),
        truncated=truncated,
    )


def _with_own(workers: list[WorkerFacts], reporter: FleetReporter) -> list[WorkerFacts]:
    """The rows, this process's own replaced by its facts from memory (newer than its
    last report) when it reports (a serving process, not a CLI command)."""
    if not reporter.enabled or not reporter.reports or reporter.pid != os.getpid():
        return workers
    own = reporter.facts()
    return [own if (w.host, w.pid) == (own.host, own.pid) else w for w in workers]


def change_note(interval: float) -> str:
    """What the CLI and the API add to a change's message: a fact of configuration (how
    soon every worker checks), not a promise; who enforces it is the fleet view's to say."""
    return f"every worker checks for it within {interval:g}s, the fleet view shows who enforces it"
