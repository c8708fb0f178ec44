"""The admin UI's read-only queries over corsadmin's tables.

No Flask here either: each function takes a SQLAlchemy session. Writes never
happen here; every change goes through :class:`corsadmin.db.store.PolicyStore`.
The review's reads (facts, risky rules, the bounded report) are in
:mod:`corsadmin.db.review`, below the CLI too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from ..db.drafts import ACTIVE
from ..db.models import (
    ORIGIN_TEXT_LENGTH,
    AuditEvent,
    DraftPolicyRow,
    DraftRow,
    OriginRuleRow,
    OriginUsage,
    Policy,
)
from ..db.review import (
    REVIEW_CHUNK_ROWS,
    plain_https_rule,
    risky_rule_candidates,
    rule_facts,
)
from ..db.review import AnySession as AnySession
from ..engine.review import RuleFacts, rule_risks

AUDIT_PAGE_SIZE = 100
REFUSED_LIMIT = 500

#: Origin rules per page on a policy's page (a policy with fewer shows on one page).
ORIGIN_PAGE_SIZE: Final = 100
#: The longest search text on a policy's page (characters): longer is refused (400).
MAX_SEARCH_LENGTH: Final = 200
#: The longest paging cursor (an origin rule as stored).
MAX_CURSOR_LENGTH: Final = ORIGIN_TEXT_LENGTH


def rule_counts(session: AnySession) -> dict[int, int]:
    """How many origin rules each policy has (by policy id; a policy without any is absent)."""
    r = OriginRuleRow.__table__
    query = sa.select(r.c.policy_id, sa.func.count()).group_by(r.c.policy_id)
    return {int(pid): int(n) for pid, n in session.execute(query)}


def risky_policy_ids(session: AnySession) -> set[int]:
    """The policies with at least one broad or risky rule (only the rules not plainly
    safe by their text are read and parsed)."""
    found: set[int] = set()
    for row in risky_rule_candidates(session):
        if row.policy_id not in found and rule_risks(row.origin, credentials=row.credentials):
            found.add(row.policy_id)
    return found


def matching_policy_ids(session: AnySession, needle: str) -> set[int]:
    """The policies whose name, path, description, or one of whose rules or notes,
    contains ``needle`` (case-insensitive)."""
    pattern = like_pattern(needle.lower())
    p, r = Policy, OriginRuleRow

    def has(column: Any) -> sa.ColumnElement[bool]:
        return sa.func.lower(column).like(pattern, escape="\\")

    own = sa.select(p.id).where(sa.or_(has(p.name), has(p.path), has(p.description)))
    rules = sa.select(r.policy_id).where(sa.or_(has(r.origin), has(r.note)))
    return {int(i) for i in session.scalars(own.union(rules))}


# --- one policy and a page of its origin rules --------------------------------------------------


def policy_rows(session: AnySession) -> list[Policy]:
    """Every policy's row by name; their origin rules are not read."""
    return list(session.scalars(sa.select(Policy).order_by(Policy.name)))


def policy_row(session: AnySession, name: str) -> Policy | None:
    """A policy's row; its origin rules are not read (they load only if touched)."""
    return session.scalar(sa.select(Policy).where(Policy.name == name))


def origin_rule(session: AnySession, policy: Policy, origin: str) -> OriginRuleRow | None:
    """One stored origin rule of a policy, by its text as stored."""
    return session.scalar(
        sa.select(OriginRuleRow).where(
            OriginRuleRow.policy_id == policy.id, OriginRuleRow.origin == origin
        )
    )


def first_rules(session: AnySession, policy: Policy, limit: int) -> tuple[list[str], int]:
    """The first ``limit`` rule texts of a policy (in stored order) and how many it has."""
    texts = session.scalars(
        sa.select(OriginRuleRow.origin)
        .where(OriginRuleRow.policy_id == policy.id)
        .order_by(OriginRuleRow.origin)
        .limit(limit)
    )
    return list(texts), rule_count(session, policy)


