"""What corsadmin keeps per application, and the one way to reach it: :func:`state`.

``CorsAdmin.init_app`` builds a :class:`CorsAdminState` and keeps it in
``app.extensions["corsadmin"]``. The admin UI, the CLI and the request hook
reach it through :func:`state`, never through :mod:`corsadmin.extension`, so
the layers below the extension never import it.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from werkzeug.wrappers import Response as BaseResponse

from .config import CorsAdminConfig
from .db.drafts import read_draft
from .db.loader import RuleCache, load_snapshot, read_revision
from .db.store import PolicyStore
from .engine.snapshot import Snapshot
from .runtime.alerts import AlertRunner
from .runtime.fleet import FleetReporter, FleetView, read_fleet
from .runtime.metrics import MetricsRecorder
from .runtime.notify import RevisionListener, bound_refresh_connections
from .runtime.notify import supported as notify_supported
from .runtime.refresh import SnapshotHolder
from .runtime.trial import TrialRecorder
from .runtime.usage import UsageRecorder
from .signals import Receivers

log = logging.getLogger("corsadmin")

#: The ``app.extensions`` key of corsadmin's per-app state.
EXTENSION_KEY = "corsadmin"


class CorsAdminNotInitialized(RuntimeError):
    """``CorsAdmin.init_app`` was never called for the current application."""


@dataclass
class CorsAdminState:
    """What corsadmin keeps per application: ``app.extensions["corsadmin"]``."""

    #: The ``CorsAdmin`` that registered the app (typed ``object``: this layer sits below it).
    extension: object
    app: Flask
    db: SQLAlchemy
    config: CorsAdminConfig
    holder: SnapshotHolder
    admin_prefix: str
    answer_preflights: bool
    rule_cache: RuleCache
    usage: UsageRecorder | None
    usage_flush_interval: float
    #: The receivers of ``decision_made`` for this app (the hook sends through it).
    decisions: Receivers
    #: What the active draft would answer otherwise (flushed with the usage counts).
    trial_recorder: TrialRecorder = field(default_factory=TrialRecorder)
    last_usage_flush: float = field(default_factory=time.monotonic)  # first write: an interval on
    hook_failed: bool = False
    #: Applied to every response under the admin prefix (the admin UI's security headers).
    secure_admin_response: Callable[[BaseResponse], object] | None = None
    #: This app's Prometheus metrics (``CORSADMIN_METRICS``), or None when off.
    metrics: MetricsRecorder | None = None
    #: Scans and delivers alerts (posts only with ``CORSADMIN_ALERT_WEBHOOK_URL``).
    alerts: AlertRunner | None = None
    #: This process's reports to the fleet view (``CORSADMIN_FLEET_REPORT``).
    fleet: FleetReporter = field(init=False)

    def __post_init__(self) -> None:
        self.fleet = FleetReporter(
            self.holder,
            self.engine,
            heartbeat=self.config.fleet_heartbeat,
            enabled=self.config.fleet_report,
        )

    def tick(self) -> bool:
        """The refresh thread's periodic step: write the usage counts, report to the fleet
        view, then (in the refresh thread only, never on a request) scan and deliver
        alerts, at most once per ``CORSADMIN_ALERT_INTERVAL``. Each step's failure is its
        own: the fleet and alert steps never raise (they log once); a usage failure is
        raised after them (the holder logs it once). Returns whether the usage counts
        were due (a tick with nothing due says nothing of the database)."""
        failure: Exception | None = None
        before = self.last_usage_flush
        try:
            self.flush_usage()
        except Exception as error:
            failure = error
        self.fleet.step()
        if self.alerts is not None and self.holder.in_refresh_thread():
            self.alerts.tick(self.engine)  # never raises (logged once)
        if failure is not None:
            raise failure
        return self.last_usage_flush != before

    def stopped(self) -> None:
        """After the refresh thread stopped (a clean shutdown): leave the fleet view."""
        self.fleet.remove()

    def fleet_view(self, fallback: bool = True) -> FleetView:
        """Every live process with its status, and the current revision's summary (this
        process alone, from memory, when the database cannot be read, unless not
        ``fallback``: then the error is raised)."""
        return read_fleet(self.engine(), self.fleet, self.config.fleet_heartbeat, fallback=fallback)

    def flush_usage(self, force: bool = False) -> int:
        """Write the usage counts and the draft's traffic counts if the flush interval
        passed (or ``force``); returns the rows written. The draft's counts are written
        with usage tracking off too. One failing does not keep the other from being
        written (the first error is raised after)."""
        recorders = [r for r in (self.usage, self.trial_recorder) if r is not None and len(r)]
        if not recorders:
            return 0
        now = time.monotonic()
        if not force and now - self.last_usage_flush < self.usage_flush_interval:
            return 0
        self.last_usage_flush = now
        engine = self.engine()
        written = 0
        failure: Exception | None = None
        for recorder in recorders:
            try:
                written += recorder.flush(engine)
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return written

    def change_waiter(self) -> RevisionListener | None:
        """A PostgreSQL LISTEN connection for this process's refresh thread, if possible."""
        if not self.config.listen:
            return None
        engine = self.engine()
        bound_refresh_connections(engine, self.holder.in_refresh_thread)
        return RevisionListener(engine) if notify_supported(engine) else None

    def engine(self) -> sa.Engine:
        with self.app.app_context():
            return self.db.engine

    def load(self) -> Snapshot:
        """A snapshot from the database, taking over the current one's unchanged policies."""
        return load_snapshot(
            self.engine(), self.rule_cache, previous=self.holder.snapshot, read_draft=read_draft
        )

    def read_revision(self) -> int:
        engine = self.engine()
        # The refresh thread's connections never hang on a network that stopped answering.
        bound_refresh_connections(engine, self.holder.in_refresh_thread)
        with engine.connect() as connection:
            return read_revision(connection)

    def store(self, actor: str) -> PolicyStore:
        """The policy store for changes by ``actor``, in the app's session; each change
        commits on its own and is enforced by this process at once."""
        return PolicyStore(
            self.db.session, actor=actor, on_commit=self.after_change, sender=self.app
        )

    def after_change(self) -> None:
        """After a change committed here: bring this process's snapshot up to date at
        once (an incremental reload, or the first load). Inside a CLI command holding
        no snapshot (``init_app`` loads none there) nothing is loaded: the command
        does not enforce anything, so ``corsadmin origin add`` never waits for a whole
        load; whatever needs the snapshot later loads it then."""
        in_cli = click.get_current_context(silent=True) is not None
        if self.holder.snapshot.loaded or not in_cli:
            self.holder.reload()

    def default_actor(self) -> str:
        """Who the audit log names for CLI changes without ``--actor``."""
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
        return self.config.cli_actor.format(user=user)

    def report_hook_failure(self, what: str) -> None:
        """Log a failure inside the hooks once per application, not per request."""
        if not self.hook_failed:
            self.hook_failed = True
            log.exception("corsadmin failed while %s; sending no CORS headers (logged once)", what)


def state(app: Flask | None = None) -> CorsAdminState:
    """corsadmin's state for ``app`` (default: the current app); raises
    :class:`CorsAdminNotInitialized` when ``init_app`` was never called for it."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        found = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise CorsAdminNotInitialized(
            "corsadmin is not registered on this application: call CorsAdmin(app) "
            "or CorsAdmin().init_app(app) first"
        ) from None
    assert isinstance(found, CorsAdminState)
    return found
