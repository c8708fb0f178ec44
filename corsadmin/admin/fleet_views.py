"""The Workers screen (the fleet view) and the line the page after a change shows:
"revision 8: enforced by 3 of 3 workers, 0.04 s after commit".

When the database cannot be read the screen says so and shows this process alone,
from memory, flagged stale once its last check is old (never a 500): the page frame
then reads nothing more from the database (no draft badge).
"""

from __future__ import annotations

import os
import time
from typing import Final

from flask import g, get_flashed_messages, render_template

from ..engine.fleet import FleetSummary, WorkerFacts, format_age
from ..runtime.fleet import FleetView, host_name
from ..state import state
from .blueprint import bp

#: After a change, the page waits at most this many seconds for every live process to
#: report the new revision before it shows how far it got ("so far" otherwise).
MAX_WAIT_FOR_FLEET: Final = 1.0
#: How often it reads the table meanwhile (seconds).
FLEET_POLL: Final = 0.1


class FleetFormatting:
    """Display helpers of the Workers screen (``f`` in its template)."""

    @staticmethod
    def age(now: float, when: float | None) -> str:
        return "never" if when is None else f"{format_age(now - when)} ago"

    @staticmethod
    def moment(when: float | None) -> str:
        return "-" if when is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))

    @staticmethod
    def propagation(worker: WorkerFacts) -> str:
        seconds = worker.propagation
        return "-" if seconds is None else f"{seconds:.2f} s"

    @staticmethod
    def listening(worker: WorkerFacts) -> str:
        return {None: "polling", True: "yes", False: "down"}[worker.listening]


@bp.get("/workers")
def workers() -> str:
    """Every live process: revision, loaded and checked ages, listening; lagging and
    stale ones flagged; the current revision's reach."""
    view = state().fleet_view()
    if view.unreachable is not None:
        g.corsadmin_database_busy = True  # the frame reads nothing more (no draft badge)
    return render_template(
        "corsadmin/workers.html",
        view=view,
        f=FleetFormatting,
        heartbeat=state().config.fleet_heartbeat,
        own=(host_name(), os.getpid()),
    )


def after_change_summary() -> FleetSummary | None:
    """On the page after a saved change (a success flash): how far the current revision
    got across the live processes, waiting up to :data:`MAX_WAIT_FOR_FLEET` for all of
    them. None on other pages, or when the table cannot be read."""
    if g.get("corsadmin_database_busy") or not state().config.fleet_report:
        return None
    flashed = get_flashed_messages(with_categories=True)
    if not any(isinstance(f, tuple) and f[0] == "success" for f in flashed):
        return None
    view = _read()
    end = time.monotonic() + MAX_WAIT_FOR_FLEET
    while view is not None and view.workers and not view.summary.complete:
        if time.monotonic() >= end:
            break
        time.sleep(FLEET_POLL)
        view = _read()
    return None if view is None or not view.workers else view.summary


def _read() -> FleetView | None:
    view = state().fleet_view()
    return None if view.unreachable is not None else view


@bp.context_processor
def fleet_context() -> dict[str, object]:
    """The frame's after-a-change line (computed only when the frame asks for it)."""
    return {"fleet_after_change": after_change_summary}