def rule_count(session: AnySession, policy: Policy) -> int:
    """How many origin rules the policy has (none is read)."""
    return _count(session, OriginRuleRow.policy_id == policy.id)


def like_pattern(text: str) -> str:
    """``%text%`` for LIKE ... ESCAPE '\\', the wildcards of ``text`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True, slots=True)
class RulePage:
    """One page of a policy's origin rules (in stored order), matching a search."""

    rows: Sequence[OriginRuleRow]
    #: How many rules match the search (every rule of the policy without one).
    matching: int
    #: How many rules the policy has.
    total: int
    #: Pass as ``after`` for the next page, as ``before`` for the previous (None: none).
    next_after: str | None
    previous_before: str | None


def origin_rule_page(
    session: AnySession,
    policy: Policy,
    *,
    search: str = "",
    after: str | None = None,
    before: str | None = None,
    size: int = ORIGIN_PAGE_SIZE,
) -> RulePage:
    """At most ``size`` origin rules after ``after`` (or before ``before``), read with a
    LIMIT (keyset paging on the rule's text): the cost does not grow with the policy."""
    rule = OriginRuleRow
    where: list[sa.ColumnElement[bool]] = [rule.policy_id == policy.id]
    if search:
        pattern = like_pattern(search.lower())
        where.append(
            sa.or_(
                sa.func.lower(rule.origin).like(pattern, escape="\\"),
                sa.func.lower(rule.note).like(pattern, escape="\\"),
            )
        )
    query = sa.select(rule).where(*where).limit(size + 1)
    if before is not None and after is None:
        rows = list(session.scalars(query.where(rule.origin < before).order_by(rule.origin.desc())))
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        more_after = True
        if not rows:  # nothing before it (any more): the first page
            return origin_rule_page(session, policy, search=search, size=size)
    else:
        if after is not None:
            query = query.where(rule.origin > after)
        rows = list(session.scalars(query.order_by(rule.origin)))
        more_after = len(rows) > size
        rows = rows[:size]
        more_before = (
            after is not None and bool(rows) and _any(session, *where, rule.origin < rows[0].origin)
        )
    total = rule_count(session, policy)
    matching = _count(session, *where) if search else total
    return RulePage(
        rows=rows,
        matching=matching,
        total=total,
        next_after=rows[-1].origin if rows and more_after else None,
        previous_before=rows[0].origin if rows and more_before else None,
    )


def _count(session: AnySession, *where: sa.ColumnElement[bool]) -> int:
    return int(
        session.scalar(sa.select(sa.func.count()).select_from(OriginRuleRow).where(*where)) or 0
    )


def _any(session: AnySession, *where: sa.ColumnElement[bool]) -> bool:
    return session.scalar(sa.select(sa.exists().where(*where))) is True


@dataclass(frozen=True, slots=True)
class RefusedOrigin:
    """An origin that was refused on a policy's paths, and how often."""

    policy: str
    origin: str
    count: int
    first_seen: datetime
    last_seen: datetime
    example_path: str = ""
    example_method: str = ""


def _refused(u: OriginUsage) -> RefusedOrigin:
    return RefusedOrigin(
        u.policy_name,
        u.origin,
        int(u.count),
        u.first_seen,
        u.last_seen,
        u.example_path or "",
        u.example_method or "",
    )


def _not_dismissed() -> sa.ColumnElement[bool]:
    """Refused rows an operator did not dismiss, or that were refused again since."""
    return sa.or_(
        OriginUsage.dismissed_at.is_(None), OriginUsage.last_seen > OriginUsage.dismissed_at
    )


def dismissed_count(session: AnySession, *, policy: str | None = None) -> int:
    """Refused origins hidden from the report by a dismissal (not refused since)."""
    query = (
        sa.select(sa.func.count())
        .select_from(OriginUsage)
        .where(OriginUsage.allowed.is_(False), sa.not_(_not_dismissed()))
    )
    if policy:
        query = query.where(OriginUsage.policy_name == policy)
    return int(session.scalar(query) or 0)


