"""The admin UI's settings, read from the app's checked configuration.

Every key, its default and its meaning are in :mod:`corsadmin.config`;
``init_app`` refuses a bad value. The host's access settings
(``CORSADMIN_OPERATOR_LOADER``, ``CORSADMIN_LOGIN_URL``, ``CORSADMIN_LOGOUT_URL``,
``CORSADMIN_BUILTIN_LOGIN``) are read per request by :mod:`corsadmin.admin.access` instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from ..config import DEFAULT_CONFIG, DEFAULT_SESSION_IDLE_MINUTES
from ..engine.review import ReviewSettings
from ..state import state

__all__ = [
    "ADMIN_DEFAULTS",
    "DEFAULT_SESSION_IDLE_MINUTES",
    "SESSION_IDLE_KEY",
    "review_settings",
    "session_idle",
    "session_idle_minutes",
]

_ADMIN_KEYS: Final = (
    "CORSADMIN_OPERATOR_LOADER",
    "CORSADMIN_BUILTIN_LOGIN",
    "CORSADMIN_LOGIN_URL",
    "CORSADMIN_LOGOUT_URL",
    "CORSADMIN_STALE_AFTER_DAYS",
    "CORSADMIN_EXPIRING_WITHIN_DAYS",
    "CORSADMIN_LOGIN_ATTEMPTS",
    "CORSADMIN_LOGIN_WINDOW",
    "CORSADMIN_SESSION_IDLE_MINUTES",
)

#: The admin UI's keys with their defaults (a view of ``corsadmin.config.DEFAULT_CONFIG``).
ADMIN_DEFAULTS: Final[dict[str, Any]] = {key: DEFAULT_CONFIG[key] for key in _ADMIN_KEYS}

SESSION_IDLE_KEY: Final = "CORSADMIN_SESSION_IDLE_MINUTES"


def session_idle_minutes() -> int:
    return state().config.session_idle_minutes


def session_idle() -> timedelta:
    """How long a built-in login session may go unused."""
    return timedelta(minutes=session_idle_minutes())


def review_settings() -> ReviewSettings:
    config = state().config
    return ReviewSettings(
        stale_after_days=config.stale_after_days,
        expiring_within_days=config.expiring_within_days,
    )
