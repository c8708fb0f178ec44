"""What a draft would do: to the origins the usage counts saw, and to live traffic.

From history (:func:`replay`): the usage table knows, per policy, which origins
called it, how often and when. Each origin seen on a policy the draft changes is
decided against the policy as it is live and as the draft would make it (the
origin verdict of a plain request: :func:`corsadmin.engine.snapshot.decide_origin`
on :meth:`Snapshot.policy_named` of the live snapshot and of the trial snapshot,
:func:`corsadmin.engine.trial.build_trial`); those whose verdict changes are listed,
most seen first, as *newly refused* or *newly allowed*. Rows that are not one origin
(the usage buckets, named in parentheses: :data:`corsadmin.engine.counting.NOT_AN_ORIGIN`,
the "other" buckets of :mod:`corsadmin.runtime.usage`) cannot be replayed: they are
reported as such (:attr:`Impact.unlisted`), never silently dropped. A policy the
draft creates has no history (its name may have served another policy once: its
rows are not replayed); one it deletes or disables refuses every origin it allowed.

From live traffic (:class:`TrafficReport`): what the workers counted while the
draft was active (``corsadmin_draft_traffic``), read by
:func:`corsadmin.db.impact.traffic_report`.

Both are bounded: at most :data:`MAX_IMPACT_ORIGINS` origins listed per outcome
(the rest counted in :attr:`Impact.beyond`), at most
:data:`MAX_TRAFFIC_ORIGINS_PER_OUTCOME` traffic rows per policy and outcome (the
rest in :attr:`TrafficReport.totals`).

Pure: no Flask, no database.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ..policy.draft import Draft
from ..policy.spec import format_time
from .snapshot import Decision, Snapshot, decide_origin
from .trial import EVALUATED, HEADERS, NEWLY_ALLOWED, NEWLY_REFUSED

__all__ = [
    "EVALUATED",
    "HEADERS",
    "MAX_IMPACT_ORIGINS",
    "MAX_TRAFFIC_ORIGINS_PER_OUTCOME",
    "NEWLY_ALLOWED",
    "NEWLY_REFUSED",
    "REPORTED_OUTCOMES",
    "Beyond",
    "DraftReport",
    "Impact",
    "OutcomeTotal",
    "SeenOrigin",
    "TrafficReport",
    "TrafficRow",
    "UsageRow",
    "draft_document",
    "is_bucket",
    "replay",
    "replayed_policies",
]

#: Origins listed per outcome (newly refused, newly allowed) by :func:`replay`, the
#: most seen first; the others are counted in :attr:`Impact.beyond`.
MAX_IMPACT_ORIGINS: Final = 200
#: Traffic rows returned per policy and outcome by
#: :func:`corsadmin.db.impact.traffic_report`, the most counted first; the others
#: are counted in :attr:`TrafficReport.totals`.
MAX_TRAFFIC_ORIGINS_PER_OUTCOME: Final = 50

#: The outcomes of differing requests, in the order reports list them (what breaks first).
REPORTED_OUTCOMES: Final[tuple[str, ...]] = (NEWLY_REFUSED, NEWLY_ALLOWED, HEADERS)


def is_bucket(origin: str) -> bool:
    """Is this usage value a bucket (requests counted together, not one origin)? Bucket
    names are in parentheses; no serialized origin starts with one."""
    return origin.startswith("(")


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


# From history ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One row of the usage table: an origin (or a bucket) seen on a policy, how often,
    when, and the verdict and rule recorded for its latest request."""

    policy: str
    origin: str
    count: int
    first_seen: datetime
    last_seen: datetime
    allowed: bool = False
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class SeenOrigin:
    """An origin seen on a policy (or, in :attr:`Impact.unlisted`, a bucket) whose
    verdict the draft changes: how often and when it was seen, the live rule that
    allows it now (newly refused) and the draft's rule that would (newly allowed)."""

    policy: str
    origin: str
    count: int
    first_seen: datetime
    last_seen: datetime
    live_rule: str | None = None
    draft_rule: str | None = None

    def as_document(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "origin": self.origin,
            "count": self.count,
            "first_seen": _time(self.first_seen),
            "last_seen": _time(self.last_seen),
            "live_rule": self.live_rule,
            "draft_rule": self.draft_rule,
        }


@dataclass(frozen=True, slots=True)
class Beyond:
    """Origins, and their requests, counted but not listed (beyond a bound)."""

    origins: int = 0
    requests: int = 0

    def __bool__(self) -> bool:
        return self.origins > 0

    def plus(self, origins: int, requests: int) -> Beyond:
        return Beyond(self.origins + origins, self.requests + requests)

    def as_document(self) -> dict[str, int]:
        return {"origins": self.origins, "requests": self.requests}


