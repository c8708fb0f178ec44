"""Counting which origins call which policies, without a write per request.

Each process counts in memory (a dictionary update on the request path) and
adds its counts to ``corsadmin_origin_usage`` in one transaction at most once
per ``CORSADMIN_USAGE_FLUSH_INTERVAL``; counts from every process add up in
the database. The review screen reads "last seen" and the refused-origins
report from there.

Clients choose the Origin header, so the number of distinct origins kept
between two flushes is bounded; beyond it new origins are dropped (and
counted as dropped), never the memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .models import OriginRuleRow, OriginUsage, Policy

log = logging.getLogger("corsadmin")

MAX_KEYS = 10_000
MAX_ORIGIN_LENGTH = 2048


@dataclass(slots=True)
class _Count:
    rule: str | None
    allowed: bool
    count: int
    first: float
    last: float


class UsageRecorder:
    """Per-process usage counts waiting to be written."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._counts: dict[tuple[str, str], _Count] = {}
        self._lock = threading.Lock()
        self.max_keys = max_keys
        self.dropped = 0

    def record(self, policy: str, origin: str, rule: str | None, allowed: bool) -> None:
        """Count one request (O(1); called from the request hook)."""
        now = time.time()
        key = (policy, origin[:MAX_ORIGIN_LENGTH])
        entry = self._counts.get(key)
        if entry is not None:
            entry.count += 1
            entry.last = now
            entry.rule = rule
            entry.allowed = allowed
            return
        with self._lock:
            if len(self._counts) >= self.max_keys:
                self.dropped += 1
                return
            self._counts.setdefault(key, _Count(rule, allowed, 0, now, now)).count += 1

    def __len__(self) -> int:
        return len(self._counts)

    def take(self) -> dict[tuple[str, str], _Count]:
        """Everything counted since the last take, and start afresh."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def flush(self, engine: sa.Engine) -> int:
        """Add the counts to the database in one transaction; returns rows written.

        On failure the counts are put back, to be tried again with the next flush.
        """
        counts = self.take()
        if not counts:
            return 0
        try:
            with engine.begin() as connection:
                write_usage(connection, counts.items())
        except Exception:
            self._merge_back(counts)
            raise
        return len(counts)

    def _merge_back(self, counts: dict[tuple[str, str], _Count]) -> None:
        with self._lock:
            for key, old in counts.items():
                new = self._counts.get(key)
                if new is None:
                    if len(self._counts) < self.max_keys:
                        self._counts[key] = old
                    continue
                new.count += old.count
                new.first = min(new.first, old.first)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def write_usage(connection: sa.Connection, items: Iterable[tuple[tuple[str, str], _Count]]) -> None:
    """Upsert usage rows (counts add up) and move the rules' ``last_seen_at``."""
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: sa.Table = OriginUsage.__table__  # type: ignore[assignment]
    items_list = sorted(items)
    rows: list[dict[str, object]] = [
        {
            "policy_name": policy,
            "origin": origin,
            "rule": c.rule,
            "allowed": c.allowed,
            "count": c.count,
            "first_seen": _ts(c.first),
            "last_seen": _ts(c.last),
        }
        for (policy, origin), c in items_list
    ]
    last_seen_by_rule: dict[tuple[str, str], datetime] = {}
    for (policy, _origin), c in items_list:
        if c.allowed and c.rule:
            seen = _ts(c.last)
            key = (policy, c.rule)
            last_seen_by_rule[key] = max(last_seen_by_rule.get(key, seen), seen)
    for start in range(0, len(rows), 500):
        statement = insert(table).values(rows[start : start + 500])
        excluded = statement.excluded
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["policy_name", "origin"],
                set_={
                    "count": table.c.count + excluded.count,
                    "rule": excluded.rule,
                    "allowed": excluded.allowed,
                    "last_seen": sa.case(
                        (excluded.last_seen > table.c.last_seen, excluded.last_seen),
                        else_=table.c.last_seen,
                    ),
                },
            )
        )
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
