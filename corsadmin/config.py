"""corsadmin's configuration: every ``CORSADMIN_*`` key, its default, what it means.

This module is the one place the keys are documented (the README's
configuration table is checked against it by ``tests/test_config.py``).
``CorsAdmin.init_app`` sets the defaults in ``app.config`` and builds one frozen
:class:`CorsAdminConfig` from it; a bad value stops ``init_app`` with a message
naming the key. Code reads the object (``state().config``), not ``app.config``,
except for the host's access settings (``CORSADMIN_OPERATOR_LOADER``,
``CORSADMIN_LOGIN_URL``, ``CORSADMIN_LOGOUT_URL``, ``CORSADMIN_BUILTIN_LOGIN``), which
the admin UI reads per request so a host may set them after ``init_app`` as it wires its login.

Pure: no Flask import; the bounds other modules enforce are defined here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Final
from urllib.parse import urlsplit

#: Days a usage row is kept after it was last seen, by default.
DEFAULT_RETENTION_DAYS: Final = 90
#: The longest usage retention accepted (a hundred years).
MAX_RETENTION_DAYS: Final = 36_500
#: Review screen: an origin rule no request matched for this many days is stale.
DEFAULT_STALE_AFTER_DAYS: Final = 30
#: Review screen: origin rules expiring within this many days are listed.
DEFAULT_EXPIRING_WITHIN_DAYS: Final = 14
#: Seconds between two fleet view reports of an idle process, by default (the value
#: ``corsadmin.engine.fleet`` judges rows with when given no other).
DEFAULT_FLEET_HEARTBEAT: Final = 5.0
#: Built-in login sessions end after this many minutes without a request (NIST SP 800-63B, AAL2).
DEFAULT_SESSION_IDLE_MINUTES: Final = 30
#: No built-in login session lasts longer than this, whatever its use (12 hours).
MAX_SESSION_IDLE_MINUTES: Final = 12 * 60
#: Alerts: seconds between two scans for events (and deliveries) of one process, by default.
DEFAULT_ALERT_INTERVAL: Final = 60.0
#: Alerts: the shortest scan interval accepted (seconds): each scan reads the tables.
MIN_ALERT_INTERVAL: Final = 1.0
#: Alerts: the shortest webhook secret accepted (characters).
MIN_WEBHOOK_SECRET_LENGTH: Final = 16
#: Alerts: the longest webhook URL accepted (characters).
MAX_WEBHOOK_URL_LENGTH: Final = 2000


def _number(minimum: float = 0.0) -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        try:
            seconds = float(value)  # as before: "2.5" from an environment variable too
        except (TypeError, ValueError):
            seconds = -1.0
        if isinstance(value, bool) or not seconds >= minimum:  # NaN is refused too
            raise ValueError(
                f"{key} must be a number of seconds, at least {minimum}, not {value!r}"
            )
        return seconds

    return check


def _flag(key: str, value: Any) -> Any:
    return bool(value)  # as before: any truthy value turns a switch on


def _text(key: str, value: Any) -> Any:
    if value is None:
        raise ValueError(f"{key} must be a string, not None")
    return str(value)


def _whole(minimum: int, maximum: int | None = None, unit: str = "") -> Callable[[str, Any], Any]:
    def check(key: str, value: Any) -> Any:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise ValueError(f"{key} must be a whole number{unit} {bound}, not {value!r}")
        return value

    return check


def _retention(key: str, value: Any) -> Any:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_RETENTION_DAYS
    ):
        raise ValueError(
            f"{key} must be a number of days above 0 and at most {MAX_RETENTION_DAYS}, "
            f"not {value!r}"
        )
    return float(value)


def _session_idle(key: str, value: Any) -> Any:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_SESSION_IDLE_MINUTES
    ):
        raise ValueError(
            f"{key} must be a whole number of minutes from 1 to "
            f"{MAX_SESSION_IDLE_MINUTES}, not {value!r}"
        )
    return value


def _loader(key: str, value: Any) -> Any:
    if value is not None and not callable(value) and not isinstance(value, str):
        raise ValueError(f'{key} must be a callable or a "module:function" string, not {value!r}')
    return value


def _optional_text(key: str, value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a path or an endpoint name, not {value!r}")
    return value


def _webhook_url(key: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_WEBHOOK_URL_LENGTH:
        raise ValueError(
            f"{key} must be an http(s) URL of at most {MAX_WEBHOOK_URL_LENGTH} characters, "
            f"not {value!r}"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ValueError(
            f"{key} must be an http:// or https:// URL with a host (and no user name), "
            f"not {value!r}"
        )
    return value


def _webhook_secret(key: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) < MIN_WEBHOOK_SECRET_LENGTH:
        raise ValueError(
            f"{key} must be a string of at least {MIN_WEBHOOK_SECRET_LENGTH} characters "
            "(a random one: it signs every alert)"
        )
    return value


def _setting(key: str, default: Any, check: Callable[[str, Any], Any], doc: str) -> Any:
    return field(default=default, metadata={"key": key, "check": check, "doc": doc})


@dataclass(frozen=True)
class CorsAdminConfig:
    """The ``CORSADMIN_*`` settings of one application, checked (``state().config``)."""

    refresh_interval: float = _setting(
        "CORSADMIN_REFRESH_INTERVAL", 1.0, _number(),
        "seconds between two revision checks of one process; a change from another "
        "process is enforced within it",
    )  # fmt: skip
    listen: bool = _setting(
        "CORSADMIN_LISTEN", True, _flag,
        "on PostgreSQL, each process also LISTENs for the NOTIFY every change sends "
        "and reloads at once; polling stays underneath",
    )  # fmt: skip
    refresh_in_background: bool = _setting(
        "CORSADMIN_REFRESH_IN_BACKGROUND", True, _flag,
        "check from a daemon thread per process; False checks from the first request "
        "after the interval (for servers without threads)",
    )  # fmt: skip
    url_prefix: str = _setting(
        "CORSADMIN_URL_PREFIX", "/corsadmin", _text,
        "the admin UI's prefix; paths under it never get CORS headers",
    )  # fmt: skip
    answer_preflights: bool = _setting(
        "CORSADMIN_ANSWER_PREFLIGHTS", True, _flag,
        "answer a preflight of a covered path with 204, whatever the router (404, 405, "
        "a redirect) or an authentication hook would have said",
    )  # fmt: skip
    cli_actor: str = _setting(
        "CORSADMIN_CLI_ACTOR", "cli:{user}", _text,
        "who the audit log names for CLI changes without --actor ({user} is the login name)",
    )  # fmt: skip
    admin_enabled: bool = _setting(
        "CORSADMIN_ADMIN_ENABLED", True, _flag,
        "register the admin UI blueprint under CORSADMIN_URL_PREFIX",
    )  # fmt: skip
    operator_loader: Any = _setting(  # noqa: RUF009 - a field(), with metadata
        "CORSADMIN_OPERATOR_LOADER", None, _loader,
        "who may use the admin UI: a callable (or 'module:function') returning the "
        "operator's name or None; unset (and no built-in login), the admin UI answers 403",
    )  # fmt: skip
    builtin_login: bool = _setting(
        "CORSADMIN_BUILTIN_LOGIN", False, _flag,
        "corsadmin's own operators, login and logout pages; the standalone app turns it on",
    )  # fmt: skip
    login_url: str | None = _setting(
        "CORSADMIN_LOGIN_URL", None, _optional_text,
        "where a logged-out browser is sent: a path or an endpoint name (e.g. 'auth.login')",
    )  # fmt: skip
    logout_url: str | None = _setting(
        "CORSADMIN_LOGOUT_URL", None, _optional_text,
        "the host's logout page, linked as 'Log out' in the admin UI's navigation (with "
        "CORSADMIN_OPERATOR_LOADER): a path or an endpoint name (e.g. 'auth.logout')",
    )  # fmt: skip
    stale_after_days: int = _setting(
        "CORSADMIN_STALE_AFTER_DAYS", DEFAULT_STALE_AFTER_DAYS, _whole(1, unit=" of days"),
        "review screen: an origin rule no request matched for this many days is stale",
    )  # fmt: skip
    expiring_within_days: int = _setting(
        "CORSADMIN_EXPIRING_WITHIN_DAYS", DEFAULT_EXPIRING_WITHIN_DAYS,
        _whole(0, unit=" of days"),
        "review screen: origin rules expiring within this many days are listed",
    )  # fmt: skip
    login_attempts: int = _setting(
        "CORSADMIN_LOGIN_ATTEMPTS", 5, _whole(1),
        "built-in login: failed attempts allowed per client address and name within the "
        "window (four times as many per address across names); then 429",
    )  # fmt: skip
    login_window: float = _setting(
        "CORSADMIN_LOGIN_WINDOW", 900, _number(minimum=1.0),
        "built-in login: the sliding window for failed attempts, in seconds",
    )  # fmt: skip
    session_idle_minutes: int = _setting(
        "CORSADMIN_SESSION_IDLE_MINUTES", DEFAULT_SESSION_IDLE_MINUTES, _session_idle,
        "built-in login: minutes without a request after which a session is over "
        f"(1 to {MAX_SESSION_IDLE_MINUTES}); no session lasts more than 12 hours",
    )  # fmt: skip
    track_usage: bool = _setting(
        "CORSADMIN_TRACK_USAGE", True, _flag,
        "count which origins call which policies, allowed or refused",
    )  # fmt: skip
    usage_flush_interval: float = _setting(
        "CORSADMIN_USAGE_FLUSH_INTERVAL", 10.0, _number(),
        "seconds between two writes of one process's usage counts",
    )  # fmt: skip
    metrics: bool = _setting(
        "CORSADMIN_METRICS", False, _flag,
        "collect Prometheus metrics (decisions by policy and outcome, revision, loads, "
        "propagation); needs the corsadmin[metrics] extra; serving them is the host's "
        "choice (corsadmin.metrics)",
    )  # fmt: skip
    usage_retention_days: float = _setting(
        "CORSADMIN_USAGE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, _retention,
        "days a usage row is kept after it was last seen; rules keep their own 'last seen'",
    )  # fmt: skip
    alert_webhook_url: str | None = _setting(
        "CORSADMIN_ALERT_WEBHOOK_URL", None, _webhook_url,
        "alerts: the http(s) URL each alert is POSTed to as signed JSON (None: no webhook; "
        "`corsadmin review --due` still lists what is due)",
    )  # fmt: skip
    alert_webhook_secret: str | None = _setting(
        "CORSADMIN_ALERT_WEBHOOK_SECRET", None, _webhook_secret,
        "alerts: the HMAC-SHA256 key of the X-Corsadmin-Signature header, at least "
        f"{MIN_WEBHOOK_SECRET_LENGTH} characters; required when CORSADMIN_ALERT_WEBHOOK_URL is set",
    )  # fmt: skip
    alert_interval: float = _setting(
        "CORSADMIN_ALERT_INTERVAL", DEFAULT_ALERT_INTERVAL, _number(minimum=MIN_ALERT_INTERVAL),
        "alerts: seconds between two scans for events and deliveries by one process's "
        "refresh thread (only with a webhook URL)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.alert_webhook_url is not None and self.alert_webhook_secret is None:
            raise ValueError(
                "CORSADMIN_ALERT_WEBHOOK_SECRET must be set when CORSADMIN_ALERT_WEBHOOK_URL "
                f"is (a random string of at least {MIN_WEBHOOK_SECRET_LENGTH} characters)"
            )

    fleet_report: bool = _setting(
        "CORSADMIN_FLEET_REPORT", True, _flag,
        "each process reports what it enforces to the fleet view (the Workers screen, "
        "corsadmin status): at once after a change, else every CORSADMIN_FLEET_HEARTBEAT",
    )  # fmt: skip
    fleet_heartbeat: float = _setting(
        "CORSADMIN_FLEET_HEARTBEAT", DEFAULT_FLEET_HEARTBEAT, _number(minimum=0.1),
        "seconds between two reports of an idle process (at least the refresh interval); "
        "a process silent for 3 of them leaves the fleet view, one whose last check is "
        "older than 2 is stale; the same on every process of the app",
    )  # fmt: skip

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> CorsAdminConfig:
        """The settings in ``config`` (an ``app.config``), defaults for the missing keys;
        ``ValueError`` naming the key for a bad value."""
        values = {}
        for f in fields(cls):
            key = f.metadata["key"]
            values[f.name] = f.metadata["check"](key, config.get(key, f.default))
        return cls(**values)

    @property
    def admin_prefix(self) -> str:
        """``url_prefix`` as a path: one leading slash, no trailing one."""
        return "/" + self.url_prefix.strip("/")


def _defaults() -> dict[str, Any]:
    result: dict[str, Any] = {}
    for f in fields(CorsAdminConfig):
        assert f.default is not MISSING
        result[f.metadata["key"]] = f.default
    return result


#: Every configuration key with its default, as ``init_app`` sets them in ``app.config``.
DEFAULT_CONFIG: Final[Mapping[str, Any]] = _defaults()


def describe() -> list[tuple[str, Any, str]]:
    """(key, default, meaning) of every setting, in the order above (for docs and tests)."""
    return [(f.metadata["key"], f.default, f.metadata["doc"]) for f in fields(CorsAdminConfig)]
