"""The Flask extension: ``CorsAdmin(app)`` or ``CorsAdmin().init_app(app)``.

``init_app`` checks the configuration (:mod:`corsadmin.config`), builds the
per-app state (:mod:`corsadmin.state`), installs the request hook
(:mod:`corsadmin.runtime.hook`), the CLI and the admin UI. Everything else lives
in the layers below; see docs/architecture.md.
"""

from __future__ import annotations

import logging

import click
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from . import admin, api
from .cli import corsadmin_cli
from .config import DEFAULT_CONFIG, CorsAdminConfig
from .db import schema
from .db.loader import RuleCache
from .db.models import Base, State, ensure_state_row
from .db.store import PolicyStore
from .engine.snapshot import Snapshot
from .runtime import hook
from .runtime.alerts import alert_runner
from .runtime.metrics import start_metrics
from .runtime.refresh import SnapshotHolder
from .runtime.usage import UsageRecorder
from .signals import Receivers, decision_made
from .state import EXTENSION_KEY, CorsAdminNotInitialized, CorsAdminState, state

__all__ = [
    "DEFAULT_CONFIG",
    "EXTENSION_KEY",
    "CorsAdmin",
    "CorsAdminNotInitialized",
    "ensure_state_row",
]

log = logging.getLogger("corsadmin")


class CorsAdmin:
    """CORS policy as data for a Flask application.

    ``CorsAdmin(app)`` or, in an app factory, ``cors = CorsAdmin()`` then
    ``cors.init_app(app)``. Pass the application's Flask-SQLAlchemy object as
    ``db`` to keep corsadmin's tables in its database; without it corsadmin
    uses the ``SQLAlchemy`` already registered on the app, or registers its own
    (``SQLALCHEMY_DATABASE_URI`` then defaults to SQLite in the instance folder).

    Configuration (``app.config``) is described in :mod:`corsadmin.config`, the one
    place every ``CORSADMIN_*`` key, its default and its meaning are listed.
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        self.db = db
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register corsadmin on ``app``: configuration, state, hooks, CLI, admin UI and
        its HTTP API."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "corsadmin is already registered on this application; "
                "create one CorsAdmin and call init_app once per app"
            )
        for key, value in DEFAULT_CONFIG.items():
            app.config.setdefault(key, value)
        config = CorsAdminConfig.from_mapping(app.config)  # a bad value stops here
        app_state = self._build_state(app, config, self._database(app))
        app.extensions[EXTENSION_KEY] = app_state
        hook.install(app, app_state)
        app.cli.add_command(corsadmin_cli)
        if config.admin_enabled:
            app_state.secure_admin_response = admin.register_admin(app, app_state)
            api.register_api(app, app_state)
        if click.get_current_context(silent=True) is None:  # a server, not a CLI command
            load_at_start(app_state)

    def _database(self, app: Flask) -> SQLAlchemy:
        """The SQLAlchemy given, or the app's, or one of corsadmin's own."""
        db = self.db or app.extensions.get("sqlalchemy")
        if db is None:
            app.config.setdefault("SQLALCHEMY_DATABASE_URI", "sqlite:///corsadmin.sqlite")
            db = SQLAlchemy()
            db.init_app(app)
        assert isinstance(db, SQLAlchemy)
        return db

    def _build_state(self, app: Flask, config: CorsAdminConfig, db: SQLAlchemy) -> CorsAdminState:
        holder = SnapshotHolder(
            load=lambda: state(app).load(),
            read_revision=lambda: state(app).read_revision(),
            interval=config.refresh_interval,
            background=config.refresh_in_background,
            name=f"corsadmin-{app.name}",
            sender=app,
            on_tick=lambda: state(app).tick(),
            on_stop=lambda: state(app).stopped(),
            change_waiter=lambda: state(app).change_waiter(),
        )
        # Before the first load (load_at_start), so the metrics see it.
        metrics = start_metrics(app) if config.metrics else None
        usage = None
        if config.track_usage:  # usage counting is a subscriber of this app's decisions
            usage = UsageRecorder(retention_days=config.usage_retention_days)
            decision_made.connect(usage.on_decision, app, weak=False)
        return CorsAdminState(
            extension=self,
            app=app,
            db=db,
            config=config,
            holder=holder,
            admin_prefix=config.admin_prefix,
            answer_preflights=config.answer_preflights,
            rule_cache=RuleCache(),
            usage=usage,
            usage_flush_interval=config.usage_flush_interval,
            decisions=Receivers(decision_made, app),
            metrics=metrics,
            alerts=alert_runner(config),
        )

    # Reaching the per-app state ----------------------------------------------------

    @staticmethod
    def state(app: Flask | None = None) -> CorsAdminState:
        """Same as :func:`corsadmin.state.state`."""
        return state(app)

    # Public helpers ----------------------------------------------------------------

    def store(self, actor: str, app: Flask | None = None) -> PolicyStore:
        """The policy store for changes by ``actor``, in the app's session.

        Each change commits on its own and is enforced by this process at once.
        """
        return state(app).store(actor)

    def snapshot(self, app: Flask | None = None) -> Snapshot:
        """The snapshot this process enforces now (loading one if none has loaded)."""
        return state(app).holder.current()

    def create_schema(self, app: Flask | None = None) -> None:
        """Create corsadmin's tables directly (tests, prototypes); prefer the migrations."""
        app_state = state(app)
        Base.metadata.create_all(app_state.db.engine)
        ensure_state_row(app_state.db.engine)

    def upgrade_schema(self, app: Flask | None = None, revision: str = "head") -> None:
        """Apply corsadmin's migrations (its own Alembic version table)."""
        schema.upgrade(state(app).db.engine, revision)

    def stop(self, app: Flask | None = None) -> None:
        """Stop this app's refresh thread."""
        state(app).holder.stop()

    def default_actor(self) -> str:
        """Who the audit log names for CLI changes without ``--actor`` (current app)."""
        return state().default_actor()


def load_at_start(app_state: CorsAdminState) -> bool:
    """Load the snapshot before the first request is served, when corsadmin's tables
    exist; True if one was installed.

    Called at the end of ``init_app``, except inside a CLI command (``flask db
    upgrade``, ``flask corsadmin ...`` need no snapshot, and must not pay for one):
    a gunicorn worker that imports the app, or a master that preloads it and forks
    its workers (they inherit the snapshot), then answers its first request from
    memory instead of loading inside it. A database that cannot be reached, or
    holds no corsadmin schema (yet), or an older one, never fails ``init_app``: the
    first request loads, as before. The connections used are closed, so that no
    forked worker inherits one.
    """
    try:
        engine = app_state.engine()
    except Exception as exc:
        _not_loaded_at_start(exc)
        return False
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(State.__tablename__):
                return False
        return app_state.holder.load_at_start()
    except Exception as exc:
        _not_loaded_at_start(exc)
        return False
    finally:
        if not isinstance(engine.pool, StaticPool | SingletonThreadPool):
            engine.dispose()  # (an in-memory SQLite database lives in its one connection)


def _not_loaded_at_start(exc: Exception) -> None:
    log.info(
        "corsadmin did not load the CORS policy at start (%s: %s); the first request will",
        type(exc).__name__,
        str(exc).splitlines()[0][:200] if str(exc) else "",
    )