@dataclass(frozen=True)
class Impact:
    """What the draft would have done to the origins seen on the policies it changes."""

    #: Allowed live, refused by the draft; the most seen first.
    newly_refused: tuple[SeenOrigin, ...] = ()
    #: Refused live, allowed by the draft; the most seen first.
    newly_allowed: tuple[SeenOrigin, ...] = ()
    #: The policies the draft touches, by name.
    policies: tuple[str, ...] = ()
    #: Origins replayed (rows of one origin, of the policies replayed).
    seen: int = 0
    #: The bucket rows of those policies: requests counted together, not replayed.
    unlisted: tuple[SeenOrigin, ...] = ()
    #: Per outcome (:data:`NEWLY_REFUSED`, :data:`NEWLY_ALLOWED`), origins found
    #: beyond the :data:`MAX_IMPACT_ORIGINS` listed.
    beyond: Mapping[str, Beyond] = field(default_factory=dict)
    #: Per policy, usage rows not read at all (beyond the rows read per policy:
    #: :data:`corsadmin.db.impact.MAX_IMPACT_ROWS_PER_POLICY`): not replayed.
    unread: Mapping[str, Beyond] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing seen would be answered otherwise, and nothing was left out."""
        return not (self.newly_refused or self.newly_allowed or any(self.beyond.values()))

    def as_document(self) -> dict[str, Any]:
        return {
            "policies": list(self.policies),
            "seen": self.seen,
            "newly_refused": [s.as_document() for s in self.newly_refused],
            "newly_allowed": [s.as_document() for s in self.newly_allowed],
            "unlisted": [s.as_document() for s in self.unlisted],
            "beyond": {k: v.as_document() for k, v in sorted(self.beyond.items()) if v},
            "unread": {k: v.as_document() for k, v in sorted(self.unread.items()) if v},
        }


def replayed_policies(draft: Draft) -> tuple[str, ...]:
    """The policies whose history the draft's impact replays: those it updates or
    deletes (a policy it creates has none)."""
    return tuple(sorted(n for n, c in draft.policies.items() if c.action != "create"))


def _verdict(snapshot: Snapshot, row: UsageRow) -> Decision | None:
    """The origin verdict of a plain request from ``row.origin`` on ``row.policy`` as
    ``snapshot`` has it (None: the policy is not enabled there, nothing is allowed)."""
    policy = snapshot.policy_named(row.policy)
    return None if policy is None else decide_origin(policy, row.origin)


class _Top:
    """The ``limit`` most seen origins given to it (ties: the first given), and how
    many more there were."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._heap: list[tuple[int, int, SeenOrigin]] = []
        self._order = itertools.count()
        self.beyond = Beyond()

    def add(self, seen: SeenOrigin) -> None:
        item = (seen.count, -next(self._order), seen)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, item)
            return
        dropped = heapq.heappushpop(self._heap, item)
        self.beyond = self.beyond.plus(1, dropped[2].count)

    def listed(self) -> tuple[SeenOrigin, ...]:
        return tuple(s for _, _, s in sorted(self._heap, key=lambda i: (-i[0], -i[1])))


def _rule(decision: Decision | None) -> str | None:
    rule = None if decision is None else decision.rule
    return None if rule is None else rule.text


def replay(
    draft: Draft,
    live: Snapshot,
    tried: Snapshot,
    rows: Iterable[UsageRow],
    *,
    limit: int = MAX_IMPACT_ORIGINS,
) -> Impact:
    """The impact of ``draft`` on the origins of ``rows`` (usage rows; those of a policy
    the draft does not update or delete are ignored): each decided against ``live``
    and against ``tried``, the draft's snapshot of it
    (``build_trial(live, draft).snapshot``). Memory: ``limit`` origins per outcome,
    whatever the number of rows."""
    replayed = set(replayed_policies(draft))
    refused, allowed = _Top(limit), _Top(limit)
    unlisted: list[SeenOrigin] = []
    seen = 0
    for row in rows:
        if row.policy not in replayed:
            continue
        if is_bucket(row.origin):
            unlisted.append(_seen(row, None, None))
            continue
        seen += 1
        before, after = _verdict(live, row), _verdict(tried, row)
        live_allows = before is not None and before.allowed
        draft_allows = after is not None and after.allowed
        if live_allows and not draft_allows:
            refused.add(_seen(row, _rule(before), None))
        elif draft_allows and not live_allows:
            allowed.add(_seen(row, None, _rule(after)))
    unlisted.sort(key=lambda s: (s.policy, -s.count, s.origin))
    return Impact(
        newly_refused=refused.listed(),
        newly_allowed=allowed.listed(),
        policies=tuple(sorted(draft.policies)),
        seen=seen,
        unlisted=tuple(unlisted),
        beyond={NEWLY_REFUSED: refused.beyond, NEWLY_ALLOWED: allowed.beyond},
    )


