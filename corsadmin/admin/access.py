"""Who may use the admin UI: one overridable check that denies by default.

Every admin view runs :func:`current_operator` first (the blueprint's
``before_request``). It asks, in order:

1. ``CORSADMIN_OPERATOR_LOADER``: a callable (or an import string
   ``"package.module:function"``) the host application sets; called with no
   arguments inside the request, it returns the operator's name (what the audit
   log records) or None for "not allowed in".
2. ``CORSADMIN_BUILTIN_LOGIN``: corsadmin's own operators and login page
   (the standalone app turns it on).
3. Nothing configured: every admin route answers 403. The admin UI is closed
   until the application says who may enter.

With Flask-Login, for instance::

    from flask_login import current_user
    app.config["CORSADMIN_OPERATOR_LOADER"] = lambda: (
        current_user.username if current_user.is_authenticated else None)
    app.config["CORSADMIN_LOGIN_URL"] = "auth.login"   # where to send a logged-out visitor

A visitor the check refuses gets a redirect to the login page (an HTML ``GET``
when a login page is known), else 401 (no one logged in) or 403 (nothing
configured). Both errors subclass Werkzeug's HTTP exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import current_app, g, request, session, url_for
from werkzeug.exceptions import Forbidden, Unauthorized
from werkzeug.utils import import_string

from ..models import Operator
from . import operators

OperatorLoader = Callable[[], str | None]

LOADER_KEY = "CORSADMIN_OPERATOR_LOADER"
BUILTIN_LOGIN_KEY = "CORSADMIN_BUILTIN_LOGIN"
LOGIN_URL_KEY = "CORSADMIN_LOGIN_URL"

SESSION_NAME = "corsadmin_operator"
SESSION_KEY = "corsadmin_operator_key"


class AdminClosed(Forbidden):
    """No operator loader is configured: the admin UI lets no one in."""

    description = (
        "The corsadmin admin UI is closed: the application has not said who may enter. "
        "Set CORSADMIN_OPERATOR_LOADER (or CORSADMIN_BUILTIN_LOGIN in the standalone app)."
    )


class LoginRequired(Unauthorized):
    """An operator loader is configured, and it names no one for this request."""

    description = "Log in as an operator to use the corsadmin admin UI."


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
    """The built-in login's check: the operator this session logged in as, still enabled."""
    name = session.get(SESSION_NAME)
    key = session.get(SESSION_KEY)
    if not isinstance(name, str) or not isinstance(key, str):
        return None
    from ..extension import CorsAdmin

    return operators.session_operator(CorsAdmin.state().db.session, name, key)


def current_operator() -> str | None:
    """The operator of this request (asked once per request), or None."""
    if "corsadmin_operator" in g:
        cached: str | None = g.corsadmin_operator
        return cached
    loader = operator_loader()
    name = loader() if loader is not None else None
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"{LOADER_KEY} must return an operator name (a string) or None")
    g.corsadmin_operator = name
    return name


def require_operator() -> str:
    """The operator's name, or raise the refusal (AdminClosed / LoginRequired)."""
    if operator_loader() is None:
        raise AdminClosed()
    name = current_operator()
    if name is None:
        raise LoginRequired()
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


def wants_html() -> bool:
    """A browser navigating (not a script or an API client)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > 0


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path under the admin prefix, else None (no open redirect)."""
    from ..extension import CorsAdmin

    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    prefix = CorsAdmin.state().admin_prefix
    path = target.split("?", 1)[0]
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return target


def log_in(operator: Operator) -> None:
    """Start a login session for a built-in operator."""
    session.clear()
    session[SESSION_NAME] = operator.name
    session[SESSION_KEY] = operators.session_key(operator)
    g.pop("corsadmin_operator", None)


def log_out() -> None:
    session.pop(SESSION_NAME, None)
    session.pop(SESSION_KEY, None)
    g.pop("corsadmin_operator", None)
