"""The admin UI's configuration keys, with their defaults (all in one place).

Read with :func:`setting`, so they work whether or not the extension's
``DEFAULT_CONFIG`` lists them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from .review import DEFAULT_EXPIRING_WITHIN_DAYS, DEFAULT_STALE_AFTER_DAYS, ReviewSettings

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
}


def setting(key: str) -> Any:
    return current_app.config.get(key, ADMIN_DEFAULTS[key])


def review_settings() -> ReviewSettings:
    return ReviewSettings(
        stale_after_days=int(setting("CORSADMIN_STALE_AFTER_DAYS")),
        expiring_within_days=int(setting("CORSADMIN_EXPIRING_WITHIN_DAYS")),
    )
