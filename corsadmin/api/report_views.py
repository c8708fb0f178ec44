"""What the admin UI's review, refused-origins and audit screens show, as JSON: the same
queries (:mod:`corsadmin.admin.queries`), the same bounds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from flask import Response, jsonify

from ..admin import queries
from ..admin.report_views import refused_items
from ..admin.settings import review_settings
from ..db import review as review_reads
from ..db.models import AuditEvent, utcnow
from ..engine.review import DueReview, PolicyFacts, Risk, RuleFinding
from ..policy.spec import format_time
from .blueprint import bp, db_session
from .body import MAX_QUERY_INT, query_int, query_text

#: The most audit events one page may hold (``limit``); the default is the admin's page.
MAX_AUDIT_LIMIT: Final = 500


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _risks(risks: tuple[Risk, ...]) -> list[dict[str, str]]:
    return [{"code": r.code, "message": r.message} for r in risks]


def _due(due: DueReview, now: datetime) -> dict[str, Any]:
    return {
        "policy": due.policy.name,
        "path": due.policy.path,
        "version": due.policy.version,
        "due_at": _time(due.status.due_at),
        "days_left": due.status.days_left(now),
        "last_reviewed_at": _time(due.status.last_reviewed_at),
        "last_reviewed_by": due.status.last_reviewed_by,
    }


def _finding(finding: RuleFinding) -> dict[str, Any]:
    rule = finding.rule
    return {
        "policy": finding.policy,
        "origin": rule.origin,
        "note": rule.note,
        "expires_at": _time(rule.expires_at),
        "created_at": _time(rule.created_at),
        "created_by": rule.created_by,
        "last_seen_at": _time(rule.last_seen_at),
        "expiry": finding.expiry,
        "stale": finding.stale,
        "risks": _risks(finding.risks),
    }


def _risky_policy(policy: PolicyFacts, risks: tuple[Risk, ...]) -> dict[str, Any]:
    return {"policy": policy.name, "path": policy.path, "risks": _risks(risks)}


@bp.get("/review")
def review() -> Response:
    """What needs a decision (the review screen): reviews due, expiring, stale and broad
    or risky rules, risky policies; each list at most ``limit`` long, ``totals`` says
    how many there are."""
    now = utcnow()
    settings = review_settings()
    report, totals = review_reads.review_report(db_session(), now, settings)
    return jsonify(
        settings={
            "stale_after_days": settings.stale_after_days,
            "expiring_within_days": settings.expiring_within_days,
        },
        limit=review_reads.REVIEW_LIST_LIMIT,
        totals={
            "due": totals.due,
            "expiring": totals.expiring,
            "stale": totals.stale,
            "risky": totals.risky,
            "policies": totals.policies,
        },
        due=[_due(d, now) for d in report.due],
        expiring=[_finding(f) for f in report.expiring],
        stale=[_finding(f) for f in report.stale],
        risky_rules=[_finding(f) for f in report.risky_rules],
        risky_policies=[_risky_policy(p, risks) for p, risks in report.risky_policies],
    )


@bp.get("/refused")
def refused() -> Response:
    """Which origins were refused on which policy (the refused-origins screen), the most
    recently seen first, at most ``limit``; ``?policy=`` for one policy."""
    items = refused_items(db_session(), query_text("policy"))
    return jsonify(
        limit=queries.REFUSED_LIMIT,
        refused=[
            {
                "policy": item.row.policy,
                "origin": item.row.origin,
                "count": item.row.count,
                "first_seen": _time(item.row.first_seen),
                "last_seen": _time(item.row.last_seen),
                "example_path": item.row.example_path,
                "example_method": item.row.example_method,
                "kind": item.kind,
                "policy_exists": item.exists,
                "now_allowed_by": item.now_allowed_by,
            }
            for item in items
        ],
    )


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _time(event.at),
        "actor": event.actor,
        "action": event.action,
        "policy": event.policy_name,
        "summary": event.summary,
        "revision": event.revision,
        "before": event.before,
        "after": event.after,
    }


@bp.get("/audit")
def audit() -> Response:
    """Every change, newest first, filtered by ``policy``, ``actor`` and ``action``;
    ``limit`` events a page, ``before`` (the previous page's ``next``) for the next."""
    limit = query_int("limit", default=queries.AUDIT_PAGE_SIZE, minimum=1, maximum=MAX_AUDIT_LIMIT)
    before = query_int("before", default=None, minimum=1, maximum=MAX_QUERY_INT)
    assert limit is not None
    page = queries.audit_page(
        db_session(),
        policy=query_text("policy"),
        actor=query_text("actor"),
        action=query_text("action"),
        before=before,
        size=limit,
    )
    return jsonify(events=[_event(e) for e in page.events], next=page.older)
