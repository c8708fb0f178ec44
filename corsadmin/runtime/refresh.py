"""Keeping each process's snapshot current without touching the database per request.

A :class:`SnapshotHolder` hands requests the current :class:`Snapshot` from
memory. A daemon thread per process (started on the first request, and again
in a forked worker) reads the revision every ``interval`` seconds and, when it
moved, loads and compiles a new snapshot while requests go on being answered
from the old one; then it swaps the reference. A change made in this process
is loaded at once (:meth:`SnapshotHolder.reload`).

If the database cannot be reached, the last snapshot that loaded stays in
force, the failure is logged once (and the recovery once), and the thread
keeps retrying. Until a snapshot has loaded, the empty snapshot allows nothing.

Every snapshot installed is announced with :data:`corsadmin.signals.snapshot_loaded`
and every failed attempt with :data:`corsadmin.signals.snapshot_load_failed`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from ..engine.snapshot import Snapshot
from ..signals import send_safely, snapshot_load_failed, snapshot_loaded

log = logging.getLogger("corsadmin")

#: After a change notification, checks are still at least this far apart (a burst of
#: changes costs one snapshot load per MIN_GAP, not one per change).
MIN_GAP = 0.05

#: Once a snapshot of at least this many origin rules is installed, every object the
#: process holds then is moved out of the garbage collector's sight (``gc.freeze``):
#: a full collection would otherwise walk the whole snapshot each time (seconds at a
#: million rules), stopping every thread. Objects frozen are still freed when no
#: longer referenced (a snapshot holds no reference cycle).
FREEZE_AFTER_RULES: Final = 10_000

#: The poller thread prepares the snapshot that follows an origin rule's expiry when
#: the expiry is less than one refresh interval plus this many seconds away: the request
#: at the expiry instant swaps the prepared snapshot in, and compiles nothing.
EXPIRY_LEAD: Final = 2.0
#: At most this many expiries are prepared ahead (rules expiring a moment apart).
MAX_PREPARED_EXPIRIES: Final = 16


def after_expiry(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` as it will be at its first origin rule's expiry (``valid_until``):
    the rules expired by then taken out, nothing else compiled again."""
    moment = datetime.fromtimestamp(snapshot.valid_until, UTC)
    ready = snapshot.recompiled(now=moment)
    if ready.valid_until <= snapshot.valid_until:  # the float lost the last microsecond
        ready = snapshot.recompiled(now=moment + timedelta(microseconds=1))
    return ready


def freeze_long_lived(snapshot: Snapshot) -> bool:
    """``gc.freeze()`` after a large snapshot was installed (young garbage collected
    first, so little garbage with reference cycles is frozen with it). True if frozen."""
    if sum(len(spec.origins) for spec in snapshot.specs) < FREEZE_AFTER_RULES:
        return False
    gc.collect(1)
    gc.freeze()
    return True


def _forget_thread_after_fork(holder: SnapshotHolder) -> None:
    """A forked child (a gunicorn worker) has no poller thread: start one on its first request."""
    ref = weakref.ref(holder)

    def after_fork_in_child() -> None:
        alive = ref()
        if alive is not None:
            alive._thread_running = False
            alive._waiting = False  # the parent's LISTEN connection is not this child's
            # A snapshot inherited from the parent (a preloading gunicorn master) may be
            # old: the new poller thread checks the revision at once.
            alive._check_at_start = alive._snapshot.loaded
            # Another thread may have held these at the fork; the child has only this one.
            alive._lock = threading.Lock()
            alive._load_lock = threading.Lock()

    os.register_at_fork(after_in_child=after_fork_in_child)


RevisionReader = Callable[[], int]
SnapshotLoader = Callable[[], Snapshot]


