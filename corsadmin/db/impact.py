"""Reading what a draft would do: its impact from the usage table, and the live traffic
the workers counted while it was active (:mod:`corsadmin.engine.impact` decides).

Bounded reads only. The usage table holds per policy at most
``MAX_USAGE_ORIGINS_PER_POLICY`` origins allowed by a broad rule or refused (plus
its buckets), but one row per origin allowed by an exact rule, which may be a
million. So per policy the draft updates or deletes, :func:`history_impact` reads:

- the rows that are not an exact rule's own origin (the bounded part), every one
  of which the draft may answer otherwise;
- of the exact rules' rows, those of the rules the draft names (removed, changed or
  added): the draft cannot change the verdict of another, unless it deletes or
  disables the policy (or enables one that is not): then every row;

each read at most :data:`MAX_IMPACT_ROWS_PER_POLICY` rows, the most counted first;
the rows beyond are counted, not replayed (:attr:`Impact.unread`). Of the live
policies it then reads (unless given them) only the rules that can allow one of the
origins read: every rule that is not one exact origin, and those origins' exact
rules (:func:`relevant_specs`).

The live traffic report (:func:`traffic_report`) reads at most
:data:`MAX_TRAFFIC_ORIGINS_PER_OUTCOME` rows per policy and outcome, and one total
of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..engine.impact import (
    EVALUATED,
    MAX_IMPACT_ORIGINS,
    MAX_TRAFFIC_ORIGINS_PER_OUTCOME,
    REPORTED_OUTCOMES,
    Beyond,
    DraftReport,
    Impact,
    OutcomeTotal,
    TrafficReport,
    TrafficRow,
    UsageRow,
    is_bucket,
    replay,
    replayed_policies,
)
from ..engine.snapshot import Snapshot
from ..engine.trial import Trial, build_trial
from ..errors import NoActiveDraft
from ..policy.draft import Draft
from ..policy.origins import parse_origin_rule
from ..policy.spec import OriginEntries, OriginEntry, PolicySpec
from .drafts import read_draft
from .export import settings_spec
from .loader import RuleCache, _read_policies
from .models import DraftTrafficRow, OriginRuleRow, OriginUsage, Policy

__all__ = [
    "MAX_IMPACT_ROWS_PER_POLICY",
    "draft_report",
    "history_impact",
    "live_specs",
    "relevant_specs",
    "snapshots_for",
    "traffic_report",
]

#: Usage rows read per policy by each of :func:`history_impact`'s reads, the most
#: counted first (above ``MAX_USAGE_ORIGINS_PER_POLICY`` and its buckets, so the
#: bounded part of a policy's usage is read whole).
MAX_IMPACT_ROWS_PER_POLICY: Final = 5_000
#: Origins named per ``IN (...)`` when reading the rows of the rules a draft names.
_IN_CHUNK: Final = 500

#: A connection or an ORM session (Flask-SQLAlchemy's scoped one included).
Connectable = sa.Connection | Session | scoped_session[Any]

_USAGE: Final[sa.Table] = OriginUsage.__table__  # type: ignore[assignment]
_TRAFFIC: Final[sa.Table] = DraftTrafficRow.__table__  # type: ignore[assignment]
_POLICIES: Final[sa.Table] = Policy.__table__  # type: ignore[assignment]
_RULES: Final[sa.Table] = OriginRuleRow.__table__  # type: ignore[assignment]

#: The live policies, as a draft's impact may be given them (see :func:`snapshots_for`).
Live = Mapping[str, PolicySpec] | Snapshot


def _connection(connection: Connectable) -> sa.Connection:
    return connection if isinstance(connection, sa.Connection) else connection.connection()


def live_specs(connection: Connectable, names: Iterable[str]) -> dict[str, PolicySpec]:
    """The live policies of these names (those that exist), every rule included."""
    found = _read_policies(_connection(connection), set(names), RuleCache())
    return {name: spec for name, spec in found.items() if spec is not None}


def _broad() -> sa.ColumnElement[bool]:
    """Rules that are not one exact origin (``re:``, ``*``, ``*.``, ``:*``, ``null``,
    ``file://``): any of them may allow an origin whose text it is not."""
    text = _RULES.c.origin
    return sa.or_(text.like("re:%"), text.like("%*%"), text.in_(["null", "file://"]))


def _entry(row: Any) -> OriginEntry:
    return OriginEntry(parse_origin_rule(row.origin, stored=True), row.note or "", row.expires_at)


def relevant_specs(
    connection: Connectable, draft: Draft, origins: Mapping[str, Iterable[str]]
) -> dict[str, PolicySpec]:
    """The live policies the draft touches, each with the rules that can allow one of
    ``origins[name]``: every rule that is not one exact origin, and the exact rules of
    those origins. Their verdict on those origins, and the draft's, are the whole
    policy's; no other exact rule is read (a policy may have a million)."""
    c = _RULES.c
    found: dict[str, PolicySpec] = {}
    for row in connection.execute(
        sa.select(_POLICIES).where(_POLICIES.c.name.in_(sorted(draft.policies)))
    ):
        entries = [
            _entry(rule)
            for rule in connection.execute(
                sa.select(c.origin, c.note, c.expires_at).where(c.policy_id == row.id, _broad())
            )
        ]
        texts = sorted(set(origins.get(row.name, ())))
        for start in range(0, len(texts), _IN_CHUNK):
            chunk = texts[start : start + _IN_CHUNK]
            entries += map(
                _entry,
                connection.execute(
                    sa.select(c.origin, c.note, c.expires_at).where(
                        c.policy_id == row.id, c.origin.in_(chunk), sa.not_(_broad())
                    )
                ),
            )
        entries.sort(key=lambda e: e.rule.text)
        found[row.name] = dataclasses.replace(settings_spec(row), origins=OriginEntries.of(entries))
    return found


def _live_settings(
    connection: Connectable, draft: Draft, live: Live | None
) -> dict[str, PolicySpec]:
    """The live policies the draft touches, their rules as ``live`` has them (None:
    none read, for their settings only)."""
    if live is None:
        rows = connection.execute(
            sa.select(_POLICIES).where(_POLICIES.c.name.in_(sorted(draft.policies)))
        )
        return {row.name: settings_spec(row) for row in rows}
    if isinstance(live, Snapshot):
        return {s.name: s for s in live.specs if s.name in draft.policies}
    return {name: live[name] for name in draft.policies if name in live}


def _same_draft(a: Draft, b: Draft) -> bool:
    return (a.id, a.version) == (b.id, b.version)


def snapshots_for(
    connection: Connectable, draft: Draft, live: Live | None = None
) -> tuple[Snapshot, Snapshot]:
    """The live snapshot and the draft's (``build_trial(live, draft).snapshot``), from
    ``live`` as a snapshot (the process's own: its compiled policies are taken over,
    and its trial of this draft version when it has one), or as specs by name (each
    holding every rule; only those the draft touches are compiled), or, None, the
    touched policies read whole from the database (:func:`history_impact` reads less)."""
    if isinstance(live, Snapshot):
        trial = getattr(live, "trial", None)  # the process's trial of the active draft
        if isinstance(trial, Trial) and _same_draft(trial.draft, draft):
            return live, trial.snapshot
        return live, build_trial(live, draft).snapshot
    specs = live if live is not None else live_specs(connection, draft.policies)
    touched = Snapshot(0, [specs[name] for name in sorted(draft.policies) if name in specs])
    return touched, build_trial(touched, draft).snapshot


# From history ----------------------------------------------------------------------


def _pinned() -> sa.ColumnElement[bool]:
    """Rows of an origin allowed by its own exact rule (one per rule: not bounded)."""
    return sa.and_(
        _USAGE.c.allowed.is_(True), _USAGE.c.rule.is_not(None), _USAGE.c.rule == _USAGE.c.origin
    )


def _not_pinned() -> sa.ColumnElement[bool]:
    return sa.or_(
        _USAGE.c.allowed.is_(False), _USAGE.c.rule.is_(None), _USAGE.c.rule != _USAGE.c.origin
    )


def _usage_row(row: Any) -> UsageRow:
    return UsageRow(
        row.policy_name,
        row.origin,
        int(row.requests),
        row.first_seen,
        row.last_seen,
        bool(row.allowed),
        row.rule,
    )


def _columns() -> list[sa.ColumnElement[Any]]:
    c = _USAGE.c
    # ``count`` is named otherwise: a row is a tuple, whose ``count`` is a method.
    requests = c.count.label("requests")
    return [c.policy_name, c.origin, requests, c.first_seen, c.last_seen, c.allowed, c.rule]


def _most_counted(
    connection: Connectable,
    policy: str,
    condition: sa.ColumnElement[bool],
    unread: MutableMapping[str, Beyond],
) -> Iterator[UsageRow]:
    """The ``policy``'s rows meeting ``condition``, at most MAX_IMPACT_ROWS_PER_POLICY,
    the most counted first; those beyond are added to ``unread``."""
    where = sa.and_(_USAGE.c.policy_name == policy, condition)
    rows = connection.execute(
        sa.select(*_columns())
        .where(where)
        .order_by(_USAGE.c.count.desc(), _USAGE.c.last_seen.desc(), _USAGE.c.id)
        .limit(MAX_IMPACT_ROWS_PER_POLICY)
    ).all()
    yield from map(_usage_row, rows)
    if len(rows) < MAX_IMPACT_ROWS_PER_POLICY:
        return
    total = connection.execute(
        sa.select(
            sa.func.count(_USAGE.c.id), sa.func.coalesce(sa.func.sum(_USAGE.c.count), 0)
        ).where(where)
    ).one()
    origins, requests = (
        int(total[0]) - len(rows),
        int(total[1]) - sum(int(r.requests) for r in rows),
    )
    if origins > 0:
        unread[policy] = unread.get(policy, Beyond()).plus(origins, requests)


def _named_rules(connection: Connectable, policy: str, texts: list[str]) -> Iterator[UsageRow]:
    """The ``policy``'s rows of origins allowed by their own exact rule, among ``texts``."""
    for start in range(0, len(texts), _IN_CHUNK):
        chunk = texts[start : start + _IN_CHUNK]
        rows = connection.execute(
            sa.select(*_columns())
            .where(_USAGE.c.policy_name == policy, _USAGE.c.origin.in_(chunk), _pinned())
            .order_by(_USAGE.c.origin)
        )
        yield from map(_usage_row, rows)


def _whole(draft: Draft, live: Mapping[str, PolicySpec]) -> set[str]:
    """The policies whose every usage row the draft may answer otherwise: not enabled
    live or not enabled (or not there) in the draft."""
    whole = set()
    for name in replayed_policies(draft):
        spec = live.get(name)
        proposed = draft.policies[name].proposed(spec)
        if spec is None or not spec.enabled or proposed is None or not proposed.enabled:
            whole.add(name)
    return whole


def _usage_rows(
    connection: Connectable, draft: Draft, whole: set[str], unread: MutableMapping[str, Beyond]
) -> Iterator[UsageRow]:
    """The usage rows whose verdict the draft may change (see the module's docstring)."""
    for name in replayed_policies(draft):
        yield from _most_counted(connection, name, _not_pinned(), unread)
        if name in whole:
            yield from _most_counted(connection, name, _pinned(), unread)
        else:
            texts = sorted(t for t in draft.policies[name].origins if not is_bucket(t))
            yield from _named_rules(connection, name, texts)


def history_impact(
    connection: Connectable,
    draft: Draft,
    live: Live | None = None,
    *,
    limit: int | None = None,
) -> Impact:
    """What ``draft`` would have done to the origins the usage table saw on the
    policies it updates or deletes; at most ``limit`` origins listed per outcome
    (default :data:`MAX_IMPACT_ORIGINS`).

    ``live``: the live policies, as for :func:`snapshots_for` (specs must hold every rule:
    a rule the draft does not name may allow an origin too). None (best outside a
    serving process): the rows are read first, then only the live rules that can
    allow one of their origins (:func:`relevant_specs`)."""
    unread: dict[str, Beyond] = {}
    whole = _whole(draft, _live_settings(connection, draft, live))
    rows: Iterable[UsageRow] = _usage_rows(connection, draft, whole, unread)
    if live is None:
        rows = list(rows)
        seen: dict[str, set[str]] = {}
        for row in rows:
            seen.setdefault(row.policy, set()).add(row.origin)
        live = relevant_specs(connection, draft, seen)
    before, after = snapshots_for(connection, draft, live)
    limit = MAX_IMPACT_ORIGINS if limit is None else limit
    impact = replay(draft, before, after, rows, limit=limit)
    return dataclasses.replace(impact, unread=unread)


# From live traffic -----------------------------------------------------------------


def _outcome_order(outcome: str) -> int:
    known = REPORTED_OUTCOMES
    return known.index(outcome) if outcome in known else len(known)


def _totals(connection: Connectable, draft_id: int) -> list[Any]:
    t = _TRAFFIC.c
    return list(
        connection.execute(
            sa.select(
                t.policy_name,
                t.outcome,
                sa.func.count(t.id).label("origins"),
                sa.func.coalesce(sa.func.sum(t.count), 0).label("requests"),
            )
            .where(t.draft_id == draft_id)
            .group_by(t.policy_name, t.outcome)
        )
    )


def _listed(connection: Connectable, draft_id: int, limit: int) -> list[Any]:
    """Per policy and outcome (not ``evaluated``), the ``limit`` most counted rows."""
    t = _TRAFFIC.c
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(t.policy_name, t.outcome),
            order_by=(t.count.desc(), t.last_seen.desc(), t.id),
        )
        .label("rank")
    )
    ranked = (
        sa.select(_TRAFFIC, rank).where(t.draft_id == draft_id, t.outcome != EVALUATED).subquery()
    )
    c = ranked.c
    return list(
        connection.execute(
            sa.select(
                c.policy_name,
                c.outcome,
                c.origin,
                c.count.label("requests"),  # a row's ``count`` is the tuple method
                c.first_seen,
                c.last_seen,
                c.example_path,
                c.example_method,
            ).where(c.rank <= limit)
        )
    )


