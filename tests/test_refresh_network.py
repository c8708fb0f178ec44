"""The refresh thread's PostgreSQL and MariaDB connections give up on a network that stopped
answering (corsadmin.runtime.notify.bound_refresh_connections): a connection checked
out by the refresh thread has TCP keepalives and TCP_USER_TIMEOUT; one it opens has
the driver's connect_timeout; other threads' connections are left as they are; other
databases are left alone. tests/test_multihost.py shows what it is for: a host cut off
from the database whose workers notice instead of hanging."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from corsadmin.runtime.notify import (
    CONNECT_TIMEOUT,
    KEEPALIVE_IDLE,
    NETWORK_TIMEOUT,
    bound_refresh_connections,
)


def socket_options(dbapi_connection: Any) -> tuple[int, int, int]:
    """SO_KEEPALIVE, TCP_KEEPIDLE and TCP_USER_TIMEOUT of a connection's socket (psycopg:
    its fileno(); PyMySQL: its _sock)."""
    fileno = getattr(dbapi_connection, "fileno", None) or dbapi_connection._sock.fileno
    sock = socket.socket(fileno=fileno())
    try:
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        )
    finally:
        sock.detach()


def checked_out(engine: sa.Engine, in_thread: bool) -> tuple[tuple[int, int, int], str | None]:
    """Check a connection out of ``engine``, in a thread of its own (``in_thread``: the
    one the guard calls the refresh thread) or in this one: its socket options and the
    connect_timeout it was opened with (as text; None: the driver's default)."""
    found: list[tuple[tuple[int, int, int], str | None]] = []

    def use() -> None:
        with engine.connect() as connection:
            raw: Any = connection.connection.driver_connection
            if connection.dialect.name == "postgresql":
                timeout = raw.info.get_parameters().get("connect_timeout")
            else:  # PyMySQL's default is 10
                timeout = None if raw.connect_timeout == 10 else str(raw.connect_timeout)
            found.append((socket_options(raw), timeout))

    if in_thread:
        worker = threading.Thread(target=use)
        refresh_threads.add(worker)
        worker.start()
        worker.join(timeout=30)
    else:
        use()
    return found[0]


refresh_threads: set[threading.Thread] = set()
is_refresh_thread: Callable[[], bool] = lambda: threading.current_thread() in refresh_threads  # noqa: E731


def test_the_refresh_threads_connections_are_bounded_and_no_other(database_url: str) -> None:
    guarded = sa.create_engine(database_url)
    other = sa.create_engine(database_url)
    try:
        applies = bound_refresh_connections(guarded, is_refresh_thread)
        assert bound_refresh_connections(guarded, is_refresh_thread) == applies  # idempotent
        bound_refresh_connections(other, is_refresh_thread)
        if database_url.startswith("sqlite"):
            assert applies is False
            with guarded.connect() as connection:  # left alone, and still working
                assert connection.execute(sa.text("SELECT 1")).scalar() == 1
            return
        assert applies is True
        options, timeout = checked_out(guarded, in_thread=True)
        assert options == (1, KEEPALIVE_IDLE, NETWORK_TIMEOUT * 1000)
        assert timeout == str(CONNECT_TIMEOUT)
        # Another thread's connection (of an engine the refresh thread never used): as is.
        options, timeout = checked_out(other, in_thread=False)
        assert options[2] == 0  # no TCP_USER_TIMEOUT
        assert timeout is None
    finally:
        guarded.dispose()
        other.dispose()
