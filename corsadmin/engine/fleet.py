"""The fleet view, pure: what one process reports, and what a reader makes of it.

Each process enforcing the policy reports its :class:`WorkerFacts` (``corsadmin.db.fleet``
keeps them, one row a process). :func:`worker_status` says whether one process is
*current* (it enforces the current revision, or a change is still young), *lagging*
(the current revision committed a while ago and it still enforces an older one) or
*stale* (its last successful revision check is too old: its database, or the process,
is in trouble). :func:`fleet_summary` is the line the admin UI and ``corsadmin status``
print after a change: "revision 7: enforced by 12 of 12 workers, 0.04 s after commit".

Times are epoch seconds (floats). A process reports at once after it installs a new
revision and otherwise every *heartbeat* (at least its refresh interval), so a reader
judges the age of a row's ``checked_at`` in heartbeats, and how long a new revision may
take to arrive in refresh intervals.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

from ..config import DEFAULT_FLEET_HEARTBEAT

#: Seconds between two reports of a process when nothing changed, by default
#: (``CORSADMIN_FLEET_HEARTBEAT``); a process never reports more often than its
#: refresh interval.
DEFAULT_HEARTBEAT: Final = DEFAULT_FLEET_HEARTBEAT
#: A process whose last successful revision check is older than this many heartbeats
#: (plus :data:`FLEET_MARGIN`) is *stale*: a healthy one reports a fresh check every
#: heartbeat, so one missed report is tolerated, two are not.
STALE_HEARTBEATS: Final = 2
#: A process that did not report for this many heartbeats (plus :data:`FLEET_MARGIN`)
#: leaves the fleet view (it stopped, was killed, or cannot reach the database).
EXPIRY_HEARTBEATS: Final = 3
#: A process still on an older revision this many of its refresh intervals (plus
#: :data:`FLEET_MARGIN`) after the current revision committed is *lagging*: it reports
#: at once after a new revision installs, and checks every interval.
LAGGING_INTERVALS: Final = 3
#: Seconds added to every threshold: scheduling, a slow write, clocks of two hosts.
FLEET_MARGIN: Final = 1.0


class WorkerStatus(enum.Enum):
    """How one process stands (see :func:`worker_status`)."""

    CURRENT = "current"
    LAGGING = "lagging"
    STALE = "stale"


@dataclass(frozen=True)
class WorkerFacts:
    """What one process enforces, as it reports it (epoch seconds; None: never)."""

    host: str
    pid: int
    started_at: float
    revision: int  # -1: no snapshot loaded yet
    loaded_at: float | None  # when it installed ``revision``
    committed_at: float | None  # when ``revision`` committed (None: unknown)
    checked_at: float | None  # its last successful revision check
    listening: bool | None  # its LISTEN connection is up (None: no notifications here)
    interval: float  # its refresh interval
    reported_at: float  # when it wrote these facts (or, read from memory, now)

    @property
    def propagation(self) -> float | None:
        """Seconds from the commit of its revision to its loading it (None: unknown)."""
        if self.loaded_at is None or not self.committed_at:
            return None
        return max(0.0, self.loaded_at - self.committed_at)


def heartbeat_of(worker: WorkerFacts, heartbeat: float = DEFAULT_HEARTBEAT) -> float:
    """The seconds between two reports of ``worker`` when nothing changes."""
    return max(heartbeat, worker.interval)


def stale_after(worker: WorkerFacts, heartbeat: float = DEFAULT_HEARTBEAT) -> float:
    """How old ``worker``'s last check may be before it is stale, in seconds."""
    return STALE_HEARTBEATS * heartbeat_of(worker, heartbeat) + FLEET_MARGIN


def expires_after(heartbeat: float = DEFAULT_HEARTBEAT, interval: float = 0.0) -> float:
    """Seconds without a report after which a process leaves the fleet view."""
    return EXPIRY_HEARTBEATS * max(heartbeat, interval) + FLEET_MARGIN


def worker_status(
    worker: WorkerFacts,
    *,
    revision: int,
    committed_at: float,
    now: float,
    heartbeat: float = DEFAULT_HEARTBEAT,
) -> WorkerStatus:
    """The status of ``worker`` at ``now``, given the current ``revision`` (the database's)
    and when it committed (``committed_at``, epoch seconds; 0.0 unknown).

    *stale* when its last successful check is older than :func:`stale_after` (or it never
    checked); else *lagging* when it enforces an older revision than ``revision`` and that
    one committed more than :data:`LAGGING_INTERVALS` refresh intervals (plus the margin)
    ago (an unknown commit time counts as long ago); else *current*. This is the one test
    of "a worker lags" (the admin UI, ``corsadmin status`` and alerts use it).
    """
    if worker.checked_at is None or now - worker.checked_at > stale_after(worker, heartbeat):
        return WorkerStatus.STALE
    if worker.revision < revision:
        grace = LAGGING_INTERVALS * worker.interval + FLEET_MARGIN
        if not committed_at or now - committed_at > grace:
            return WorkerStatus.LAGGING
    return WorkerStatus.CURRENT


@dataclass(frozen=True)
class FleetSummary:
    """How far one revision got across the live processes."""

    revision: int
    enforcing: int  # processes on ``revision`` or a later one
    workers: int  # live processes
    #: The slowest commit-to-load time among those on exactly ``revision`` (None: unknown).
    seconds: float | None

    @property
    def complete(self) -> bool:
        return self.workers > 0 and self.enforcing == self.workers

    def text(self) -> str:
        """'revision 7: enforced by 12 of 12 workers, 0.04 s after commit' (or 'so far')."""
        noun = "worker" if self.workers == 1 else "workers"
        head = f"revision {self.revision}: enforced by {self.enforcing} of {self.workers} {noun}"
        if not self.complete:
            return f"{head} so far"
        if self.seconds is None:
            return head
        return f"{head}, {self.seconds:.2f} s after commit"

    def to_document(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete, "text": self.text()}


def fleet_summary(workers: Iterable[WorkerFacts], revision: int) -> FleetSummary:
    """How many of ``workers`` enforce ``revision`` (or a later one), and the slowest
    commit-to-load time among those on it."""
    listed = list(workers)
    on_it = [w for w in listed if w.revision >= revision]
    times = [w.propagation for w in on_it if w.revision == revision]
    known = [t for t in times if t is not None]
    return FleetSummary(
        revision=revision,
        enforcing=len(on_it),
        workers=len(listed),
        seconds=max(known) if known and len(known) == len(times) else None,
    )


def format_age(seconds: float | None) -> str:
    """'0.3 s', '42 s', '5 min', '3 h', '2 d' ('-' for None): how long ago, in short."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"
