"""The admin UI's read-only queries over corsadmin's tables.

No Flask here either: each function takes a SQLAlchemy session. Writes never
happen here; every change goes through :class:`corsadmin.db.store.PolicyStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..db.drafts import ACTIVE
from ..db.models import AuditEvent, DraftPolicyRow, DraftRow, OriginRuleRow, OriginUsage, Policy
from . import review as _review
from .review import (
    PolicyFacts,
    ReviewReport,
    ReviewSettings,
    RuleFacts,
    RuleFinding,
    build_review,
    expiry_state,
    is_stale,
    rule_risks,
)

AnySession = Session | scoped_session[Any]

AUDIT_PAGE_SIZE = 100
REFUSED_LIMIT = 500

#: Origin rules per page on a policy's page (a policy with fewer shows on one page).
ORIGIN_PAGE_SIZE: Final = 100
#: The longest search text on a policy's page (characters): longer is refused (400).
MAX_SEARCH_LENGTH: Final = 200
#: The longest paging cursor (an origin rule as stored: the column holds 2,100).
MAX_CURSOR_LENGTH: Final = 2100


def facts_of(policy: Policy) -> PolicyFacts:
    """A stored policy (with its origin rules loaded) as the review's plain facts."""
    return policy_facts(policy, policy.origin_rules)


def policy_facts(policy: Policy, rules: Iterable[OriginRuleRow] = ()) -> PolicyFacts:
    """A stored policy as the review's plain facts, with only the given origin rules
    (none: the policy-level facts, without loading its rules)."""
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
        rules=tuple(rule_facts(r) for r in rules),
    )


def rule_facts(r: OriginRuleRow) -> RuleFacts:
    return RuleFacts(
        origin=r.origin,
        note=r.note or "",
        expires_at=r.expires_at,
        created_at=r.created_at,
        created_by=r.created_by,
        last_seen_at=r.last_seen_at,
    )


# --- risky rules, told apart in SQL -------------------------------------------------------------


#: The SQLite function that runs :func:`.review.is_plain_https_rule` (SQLite's ltrim and
#: rtrim, which the portable test uses, cost about 4 µs a row: 4 s at 1,000,000 rules).
SQLITE_PLAIN_FUNCTION: Final = "corsadmin_plain_https_rule"


def plain_https_rule(
    origin: sa.ColumnElement[str], connection: sa.Connection
) -> sa.ColumnElement[bool]:
    """:func:`.review.is_plain_https_rule` in SQL: the rules that have no risk by their
    stored text alone, so never need fetching. On SQLite, the Python function itself
    (registered on ``connection``); elsewhere (PostgreSQL), in SQL functions."""
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.create_function(SQLITE_PLAIN_FUNCTION, 1, _plain_flag, deterministic=True)
        flag: sa.ColumnElement[int] = getattr(sa.func, SQLITE_PLAIN_FUNCTION)(origin)
        return flag == 1
    return portable_plain_https_rule(origin)


def _plain_flag(text: object) -> int:
    return int(isinstance(text, str) and _review.is_plain_https_rule(text))


