"""The admin UI's configuration keys, with their defaults (all in one place).

Read with :func:`setting`, so they work whether or not the extension's
``DEFAULT_CONFIG`` lists them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from flask import current_app

from .review import DEFAULT_EXPIRING_WITHIN_DAYS, DEFAULT_STALE_AFTER_DAYS, ReviewSettings

#: Built-in login sessions end after this many minutes without a request (NIST SP 800-63B, AAL2).
DEFAULT_SESSION_IDLE_MINUTES: Final = 30

ADMIN_DEFAULTS: dict[str, Any] = {
    # Who may enter: a callable (or "module:function") returning the operator's name or None.
    "CORSADMIN_OPERATOR_LOADER": None,
    # corsadmin's own operators, login and logout pages (the standalone app turns it on).
    "CORSADMIN_BUILTIN_LOGIN": False,
    # Where a logged-out visitor is sent: a path or an endpoint name (e.g. "auth.login").
    "CORSADMIN_LOGIN_URL": None,
    # The review screen: rules no request matched for this many days are stale...
    "CORSADMIN_STALE_AFTER_DAYS": DEFAULT_STALE_AFTER_DAYS,
    # ...and rules expiring within this many days are listed.
    "CORSADMIN_EXPIRING_WITHIN_DAYS": DEFAULT_EXPIRING_WITHIN_DAYS,
    # Built-in login: failed attempts allowed per client address (and name) within...
    "CORSADMIN_LOGIN_ATTEMPTS": 5,
    # ...this many seconds; then the login page answers 429 until the window has passed.
    "CORSADMIN_LOGIN_WINDOW": 900,
    # Built-in login: a session unused this many minutes is over (log in again). 30, as
    # NIST SP 800-63B asks at AAL2; whatever the setting, a session ends 12 hours after login.
    "CORSADMIN_SESSION_IDLE_MINUTES": DEFAULT_SESSION_IDLE_MINUTES,
}

SESSION_IDLE_KEY = "CORSADMIN_SESSION_IDLE_MINUTES"


def setting(key: str) -> Any:
    return current_app.config.get(key, ADMIN_DEFAULTS[key])


def check_session_idle_minutes(value: Any) -> int:
    """``CORSADMIN_SESSION_IDLE_MINUTES`` if it is a whole number of minutes in bounds."""
    from ..db.operators import MAX_SESSION_IDLE_MINUTES  # not at import: it hashes a password

    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_SESSION_IDLE_MINUTES
    ):
        raise ValueError(
            f"{SESSION_IDLE_KEY} must be a whole number of minutes from 1 to "
            f"{MAX_SESSION_IDLE_MINUTES}, not {value!r}"
        )
    return value


def session_idle_minutes() -> int:
    return check_session_idle_minutes(setting(SESSION_IDLE_KEY))


def session_idle() -> timedelta:
    """How long a built-in login session may go unused."""
    return timedelta(minutes=session_idle_minutes())


def review_settings() -> ReviewSettings:
    return ReviewSettings(
        stale_after_days=int(setting("CORSADMIN_STALE_AFTER_DAYS")),
        expiring_within_days=int(setting("CORSADMIN_EXPIRING_WITHIN_DAYS")),
    )
