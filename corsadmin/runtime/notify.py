"""Waking every worker the moment the revision moves, on PostgreSQL.

Every change sends ``NOTIFY corsadmin_revision`` inside its transaction
(delivered at commit). Each process's refresh thread keeps one connection
that ``LISTEN``s, and checks the revision as soon as a notification arrives
instead of waiting out the rest of ``CORSADMIN_REFRESH_INTERVAL``. The
interval's polling stays underneath: a lost connection or a notification
missed while reconnecting is caught by the next poll. Other databases poll.
"""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa

CHANNEL = "corsadmin_revision"


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
