"""The review's reads: policies and rules as the review's plain facts, the rules
that are broad or risky told apart in SQL, and the bounded review report.

Used by the admin UI's review screen, the JSON API's report, and the CLI's
``corsadmin review --due`` and the alerts (:mod:`corsadmin.db.alerts`), so it lives
below them all. The rules themselves are pure (:mod:`corsadmin.engine.review`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..engine import review as _review
from ..engine.review import (
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
from .dialects import is_mysql
from .models import OriginRuleRow, Policy

AnySession = Session | scoped_session[Any]

#: Rules listed per section of the review screen (each section says how many there are).
REVIEW_LIST_LIMIT: Final = 200
#: Rows read at a time while the review screen looks for broad or risky rules.
REVIEW_CHUNK_ROWS: Final = 1000


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
        allow_headers=tuple(policy.allow_headers or ()),
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
    (registered on ``connection``); on MariaDB, its regular expression; elsewhere
    (PostgreSQL), in SQL functions."""
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.create_function(SQLITE_PLAIN_FUNCTION, 1, _plain_flag, deterministic=True)
        flag: sa.ColumnElement[int] = getattr(sa.func, SQLITE_PLAIN_FUNCTION)(origin)
        return flag == 1
    if is_mysql(connection.dialect):
        return mysql_plain_https_rule(origin)
    return portable_plain_https_rule(origin)


def mysql_plain_https_rule(origin: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """:func:`.review.is_plain_https_rule` on MariaDB/MySQL (whose TRIM takes a string,
    not a set of characters): its expression by REGEXP, anchored at the very end
    (``\\z``: ``$`` would let a final line break through), on the binary collation of
    corsadmin's tables (case-sensitive)."""
    return sa.and_(
        sa.func.char_length(origin) <= _review.PLAIN_RULE_MAX_LENGTH,
        origin.not_like("%--%"),
        origin.regexp_match(f"^(?:{_review.PLAIN_RULE_PATTERN})\\z"),
    )


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


# --- the review screen, bounded -----------------------------------------------------------------


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
