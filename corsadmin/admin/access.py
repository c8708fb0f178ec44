"""Who may use the admin UI: one overridable check that denies by default.

Every admin view runs :func:`current_operator` first (the blueprint's
``before_request``). It asks, in order:

1. ``CORSADMIN_OPERATOR_LOADER``: a callable (or an import string
   ``"package.module:function"``) the host application sets; called with no
   arguments inside the request, it returns the operator's name (what the audit
   log records), None for "no one is logged in" (a browser is sent to the login
   page), or raises :class:`NotAnOperator` for "logged in, but not an operator" (a
   403 page: logging in again would not help, so no login loop).
2. ``CORSADMIN_BUILTIN_LOGIN``: corsadmin's own operators and login page
   (the standalone app turns it on). Its sessions live on the server (see
   :mod:`.operators`): the signed cookie holds only a random token, logout
   deletes the session, and one unused ``CORSADMIN_SESSION_IDLE_MINUTES`` is over.
3. Nothing configured: every admin route answers 403. The admin UI is closed
   until the application says who may enter.

With Flask-Login, for instance::

    from flask_login import current_user
    from corsadmin.admin.access import NotAnOperator

    def corsadmin_operator() -> str | None:
        if not current_user.is_authenticated:
            return None                  # sent to CORSADMIN_LOGIN_URL
        if not current_user.is_cors_admin:
            raise NotAnOperator()        # a 403 page
        return current_user.username

    app.config["CORSADMIN_OPERATOR_LOADER"] = corsadmin_operator
    app.config["CORSADMIN_LOGIN_URL"] = "auth.login"    # where to send a logged-out visitor
    app.config["CORSADMIN_LOGOUT_URL"] = "auth.logout"  # the nav's "Log out" link

A visitor the check refuses gets a redirect to the login page (an HTML ``GET``
when a login page is known), else 401 (no one logged in), or 403 (logged in but
not an operator, or nothing configured). Every error subclasses Werkzeug's HTTP
exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import current_app, flash, g, request, session, url_for
from werkzeug.exceptions import Forbidden, InternalServerError, Unauthorized
from werkzeug.utils import import_string

from ..db import operators
from ..db.models import Operator
from ..state import state
from .settings import session_idle, session_idle_minutes

OperatorLoader = Callable[[], str | None]

LOADER_KEY = "CORSADMIN_OPERATOR_LOADER"
BUILTIN_LOGIN_KEY = "CORSADMIN_BUILTIN_LOGIN"
LOGIN_URL_KEY = "CORSADMIN_LOGIN_URL"
LOGOUT_URL_KEY = "CORSADMIN_LOGOUT_URL"

#: The Flask session's key for the built-in login's session token.
SESSION_TOKEN = "corsadmin_session"  # noqa: S105 - a key name, not a secret


class AdminClosed(Forbidden):
    """No operator loader is configured: the admin UI lets no one in."""

    description = (
        "The corsadmin admin UI is closed: the application has not said who may enter. "
        "Set CORSADMIN_OPERATOR_LOADER (or CORSADMIN_BUILTIN_LOGIN in the standalone app)."
    )


class LoginRequired(Unauthorized):
    """An operator loader is configured, and it names no one for this request."""

    description = "Log in as an operator to use the corsadmin admin UI."


class NotAnOperator(Forbidden):
    """Raised by a ``CORSADMIN_OPERATOR_LOADER``: someone is logged in to the host
    application, and is not a corsadmin operator. The admin UI answers 403 (a page with
    the host's logout link, when ``CORSADMIN_LOGOUT_URL`` is set), not a login redirect."""

    description = (
        "You are logged in, but not as an operator of the corsadmin admin UI. "
        "Ask an administrator for access, or log out and log in as an operator."
    )


class SecretKeyMissing(InternalServerError):
    """The application has no ``SECRET_KEY``: the admin UI's forms carry CSRF tokens and
    the built-in login a signed session, so no admin page is served without one."""

    description = (
        "The corsadmin admin UI needs the application's SECRET_KEY (its forms carry CSRF "
        'tokens, its login a signed session cookie): set app.config["SECRET_KEY"] to a '
        "long random value, the same on every worker."
    )


def require_secret_key() -> None:
    """Refuse every admin page, with a page saying why, while ``SECRET_KEY`` is unset
    (instead of a traceback from the first form)."""
    if not current_app.config.get("SECRET_KEY"):
        current_app.logger.error("corsadmin: %s", SecretKeyMissing.description)
        raise SecretKeyMissing()


def builtin_login_enabled() -> bool:
    return bool(current_app.config.get(BUILTIN_LOGIN_KEY, False))


def operator_loader() -> OperatorLoader | None:
    """The configured check, or None when the admin UI is closed."""
    loader: Any = current_app.config.get(LOADER_KEY)
    if isinstance(loader, str) and loader:
        loader = import_string(loader)
    if loader is None or loader == "":
        return builtin_operator if builtin_login_enabled() else None
    if not callable(loader):
        raise TypeError(f"{LOADER_KEY} must be a callable or an import string, not {loader!r}")
    return loader  # type: ignore[no-any-return]


def builtin_operator() -> str | None:
    """The built-in login's check: the operator of this browser's live session, still
    enabled with the same password. A session that ran out of time says so (a message
    on the login page, and in the 401)."""
    token = session.get(SESSION_TOKEN)
    if not isinstance(token, str):
        return None

    found = operators.check_session(state().db.session, token, idle=session_idle())
    if found.operator is None:
        session.pop(SESSION_TOKEN, None)
        if found.ended is not None:
            message = session_ended_message(found.ended)
            g.corsadmin_session_ended = message
            flash(message, "info")
    return found.operator


def session_ended_message(why: operators.SessionEnd) -> str:
    if why is operators.SessionEnd.IDLE:
        minutes = session_idle_minutes()
        unit = "minute" if minutes == 1 else "minutes"
        return f"Your session ended after {minutes} {unit} without activity; log in again."
    hours = operators.SESSION_MAX_LIFETIME.total_seconds() / 3600
    return f"Your session ended {hours:g} hours after you logged in; log in again."


def current_operator() -> str | None:
    """The operator of this request (asked once per request), or None."""
    if "corsadmin_operator" in g:
        cached: str | None = g.corsadmin_operator
        return cached
    loader = operator_loader()
    try:
        name = loader() if loader is not None else None
    except NotAnOperator as refused:
        g.corsadmin_not_operator = refused
        name = None
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"{LOADER_KEY} must return an operator name (a string) or None")
    g.corsadmin_operator = name
    return name


