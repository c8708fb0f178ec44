"""Trying the active draft on live traffic: report-only, in every worker.

When the snapshot in force tries a draft (``Snapshot.trial``), the request hook
calls :func:`try_draft` after the live headers are written. A request whose
policy the draft leaves alone is recognised by identity (the draft's snapshot
shares every untouched compiled policy) and costs a memoized path look-up; any
other is decided again on the draft's snapshot (memoized as the live answers
are), the two answers compared (:func:`corsadmin.engine.trial.compare`) and the
result counted by a :class:`TrialRecorder`. Nothing here can change the live
response: it runs after the headers are written, and an exception is logged
once and ignored.

The counts are added to ``corsadmin_draft_traffic`` with the usage counts (at
every ``CORSADMIN_USAGE_FLUSH_INTERVAL``, usage tracking on or off), under the
id of the draft they were made under: counts of a draft that is no longer active
(promoted or discarded meanwhile) are dropped, never added to another draft.

Bounded like usage counting (:mod:`corsadmin.runtime.usage`), since clients choose
the Origin header: per outcome, an Origin that is not a serialized origin is
counted as :data:`NOT_AN_ORIGIN`; beyond :data:`~corsadmin.limits.MAX_TRIAL_KEYS`
distinct keys in memory, new origins are counted as :data:`OTHER_ORIGINS`; in the
table, per draft, policy and outcome, the
:data:`~corsadmin.limits.MAX_TRIAL_ORIGINS_PER_OUTCOME` most counted origins are
kept and the others folded into the :data:`OTHER_ORIGINS` row at each flush.
Every policy the draft changes also has one ``evaluated`` row (origin ``""``):
every request of it that was tried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from ..db.models import DraftRow, DraftTrafficRow
from ..engine.counting import MAX_USAGE_ORIGIN_LENGTH, NOT_AN_ORIGIN
from ..engine.decide import Evaluation, decide
from ..engine.trial import EVALUATED, Trial, compare
from ..limits import (
    MAX_TRIAL_EXAMPLE_METHOD,
    MAX_TRIAL_EXAMPLE_PATH,
    MAX_TRIAL_KEYS,
    MAX_TRIAL_ORIGINS_PER_OUTCOME,
)
from ..policy.origins import is_canonical_request_origin
from .counts import delete_beyond, example, upsert_counts, write_dropping_bad_rows

__all__ = [
    "BUCKETS",
    "NOT_AN_ORIGIN",
    "OTHER_ORIGINS",
    "TrialKey",
    "TrialRecorder",
    "fold_traffic",
    "try_draft",
    "write_traffic",
]

log = logging.getLogger("corsadmin")

#: Origins beyond the bounds (in memory or in the table), counted together per outcome.
OTHER_ORIGINS: Final = "(other origins)"
#: The bucket rows: no serialized origin is equal to one (they are in parentheses).
BUCKETS: Final = frozenset({NOT_AN_ORIGIN, OTHER_ORIGINS})
#: The status of the draft being tried (``corsadmin.db.drafts.ACTIVE``).
_ACTIVE: Final = "active"

#: (draft id, policy name, outcome, origin or bucket; "" for ``evaluated``).
TrialKey = tuple[int, str, str, str]


@dataclass(slots=True)
class _Count:
    count: int
    first: float
    last: float
    path: str  # the first example's
    method: str


def _pinned(key: TrialKey) -> bool:
    """An ``evaluated`` count or a bucket: bounded by the policies, kept whatever the bounds."""
    return key[2] == EVALUATED or key[3] in BUCKETS


def _storable(origin: str) -> bool:
    """Is ``origin`` a serialized origin as a browser sends it (checked once per key)?"""
    return len(origin) <= MAX_USAGE_ORIGIN_LENGTH and is_canonical_request_origin(origin)


def try_draft(
    recorder: TrialRecorder,
    trial: Trial,
    live: Evaluation,
    path: str,
    method: str,
    origin: str,
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: bool = False,
) -> None:
    """Decide the request again on the draft's snapshot, when the draft touches its
    policy, and count how the answer differs from ``live`` (what was sent). Never raises."""
    try:
        tried_snapshot = trial.snapshot
        live_policy = live.decision.policy
        policy = tried_snapshot.policy_for(path)
        if policy is live_policy:
            return  # a policy the draft leaves alone: the same answer
        tried = decide(
            tried_snapshot, path, method, origin, request_method, request_headers, private_network
        )
        outcome = compare(live, tried, request_method, request_headers, private_network)
        named = live_policy if live_policy is not None else policy
        assert named is not None
        counted = live.usage_origin or tried.usage_origin or NOT_AN_ORIGIN
        recorder.record(trial.draft.id, named.spec.name, outcome, counted, path, method)
    except Exception:
        recorder.report_failure()


class TrialRecorder:
    """Per-process counts of the draft's answers on live traffic, waiting to be written."""

    def __init__(
        self,
        max_keys: int = MAX_TRIAL_KEYS,
        *,
        max_origins_per_outcome: int = MAX_TRIAL_ORIGINS_PER_OUTCOME,
    ) -> None:
        self._counts: dict[TrialKey, _Count] = {}
        self._bounded_keys = 0  # keys in _counts that count against max_keys
        self._lock = threading.Lock()
        self.max_keys = max_keys
        self.max_origins_per_outcome = max_origins_per_outcome
        #: Requests counted in an "other" bucket because max_keys was reached.
        self.folded = 0
        #: Counts dropped at a flush because their draft is no longer active.
        self.dropped = 0
        #: Rows the database refused even alone (dropped, logged once).
        self.failed_rows = 0
        self._failure_logged = False
        self._trial_failed = False
        self._maintenance_failing = False

    def record(
        self, draft: int, policy: str, outcome: str | None, origin: str, path: str, method: str
    ) -> None:
        """Count one request tried on ``draft``: ``evaluated``, and ``outcome`` (None: the
        same answer) under ``origin`` (an origin as usage counting records it, or a bucket).
        O(1); called from the request hook."""
        now = time.time()
        self._count((draft, policy, EVALUATED, ""), now, path, method)
        if outcome is not None:
            self._count((draft, policy, outcome, origin), now, path, method)

    def _count(self, key: TrialKey, now: float, path: str, method: str) -> None:
        entry = self._counts.get(key)
        if entry is not None:
            entry.count += 1
            entry.last = now
            return
        new = _Count(
            1,
            now,
            now,
            example(path, MAX_TRIAL_EXAMPLE_PATH),
            example(method, MAX_TRIAL_EXAMPLE_METHOD),
        )
        with self._lock:
            self._add(key, new)

    def _add(self, key: TrialKey, new: _Count) -> None:
        """Add a count under the lock, keeping the bounds (a bucket when beyond them)."""
        if not _pinned(key):
            draft, policy, outcome, origin = key
            if key not in self._counts and not _storable(origin):
                key = (draft, policy, outcome, NOT_AN_ORIGIN)
            elif key not in self._counts and self._bounded_keys >= self.max_keys:
                self.folded += new.count
                key = (draft, policy, outcome, OTHER_ORIGINS)
        entry = self._counts.get(key)
        if entry is None:
            self._counts[key] = new
            if not _pinned(key):
                self._bounded_keys += 1
            return
        entry.count += new.count
        if new.first < entry.first:
            entry.first, entry.path, entry.method = new.first, new.path, new.method
        entry.last = max(entry.last, new.last)

    def __len__(self) -> int:
        return len(self._counts)

    @property
    def bounded_keys(self) -> int:
        """Keys held that count against ``max_keys`` (neither ``evaluated`` nor a bucket)."""
        return self._bounded_keys

    def take(self) -> dict[TrialKey, _Count]:
        """Everything counted since the last take, and start afresh."""
        with self._lock:
            counts, self._counts = self._counts, {}
            self._bounded_keys = 0
        return counts

    def report_failure(self) -> None:
        """Trying the draft on a request failed: logged once (the response is unchanged)."""
        if not self._trial_failed:
            self._trial_failed = True
            log.exception(
                "corsadmin failed while trying the draft on a request; the live response "
                "is unchanged (logged once)"
            )

    def flush(self, engine: sa.Engine) -> int:
        """Add the counts of the drafts still active to the database; returns the rows
        written. The counts of a draft no longer active are dropped. When the database
        cannot be reached, the counts are put back, to be tried again with the next
        flush; a row the database refuses for its values is dropped (``failed_rows``)."""
        counts = self.take()
        if not counts:
            return 0
        try:
            with engine.connect() as connection:
                active = active_drafts(connection, {key[0] for key in counts})
            items = sorted(item for item in counts.items() if item[0][0] in active)
            failed = [key for key, _count in write_dropping_bad_rows(engine, items, write_traffic)]
        except Exception:
            self._merge_back(counts)
            raise
        self.dropped += sum(c.count for key, c in counts.items() if key[0] not in active)
        if failed:
            self._report_failed(failed)
        self._maintain(engine, items)
        return len(items) - len(failed)

    def _merge_back(self, counts: dict[TrialKey, _Count]) -> None:
        with self._lock:
            for key, old in counts.items():
                self._add(key, old)

    def _report_failed(self, failed: Sequence[TrialKey]) -> None:
        self.failed_rows += len(failed)
        if not self._failure_logged:
            self._failure_logged = True
            draft, policy, outcome, origin = failed[0]
            log.warning(
                "corsadmin dropped %d draft traffic row(s) the database refused (the first: "
                "draft %d, policy %r, %s, origin %r); the other rows were written (logged "
                "once; TrialRecorder.failed_rows counts them)",
                len(failed),
                draft,
                policy,
                outcome,
                origin[:100],
            )

    def _maintain(self, engine: sa.Engine, items: Sequence[tuple[TrialKey, _Count]]) -> None:
        """Fold each (draft, policy, outcome)'s least counted origins into "other", in a
        transaction of its own: the counts are written whatever happens here."""
        pairs = sorted({(key[0], key[1]) for key, _c in items if not _pinned(key)})
        if not pairs:
            return
        try:
            with engine.begin() as connection:
                fold_traffic(connection, pairs, self.max_origins_per_outcome)
        except Exception as error:
            if not self._maintenance_failing:
                self._maintenance_failing = True
                log.warning(
                    "corsadmin could not fold draft traffic rows (%s); the counts are "
                    "written, retrying at the next flush (logged once)",
                    type(error).__name__,
                )
        else:
            self._maintenance_failing = False


