"""Waiting for a process to take a change in, by its refresh thread's own count of
checks rather than by the clock.

A timed assertion ("enforced within 0.7 s") fails whenever a loaded CI machine
withholds the CPU from a thread for a moment, and says nothing about the mechanism.
These helpers state the mechanism: once a revision check that *began after the
change* has ended, the change is enforced. How long that takes is measured by the
benchmarks (``benchmarks/bench.py`` propagation, ``benchmarks/multihost.py``), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import sqlalchemy as sa
from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.runtime.refresh import SnapshotHolder
from tests.support.servers import until

#: How long a wait may last before the test fails: a net for a hang (a thread that
#: stopped checking, a notification that never comes), never a speed target.
NET: Final = 30.0


def wait_until(predicate: Callable[[], object], timeout: float = NET) -> None:
    """Return once ``predicate()`` holds; fail after ``timeout`` seconds."""
    until("the awaited condition", predicate, timeout, step=0.02)


def holder_of(app: Flask) -> SnapshotHolder:
    """The application's snapshot holder (its refresh thread's state)."""
    return CorsAdmin.state(app).holder


def after_next_check(app: Flask) -> None:
    """Return once a revision check that began after this call has ended.

    :attr:`SnapshotHolder.checks` counts ended checks, and the refresh thread checks
    one at a time. Read ``n`` here: check ``n + 1`` may be under way (begun before
    the call), but check ``n + 2`` begins after it, so after the call. Once ``n + 2``
    checks have ended, whatever was committed before the call is in force.
    """
    holder = holder_of(app)
    assert holder.background, "the refresh thread is off: requests do the checks"
    first = holder.checks
    wait_until(lambda: holder.checks >= first + 2)


def after_a_notification(app: Flask, before: int) -> None:
    """Return once a check the refresh thread made because a change notification woke
    it has ended, ``before`` being :attr:`SnapshotHolder.notifications` read before the
    change was committed (while the thread was listening)."""
    holder = holder_of(app)
    wait_until(lambda: holder.notifications > before)


def listeners(app: Flask) -> int:
    """Connections to the app's PostgreSQL database (other than this one) whose last
    statement was the LISTEN: the refresh thread is listening once this is above 0."""
    with app.app_context():
        session = CorsAdmin.state(app).db.session
        found = session.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN corsadmin_revision%' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        session.rollback()
    return int(found or 0)
