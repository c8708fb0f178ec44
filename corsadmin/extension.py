"""The Flask extension: configuration, the request hooks, the bridge to the store."""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app, request
from flask_sqlalchemy import SQLAlchemy

from .admin.settings import ADMIN_DEFAULTS
from .engine.explain import Evaluation, evaluate_policy, memo_key
from .engine.headers import CORS_RESPONSE_HEADERS, HeaderPairs
from .db.models import Base, State
from .runtime.notify import RevisionListener
from .runtime.notify import supported as notify_supported
from .runtime.refresh import SnapshotHolder
from .engine.snapshot import CorsRequest, Snapshot
from .db.store import PolicyStore, RuleCache, load_snapshot, read_revision
from .runtime.usage import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS, UsageRecorder

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
    # On PostgreSQL, wake every worker through LISTEN/NOTIFY as soon as a change commits
    # (the interval's polling stays underneath).
    "CORSADMIN_LISTEN": True,
    # Register the admin UI blueprint.
    "CORSADMIN_ADMIN_ENABLED": True,
    # Answer preflights of covered paths with 204, even where the router (404, 405, a
    # redirect) or an authentication hook would have refused them.
    "CORSADMIN_ANSWER_PREFLIGHTS": True,
    # The actor recorded for CLI changes when --actor is not given ({user} is the login name).
    "CORSADMIN_CLI_ACTOR": "cli:{user}",
    # Count which origins call which policies (for "last seen" and refused origins).
    "CORSADMIN_TRACK_USAGE": True,
    # Seconds between two writes of one process's usage counts.
    "CORSADMIN_USAGE_FLUSH_INTERVAL": 10.0,
    # Days a usage row (an origin's counts on a policy) is kept after it was last seen;
    # older rows are deleted at a flush. Rules keep their own "last seen".
    "CORSADMIN_USAGE_RETENTION_DAYS": DEFAULT_RETENTION_DAYS,
    # The admin UI's keys: who may enter, the login page, the review thresholds
    # (corsadmin/admin/settings.py explains each).
    **ADMIN_DEFAULTS,
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
    last_usage_flush: float = field(default_factory=time.monotonic)  # first write: an interval on
    hook_failed: bool = False
    #: Applied to every response under the admin prefix (the admin UI's security headers).
    secure_admin_response: Callable[[BaseResponse], object] | None = None

    def flush_usage(self, force: bool = False) -> int:
        """Write the usage counts if the flush interval passed (or ``force``)."""
        if self.usage is None or not len(self.usage):
            return 0
        now = time.monotonic()
        if not force and now - self.last_usage_flush < self.usage_flush_interval:
            return 0
        self.last_usage_flush = now
        return self.usage.flush(self.engine())

    def change_waiter(self) -> RevisionListener | None:
        """A PostgreSQL LISTEN connection for this process's refresh thread, if possible."""
        if not self.app.config["CORSADMIN_LISTEN"]:
            return None
        engine = self.engine()
        return RevisionListener(engine) if notify_supported(engine) else None

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
      path with 204, whatever the router (404, 405, a redirect) or an
      authentication hook would have done.
    - ``CORSADMIN_CLI_ACTOR`` ("cli:{user}"): who the audit log names for CLI
      changes without ``--actor``.
    - ``CORSADMIN_LISTEN`` (True): on PostgreSQL, each process also LISTENs for
      the NOTIFY every change sends, and reloads at once instead of at the
      next poll.
    - ``CORSADMIN_TRACK_USAGE`` (True): count which origins call which policies,
      allowed or refused, in memory.
    - ``CORSADMIN_USAGE_FLUSH_INTERVAL`` (10.0): seconds between two writes of
      one process's counts (added up in the database across processes).
    - ``CORSADMIN_USAGE_RETENTION_DAYS`` (90): days a usage row is kept after it
      was last seen.
    - ``CORSADMIN_ADMIN_ENABLED`` (True): register the admin UI blueprint.
    - ``CORSADMIN_OPERATOR_LOADER`` (None): who may use the admin UI, a callable
      (or ``"module:function"``) returning the operator's name or None; with
      neither it nor ``CORSADMIN_BUILTIN_LOGIN`` the admin UI is closed (403).
    - ``CORSADMIN_BUILTIN_LOGIN`` (False): corsadmin's own operators and login.
    - ``CORSADMIN_LOGIN_URL`` (None): where a logged-out visitor is sent.
    - ``CORSADMIN_STALE_AFTER_DAYS`` (30), ``CORSADMIN_EXPIRING_WITHIN_DAYS`` (14):
      the review screen's thresholds.
    - ``CORSADMIN_LOGIN_ATTEMPTS`` (5), ``CORSADMIN_LOGIN_WINDOW`` (900): the
      built-in login's throttle of failed attempts.
    - ``CORSADMIN_SESSION_IDLE_MINUTES`` (30): a built-in login session unused
      this long is over (and none lasts more than 12 hours).
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
            change_waiter=lambda: self.state(app).change_waiter(),
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
            usage=(
                UsageRecorder(retention_days=_retention_days(app.config))
                if app.config["CORSADMIN_TRACK_USAGE"]
                else None
            ),
            usage_flush_interval=float(app.config["CORSADMIN_USAGE_FLUSH_INTERVAL"]),
        )
        app.extensions[EXTENSION_KEY] = state

        # Every response gets its CORS headers here, errors included: Flask runs
        # after_request functions for 404s, 405s, redirects and 500s too. A preflight
        # of a covered path that the router (404, 405, a redirect) or an
        # authentication hook refused becomes the 204 the browser needs: preflights
        # carry no credentials, and answering them is corsadmin's job.
        def add_cors_headers(response: BaseResponse) -> BaseResponse:
            return _add_cors_headers(state, response)

        app.after_request(add_cors_headers)

        # A routed preflight would get Flask's automatic OPTIONS response, which
        # scans the URL map for the Allow header: a covered one needs only a 204.
        # (Flask documents this method as the one to override.)
        flask_default = app.make_default_options_response

        def make_default_options_response() -> BaseResponse:
            try:
                if state.answer_preflights and _is_covered_preflight(state):
                    return app.response_class(status=204)
            except Exception:
                state.report_hook_failure("checking a preflight")
            return flask_default()

        app.make_default_options_response = make_default_options_response  # type: ignore[method-assign,assignment]

        from .admin import register_admin
        from .cli import corsadmin_cli

        app.cli.add_command(corsadmin_cli)
        if app.config["CORSADMIN_ADMIN_ENABLED"]:
            state.secure_admin_response = register_admin(app, self)

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
        from .db.schema import upgrade

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
        return load_snapshot(state.engine(), state.rule_cache, previous=state.holder.snapshot)

    def _read_revision(self, app: Flask) -> int:
        with self.state(app).engine().connect() as connection:
            return read_revision(connection)