def require_operator() -> str:
    """The operator's name, or raise the refusal (AdminClosed / NotAnOperator /
    LoginRequired)."""
    if operator_loader() is None:
        raise AdminClosed()
    name = current_operator()
    if name is None:
        refused: NotAnOperator | None = g.get("corsadmin_not_operator")
        if refused is not None:
            raise refused
        raise LoginRequired(description=g.get("corsadmin_session_ended"))
    return name


def login_url(next_url: str | None = None) -> str | None:
    """Where a logged-out visitor logs in: the built-in page, ``CORSADMIN_LOGIN_URL``
    (a path or an endpoint name), or None."""
    target: str | None
    configured = current_app.config.get(LOGIN_URL_KEY)
    if configured:
        target = str(configured)
        if not target.startswith(("/", "http://", "https://")):
            target = url_for(target)
    elif builtin_login_enabled():
        target = url_for("corsadmin.login")
    else:
        return None
    if next_url:
        target += ("&" if "?" in target else "?") + urlencode({"next": next_url})
    return target


def logout_url() -> str | None:
    """The host's logout page for the nav's "Log out" link: ``CORSADMIN_LOGOUT_URL`` (a
    path, an http(s) URL or an endpoint name), or None. The built-in login has its own
    logout form instead."""
    configured = current_app.config.get(LOGOUT_URL_KEY)
    if not configured:
        return None
    target = str(configured)
    return target if target.startswith(("/", "http://", "https://")) else url_for(target)


def wants_html() -> bool:
    """A browser navigating (not a script or an API client)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > 0


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path under the admin prefix, else None (no open redirect)."""

    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    prefix = state().admin_prefix
    path = target.split("?", 1)[0]
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return target


def log_in(operator: Operator) -> None:
    """Start a login session for a built-in operator (a new token: no session fixation;
    the browser's previous session, if any, ends)."""

    previous = session.get(SESSION_TOKEN)
    session.clear()
    token = operators.start_session(
        state().db.session,
        operator,
        idle=session_idle(),
        replacing=previous if isinstance(previous, str) else None,
    )
    session[SESSION_TOKEN] = token
    session.permanent = False  # the cookie ends with the browser; the server ends it sooner
    g.pop("corsadmin_operator", None)


def log_out() -> None:
    """End this browser's session on the server: a copy of the cookie is dead too."""

    token = session.pop(SESSION_TOKEN, None)
    if isinstance(token, str):
        operators.end_session(state().db.session, token)
    g.pop("corsadmin_operator", None)
