"""``corsadmin status``: every live process enforcing the policy (the fleet view), the
current revision's reach, and the processes lagging or stale. On this app's database,
or with ``--url`` on a remote instance (``GET /workers``, a read token).

Exit status 0 when every live process is current (none reported: 0 too), 1 when one
is lagging or stale, or the fleet table cannot be read (locally: one ``error:`` line),
so a deploy script or a probe can wait on it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from ..engine.fleet import format_age
from ..state import state
from .context import app_or_remote, format_option, remote_api
from .errors import user_errors

_LISTENING = {None: "-", True: "yes", False: "no"}


@click.command("status")
@format_option("Lines for people, or JSON (times in ISO 8601, UTC).")
@app_or_remote
@user_errors
def status_command(output_format: str) -> None:
    """Every live process: its revision, when it loaded it and last checked, whether
    it listens for changes; the lagging and stale ones flagged. Exit status 0 when
    all are current, 1 otherwise."""
    remote = remote_api()
    if remote is not None:
        document = remote.get("/workers")
    else:
        document = state().fleet_view(fallback=False).to_document()
    if output_format == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        for line in format_document(document):
            click.echo(line)
    sys.exit(0 if document["all_current"] else 1)


def _seconds(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def _ago(now: float, value: str | None, never: str = "-") -> str:
    when = _seconds(value)
    return never if when is None else f"{format_age(now - when)} ago"


def _row(worker: dict[str, Any], now: float) -> tuple[str, ...]:
    status = str(worker["status"])
    propagation = worker["propagation"]
    return (
        str(worker["host"]),
        str(worker["pid"]),
        str(worker["revision"]) if worker["revision"] >= 0 else "none",
        status if status == "current" else status.upper(),
        _ago(now, worker["loaded_at"]),
        "-" if propagation is None else f"{propagation:.2f} s",
        _ago(now, worker["checked_at"], "never"),
        _LISTENING[worker["listening"]],
        _ago(now, worker["started_at"]),
    )


def format_document(document: dict[str, Any]) -> list[str]:
    """The fleet view (its JSON document) as lines: the summary, a table, the counts."""
    committed = document["committed_at"]
    lines = [document["summary"]["text"] + (f" (committed {committed})" if committed else "")]
    if document["error"]:
        lines.append(f"the fleet table cannot be read ({document['error']}): this process only")
    workers = document["workers"]
    if not workers:
        return [*lines, "no process has reported lately (they report once they serve requests)"]
    now = _seconds(document["now"]) or 0.0
    header = ("HOST", "PID", "REVISION", "STATUS", "LOADED", "AFTER COMMIT", "CHECKED")
    rows: list[tuple[str, ...]] = [(*header, "LISTENING", "STARTED")]
    rows += [_row(worker, now) for worker in workers]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    counts = document["counts"]
    noun = "process" if len(workers) == 1 else "processes"
    lines.append(
        f"{len(workers)} {noun}: {counts['current']} current, {counts['lagging']} lagging, "
        f"{counts['stale']} stale"
        + (" (the first ones only: more are live)" if document["truncated"] else "")
    )
    return lines
