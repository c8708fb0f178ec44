"""Counting which origins call which policies, without a write per request.

Each process counts in memory (a dictionary update on the request path) and
adds its counts to ``corsadmin_origin_usage`` at most once per
``CORSADMIN_USAGE_FLUSH_INTERVAL``; counts from every process add up in the
database. The review screen reads "last seen" and the refused-origins report
from there.

Clients choose the Origin header, so nothing they send may grow memory or the
table without a limit. Per policy, the table keeps:

- one row per origin allowed by an exact (or ``null``) rule: bounded by the
  rules an operator wrote, never folded;
- the :data:`MAX_USAGE_ORIGINS_PER_POLICY` most frequent other origins (allowed
  by a broad rule, or refused); at every flush the least counted beyond that
  are folded into one of two bucket rows, :data:`OTHER_ALLOWED` and
  :data:`OTHER_REFUSED`;
- one :data:`NOT_AN_ORIGIN` bucket row counting every Origin value that is not
  a serialized origin as a browser sends it (``re:.*``, a path, non-ASCII,
  longer than :data:`MAX_USAGE_ORIGIN_LENGTH`...): such values are never
  stored, in memory or in the table.

The same flush (in its transaction) adds each policy's refused requests to its row
of the hour in ``corsadmin_refusal_hour``, one upsert for every policy-hour, which
the refusal-spike alert compares (:mod:`corsadmin.db.alerts`; kept 8 days).

Rows not seen for ``CORSADMIN_USAGE_RETENTION_DAYS`` are deleted. The bucket
names are in parentheses: no serialized origin can be equal to one.

A row the database refuses (on PostgreSQL, a value over the index row size)
never stops the others: when the batch fails for such a reason, the rows are
written one by one and the ones that still fail are dropped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa

from ..config import DEFAULT_RETENTION_DAYS as DEFAULT_RETENTION_DAYS
from ..config import MAX_RETENTION_DAYS as MAX_RETENTION_DAYS
from ..db.alerts import add_refusal_hours, hour_of, prune_refusal_hours
from ..db.dialects import limited
from ..db.models import OriginRuleRow, OriginUsage, Policy
from ..engine.counting import MAX_USAGE_ORIGIN_LENGTH as MAX_USAGE_ORIGIN_LENGTH
from ..engine.counting import NOT_AN_ORIGIN as NOT_AN_ORIGIN
from ..engine.counting import usage_origin as usage_origin
from ..engine.decide import Evaluation
from ..limits import MAX_EXAMPLE_METHOD, MAX_EXAMPLE_PATH
from ..policy.origins import (
    OriginRule,
    OriginRuleError,
    is_canonical_request_origin,
    parse_origin_rule,
)
from .counts import MAX_MAINTENANCE_ROWS as MAX_MAINTENANCE_ROWS
from .counts import WRITE_CHUNK as WRITE_CHUNK
from .counts import (
    delete_beyond,
    example,
    upsert_counts,
    write_dropping_bad_rows,
    write_in_savepoints,
)
from .counts import is_row_error as is_row_error

log = logging.getLogger("corsadmin")

#: Distinct (policy, origin) counts one process keeps between two flushes, not
#: counting origins allowed by an exact rule and the buckets (bounded by the
#: policy itself). Beyond it, new origins are counted in the "other" buckets.
MAX_KEYS: Final = 10_000
#: Origins (allowed by a broad rule or refused) kept per policy in the table, the
#: most frequent; the rest are counted in the policy's "other" buckets.
MAX_USAGE_ORIGINS_PER_POLICY: Final = 1_000
#: Seconds between two deletions of expired rows by one process.
RETENTION_CHECK_INTERVAL: Final = 3600.0

#: Allowed origins beyond the policy's MAX_USAGE_ORIGINS_PER_POLICY, counted together.
OTHER_ALLOWED: Final = "(other allowed origins)"
#: Refused origins beyond the policy's MAX_USAGE_ORIGINS_PER_POLICY, counted together.
OTHER_REFUSED: Final = "(other refused origins)"
BUCKETS: Final = frozenset({NOT_AN_ORIGIN, OTHER_ALLOWED, OTHER_REFUSED})


@dataclass(slots=True)
class _Count:
    rule: str | None
    allowed: bool
    count: int
    first: float
    last: float
    #: The latest refused call's path and method (cut to the bounds), "" when allowed.
    path: str = ""
    method: str = ""


Key = tuple[str, str]  # (policy name, origin or bucket)


def _pinned(origin: str, rule: str | None, allowed: bool) -> bool:
    """Allowed by an exact rule (or a bucket): kept whatever the bounds."""
    return (allowed and rule == origin) or origin in BUCKETS


class UsageRecorder:
    """Per-process usage counts waiting to be written."""

    def __init__(
        self,
        max_keys: int = MAX_KEYS,
        *,
        max_origins_per_policy: int = MAX_USAGE_ORIGINS_PER_POLICY,
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self._counts: dict[Key, _Count] = {}
        #: When a rule last allowed an origin counted in a bucket (its "last seen" moves).
        self._rules_seen: dict[Key, float] = {}
        self._bounded_keys = 0  # keys in _counts that count against max_keys
        self._lock = threading.Lock()
        self.max_keys = max_keys
        self.max_origins_per_policy = max_origins_per_policy
        self.retention = timedelta(days=retention_days)
        #: Requests counted in an "other" bucket because max_keys was reached.
        self.folded = 0
        #: Rows the database refused even alone (dropped, logged once).
        self.failed_rows = 0
        self._failure_logged = False
        self._maintenance_failing = False
        self._next_retention = 0.0  # time.monotonic() of the next expired-row deletion

    def on_decision(self, sender: object, /, *, evaluation: Evaluation, **extra: object) -> None:
        """Count a request: the receiver of :data:`corsadmin.signals.decision_made`."""
        origin = evaluation.usage_origin
        policy = evaluation.decision.policy
        if origin is not None and policy is not None:
            allowed = evaluation.decision.allowed
            path = "" if allowed else str(extra.get("path", ""))
            method = "" if allowed else str(extra.get("method", ""))
            self.record(policy.spec.name, origin, evaluation.usage_rule, allowed, path, method)

    def record(
        self,
        policy: str,
        origin: str,
        rule: str | None,
        allowed: bool,
        path: str = "",
        method: str = "",
    ) -> None:
        """Count one request (O(1); called from the request hook).

        ``origin`` is what :func:`usage_origin` made of the request's Origin (the
        evaluation keeps it): an origin, or a bucket. ``path`` and ``method``: of a
        refused call, kept as the row's example (cut to the bounds when written).
        """
        now = time.time()
        entry = self._counts.get((policy, origin))
        if entry is not None:
            entry.count += 1
            entry.last = now
            entry.rule = rule
            entry.allowed = allowed
            entry.path, entry.method = path, method
            return
        with self._lock:
            self._add((policy, origin), _Count(rule, allowed, 1, now, now, path, method))

    def _add(self, key: Key, new: _Count) -> None:
        """Add a count under the lock, keeping the bounds (a bucket when beyond them)."""
        policy, origin = key
        if not _pinned(origin, new.rule, new.allowed):
            if len(origin) > MAX_USAGE_ORIGIN_LENGTH or not origin.isascii():
                key, new.rule = (policy, NOT_AN_ORIGIN), None
            elif key not in self._counts and self._bounded_keys >= self.max_keys:
                self.folded += new.count
                if new.allowed and new.rule:
                    self._rule_seen((policy, new.rule), new.last)
                key = (policy, OTHER_ALLOWED if new.allowed else OTHER_REFUSED)
                new.rule = None
        entry = self._counts.get(key)
        if entry is None:
            self._counts[key] = new
            if not _pinned(key[1], new.rule, new.allowed):
                self._bounded_keys += 1
            return
        entry.count += new.count
        entry.first = min(entry.first, new.first)
        if new.last >= entry.last:
            entry.last, entry.rule, entry.allowed = new.last, new.rule, new.allowed
            entry.path, entry.method = new.path, new.method

    def _rule_seen(self, key: Key, last: float) -> None:
        if last > self._rules_seen.get(key, 0.0):
            self._rules_seen[key] = last

    def __len__(self) -> int:
        return len(self._counts)

    def take(self) -> dict[Key, _Count]:
        """Everything counted since the last take, and start afresh."""
        return self._take()[0]

    def _take(self) -> tuple[dict[Key, _Count], dict[Key, float]]:
        with self._lock:
            counts, self._counts = self._counts, {}
            rules_seen, self._rules_seen = self._rules_seen, {}
            self._bounded_keys = 0
        return counts, rules_seen

    def flush(self, engine: sa.Engine) -> int:
        """Add the counts to the database; returns the rows written.

        When the database cannot be reached, the counts are put back, to be tried
        again with the next flush. A row the database refuses for its values is
        dropped (counted in ``failed_rows``); the others are written.
        """
        counts, rules_seen = self._take()
        if not counts:
            return 0
        items = sorted(counts.items())
        refusals = refusal_hours(counts)

        def finish(connection: sa.Connection) -> None:
            if rules_seen:
                write_usage(connection, (), rules_seen)
            add_refusal_hours(connection, refusals)

        try:
            refused = write_dropping_bad_rows(engine, items, write_usage, finish)
            failed = [key for key, _count in refused]
        except Exception:
            self._merge_back(counts, rules_seen)
            raise
        if failed:
            self._report_failed(failed)
        self._maintain(engine, items)
        return len(items) - len(failed)

    def _merge_back(self, counts: dict[Key, _Count], rules_seen: dict[Key, float]) -> None:
        with self._lock:
            for key, old in counts.items():
                self._add(key, old)
            for key, last in rules_seen.items():
                self._rule_seen(key, last)

    def _report_failed(self, failed: Sequence[Key]) -> None:
        self.failed_rows += len(failed)
        if not self._failure_logged:
            self._failure_logged = True
            policy, origin = failed[0]
            log.warning(
                "corsadmin dropped %d usage row(s) the database refused (the first: policy "
                "%r, origin %r); the other rows were written (logged once; "
                "UsageRecorder.failed_rows counts them)",
                len(failed),
                policy,
                origin[:100],
            )

    def _maintain(self, engine: sa.Engine, items: Sequence[tuple[Key, _Count]]) -> None:
        """Fold the policies' least counted origins into "other", delete expired rows.

        In a transaction of its own: the counts are written whatever happens here.
        """
        policies = sorted(
            {policy for (policy, origin), c in items if not _pinned(origin, c.rule, c.allowed)}
        )
        now = time.monotonic()
        try:
            with engine.begin() as connection:
                if policies:
                    fold_usage(connection, policies, self.max_origins_per_policy)
                if now >= self._next_retention:
                    cutoff = datetime.now(UTC) - self.retention
                    deleted = delete_expired_usage(connection, cutoff)
                    prune_refusal_hours(connection, datetime.now(UTC))
                    # A full batch: more are waiting, delete them at the next flush.
                    if deleted < MAX_MAINTENANCE_ROWS:
                        self._next_retention = now + RETENTION_CHECK_INTERVAL
        except Exception as error:
            if not self._maintenance_failing:
                self._maintenance_failing = True
                log.warning(
                    "corsadmin could not fold or expire usage rows (%s); the counts are "
                    "written, retrying at the next flush (logged once)",
                    type(error).__name__,
                )
        else:
            self._maintenance_failing = False


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def refusal_hours(counts: Mapping[Key, _Count]) -> dict[tuple[str, datetime], int]:
    """Refused requests per (policy, clock hour of the last one), for the spike alert
    (:mod:`corsadmin.db.alerts`): a flush covers seconds, so one hour per policy."""
    found: dict[tuple[str, datetime], int] = {}
    for (policy, _origin), c in counts.items():
        if not c.allowed:
            key = (policy, hour_of(_ts(c.last)))
            found[key] = found.get(key, 0) + c.count
    return found


def _table() -> sa.Table:
    table: sa.Table = OriginUsage.__table__  # type: ignore[assignment]
    return table


def _upsert(connection: sa.Connection, rows: list[dict[str, object]]) -> None:
    """Insert usage rows, adding the counts up where (policy, origin) exists."""
    replace = ("rule", "allowed", "example_path", "example_method")
    upsert_counts(connection, _table(), ("policy_name", "origin"), rows, replace)


def write_usage(
    connection: sa.Connection,
    items: Iterable[tuple[Key, _Count]],
    rules_seen: Mapping[Key, float] | None = None,
) -> None:
    """Upsert usage rows (counts add up) and move the rules' ``last_seen_at`` (also of
    the ``(policy, rule)`` in ``rules_seen``, rules that allowed a bucket's origins)."""
    items_list = sorted(items)
    _upsert(
        connection,
        [
            {
                "policy_name": policy,
                "origin": origin,
                "rule": c.rule,
                "allowed": c.allowed,
                "count": c.count,
                "first_seen": _ts(c.first),
                "last_seen": _ts(c.last),
                "example_path": example(c.path, MAX_EXAMPLE_PATH),
                "example_method": example(c.method, MAX_EXAMPLE_METHOD),
            }
            for (policy, origin), c in items_list
        ],
    )
    latest = dict(rules_seen or {})
    for (policy, _origin), c in items_list:
        if c.allowed and c.rule:
            key = (policy, c.rule)
            latest[key] = max(latest.get(key, c.last), c.last)
    last_seen_by_rule = {key: _ts(last) for key, last in latest.items()}
    rules: sa.Table = OriginRuleRow.__table__  # type: ignore[assignment]
    policies: sa.Table = Policy.__table__  # type: ignore[assignment]
    for (policy, rule), seen in sorted(last_seen_by_rule.items()):
        connection.execute(
            sa.update(rules)
            .where(
                rules.c.origin == rule,
                rules.c.policy_id
                == sa.select(policies.c.id).where(policies.c.name == policy).scalar_subquery(),
                sa.or_(rules.c.last_seen_at.is_(None), rules.c.last_seen_at < seen),
            )
            .values(last_seen_at=seen)
        )