class ChangeWaiter(Protocol):
    """Something that can block until the revision probably moved (PostgreSQL NOTIFY)."""

    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class SnapshotHolder:
    """The current snapshot of one application in one process."""

    def __init__(
        self,
        *,
        load: SnapshotLoader,
        read_revision: RevisionReader,
        interval: float,
        background: bool = True,
        name: str = "corsadmin",
        on_tick: Callable[[], object] | None = None,
        change_waiter: Callable[[], ChangeWaiter | None] | None = None,
        sender: object = None,
        on_stop: Callable[[], object] | None = None,
    ) -> None:
        self._change_waiter = change_waiter
        self._on_stop = on_stop
        self.sender = sender  # of the signals (the Flask app)
        self._load = load
        self._on_tick = on_tick
        self._read_revision = read_revision
        self.interval = max(0.0, float(interval))
        self.background = background
        self.name = name
        self._snapshot = Snapshot.empty()
        self._lock = threading.Lock()  # guards swapping the snapshot and starting the thread
        self._load_lock = threading.Lock()  # one first load at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_running = False  # in this process; reset in a forked child
        self._check_at_start = False  # set in a forked child holding a snapshot
        _forget_thread_after_fork(self)
        self._failing = False
        self._tick_failing = False
        self._listen_failing = False
        self._waiting = False  # a change waiter (LISTEN connection) is in use
        self._last_check = 0.0
        self._installed_wall: float | None = None  # time.time() of the last install
        self._checked_wall: float | None = None  # time.time() of the last good check
        self._load_started = 0.0  # time.perf_counter() when the last load began
        self.loads = 0  # how many snapshots were loaded (for tests and the admin UI)
        #: How many revision checks have ended, and how many of them a change
        #: notification had woken the refresh thread for (tests wait on these counts
        #: rather than on the clock).
        self.checks = 0
        self.notifications = 0
        #: Snapshots prepared ahead of the expiries of ``_upcoming_base`` (each the one
        #: before at its ``valid_until``), and how many expiries a request had to apply.
        self._upcoming: list[Snapshot] = []
        self._upcoming_base: Snapshot | None = None
        self.expiries_in_request = 0

    # What requests call -------------------------------------------------------

    def current(self) -> Snapshot:
        """The snapshot to decide with. No database access once one has loaded."""
        snapshot = self._snapshot
        if not snapshot.loaded:
            snapshot = self._first_load()
        elif self.background:
            if not self._thread_running:
                snapshot = self._start_in_this_process()
        elif time.monotonic() - self._last_check >= self.interval:
            self.check()
            self.tick()
            snapshot = self._snapshot
        if time.time() >= snapshot.valid_until:
            snapshot = self._expire(snapshot)
        return snapshot

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot in force now, without starting or loading anything."""
        return self._snapshot

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called (the process is shutting down)."""
        return self._stop.is_set()

    @property
    def installed_at(self) -> float | None:
        """When (epoch seconds) the snapshot in force was installed; None before any."""
        return self._installed_wall

    @property
    def checked_at(self) -> float | None:
        """When (epoch seconds) the revision was last read successfully; None before."""
        return self._checked_wall

    @property
    def listening(self) -> bool | None:
        """Whether this process's change notifications (LISTEN) are up: None when it has
        no change waiter (another database, notifications off, or no thread yet)."""
        if not self._waiting:
            return None
        return not self._listen_failing

    # Loading ------------------------------------------------------------------

    def reload(self) -> Snapshot:
        """Load now (after a change made in this process). Keeps the old one on failure."""
        try:
            snapshot = self._timed_load()
        except Exception as exc:  # a database problem must never break a request
            self._report_failure(exc)
            return self._snapshot
        self._install(snapshot)
        return snapshot

    def load_at_start(self) -> bool:
        """Load and install a snapshot now, before any request (``init_app``); raises
        if it cannot load. True when one is in force."""
        self._install(self._timed_load())
        self._last_check = time.monotonic()  # a load is a check too (read at the fork)
        return self._snapshot.loaded

    def check(self) -> bool:
        """Reload if the revision moved. True when a new snapshot was installed."""
        try:
            return self._check()
        finally:
            self.checks += 1

    def _check(self) -> bool:
        self._last_check = time.monotonic()
        try:
            revision = self._read_revision()
            if revision == self._snapshot.revision and self._snapshot.loaded:
                self._report_success()
                return False
            snapshot = self._timed_load()
        except Exception as exc:
            self._report_failure(exc)
            return False
        self._install(snapshot)
        return True

    def _timed_load(self) -> Snapshot:
        self._load_started = time.perf_counter()
        return self._load()

    def _start_in_this_process(self) -> Snapshot:
        """The first request of this process (a forked worker) that holds a snapshot:
        one inherited from the parent (a preloading gunicorn master, which serves no
        request and so never refreshes) is checked now, before it answers, when its
        last check is older than the interval: else a worker forked long after boot
        (after a crash, or gunicorn's ``max_requests``) would answer its first
        requests with the policy of boot time. Once per process, not in steady state;
        the check reads what changed since, not every rule. Then the poller starts."""
        if self._check_at_start and time.monotonic() - self._last_check >= self.interval:
            with self._load_lock:
                if self._check_at_start:
                    self._check_at_start = False
                    self.check()
        self._start_thread()
        return self._snapshot

    def _first_load(self) -> Snapshot:
        with self._load_lock:
            if not self._snapshot.loaded and time.monotonic() - self._last_check >= min(
                self.interval, 1.0
            ):
                self.check()
        if self.background and not self._thread_running:
            self._start_thread()
        return self._snapshot

    def _install(self, snapshot: Snapshot) -> None:
        with self._lock:
            current = self._snapshot
            # Never go back: a slower load of an older revision loses to a newer one.
            if current.loaded and snapshot.revision < current.revision:
                return
            self._snapshot = snapshot
            self._installed_wall = time.time()
            self.loads += 1
        freeze_long_lived(snapshot)
        self._report_success()
        send_safely(
            snapshot_loaded,
            self.sender,
            revision=snapshot.revision,
            previous_revision=current.revision if current.loaded else -1,
            duration=time.perf_counter() - self._load_started,
            policies=len(snapshot),
            committed_at=snapshot.committed_at,
        )

    def _expire(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot after ``snapshot``'s expiry: the one the poller thread prepared
        (:meth:`prepare_expiries`), swapped in; compiled here only when none is ready
        (no poller thread, or it could not keep up)."""
        with self._lock:
            if self._snapshot is snapshot:
                ready = self._next_ready(snapshot, time.time())
                if ready is None:
                    self.expiries_in_request += 1
                    ready = snapshot.recompiled()
                self._snapshot = ready
            return self._snapshot

    def _next_ready(self, snapshot: Snapshot, now: float) -> Snapshot | None:
        """The prepared snapshot in force at ``now`` after ``snapshot``, or None."""
        if self._upcoming_base is not snapshot:
            return None
        current = snapshot
        while self._upcoming and now >= current.valid_until:
            current = self._upcoming.pop(0)
        self._upcoming_base = current
        return current if current is not snapshot and now < current.valid_until else None

    def prepare_expiries(self) -> int:
        """Prepare the snapshots that follow the expiries due within one interval plus
        :data:`EXPIRY_LEAD` (the poller thread calls it). How many were prepared."""
        horizon = time.time() + self.interval + EXPIRY_LEAD
        with self._lock:
            base = self._snapshot
            chain = list(self._upcoming) if self._upcoming_base is base else []
        if not base.loaded:
            return 0
        prepared = 0
        last = chain[-1] if chain else base
        while last.valid_until <= horizon and len(chain) < MAX_PREPARED_EXPIRIES:
            last = after_expiry(last)
            chain.append(last)
            prepared += 1
        if prepared:
            with self._lock:
                if self._snapshot is not base:
                    return 0  # a newer snapshot came in meanwhile: prepared again next time
                self._upcoming_base, self._upcoming = base, chain
            freeze_long_lived(last)
        return prepared

    # The poller thread ---------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread_running or self._stop.is_set():
                self._thread_running = True  # started already, or stopped for good
                return
            self._thread_running = True
            self._thread = threading.Thread(
                target=self._run, name=f"{self.name}-refresh", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        waiter = None
        if self._change_waiter is not None:
            try:
                waiter = self._change_waiter()
            except Exception:
                log.warning("corsadmin cannot listen for changes; polling only", exc_info=True)
                self._listen_failing = True
        self._waiting = self._change_waiter is not None and (
            waiter is not None or self._listen_failing
        )
        interval = self.interval or 0.05
        if self._check_at_start:
            self._check_at_start = False
            self.check()
        self.prepare_expiries()
        try:
            while True:
                notified: bool | None = False
                if waiter is None:
                    if self._stop.wait(interval):
                        break
                else:
                    notified = self._wait_for_change(waiter, interval)
                    if notified is None and self._stop.wait(interval):
                        break  # notifications are down: plain polling meanwhile
                    if notified:  # check now, but not more often than every MIN_GAP
                        gap = MIN_GAP - (time.monotonic() - self._last_check)
                        if gap > 0 and self._stop.wait(gap):
                            break
                    if self._stop.is_set():
                        break
                self.check()
                if notified:
                    self.notifications += 1
                self.prepare_expiries()
                self.tick()
        finally:
            self._waiting = False
            if waiter is not None:
                waiter.close()

    def _wait_for_change(self, waiter: ChangeWaiter, interval: float) -> bool | None:
        """True when notified, False after ``interval`` without news, None on failure."""
        try:
            notified = waiter.wait(interval)
        except Exception as exc:
            if not self._listen_failing:
                self._listen_failing = True
                log.warning(
                    "corsadmin lost its change notifications (%s); polling every %.1fs "
                    "until they are back",
                    type(exc).__name__,
                    interval,
                )
            return None
        if self._listen_failing:
            self._listen_failing = False
            log.warning("corsadmin receives change notifications again")
        return notified

    def in_refresh_thread(self) -> bool:
        """Is the caller this holder's refresh thread (not a request, not the CLI)?"""
        return self._thread is not None and threading.current_thread() is self._thread

    def tick(self) -> None:
        """Run the periodic side job (writing usage counts); never raises. A failure is
        logged once, until a run that was due succeeds (a run returning False had
        nothing due: it tells nothing of the database)."""
        if self._on_tick is None:
            return
        try:
            done = self._on_tick()
        except Exception as exc:
            if not self._tick_failing:  # once, like the load failures, not every interval
                self._tick_failing = True
                log.warning(
                    "corsadmin could not write usage counts (%s); keeping them and retrying",
                    type(exc).__name__,
                )
        else:
            if done is not False:
                self._tick_failing = False

    def stop(self) -> None:
        """Stop the poller thread (tests, shutdown), then run the side job a last time,
        then the ``on_stop`` job (the fleet row's removal); neither raises."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.tick()
        if self._on_stop is not None:
            try:
                self._on_stop()
            except Exception as exc:
                log.warning("corsadmin failed while stopping (%s)", type(exc).__name__)

    # Logging once ---------------------------------------------------------------

    def _report_failure(self, exc: Exception) -> None:
        enforced = self._snapshot
        revision = enforced.revision if enforced.loaded else -1
        send_safely(snapshot_load_failed, self.sender, error=exc, revision=revision)
        if not self._failing:
            self._failing = True
            kept = (
                f"keeping revision {self._snapshot.revision}"
                if self._snapshot.loaded
                else "allowing no cross-origin access until a policy loads"
            )
            log.error(
                "corsadmin could not load the CORS policy from the database (%s: %s); %s "
                "and retrying every %.1fs",
                type(exc).__name__,
                str(exc).splitlines()[0][:300] if str(exc) else "",
                kept,
                self.interval,
            )

    def _report_success(self) -> None:
        self._checked_wall = time.time()
        if self._failing:
            self._failing = False
            log.warning(
                "corsadmin reached the database again; enforcing revision %d",
                self._snapshot.revision,
            )