def _seen(row: UsageRow, live_rule: str | None, draft_rule: str | None) -> SeenOrigin:
    return SeenOrigin(
        row.policy, row.origin, row.count, row.first_seen, row.last_seen, live_rule, draft_rule
    )


# From live traffic -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficRow:
    """Requests from one origin (or a bucket) to one policy that the draft would answer
    otherwise (``outcome``), counted while it was active, with the first example."""

    policy: str
    outcome: str
    origin: str
    count: int
    first_seen: datetime
    last_seen: datetime
    example_path: str
    example_method: str

    def as_document(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "outcome": self.outcome,
            "origin": self.origin,
            "count": self.count,
            "first_seen": _time(self.first_seen),
            "last_seen": _time(self.last_seen),
            "example_method": self.example_method,
            "example_path": self.example_path,
        }


@dataclass(frozen=True, slots=True)
class OutcomeTotal:
    """Every row of one policy and outcome: origins (rows) and requests, listed or not."""

    policy: str
    outcome: str
    origins: int
    requests: int

    def as_document(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "outcome": self.outcome,
            "origins": self.origins,
            "requests": self.requests,
        }


@dataclass(frozen=True)
class TrafficReport:
    """What the workers counted while the draft was active, as they flushed it."""

    #: Requests evaluated against the draft, per policy it changes.
    evaluated: Mapping[str, int] = field(default_factory=dict)
    #: By policy, outcome (:data:`REPORTED_OUTCOMES` order), count (most first); at most
    #: :data:`MAX_TRAFFIC_ORIGINS_PER_OUTCOME` per policy and outcome.
    rows: tuple[TrafficRow, ...] = ()
    #: Per policy and outcome, every row counted (listed in ``rows`` or not).
    totals: tuple[OutcomeTotal, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.evaluated or self.rows)

    @property
    def policies(self) -> tuple[str, ...]:
        """Every policy with something counted, by name."""
        names = {*self.evaluated, *(t.policy for t in self.totals)}
        return tuple(sorted(names))

    def answered_otherwise(self, policy: str) -> int:
        """Requests to ``policy`` the draft would answer otherwise (every outcome)."""
        return sum(t.requests for t in self.totals if t.policy == policy)

    def rows_of(self, policy: str, outcome: str) -> list[TrafficRow]:
        """The rows listed of ``policy`` and ``outcome``, the most counted first."""
        return [r for r in self.rows if r.policy == policy and r.outcome == outcome]

    def beyond(self, policy: str, outcome: str) -> Beyond:
        """Origins of ``policy`` and ``outcome`` counted but not in :attr:`rows`."""
        listed = self.rows_of(policy, outcome)
        for total in self.totals:
            if total.policy == policy and total.outcome == outcome:
                return Beyond(
                    total.origins - len(listed), total.requests - sum(r.count for r in listed)
                )
        return Beyond()

    def as_document(self) -> dict[str, Any]:
        return {
            "evaluated": dict(sorted(self.evaluated.items())),
            "rows": [r.as_document() for r in self.rows],
            "totals": [t.as_document() for t in self.totals],
        }


# Both ------------------------------------------------------------------------------


def draft_document(draft: Draft) -> dict[str, Any]:
    """Who proposed ``draft``, when and why, and the policies it changes (how)."""
    return {
        "id": draft.id,
        "reason": draft.reason,
        "created_by": draft.created_by,
        "created_at": _time(draft.created_at),
        "updated_by": draft.updated_by,
        "updated_at": _time(draft.updated_at),
        "version": draft.version,
        "policies": {name: draft.policies[name].action for name in sorted(draft.policies)},
    }


@dataclass(frozen=True)
class DraftReport:
    """The draft, what it would have done to the origins seen, what live traffic showed."""

    draft: Draft
    history: Impact
    traffic: TrafficReport

    def as_document(self) -> dict[str, Any]:
        return {
            "draft": draft_document(self.draft),
            "history": self.history.as_document(),
            "traffic": self.traffic.as_document(),
        }