def write_usage_separately(
    connection: sa.Connection,
    items: Sequence[tuple[Key, _Count]],
    rules_seen: Mapping[Key, float] | None = None,
) -> list[Key]:
    """Write the rows a chunk at a time, a failing chunk row by row, each in a
    savepoint; return the keys of the rows the database refused (not written).

    An error that is not about a row's values (the database went away) is raised.
    """
    failed = [key for key, _count in write_in_savepoints(connection, items, write_usage)]
    if rules_seen:
        with connection.begin_nested():
            write_usage(connection, (), rules_seen)
    return failed


def _foldable(table: sa.Table) -> sa.ColumnElement[bool]:
    """Rows that count against MAX_USAGE_ORIGINS_PER_POLICY: not a bucket, not an
    origin allowed by an exact rule."""
    return sa.and_(
        table.c.origin.not_in(sorted(BUCKETS)),
        sa.or_(table.c.allowed.is_(False), table.c.rule.is_(None), table.c.rule != table.c.origin),
    )


def fold_usage(connection: sa.Connection, policies: Sequence[str], keep: int) -> int:
    """Per policy, keep the ``keep`` most counted foldable rows and add the others'
    counts to the policy's "other" buckets (at most MAX_MAINTENANCE_ROWS per call).

    Returns the rows folded. Only rows this transaction deleted are added up, so
    two processes folding at once count nothing twice.
    """
    table = _table()
    deleted = delete_beyond(
        connection,
        table,
        (table.c.policy_name,),
        sa.and_(table.c.policy_name.in_(list(policies)), _foldable(table)),
        keep,
        (
            table.c.policy_name,
            table.c.allowed,
            table.c.count,
            table.c.first_seen,
            table.c.last_seen,
        ),
    )
    _upsert(connection, _other_bucket_rows(deleted))
    return len(deleted)