def portable_plain_https_rule(origin: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """:func:`.review.is_plain_https_rule` in standard SQL functions (substr, length,
    ltrim, rtrim, LIKE): the same answers on SQLite and PostgreSQL."""
    rest = sa.func.substr(origin, len(_review.PLAIN_PREFIX) + 1)
    return sa.and_(
        sa.func.substr(origin, 1, len(_review.PLAIN_PREFIX)) == _review.PLAIN_PREFIX,
        sa.func.length(origin) <= _review.PLAIN_RULE_MAX_LENGTH,
        sa.func.ltrim(rest, _review.PLAIN_HOST_CHARS) == "",
        origin.not_like("%..%"),
        origin.not_like("%--%"),
        origin.not_like(_review.PLAIN_PREFIX + ".%"),
        origin.not_like("%."),
        sa.func.rtrim(origin, _review.PLAIN_LAST_LABEL_CHARS).like("%."),
    )


def risky_rule_candidates(session: AnySession, *where: sa.ColumnElement[bool]) -> Iterator[Any]:
    """(id, origin, policy_id, credentials) of every rule not plainly safe by its text,
    by policy name then rule, read in chunks: only these can be broad or risky."""
    r = OriginRuleRow.__table__
    p = Policy.__table__
    query = (
        sa.select(r.c.id, r.c.origin, r.c.policy_id, p.c.credentials)
        .join(p, p.c.id == r.c.policy_id)
        .where(sa.not_(plain_https_rule(r.c.origin, session.connection())), *where)
        .order_by(p.c.name, r.c.origin)
        .execution_options(yield_per=REVIEW_CHUNK_ROWS)
    )
    yield from session.execute(query)


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
    return list(texts), _count(session, OriginRuleRow.policy_id == policy.id)


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
    total = _count(session, rule.policy_id == policy.id)
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


# --- the review screen, bounded -----------------------------------------------------------------

#: Rules listed per section of the review screen (each section says how many there are).
REVIEW_LIST_LIMIT: Final = 200
#: Rows read at a time while the review screen looks for broad or risky rules.
REVIEW_CHUNK_ROWS: Final = 1000


@dataclass(frozen=True, slots=True)
class ReviewTotals:
    """How many items each section of the review screen has (it lists at most
    :data:`REVIEW_LIST_LIMIT` of each)."""

    due: int
    expiring: int
    stale: int
    risky: int  # broad or risky rules and policies
    policies: int  # how many policies there are

    @property
    def count(self) -> int:
        return self.due + self.expiring + self.stale + self.risky

    @property
    def empty(self) -> bool:
        return self.count == 0


def review_report(
    session: AnySession, now: datetime, settings: ReviewSettings, limit: int = REVIEW_LIST_LIMIT
) -> tuple[ReviewReport, ReviewTotals]:
    """What :func:`.review.build_review` finds, with at most ``limit`` rules per list:
    policies read without their rules, expiring and stale rules counted and chosen in
    SQL (ORDER BY, LIMIT), and the rules read in chunks, never all at once, to find the
    broad or risky ones (that takes parsing each rule)."""
    policies = list(session.scalars(sa.select(Policy).order_by(Policy.name)))
    report = build_review((policy_facts(p) for p in policies), now, settings)
    by_id = {p.id: p for p in policies}
    rule, policy = OriginRuleRow, Policy
    soon = now + timedelta(days=settings.expiring_within_days)
    expiring = [rule.expires_at.is_not(None), rule.expires_at <= soon]
    seen = sa.func.coalesce(rule.last_seen_at, rule.created_at)
    stale = [
        policy.enabled.is_(True),
        seen <= now - timedelta(days=settings.stale_after_days),
        sa.or_(rule.expires_at.is_(None), rule.expires_at > now),  # expired: listed there
    ]
    joined = sa.select(rule).join(policy, policy.id == rule.policy_id)
    for wanted, order, found in (
        (expiring, (rule.expires_at, policy.name, rule.origin), report.expiring),
        (stale, (seen, policy.name, rule.origin), report.stale),
    ):
        rows = session.scalars(joined.where(*wanted).order_by(*order).limit(limit))
        found.extend(_finding(by_id[r.policy_id], r, now, settings) for r in rows)
    risky = _risky_rules(session, by_id, report, now, settings, limit)
    totals = ReviewTotals(
        due=len(report.due),
        expiring=_count_joined(session, *expiring),
        stale=_count_joined(session, *stale),
        risky=risky + len(report.risky_policies),
        policies=len(policies),
    )
    return report, totals


def _finding(
    policy: Policy, row: OriginRuleRow, now: datetime, settings: ReviewSettings
) -> RuleFinding:
    facts = rule_facts(row)
    return RuleFinding(
        policy.name,
        facts,
        expiry_state(facts, now, settings.expiring_within_days),
        policy.enabled and is_stale(facts, now, settings.stale_after_days),
        rule_risks(facts.origin, credentials=policy.credentials),
    )


def _count_joined(session: AnySession, *where: sa.ColumnElement[bool]) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(OriginRuleRow)
        .join(Policy, Policy.id == OriginRuleRow.policy_id)
        .where(*where)
    )
    return int(session.scalar(query) or 0)


def _risky_rules(
    session: AnySession,
    policies: dict[int, Policy],
    report: ReviewReport,
    now: datetime,
    settings: ReviewSettings,
    limit: int,
) -> int:
    """Count the broad or risky rules, reading them in chunks of REVIEW_CHUNK_ROWS, and
    list the first ``limit`` (by policy name, then rule) in ``report.risky_rules``; the
    rules plainly safe by their stored text (exact ``https://host``) are not read."""
    count = 0
    listed: list[int] = []
    for row in risky_rule_candidates(session):
        if rule_risks(row.origin, credentials=row.credentials):
            count += 1
            if len(listed) < limit:
                listed.append(row.id)
    if listed:
        rows = {
            x.id: x
            for x in session.scalars(sa.select(OriginRuleRow).where(OriginRuleRow.id.in_(listed)))
        }
        report.risky_rules.extend(
            _finding(policies[rows[i].policy_id], rows[i], now, settings) for i in listed
        )
    return count
