"""``corsadmin status``: every live process enforcing the policy (the fleet view), the
current revision's reach, and the processes lagging or stale.

Exit status 0 when every live process is current (none reported: 0 too), 1 when one
is lagging or stale (or the database cannot be read: one ``error:`` line), so a
deploy script or a probe can wait on it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from ..engine.fleet import WorkerFacts, WorkerStatus, format_age
from ..runtime.fleet import FleetView
from ..state import state
from .context import format_option, local_only
from .errors import user_errors


@click.command("status")
@format_option("Lines for people, or JSON (times in epoch seconds).")
@local_only
@user_errors
def status_command(output_format: str) -> None:
    """Every live process: its revision, when it loaded it and last checked, whether
    it listens for changes; the lagging and stale ones flagged. Exit status 0 when
    all are current, 1 otherwise."""
    view = state().fleet_view(fallback=False)
    if output_format == "json":
        click.echo(json.dumps(view.to_document(), indent=2))
    else:
        for line in format_view(view):
            click.echo(line)
    sys.exit(0 if view.all_current else 1)


def _when(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _listening(worker: WorkerFacts) -> str:
    return {None: "-", True: "yes", False: "no"}[worker.listening]


def _row(worker: WorkerFacts, status: WorkerStatus, now: float) -> tuple[str, ...]:
    propagation = worker.propagation
    return (
        worker.host,
        str(worker.pid),
        str(worker.revision) if worker.revision >= 0 else "none",
        status.value.upper() if status is not WorkerStatus.CURRENT else status.value,
        "-" if worker.loaded_at is None else f"{format_age(now - worker.loaded_at)} ago",
        "-" if propagation is None else f"{propagation:.2f} s",
        "never" if worker.checked_at is None else f"{format_age(now - worker.checked_at)} ago",
        _listening(worker),
        f"{format_age(now - worker.started_at)} ago",
    )


def format_view(view: FleetView) -> list[str]:
    """The fleet view as lines: the summary, a table, the counts."""
    committed = f" (committed {_when(view.committed_at)})" if view.committed_at else ""
    lines = [view.summary.text() + committed]
    if not view.workers:
        return [*lines, "no process has reported lately (they report once they serve requests)"]
    header = ("HOST", "PID", "REVISION", "STATUS", "LOADED", "AFTER COMMIT", "CHECKED")
    rows: list[tuple[str, ...]] = [(*header, "LISTENING", "STARTED")]
    rows += [_row(worker, status, view.now) for worker, status in view.workers]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    counts = view.counts()
    noun = "process" if len(view.workers) == 1 else "processes"
    lines.append(
        f"{len(view.workers)} {noun}: {counts['current']} current, {counts['lagging']} lagging, "
        f"{counts['stale']} stale"
        + (" (the first ones only: more are live)" if view.truncated else "")
    )
    return lines