def _other_bucket_rows(
    deleted: Sequence[Sequence[Any]],
) -> list[dict[str, object]]:
    """The folded rows' counts summed into one "other" bucket row per policy and verdict."""
    buckets: dict[tuple[str, bool], tuple[int, datetime, datetime]] = {}
    for policy, allowed, count, first_seen, last_seen in deleted:
        key = (policy, bool(allowed))
        if key in buckets:
            total, first, last = buckets[key]
            buckets[key] = (total + int(count), min(first, first_seen), max(last, last_seen))
        else:
            buckets[key] = (int(count), first_seen, last_seen)
    return [
        {
            "policy_name": policy,
            "origin": OTHER_ALLOWED if allowed else OTHER_REFUSED,
            "rule": None,
            "allowed": allowed,
            "count": total,
            "first_seen": first,
            "last_seen": last,
            "example_path": "",
            "example_method": "",
        }
        for (policy, allowed), (total, first, last) in sorted(buckets.items())
    ]


def delete_expired_usage(connection: sa.Connection, cutoff: datetime) -> int:
    """Delete rows last seen before ``cutoff`` (at most MAX_MAINTENANCE_ROWS); returns
    how many."""
    table = _table()
    expired = sa.select(table.c.id).where(table.c.last_seen < cutoff).limit(MAX_MAINTENANCE_ROWS)
    result = connection.execute(sa.delete(table).where(table.c.id.in_(limited(expired))))
    return int(result.rowcount)


#: Rule kinds the refused-origins report never offers: they allow more than one origin.
_BROAD_RULE_KINDS: Final = frozenset({"any", "regex", "subdomain", "any_port"})


def rule_for_refused_origin(value: str) -> OriginRule | None:
    """The rule that allows exactly ``value`` and nothing else, when ``value`` is a
    serialized origin as a browser sends it (or ``null``); None for a bucket, a
    pattern (``re:``, ``*``, ``*.``, ``:*``) or any other value no browser sends.

    The refused-origins report offers, and its "Allow" stores, only such a rule.
    """
    if value in BUCKETS or not is_canonical_request_origin(value):
        return None
    try:
        rule = parse_origin_rule(value)
    except OriginRuleError:
        return None
    if rule.kind in _BROAD_RULE_KINDS or rule.text != value:
        return None
    return rule