def traffic_report(
    connection: Connectable, draft_id: int, *, limit: int | None = None
) -> TrafficReport:
    """What the workers counted for draft ``draft_id`` (``corsadmin_draft_traffic``):
    requests evaluated per policy, and per policy and outcome the ``limit`` origins
    most counted (by policy, outcome as :data:`REPORTED_OUTCOMES` orders them, count) with the
    totals of every row. ``limit``: :data:`MAX_TRAFFIC_ORIGINS_PER_OUTCOME` by default."""
    limit = MAX_TRAFFIC_ORIGINS_PER_OUTCOME if limit is None else limit
    evaluated: dict[str, int] = {}
    totals: list[OutcomeTotal] = []
    for row in _totals(connection, draft_id):
        if row.outcome == EVALUATED:
            evaluated[row.policy_name] = int(row.requests)
        else:
            totals.append(
                OutcomeTotal(row.policy_name, row.outcome, int(row.origins), int(row.requests))
            )
    totals.sort(key=lambda t: (t.policy, _outcome_order(t.outcome), t.outcome))
    rows = [
        TrafficRow(
            r.policy_name,
            r.outcome,
            r.origin,
            int(r.requests),
            r.first_seen,
            r.last_seen,
            r.example_path or "",
            r.example_method or "",
        )
        for r in _listed(connection, draft_id, limit)
    ]
    rows.sort(key=lambda r: (r.policy, _outcome_order(r.outcome), r.outcome, -r.count, r.origin))
    return TrafficReport(dict(sorted(evaluated.items())), tuple(rows), tuple(totals))


# Both ------------------------------------------------------------------------------


def draft_report(
    connection: Connectable,
    live: Live | None = None,
    *,
    draft: Draft | None = None,
) -> DraftReport:
    """The active draft (or ``draft``) with its impact from history and from live
    traffic. Raises :class:`NoActiveDraft` when there is none."""
    if draft is None:
        draft = read_draft(connection)
        if draft is None:
            raise NoActiveDraft()
    return DraftReport(
        draft, history_impact(connection, draft, live), traffic_report(connection, draft.id)
    )
