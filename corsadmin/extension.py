"""The Flask extension: configuration, the request hooks, the bridge to the store."""

from __future__ import annotations

import getpass
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from flask_sqlalchemy import SQLAlchemy

from .explain import evaluate
from .headers import CORS_RESPONSE_HEADERS
from .models import Base, State
from .refresh import SnapshotHolder
from .snapshot import CorsRequest, Snapshot
from .store import PolicyStore, RuleCache, load_snapshot, read_revision
from .usage import UsageRecorder

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

log = logging.getLogger("corsadmin")

EXTENSION_KEY = "corsadmin"

#: Every configuration key, with its default. Listed in the README too.
DEFAULT_CONFIG: dict[str, Any] = {
    # Seconds between two revision checks of one process.
    "CORSADMIN_REFRESH_INTERVAL": 1.0,
    # Poll in a background thread (True) or from the request that finds the interval
    # elapsed (False; for servers without threads).
    "CORSADMIN_REFRESH_IN_BACKGROUND": True,
    # Where the admin UI lives; its routes never get CORS headers.
    "CORSADMIN_URL_PREFIX": "/corsadmin",
    # Register the admin UI blueprint.
    "CORSADMIN_ADMIN_ENABLED": True,
    # Answer preflights of covered paths before routing (no 404/405/redirect).
    "CORSADMIN_ANSWER_PREFLIGHTS": True,
    # The actor recorded for CLI changes when --actor is not given ({user} is the login name).
    "CORSADMIN_CLI_ACTOR": "cli:{user}",
    # Count which origins call which policies (for "last seen" and refused origins).
    "CORSADMIN_TRACK_USAGE": True,
    # Seconds between two writes of one process's usage counts.
    "CORSADMIN_USAGE_FLUSH_INTERVAL": 10.0,
}


class CorsAdminNotInitialized(RuntimeError):
    """``CorsAdmin.init_app`` was never called for the current application."""


@dataclass
class _State:
    """What corsadmin keeps per application: ``app.extensions["corsadmin"]``."""

    extension: CorsAdmin
    app: Flask
    db: SQLAlchemy
    holder: SnapshotHolder
    admin_prefix: str
    answer_preflights: bool
    rule_cache: RuleCache
    usage: UsageRecorder | None
    usage_flush_interval: float
    last_usage_flush: float = 0.0
    hook_failed: bool = False

    def flush_usage(self, force: bool = False) -> int:
        """Write the usage counts if the flush interval passed (or ``force``)."""
        if self.usage is None or not len(self.usage):
            return 0
        now = time.monotonic()
        if not force and now - self.last_usage_flush < self.usage_flush_interval:
            return 0
        self.last_usage_flush = now
        return self.usage.flush(self.engine())

    def engine(self) -> sa.Engine:
        with self.app.app_context():
            return self.db.engine

    def report_hook_failure(self, what: str) -> None:
        """Log a failure inside the hooks once per application, not per request."""
        if not self.hook_failed:
            self.hook_failed = True
            log.exception("corsadmin failed while %s; sending no CORS headers (logged once)", what)


