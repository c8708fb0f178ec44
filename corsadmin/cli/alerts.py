"""``corsadmin review --due`` and ``corsadmin alerts send|list``: the alerts for cron.

``review --due`` prints what is due now (the alerts' detectors, nothing queued or
sent): reviews due, origin rules expiring within ``CORSADMIN_EXPIRING_WITHIN_DAYS``,
refusal spikes, lagging workers. Its exit status is :data:`EXIT_NOTHING_DUE` (0)
when nothing is due and :data:`EXIT_DUE` (3) when something is; an error is 1, as
for every corsadmin command, so a cron job tells the three apart.

The JSON (``--format json``) is ``{"now": ISO 8601, "count": n, "events": [...]}``,
each event ``{"id", "kind", "key", "policy", "summary", "detected_at",
"details": {...}}``: the webhook's body, the same keys in the same meaning.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, Final

import click

from ..db import alerts as outbox
from ..db.review import review_report
from ..engine.alerts import iso, webhook_body
from ..engine.review import ReviewSettings
from ..runtime.alerts import utc_now
from ..state import state
from .context import format_option, local_only
from .errors import fail, user_errors

#: ``review --due``: nothing is due.
EXIT_NOTHING_DUE: Final = 0
#: ``review --due``: something is due (1 stays "error", as for every command).
EXIT_DUE: Final = 3
#: ``alerts list``: the alerts listed by default, and at most.
DEFAULT_LIST_LIMIT: Final = 50
MAX_LIST_LIMIT: Final = 1000

NO_WEBHOOK: Final = (
    "CORSADMIN_ALERT_WEBHOOK_URL is not set: there is nowhere to send alerts "
    "(`corsadmin review --due` lists what is due without a webhook)"
)


@click.command("review")
@click.option(
    "--due",
    is_flag=True,
    help="List what is due now (reviews, expiring rules, refusal spikes, lagging "
    "workers); exit 0 when nothing is, 3 when something is.",
)
@format_option("Text for people, JSON (stable keys, the webhook's events) for scripts.")
@local_only
@user_errors
def review_command(due: bool, output_format: str) -> None:
    """What needs an operator's decision: with --due, the events due now (for cron);
    without, how many items the review screen lists."""
    app_state = state()
    now = app_state.alerts.clock() if app_state.alerts is not None else utc_now()
    if not due:
        _review_totals(now, output_format)
        return
    with app_state.engine().connect() as connection:
        config = app_state.config
        events = outbox.detect(
            connection, now, config.expiring_within_days, heartbeat=config.fleet_heartbeat
        )
    bodies = [webhook_body(e, now) for e in events]
    if output_format == "json":
        document = {"now": iso(now), "count": len(bodies), "events": bodies}
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    elif not bodies:
        click.echo("nothing is due")
    else:
        for body in bodies:
            click.echo(f"{body['kind']}: {body['summary']}")
    sys.exit(EXIT_DUE if bodies else EXIT_NOTHING_DUE)


def _review_totals(now: datetime, output_format: str) -> None:
    config = state().config
    settings = ReviewSettings(config.stale_after_days, config.expiring_within_days)
    _report, totals = review_report(state().db.session, now, settings)
    counts = {
        "due": totals.due,
        "expiring": totals.expiring,
        "stale": totals.stale,
        "risky": totals.risky,
    }
    if output_format == "json":
        click.echo(json.dumps({"now": iso(now), **counts, "policies": totals.policies}))
        return
    for name, count in counts.items():
        click.echo(f"{name}: {count}")


@click.group("alerts")
def alerts_group() -> None:
    """Scan for alerts and post them to the webhook; list the recent ones."""


@alerts_group.command("send")
@local_only
@user_errors
def alerts_send() -> None:
    """Scan for events now, queue the new ones and post every alert due (for cron;
    the refresh thread does the same every CORSADMIN_ALERT_INTERVAL)."""
    runner = state().alerts
    if runner is None or runner.webhook is None:
        fail(NO_WEBHOOK)
    result = runner.run(state().engine())
    click.echo(
        f"{result.detected} event(s) found, {result.queued} new; {result.delivered} "
        f"delivered, {result.retrying} to retry, {result.failed} failed"
    )


@alerts_group.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIST_LIMIT),
    default=DEFAULT_LIST_LIMIT,
    show_default=True,
    help="How many alerts, the most recent first.",
)
@format_option("A line per alert, or JSON (times in ISO 8601, UTC).")
@local_only
@user_errors
def alerts_list(limit: int, output_format: str) -> None:
    """The most recent alerts and how their delivery went."""
    with state().engine().connect() as connection:
        rows = outbox.recent_alerts(connection, limit)
    found = [_alert_document(row) for row in rows]
    if output_format == "json":
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no alerts")
    for alert in found:
        click.echo(
            f"{alert['detected_at']}  {alert['status']:<9}  attempts {alert['attempts']}  "
            f"{alert['kind']}: {alert['summary']}"
            + (f"  (last error: {alert['last_error']})" if alert["last_error"] else "")
        )


def _alert_document(row: Any) -> dict[str, Any]:
    return {
        "key": row.key,
        "kind": row.kind,
        "policy": row.policy_name,
        "summary": row.summary,
        "detected_at": iso(row.created_at),
        "status": row.status,
        "attempts": int(row.attempts),
        "next_attempt_at": iso(row.next_attempt_at) if row.status == outbox.PENDING else None,
        "delivered_at": iso(row.delivered_at),
        "last_error": row.last_error,
    }