def dismiss_refused(
    session: AnySession, policy: str, origin: str, *, actor: str, now: datetime
) -> bool:
    """Hide a refused origin from the report until it is refused again; False when
    there is no such refused row (nothing written)."""
    result = session.execute(
        sa.update(OriginUsage)
        .where(
            OriginUsage.policy_name == policy,
            OriginUsage.origin == origin,
            OriginUsage.allowed.is_(False),
        )
        .values(dismissed_at=now, dismissed_by=actor)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))


def refused_origins(
    session: AnySession, *, policy: str | None = None, limit: int = REFUSED_LIMIT
) -> list[RefusedOrigin]:
    """Refused (policy, origin) pairs, the most recently seen first."""
    query = (
        sa.select(OriginUsage)
        .where(OriginUsage.allowed.is_(False), _not_dismissed())
        .order_by(OriginUsage.last_seen.desc(), OriginUsage.id)
        .limit(limit)
    )
    if policy:
        query = query.where(OriginUsage.policy_name == policy)
    return [_refused(u) for u in session.scalars(query)]


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
    return _refused(usage)


def rules_that_may_allow(
    session: AnySession, policy_ids: Iterable[int], origins: Iterable[str]
) -> dict[int, list[RuleFacts]]:
    """Per policy, the rules that may allow one of ``origins`` (as rule texts): a rule
    stored as exactly one of them, and every rule not plainly ``https://host`` by its
    text (wildcards, patterns, ports, http...). A plain rule allows only the origin it
    names, so the others are never read."""
    ids, texts = sorted(set(policy_ids)), sorted(set(origins))
    found: dict[int, list[RuleFacts]] = {i: [] for i in ids}
    if not ids:
        return found
    r = OriginRuleRow
    plain = plain_https_rule(r.__table__.c.origin, session.connection())
    where = sa.or_(r.origin.in_(texts), sa.not_(plain))
    query = sa.select(r).where(r.policy_id.in_(ids), where).order_by(r.policy_id, r.origin)
    for row in session.scalars(query.execution_options(yield_per=REVIEW_CHUNK_ROWS)):
        found[row.policy_id].append(rule_facts(row))
    return found


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
    action: str | None = None,
    before: int | None = None,
    size: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """One page of audit events, newest first, filtered by policy, actor and action."""
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(size + 1)
    if policy:
        query = query.where(AuditEvent.policy_name == policy)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
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


# --- the active draft ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftBadge:
    """The active draft as the navigation shows it: its id, its version and how many
    policies it changes (two small reads, whatever the draft holds)."""

    id: int
    version: int
    policies: int


def active_draft_badge(session: AnySession) -> DraftBadge | None:
    """The active draft's badge, or None when there is no active draft."""
    row = session.execute(
        sa.select(DraftRow.id, DraftRow.version)
        .where(DraftRow.status == ACTIVE)
        .order_by(DraftRow.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(DraftPolicyRow)
        .where(DraftPolicyRow.draft_id == row.id)
    )
    return DraftBadge(int(row.id), int(row.version), int(count or 0))


def drafted_action(session: AnySession, name: str) -> tuple[int, str] | None:
    """(the active draft's id, what it proposes for policy ``name``: ``create``,
    ``update`` or ``delete``), or None when no active draft touches it."""
    row = session.execute(
        sa.select(DraftRow.id, DraftPolicyRow.action)
        .join(DraftPolicyRow, DraftPolicyRow.draft_id == DraftRow.id)
        .where(DraftRow.status == ACTIVE, DraftPolicyRow.policy_name == name)
        .limit(1)
    ).first()
    return None if row is None else (int(row.id), str(row.action))


def live_versions(session: AnySession, names: Iterable[str]) -> dict[str, int]:
    """The live version of each named policy that exists (its row alone is read)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = session.execute(sa.select(Policy.name, Policy.version).where(Policy.name.in_(wanted)))
    return {row.name: int(row.version) for row in rows}
