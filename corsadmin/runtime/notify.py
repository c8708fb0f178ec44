"""Waking every worker the moment the revision moves, on PostgreSQL.

Every change sends ``NOTIFY corsadmin_revision`` inside its transaction
(delivered at commit). Each process's refresh thread keeps one connection
that ``LISTEN``s, and checks the revision as soon as a notification arrives
instead of waiting out the rest of ``CORSADMIN_REFRESH_INTERVAL``. The
interval's polling stays underneath: a lost connection or a notification
missed while reconnecting is caught by the next poll. Other databases poll.

A network that stops answering (a host cut off from the database: no error, no
reset, its packets dropped) must not hang the refresh thread: without a bound, a
query in flight waits out the kernel's retransmissions (about 15 minutes), a new
connection waits out its SYN retries (2 minutes) unless the URL sets a
``connect_timeout``, and an idle LISTEN connection never notices. So every
PostgreSQL or MariaDB connection the refresh thread uses
(:func:`bound_refresh_connections`) has
TCP keepalives and ``TCP_USER_TIMEOUT`` (:data:`NETWORK_TIMEOUT`): data unanswered
that long ends the connection with an error, the thread logs the failure once and
keeps the last snapshot, and retries every interval until the database answers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa

from ..db.dialects import MYSQL_DIALECTS

CHANNEL = "corsadmin_revision"

#: Seconds a connection of the refresh thread may leave data unacknowledged (or its
#: keepalive probes unanswered) before the kernel ends it (``TCP_USER_TIMEOUT``).
#: Only a network that stopped answering trips it: a slow query's request is
#: acknowledged at once.
NETWORK_TIMEOUT: Final = 10
#: Seconds a connection of the refresh thread (the idle LISTEN one) may stay idle
#: before keepalive probes start, and between probes.
KEEPALIVE_IDLE: Final = 5
KEEPALIVE_INTERVAL: Final = 2
#: libpq's ``connect_timeout`` (seconds) for connections the refresh thread opens,
#: unless the database URL sets one.
CONNECT_TIMEOUT: Final = 5

_TCP_OPTIONS: Final = [
    (getattr(socket, name), value)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", max(1, NETWORK_TIMEOUT // KEEPALIVE_INTERVAL)),
        ("TCP_USER_TIMEOUT", NETWORK_TIMEOUT * 1000),
    )
    if hasattr(socket, name)  # Linux has them all; others some
]
#: The engines guarded, and whose threads are refresh threads there.
_guarded: weakref.WeakKeyDictionary[sa.Engine, list[Callable[[], bool]]] = (
    weakref.WeakKeyDictionary()
)
_guarding = threading.Lock()
#: The dialects whose connections cross a network (and whose drivers take
#: ``connect_timeout``): PostgreSQL, and MariaDB/MySQL by either name.
_NETWORKED: Final = frozenset({"postgresql"}) | MYSQL_DIALECTS
#: Marks, in a pooled connection's ``info``, a connection already bounded.
_BOUNDED = "corsadmin_network_bounded"


def bound_network_waits(dbapi_connection: Any) -> bool:
    """Keepalives and ``TCP_USER_TIMEOUT`` on a PostgreSQL (psycopg) or MariaDB
    (PyMySQL) connection's TCP socket (a unix socket needs none). True when set. The
    options stay on the connection (back in the pool): they only end a connection whose
    peer stopped answering."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:  # PyMySQL keeps its socket as _sock
        fileno = getattr(getattr(dbapi_connection, "_sock", None), "fileno", None)
    if fileno is None:
        return False
    try:
        sock = socket.socket(fileno=fileno())
    except (OSError, ValueError):
        return False
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in _TCP_OPTIONS:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
        return True
    finally:
        sock.detach()  # the socket stays the driver's: not closed here


def bound_refresh_connections(engine: sa.Engine, in_refresh_thread: Callable[[], bool]) -> bool:
    """Bound the network waits of every PostgreSQL connection ``engine`` hands to a
    thread for which ``in_refresh_thread()`` is true (see the module's doc): a
    ``connect_timeout`` for those it opens, :func:`bound_network_waits` on each one
    checked out. Idempotent. True for a PostgreSQL or MariaDB engine (both drivers take
    ``connect_timeout``); SQLite is left alone (False)."""
    if engine.dialect.name not in _NETWORKED:
        return False
    checks = _guarded.get(engine)
    if checks is not None and in_refresh_thread in checks:
        return True
    with _guarding:
        checks = _guarded.get(engine)
        if checks is None:
            checks = _guarded[engine] = []
            _listen(engine, checks)
        if in_refresh_thread not in checks:
            checks.append(in_refresh_thread)
    return True


def _listen(engine: sa.Engine, checks: list[Callable[[], bool]]) -> None:
    def on_connect(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        if any(check() for check in checks):
            params.setdefault("connect_timeout", CONNECT_TIMEOUT)

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if not record.info.get(_BOUNDED) and any(check() for check in checks):
            record.info[_BOUNDED] = bound_network_waits(dbapi_connection)

    sa.event.listen(engine, "do_connect", on_connect)
    sa.event.listen(engine, "checkout", on_checkout)


def supported(engine: sa.Engine) -> bool:
    """PostgreSQL through psycopg 3 (whose connections can wait for notifications)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def notify(connection: sa.Connection, revision: int) -> None:
    """Announce ``revision`` to every listener; delivered when the transaction commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_notify(:channel, :revision)"),
            {"channel": CHANNEL, "revision": str(revision)},
        )


class RevisionListener:
    """One dedicated connection (outside the pool) that LISTENs for new revisions."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._connection: Any = None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if a new revision was announced."""
        connection = self._connect()
        try:
            notified = False
            for _ in connection.notifies(timeout=timeout, stop_after=1):
                notified = True
            if notified:  # a burst of changes: one check covers them all
                for _ in connection.notifies(timeout=0.01):
                    pass
            return notified
        except Exception:
            self.close()
            raise

    def _connect(self) -> Any:
        if self._connection is None:
            pooled = self._engine.raw_connection()
            connection = pooled.driver_connection
            if connection is None:
                raise RuntimeError("no driver connection to listen on")
            pooled.detach()  # ours for good: not returned to (nor counted by) the pool
            connection.rollback()
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self._connection = connection
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                connection.close()
