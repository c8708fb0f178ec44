"""The admin blueprint: access check, error pages, and what every page shares.

The views live in :mod:`.policy_views`, :mod:`.report_views`, :mod:`.token_views` and
:mod:`.login_views`; each registers its routes on :data:`bp`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from flask import Blueprint, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.wrappers import Response

from ..db.models import utcnow
from ..db.store import BUSY_MESSAGE, PolicyStore, database_busy
from ..resources import static_directory, templates_directory
from ..state import state
from . import access, queries
from .forms import LogoutForm

bp = Blueprint(
    "corsadmin",
    __name__,
    template_folder=str(templates_directory()),
    static_folder=str(static_directory()),
    static_url_path="/static",
)

#: Endpoints a visitor reaches without being let in.
PUBLIC_ENDPOINTS = frozenset({"corsadmin.static", "corsadmin.login", "corsadmin.logout"})


@bp.before_request
def check_access() -> Response | None:
    """Every admin view asks the access check first (it denies by default); no admin
    page is served without the application's SECRET_KEY."""
    if request.endpoint == "corsadmin.static":
        return None
    access.require_secret_key()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    try:
        access.require_operator()
    except access.LoginRequired:
        target = access.login_url(request.full_path.rstrip("?"))
        if target is not None and request.method in ("GET", "HEAD") and access.wants_html():
            return redirect(target)
        raise
    return None


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int]:
    """Error pages in the admin's own frame (the status code is kept)."""
    login = None
    if isinstance(error, access.LoginRequired):
        login = access.login_url(request.full_path.rstrip("?"))
    code = error.code or 500
    return render_template("corsadmin/error.html", error=error, login=login), code


#: Seconds a client is told to wait before sending a refused change again.
BUSY_RETRY_AFTER: Final = 1
#: Fields of the admin forms the operator did not type (not shown back, only re-sent).
_HIDDEN_FIELDS: Final = frozenset({"csrf_token", "version", "back", "next"})


@bp.errorhandler(sa.exc.OperationalError)
def database_error(error: sa.exc.OperationalError) -> tuple[str, int, dict[str, str]]:
    """A busy database (another change holds the write lock past the busy timeout, or
    PostgreSQL's lock_timeout) is a 503 saying so, with what the operator sent ready to
    send again; any other database error stays a 500."""
    db_session().rollback()
    if not database_busy(error):
        raise error
    g.corsadmin_database_busy = True  # the page frame reads nothing more (no draft badge)
    unavailable = ServiceUnavailable(description=BUSY_MESSAGE[0].upper() + BUSY_MESSAGE[1:] + ".")
    fields = list(request.form.items(multi=True)) if request.method == "POST" else []
    secret = any("password" in key.lower() for key, _ in fields)
    page = render_template(
        "corsadmin/busy.html",
        error=unavailable,
        retry_url=request.full_path.rstrip("?"),
        fields=[] if secret else fields,
        typed=[] if secret else [(k, v) for k, v in fields if k not in _HIDDEN_FIELDS and v],
    )
    return page, 503, {"Retry-After": str(BUSY_RETRY_AFTER)}


# --- what the views share ---------------------------------------------------------------


def db_session() -> Any:
    return state().db.session


def operator() -> str:
    """The operator of this request (the access check let them in)."""
    name = access.current_operator()
    assert name is not None
    return name


def store() -> PolicyStore:
    """The policy store, acting as the operator (one transaction and audit event a change)."""
    return state().store(actor=operator())


def refresh_interval() -> float:
    return state().config.refresh_interval


def saved_message(what: str = "Saved.") -> str:
    """The flash after a change. With the fleet view on, the page under it says how far
    the change got ("enforced by 12 of 12 workers, 0.04 s after commit": the
    ``fleet_after_change`` line), an observation; without it, what every worker does."""
    if state().config.fleet_report:
        return what
    return f"{what} Every worker checks for changes every {refresh_interval():g} s."


class Formatting:
    """Small display helpers the templates reach as ``h``."""

    @staticmethod
    def time(value: datetime | None) -> str:
        if value is None:
            return "-"
        return value.strftime("%Y-%m-%d %H:%M UTC")

    @staticmethod
    def date(value: datetime | None) -> str:
        if value is None:
            return "-"
        return value.strftime("%Y-%m-%d")

    @staticmethod
    def count(n: int, singular: str, plural: str | None = None) -> str:
        """``1 day``, ``2 days``, ``1,200 requests``, ``1 policy`` (``plural`` when adding
        an "s" is wrong)."""
        word = singular if n == 1 else (plural or f"{singular}s")
        return f"{n:,} {word}"

    @staticmethod
    def ago(value: datetime | None, now: datetime | None = None) -> str:
        """'3 days ago', 'in 5 days', 'just now'."""
        if value is None:
            return "never"
        now = now or utcnow()
        seconds = (now - value).total_seconds()
        future = seconds < 0
        seconds = abs(seconds)
        if seconds < 60:
            return "just now" if not future else "in less than a minute"
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= size:
                n = int(seconds // size)
                text = f"{n} {unit}{'' if n == 1 else 's'}"
                return f"in {text}" if future else f"{text} ago"
        return "just now"  # pragma: no cover - unreachable


def draft_badge() -> queries.DraftBadge | None:
    """The navigation's "Draft" badge: the active draft, or None (none, or the database
    is busy: the page frame never waits for it)."""
    if g.get("corsadmin_database_busy"):
        return None
    if "corsadmin_draft_badge" not in g:
        g.corsadmin_draft_badge = queries.active_draft_badge(db_session())
    badge: queries.DraftBadge | None = g.corsadmin_draft_badge
    return badge


@bp.context_processor
def page_context() -> dict[str, Any]:
    name = access.current_operator() if request.endpoint not in PUBLIC_ENDPOINTS else None
    return {
        "draft_badge": draft_badge if name else lambda: None,
        "operator_name": name,
        "logout_form": LogoutForm() if name and access.builtin_login_enabled() else None,
        "logout_url": access.logout_url() if request.endpoint not in PUBLIC_ENDPOINTS else None,
        "builtin_login": access.builtin_login_enabled(),
        "refresh_interval": refresh_interval(),
        "h": Formatting,
        "now": utcnow(),
    }