def _table() -> sa.Table:
    table: sa.Table = DraftTrafficRow.__table__  # type: ignore[assignment]
    return table


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def active_drafts(connection: sa.Connection, ids: set[int]) -> set[int]:
    """Which of these drafts are active."""
    drafts: sa.Table = DraftRow.__table__  # type: ignore[assignment]
    query = sa.select(drafts.c.id).where(drafts.c.id.in_(sorted(ids)), drafts.c.status == _ACTIVE)
    return {int(found) for found in connection.scalars(query)}


def write_traffic(connection: sa.Connection, items: Sequence[tuple[TrialKey, _Count]]) -> None:
    """Upsert draft traffic rows: counts add up, the first example stays."""
    rows: list[dict[str, object]] = [
        {
            "draft_id": draft,
            "policy_name": policy,
            "outcome": outcome,
            "origin": origin,
            "count": c.count,
            "first_seen": _ts(c.first),
            "last_seen": _ts(c.last),
            "example_path": c.path,
            "example_method": c.method,
        }
        for (draft, policy, outcome, origin), c in items
    ]
    upsert_counts(connection, _table(), ("draft_id", "policy_name", "outcome", "origin"), rows)


def fold_traffic(connection: sa.Connection, pairs: Sequence[tuple[int, str]], keep: int) -> int:
    """Per (draft, policy) of ``pairs`` and outcome, keep the ``keep`` most counted origin
    rows and add the others' counts to the outcome's :data:`OTHER_ORIGINS` row. Returns
    the rows folded."""
    table = _table()
    where = sa.and_(
        table.c.draft_id.in_(sorted({draft for draft, _p in pairs})),
        table.c.policy_name.in_(sorted({policy for _d, policy in pairs})),
        table.c.outcome != EVALUATED,
        table.c.origin.not_in(sorted(BUCKETS)),
    )
    partition = (table.c.draft_id, table.c.policy_name, table.c.outcome)
    columns = (
        *partition,
        table.c.count,
        table.c.first_seen,
        table.c.last_seen,
        table.c.example_path,
        table.c.example_method,
    )
    deleted = delete_beyond(connection, table, partition, where, keep, columns)
    upsert_counts(
        connection, table, ("draft_id", "policy_name", "outcome", "origin"), _bucket_rows(deleted)
    )
    return len(deleted)


def _bucket_rows(deleted: Sequence[sa.Row[Any]]) -> list[dict[str, Any]]:
    """The folded rows summed into one :data:`OTHER_ORIGINS` row per draft, policy and
    outcome, with the earliest folded row's example."""
    buckets: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in sorted((dict(row._mapping) for row in deleted), key=lambda r: r["first_seen"]):
        key = (row["draft_id"], row["policy_name"], row["outcome"])
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = {**row, "origin": OTHER_ORIGINS, "count": int(row["count"])}
        else:
            bucket["count"] += int(row["count"])
            bucket["last_seen"] = max(bucket["last_seen"], row["last_seen"])
    return [buckets[key] for key in sorted(buckets)]
