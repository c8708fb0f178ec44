"""The admin UI's read-only queries over corsadmin's tables.

No Flask here either: each function takes a SQLAlchemy session. Writes never
happen here; every change goes through :class:`corsadmin.db.store.PolicyStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..db.models import AuditEvent, OriginUsage, Policy
from .review import PolicyFacts, RuleFacts

AnySession = Session | scoped_session[Any]

AUDIT_PAGE_SIZE = 100
REFUSED_LIMIT = 500


def facts_of(policy: Policy) -> PolicyFacts:
    """A stored policy (with its origin rules loaded) as the review's plain facts."""
    return PolicyFacts(
        name=policy.name,
        path=policy.path,
        created_at=policy.created_at,
        review_every_days=policy.review_every_days,
        reviewed_at=policy.reviewed_at,
        reviewed_by=policy.reviewed_by,
        enabled=policy.enabled,
        credentials=policy.credentials,
        private_network=policy.private_network,
        version=policy.version,
        rules=tuple(
            RuleFacts(
                origin=r.origin,
                note=r.note or "",
                expires_at=r.expires_at,
                created_at=r.created_at,
                created_by=r.created_by,
                last_seen_at=r.last_seen_at,
            )
            for r in policy.origin_rules
        ),
    )


@dataclass(frozen=True, slots=True)
class RefusedOrigin:
    """An origin that was refused on a policy's paths, and how often."""

    policy: str
    origin: str
    count: int
    first_seen: datetime
    last_seen: datetime


def refused_origins(
    session: AnySession, *, policy: str | None = None, limit: int = REFUSED_LIMIT
) -> list[RefusedOrigin]:
    """Refused (policy, origin) pairs, the most recently seen first."""
    query = (
        sa.select(OriginUsage)
        .where(OriginUsage.allowed.is_(False))
        .order_by(OriginUsage.last_seen.desc(), OriginUsage.id)
        .limit(limit)
    )
    if policy:
        query = query.where(OriginUsage.policy_name == policy)
    return [
        RefusedOrigin(u.policy_name, u.origin, int(u.count), u.first_seen, u.last_seen)
        for u in session.scalars(query)
    ]


def refused_origin(session: AnySession, policy: str, origin: str) -> RefusedOrigin | None:
    usage = session.scalar(
        sa.select(OriginUsage).where(
            OriginUsage.policy_name == policy,
            OriginUsage.origin == origin,
            OriginUsage.allowed.is_(False),
        )
    )
    if usage is None:
        return None
    return RefusedOrigin(
        usage.policy_name, usage.origin, int(usage.count), usage.first_seen, usage.last_seen
    )


def refused_policy_names(session: AnySession) -> list[str]:
    return list(
        session.scalars(
            sa.select(OriginUsage.policy_name)
            .where(OriginUsage.allowed.is_(False))
            .distinct()
            .order_by(OriginUsage.policy_name)
        )
    )


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: Sequence[AuditEvent]
    older: int | None  # pass as ``before`` for the next page, None on the last page


def audit_page(
    session: AnySession,
    *,
    policy: str | None = None,
    actor: str | None = None,
    before: int | None = None,
    size: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """One page of audit events, newest first, filtered by policy and by actor."""
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(size + 1)
    if policy:
        query = query.where(AuditEvent.policy_name == policy)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    events = list(session.scalars(query))
    older = events[size - 1].id if len(events) > size else None
    return AuditPage(events[:size], older)


def audit_filters(session: AnySession) -> tuple[list[str], list[str]]:
    """Every policy name and every actor the audit log mentions, sorted."""
    policies = session.scalars(
        sa.select(AuditEvent.policy_name)
        .where(AuditEvent.policy_name.is_not(None))
        .distinct()
        .order_by(AuditEvent.policy_name)
    )
    actors = session.scalars(sa.select(AuditEvent.actor).distinct().order_by(AuditEvent.actor))
    return [p for p in policies if p], list(actors)


def last_change(session: AnySession, policy: str) -> AuditEvent | None:
    """The newest audit event of a policy (shown when a save is refused as stale)."""
    return session.scalar(
        sa.select(AuditEvent)
        .where(AuditEvent.policy_name == policy, AuditEvent.action != "policy.review")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
