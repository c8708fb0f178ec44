"""``corsadmin draft report``: what the active draft would do, from history and from
live traffic (:mod:`corsadmin.db.impact`), as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import click

from ..db.impact import draft_report
from ..engine.impact import (
    HEADERS,
    NEWLY_ALLOWED,
    NEWLY_REFUSED,
    Beyond,
    DraftReport,
    Impact,
    SeenOrigin,
    TrafficReport,
    TrafficRow,
    draft_document,
)
from ..engine.impact_document import impact_of, traffic_of
from ..policy.draft import Draft
from ..policy.spec import format_time
from ..state import state
from .context import app_or_remote, format_option, remote_api
from .errors import user_errors

__all__ = ["draft_header", "format_report", "header_lines", "report_command"]

#: How each outcome of live traffic reads in the report.
_TRAFFIC_LABELS = {
    NEWLY_REFUSED: "would be refused",
    NEWLY_ALLOWED: "would be allowed",
    HEADERS: "other headers",
}
#: What an outcome's origins beyond those listed are, in a sentence.
_TRAFFIC_MORE = {
    NEWLY_REFUSED: "it would refuse",
    NEWLY_ALLOWED: "it would allow",
    HEADERS: "it would answer with other headers",
}
NOTHING_SEEN = "nothing seen yet"
#: How the header names what the draft does to each policy.
_ACTIONS = {"update": "", "create": " (new)", "delete": " (deleted)"}


@click.command("report")
@format_option("Text for people, JSON (the same data, stable keys) for scripts.")
@app_or_remote
@user_errors
def report_command(output_format: str) -> None:
    """What the active draft would do to real traffic.

    From history: the origins the usage counts saw on the policies it changes,
    replayed against it (would have refused, would have allowed). From live
    traffic: the requests the workers answered while it was active that it would
    answer otherwise, as they flushed them. Exit status 1 when there is no draft.
    """
    remote = remote_api()
    if remote:
        document = remote.get("/draft/report")
    else:
        with state().db.engine.connect() as connection:
            document = draft_report(connection).as_document()
    if output_format == "json":
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for line in format_report(document):
        click.echo(line)


def format_report(report: DraftReport | Mapping[str, Any]) -> list[str]:
    """The report (or its document) as lines of text: the draft, then history, then
    live traffic."""
    if isinstance(report, DraftReport):
        report = report.as_document()
    draft = report["draft"]
    return [
        *header_lines(draft),
        "",
        "From history (the origins seen on those policies):",
        *(f"  {line}" for line in _history(draft["policies"], impact_of(report["history"]))),
        "",
        "Live traffic while the draft is active (as the workers flushed it):",
        *(f"  {line}" for line in _traffic(traffic_of(report["traffic"]))),
    ]


def _when(value: datetime) -> str:
    return format_time(value)


def _times(count: int, unit: str) -> str:
    return f"{count:,} {unit}" if count == 1 else f"{count:,} {unit}s"


def draft_header(draft: Draft) -> list[str]:
    """Who proposed the draft, when, why, its version and the policies it changes
    (``draft show`` and ``draft report`` print it)."""
    return header_lines(draft_document(draft))


def header_lines(draft: Mapping[str, Any]) -> list[str]:
    """:func:`draft_header` of the draft's document (``id`` or ``draft``, its times as
    text, ``policies``: name to action)."""
    proposed = f"by {draft['created_by']}, {draft['created_at']}"
    number = draft["id"] if "id" in draft else draft["draft"]
    lines = [f"draft {number} (version {draft['version']}) {proposed}"]
    # A draft is made at version 1; every later change moves it on (and its updated_at:
    # the document's times are to the second, its version tells).
    if draft["version"] > 1 or draft["updated_by"] != draft["created_by"]:
        lines.append(f"last changed by {draft['updated_by']}, {draft['updated_at']}")
    lines.append(f"reason: {draft['reason'] or '(none given)'}")
    actions = draft["policies"]
    changes = [f"{name}{_ACTIONS[actions[name]]}" for name in sorted(actions)]
    lines.append(f"policies it changes: {', '.join(changes) or 'none'}")
    return lines


def _seen_line(verb: str, seen: SeenOrigin) -> str:
    line = (
        f"{verb} {seen.origin} on {seen.policy}: seen {_times(seen.count, 'time')} "
        f"since {_when(seen.first_seen)}, last {_when(seen.last_seen)}"
    )
    if seen.live_rule is not None and seen.live_rule != seen.origin:
        line += f" (allowed live by rule {seen.live_rule})"
    if seen.draft_rule is not None and seen.draft_rule != seen.origin:
        line += f" (by the draft's rule {seen.draft_rule})"
    return line


def _beyond(beyond: Beyond, what: str) -> str:
    return (
        f"... and {_times(beyond.origins, 'more origin')} {what} "
        f"({_times(beyond.requests, 'request')})"
    )


def _history(actions: Mapping[str, str], impact: Impact) -> list[str]:
    lines = [_seen_line("would have refused", s) for s in impact.newly_refused]
    if impact.beyond.get(NEWLY_REFUSED):
        lines.append(_beyond(impact.beyond[NEWLY_REFUSED], "it would have refused"))
    lines += [_seen_line("would have allowed", s) for s in impact.newly_allowed]
    if impact.beyond.get(NEWLY_ALLOWED):
        lines.append(_beyond(impact.beyond[NEWLY_ALLOWED], "it would have allowed"))
    if not lines:
        lines.append(
            f"no origin seen ({impact.seen:,}) would have been answered otherwise"
            if impact.seen
            else NOTHING_SEEN
        )
    for bucket in impact.unlisted:
        lines.append(
            f"not replayed: {_times(bucket.count, 'request')} on {bucket.policy} counted "
            f"together as {bucket.origin}, last {_when(bucket.last_seen)}"
        )
    for policy, unread in sorted(impact.unread.items()):
        lines.append(
            f"not read: {_times(unread.origins, 'more origin')} on {policy} "
            f"({_times(unread.requests, 'request')}), the least seen, were not replayed"
        )
    for name in sorted(actions):
        if actions[name] == "create":
            lines.append(f"{name} is a new policy: no history")
    return lines


def _traffic_line(row: TrafficRow) -> str:
    line = (
        f"{_TRAFFIC_LABELS.get(row.outcome, row.outcome)}: {row.origin} on {row.policy}: "
        f"{_times(row.count, 'request')}, last {_when(row.last_seen)}"
    )
    if row.example_method or row.example_path:
        line += f", e.g. {row.example_method} {row.example_path}".rstrip()
    return line


def _traffic(traffic: TrafficReport) -> list[str]:
    if traffic.empty:
        return [NOTHING_SEEN]
    lines = []
    for policy in traffic.policies:
        otherwise = traffic.answered_otherwise(policy)
        if policy in traffic.evaluated:
            evaluated = _times(traffic.evaluated[policy], "request")
            lines.append(f"{policy}: {evaluated} evaluated, {otherwise:,} answered otherwise")
        else:
            lines.append(f"{policy}: {_times(otherwise, 'request')} answered otherwise")
        for outcome in _TRAFFIC_LABELS:
            lines += [
                _traffic_line(r)
                for r in traffic.rows
                if r.policy == policy and r.outcome == outcome
            ]
            beyond = traffic.beyond(policy, outcome)
            if beyond:
                lines.append(_beyond(beyond, f"{_TRAFFIC_MORE[outcome]} on {policy}"))
    return lines