class CorsAdmin:
    """CORS policy as data for a Flask application.

    ``CorsAdmin(app)`` or, in an app factory, ``cors = CorsAdmin()`` then
    ``cors.init_app(app)``. Pass the application's Flask-SQLAlchemy object as
    ``db`` to keep corsadmin's tables in its database; without it corsadmin
    uses the ``SQLAlchemy`` already registered on the app, or registers its own
    (``SQLALCHEMY_DATABASE_URI`` then defaults to SQLite in the instance folder).

    Configuration (``app.config``), with defaults:

    - ``CORSADMIN_REFRESH_INTERVAL`` (1.0): seconds between two revision checks
      of one process; a change from another process is enforced within it.
    - ``CORSADMIN_REFRESH_IN_BACKGROUND`` (True): check in a daemon thread per
      process; False checks from a request once the interval has passed.
    - ``CORSADMIN_URL_PREFIX`` ("/corsadmin"): the admin UI's prefix; its routes
      never get CORS headers.
    - ``CORSADMIN_ANSWER_PREFLIGHTS`` (True): answer a preflight of a covered
      path with 204 before routing, whatever the router would have done.
    - ``CORSADMIN_CLI_ACTOR`` ("cli:{user}"): who the audit log names for CLI
      changes without ``--actor``.
    - ``CORSADMIN_TRACK_USAGE`` (True): count which origins call which policies,
      allowed or refused, in memory.
    - ``CORSADMIN_USAGE_FLUSH_INTERVAL`` (10.0): seconds between two writes of
      one process's counts (added up in the database across processes).
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        self.db = db
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register corsadmin on ``app``: hooks, CLI, configuration defaults."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "corsadmin is already registered on this application; "
                "create one CorsAdmin and call init_app once per app"
            )
        for key, value in DEFAULT_CONFIG.items():
            app.config.setdefault(key, value)

        db = self.db
        if db is None:
            db = app.extensions.get("sqlalchemy")
        if db is None:
            app.config.setdefault("SQLALCHEMY_DATABASE_URI", "sqlite:///corsadmin.sqlite")
            db = SQLAlchemy()
            db.init_app(app)

        holder = SnapshotHolder(
            load=lambda: self._load(app),
            read_revision=lambda: self._read_revision(app),
            interval=float(app.config["CORSADMIN_REFRESH_INTERVAL"]),
            background=bool(app.config["CORSADMIN_REFRESH_IN_BACKGROUND"]),
            name=f"corsadmin-{app.name}",
            on_tick=lambda: self.state(app).flush_usage(),
        )
        prefix = "/" + str(app.config["CORSADMIN_URL_PREFIX"]).strip("/")
        state = _State(
            extension=self,
            app=app,
            db=db,
            holder=holder,
            admin_prefix=prefix,
            answer_preflights=bool(app.config["CORSADMIN_ANSWER_PREFLIGHTS"]),
            rule_cache=RuleCache(),
            usage=UsageRecorder() if app.config["CORSADMIN_TRACK_USAGE"] else None,
            usage_flush_interval=float(app.config["CORSADMIN_USAGE_FLUSH_INTERVAL"]),
        )
        app.extensions[EXTENSION_KEY] = state

        # First among the before_request functions: a preflight must be answered
        # before an authentication hook can refuse it (preflights carry no credentials).
        app.before_request_funcs.setdefault(None, []).insert(0, _answer_preflight)
        app.after_request(_add_cors_headers)

        from .admin import register_admin
        from .cli import corsadmin_cli

        app.cli.add_command(corsadmin_cli)
        if app.config["CORSADMIN_ADMIN_ENABLED"]:
            register_admin(app, self)

    # Reaching the per-app state ----------------------------------------------------

    @staticmethod
    def state(app: Flask | None = None) -> _State:
        app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            state = app.extensions[EXTENSION_KEY]
        except KeyError:
            raise CorsAdminNotInitialized(
                "corsadmin is not registered on this application: call CorsAdmin(app) "
                "or CorsAdmin().init_app(app) first"
            ) from None
        assert isinstance(state, _State)
        return state

    # Public helpers ----------------------------------------------------------------

    def store(self, actor: str, app: Flask | None = None) -> PolicyStore:
        """The policy store for changes by ``actor``, in the app's session.

        Each change commits on its own and is enforced by this process at once.
        """
        state = self.state(app)
        return PolicyStore(state.db.session, actor=actor, on_commit=state.holder.reload)

    def snapshot(self, app: Flask | None = None) -> Snapshot:
        """The snapshot this process enforces now (loading one if none has loaded)."""
        return self.state(app).holder.current()

    def create_schema(self, app: Flask | None = None) -> None:
        """Create corsadmin's tables directly (tests, prototypes); prefer the migrations."""
        state = self.state(app)
        Base.metadata.create_all(state.db.engine)
        ensure_state_row(state.db.engine)

    def upgrade_schema(self, app: Flask | None = None, revision: str = "head") -> None:
        """Apply corsadmin's migrations (its own Alembic version table)."""
        from .schema import upgrade

        upgrade(self.state(app).db.engine, revision)

    def stop(self, app: Flask | None = None) -> None:
        """Stop this app's refresh thread."""
        self.state(app).holder.stop()

    def default_actor(self) -> str:
        template = str(current_app.config["CORSADMIN_CLI_ACTOR"])
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
        return template.format(user=user)

    def _load(self, app: Flask) -> Snapshot:
        state = self.state(app)
        return load_snapshot(state.engine(), state.rule_cache)

    def _read_revision(self, app: Flask) -> int:
        with self.state(app).engine().connect() as connection:
            return read_revision(connection)


def ensure_state_row(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if connection.execute(sa.select(State.id).where(State.id == 1)).first() is None:
            connection.execute(sa.insert(State).values(id=1, revision=0))


# The request hooks ---------------------------------------------------------------------


def _cors_request(path: str) -> CorsRequest:
    """Read what CORS needs straight from the WSGI environ (the hot path)."""
    environ = request.environ
    return CorsRequest(
        path,
        request.method,
        environ.get("HTTP_ORIGIN"),
        environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
        environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"),
        environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true",
    )


def _is_admin_path(state: _State, path: str) -> bool:
    prefix = state.admin_prefix
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def _answer_preflight() -> Response | None:
    """Answer a preflight of a covered path before routing can 404, 405 or redirect it."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if "Origin" not in request.headers:
        return None
    state = CorsAdmin.state()
    try:
        if not state.answer_preflights or _is_admin_path(state, request.path):
            return None
        if state.holder.current().policy_for(request.path) is None:
            return None
    except Exception:
        state.report_hook_failure("checking a preflight")
        return None
    return Response(status=204)


def _add_cors_headers(response: BaseResponse) -> BaseResponse:
    """Write the CORS headers of the covered paths (computed by Flask-CORS, memoized)."""
    state: _State = current_app.extensions[EXTENSION_KEY]
    try:
        path = request.path
        if _is_admin_path(state, path):
            return response
        cors_request = _cors_request(path)
        evaluation = evaluate(state.holder.current(), cors_request)
        decision = evaluation.decision
        if decision.policy is None:
            return response
        if state.usage is not None and cors_request.origin is not None:
            state.usage.record(
                decision.policy.name,
                cors_request.origin,
                decision.rule.text if decision.rule is not None else None,
                decision.allowed,
            )
        headers = response.headers
        if any(name[:15].lower() == "access-control-" for name, _ in headers.items()):
            for name in CORS_RESPONSE_HEADERS:
                headers.pop(name, None)
        for name, value in evaluation.headers:
            headers.add(name, value)
        if decision.vary_origin:
            _vary_on_origin(response)
    except Exception:
        # Never a 500 because of CORS: the response goes out without CORS headers.
        state.report_hook_failure("computing CORS headers")
    return response


def _vary_on_origin(response: BaseResponse) -> None:
    """Add ``Origin`` to ``Vary``, keeping what is there (no parsing in the common case)."""
    current = response.headers.get("Vary")
    if not current:
        response.headers["Vary"] = "Origin"
    elif "origin" not in {part.strip().lower() for part in current.split(",")}:
        response.vary.add("Origin")
