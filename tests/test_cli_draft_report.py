"""``corsadmin draft report`` (``corsadmin/cli/draft_report.py``), text and JSON.

Run through Flask's CLI runner against the host app, on SQLite and on PostgreSQL,
the command mounted in a ``draft`` group as the ``corsadmin`` group mounts it.
Usage is counted by the real usage recorder; traffic rows are written as the
runtime's writer writes them.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import Result
from flask.testing import FlaskCliRunner

from corsadmin.cli.draft_report import report_command
from corsadmin.db import impact as db_impact
from corsadmin.db.drafts import DraftStore, read_draft
from corsadmin.db.models import OriginUsage
from corsadmin.engine.counting import NOT_AN_ORIGIN
from corsadmin.engine.impact import EVALUATED, HEADERS, NEWLY_ALLOWED, NEWLY_REFUSED
from corsadmin.policy.draft import Draft
from corsadmin.policy.spec import format_time
from tests.support.host import Host
from tests.support.impact import add_traffic, allowed_by_itself, count_usage

PARTNER = "https://app.partner.example"
HISTORY = "From history (the origins seen on those policies):"
LIVE = "Live traffic while the draft is active (as the workers flushed it):"
OTHER = "https://other.example"
NEW = "https://new.example"

draft_group = click.Group("draft", commands=[report_command])


@pytest.fixture
def seeded(host: Host) -> Host:
    """Policy ``api`` allowing the partner and another origin."""
    with host.app.app_context():
        store = host.cors.store("tester", host.app)
        store.create_policy({"name": "api", "path": "/api/**", "origins": [PARTNER, OTHER]})
        host.db.session.remove()
    return host


def make_draft(host: Host, **changes: Any) -> Draft:
    """Draft, as alice: remove the partner from ``api``, add NEW."""
    with host.app.app_context():
        drafts = DraftStore(host.cors.store("alice", host.app))
        drafts.remove_origin("api", PARTNER, reason="partner leaves")
        drafts.add_origin("api", NEW)
        draft = read_draft(host.db.session)
        host.db.session.remove()
    assert draft is not None
    return draft


def report(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(draft_group, ["report", *args])


def usage_times(host: Host, origin: str) -> tuple[str, str]:
    with host.app.app_context():
        row = host.db.session.execute(
            sa.select(OriginUsage.first_seen, OriginUsage.last_seen).where(
                OriginUsage.origin == origin
            )
        ).one()
        host.db.session.remove()
    return format_time(row[0]), format_time(row[1])


def test_no_draft_is_an_error(seeded: Host, runner: FlaskCliRunner) -> None:
    result = report(runner)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: there is no active draft\n"


def test_nothing_seen_yet(seeded: Host, runner: FlaskCliRunner) -> None:
    draft = make_draft(seeded)
    result = report(runner)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"draft {draft.id} (version 2) by alice, {format_time(draft.created_at)}",
        f"last changed by alice, {format_time(draft.updated_at)}",
        "reason: partner leaves",
        "policies it changes: api",
        "",
        HISTORY,
        "  nothing seen yet",
        "",
        LIVE,
        "  nothing seen yet",
    ]


def test_history_and_live_traffic_as_text(seeded: Host, runner: FlaskCliRunner) -> None:
    engine = _engine(seeded)
    allowed_by_itself(engine, "api", PARTNER, 41_200)
    count_usage(engine, "api", NEW, 3)
    count_usage(engine, "api", NOT_AN_ORIGIN, 2)
    draft = make_draft(seeded)
    add_traffic(engine, draft.id, "api", EVALUATED, "", 1234, path="", method="")
    add_traffic(engine, draft.id, "api", NEWLY_REFUSED, PARTNER, 1180, path="/api/v1/orders")
    add_traffic(engine, draft.id, "api", NEWLY_ALLOWED, NEW, 1, method="POST")
    add_traffic(engine, draft.id, "api", HEADERS, OTHER, 3, method="OPTIONS")
    result = report(runner)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first, last = usage_times(seeded, PARTNER)
    new_first, new_last = usage_times(seeded, NEW)
    _, bucket_last = usage_times(seeded, NOT_AN_ORIGIN)
    history = lines[lines.index(HISTORY) + 1 :]
    assert history[:4] == [
        f"  would have refused {PARTNER} on api: seen 41,200 times since {first}, last {last}",
        f"  would have allowed {NEW} on api: seen 3 times since {new_first}, last {new_last}",
        f"  not replayed: 2 requests on api counted together as {NOT_AN_ORIGIN}, "
        f"last {bucket_last}",
        "",
    ]
    live = lines[lines.index(LIVE) :]
    assert live[1] == "  api: 1,234 requests evaluated, 1,184 answered otherwise"
    assert live[2].startswith(f"  would be refused: {PARTNER} on api: 1,180 requests, last ")
    assert live[2].endswith(", e.g. GET /api/v1/orders")
    assert live[3].startswith(f"  would be allowed: {NEW} on api: 1 request, last ")
    assert live[3].endswith(", e.g. POST /api/items")
    assert live[4].startswith(f"  other headers: {OTHER} on api: 3 requests, last ")
    assert len(live) == 5
    # What tests/test_browser_draft.py looks for.
    assert any("would be refused" in line and PARTNER in line for line in lines)


def _engine(host: Host) -> sa.Engine:
    with host.app.app_context():
        return host.db.engine


def test_json_has_the_same_data(seeded: Host, runner: FlaskCliRunner) -> None:
    engine = _engine(seeded)
    allowed_by_itself(engine, "api", PARTNER, 5)
    draft = make_draft(seeded)
    add_traffic(engine, draft.id, "api", EVALUATED, "", 9, path="", method="")
    add_traffic(engine, draft.id, "api", NEWLY_REFUSED, PARTNER, 7, path="/api/x")
    result = report(runner, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == ["draft", "history", "traffic"]
    assert document["draft"] == {
        "id": draft.id,
        "reason": "partner leaves",
        "created_by": "alice",
        "created_at": format_time(draft.created_at),
        "updated_by": "alice",
        "updated_at": format_time(draft.updated_at),
        "version": 2,
        "policies": {"api": "update"},
    }
    history = document["history"]
    assert history["policies"] == ["api"]
    assert [(s["origin"], s["count"], s["live_rule"]) for s in history["newly_refused"]] == [
        (PARTNER, 5, PARTNER)
    ]
    assert history["newly_allowed"] == []
    assert history["unlisted"] == []
    traffic = document["traffic"]
    assert traffic["evaluated"] == {"api": 9}
    assert [
        (r["outcome"], r["origin"], r["count"], r["example_method"], r["example_path"])
        for r in traffic["rows"]
    ] == [(NEWLY_REFUSED, PARTNER, 7, "GET", "/api/x")]
    assert traffic["totals"] == [
        {"policy": "api", "outcome": NEWLY_REFUSED, "origins": 1, "requests": 7}
    ]


def test_bounded_lists_say_how_much_more(
    seeded: Host, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_impact, "MAX_TRAFFIC_ORIGINS_PER_OUTCOME", 1)
    monkeypatch.setattr(db_impact, "MAX_IMPACT_ORIGINS", 1)
    engine = _engine(seeded)
    draft = make_draft(seeded)
    for i in range(3):
        add_traffic(engine, draft.id, "api", NEWLY_REFUSED, f"https://r{i}.example", 10 - i)
    result = report(runner)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("  would be refused: https://r0.example on api") for line in lines)
    assert not any("https://r1.example" in line for line in lines)
    assert "  ... and 2 more origins it would refuse on api (17 requests)" in lines
    assert "  api: 27 requests answered otherwise" in lines