def _retention_days(config: Any) -> float:
    value = config["CORSADMIN_USAGE_RETENTION_DAYS"]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_RETENTION_DAYS
    ):
        raise ValueError(
            "CORSADMIN_USAGE_RETENTION_DAYS must be a number of days above 0 and at most "
            f"{MAX_RETENTION_DAYS}, not {value!r}"
        )
    return float(value)


def ensure_state_row(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if connection.execute(sa.select(State.id).where(State.id == 1)).first() is None:
            connection.execute(sa.insert(State).values(id=1, revision=0))


# The request hooks ---------------------------------------------------------------------


def _is_admin_path(state: _State, path: str) -> bool:
    prefix = state.admin_prefix
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def _is_covered_preflight(state: _State) -> bool:
    """Is this request a CORS preflight of a path a policy covers?"""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    if req.method != "OPTIONS" or "HTTP_ORIGIN" not in environ:
        return False
    if "HTTP_ACCESS_CONTROL_REQUEST_METHOD" not in environ or _is_admin_path(state, req.path):
        return False
    return state.holder.current().policy_for(req.path) is not None


def _add_cors_headers(state: _State, response: BaseResponse) -> BaseResponse:
    """Write the CORS headers of the covered paths (computed by Flask-CORS, memoized).

    The hot path: on a memo hit this is a path look-up and a dictionary look-up,
    with no allocation but the key tuple.
    """
    try:
        req = request._get_current_object()  # type: ignore[attr-defined]
        path = req.path
        if _is_admin_path(state, path):
            if state.secure_admin_response is not None:
                state.secure_admin_response(response)
            return response
        policy = state.holder.current().policy_for(path)
        if policy is None:
            return response
        environ = req.environ
        method = req.method
        origin = environ.get("HTTP_ORIGIN")
        requested_method = requested_headers = None
        if method == "OPTIONS":
            requested_method = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
            requested_headers = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
        private_network = environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true"
        key = memo_key(origin, method, requested_method, requested_headers, private_network)
        evaluation: Evaluation | None = policy.evaluations.get(key)
        if evaluation is None:
            cors_request = CorsRequest(
                path, method, origin, requested_method, requested_headers, private_network
            )
            evaluation = evaluate_policy(policy, cors_request, key)
        decision = evaluation.decision
        if (
            method == "OPTIONS"
            and requested_method is not None
            and origin is not None
            and state.answer_preflights
            and not 200 <= response.status_code < 300
        ):
            response = state.app.response_class(status=204)  # see init_app
        usage_origin = evaluation.usage_origin  # the origin, or a bucket for junk
        if usage_origin is not None and state.usage is not None:
            rule = evaluation.usage_rule
            state.usage.record(policy.spec.name, usage_origin, rule, decision.allowed)
        _write_headers(response, evaluation.headers, decision.vary_origin)
    except Exception:
        # Never a 500 because of CORS: the response goes out without CORS headers.
        state.report_hook_failure("computing CORS headers")
    return response


def _write_headers(response: BaseResponse, pairs: HeaderPairs, vary_origin: bool) -> None:
    """Add the CORS headers, replacing any the view set, and ``Origin`` to ``Vary``.

    The common case (a response with no CORS or Vary header of its own) appends
    to Werkzeug's header list directly: the values were validated when the
    policy was written and are the same for every request, so re-checking them
    per request (as ``Headers.add`` does) is wasted work on the hot path. Any
    other case, or a Werkzeug whose ``Headers`` is built differently, goes
    through the public API.
    """
    headers = response.headers
    items = getattr(headers, "_list", None)
    if type(items) is list:
        for name, _value in items:
            lowered = name.lower()
            if lowered == "vary" or lowered.startswith("access-control-"):
                break
        else:
            items.extend(pairs)
            if vary_origin:
                items.append(("Vary", "Origin"))
            return
    _write_headers_carefully(response, pairs, vary_origin)


def _write_headers_carefully(response: BaseResponse, pairs: HeaderPairs, vary_origin: bool) -> None:
    headers = response.headers
    vary: str | None = None
    owned = False
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("access-control-"):
            owned = True
        elif lowered == "vary":
            vary = value if vary is None else f"{vary}, {value}"
    if owned:  # a view set its own: on a covered path, corsadmin's answer is the only one
        for name in CORS_RESPONSE_HEADERS:
            headers.pop(name, None)
    for name, value in pairs:
        headers.add(name, value)
    if not vary_origin:
        return
    if vary is None:
        headers.add("Vary", "Origin")
    elif "origin" not in {part.strip().lower() for part in vary.split(",")}:
        response.vary.add("Origin")
