"""Reading the policy tables: a consistent revision's policies, compiled into a snapshot.

Stored values were validated on the way in (:mod:`corsadmin.db.store`); loading
only rebuilds the objects, through a :class:`RuleCache` of what did not change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Final, assert_never, overload

import sqlalchemy as sa

from ..engine.snapshot import Snapshot
from ..engine.trial import Trial, attach_trial
from ..policy.draft import Draft
from ..policy.fields import PLAIN_FIELDS, Kind
from ..policy.origins import (
    OriginRule,
    is_canonical_exact_rule,
    parse_origin_rule,
)
from ..policy.paths import PathPattern, load_path_pattern
from ..policy.spec import OriginEntries, OriginEntry, PolicySpec, plain_or_entry
from .changelog import Delta, read_delta
from .dialects import code_point_order, consistent_read, is_no_such_table
from .models import OriginRuleRow, Policy, State

#: Reads the active draft (:func:`corsadmin.db.drafts.read_draft`), or None.
DraftReader = Callable[[sa.Connection], "Draft | None"]

#: Rows fetched at a time when reading every origin rule (PostgreSQL: a server-side
#: cursor, so that a million rows are never all held at once as driver tuples).
_ROWS_PER_FETCH: Final = 10_000


class RuleCache:
    """Parsed path patterns by their stored text; origin rules are rebuilt.

    Stored values were validated when written; loading a snapshot only needs to
    rebuild the objects. A stored origin rule is rebuilt in a few µs (the fast path of
    :func:`parse_origin_rule` for its canonical text), cheaper in time and memory than
    keeping a second dictionary of every rule of the snapshot; most are not even
    rebuilt (a plain rule is kept as its text: :class:`OriginEntries`).
    """

    def __init__(self) -> None:
        self._paths: dict[str, PathPattern] = {}

    def origin(self, text: str) -> OriginRule:
        return parse_origin_rule(text, stored=True)

    def path(self, text: str) -> PathPattern:
        pattern = self._paths.get(text)
        if pattern is None:
            pattern = self._paths[text] = load_path_pattern(text)
        return pattern

    def keep_only(self, paths: set[str]) -> None:
        self._paths = {k: v for k, v in self._paths.items() if k in paths}


def read_committed_at(connection: sa.Connection, revision: int) -> float:
    """When the change that made ``revision`` committed (epoch seconds; 0.0 when the
    revision moved on since, or nothing was ever written)."""
    value = connection.execute(
        sa.select(State.changed_at).where(State.id == 1, State.revision == revision)
    ).scalar()
    return value.timestamp() if value is not None else 0.0


def read_revision(connection: sa.Connection) -> int:
    """The current revision (0 on a database where nothing was ever written)."""
    value = connection.execute(sa.select(State.revision).where(State.id == 1)).scalar()
    return int(value or 0)


class InconsistentRead(RuntimeError):
    """Policies kept changing while a snapshot was being read."""


LOAD_ATTEMPTS = 10


def load_specs(
    connection: sa.Connection, cache: RuleCache | None = None
) -> tuple[int, list[PolicySpec]]:
    """The revision and every policy at that revision, never a mixture of two.

    The rows are read in several statements, and a change may commit between
    them. Every change moves the revision in its own transaction, so if the
    revision is the same after the rows were read as before, no change
    committed in between and the rows are exactly that revision's; otherwise
    read again. (On PostgreSQL the read also runs in one REPEATABLE READ
    transaction, where it succeeds the first time.)
    """
    cache = cache or RuleCache()
    for _attempt in range(LOAD_ATTEMPTS):
        revision = read_revision(connection)
        specs = _read_specs(connection, cache)
        if read_revision(connection) == revision:
            return revision, specs
        if connection.in_transaction():
            connection.rollback()
    raise InconsistentRead(f"policies changed during {LOAD_ATTEMPTS} reads in a row")


def _read_specs(connection: sa.Connection, cache: RuleCache) -> list[PolicySpec]:
    p = Policy.__table__
    origin_rows: dict[int, list[str | OriginEntry]] = {}
    items: list[str | OriginEntry] = []
    last = None
    plain, rule_of = is_canonical_exact_rule, cache.origin
    for policy_id, origin, note, expires in _every_origin_row(connection):  # once per rule
        if policy_id != last:
            items = origin_rows.setdefault(policy_id, [])
            last = policy_id
        if not note and expires is None and plain(origin):
            items.append(origin)  # a plain rule stays its text (OriginEntries)
        else:
            items.append(OriginEntry(rule_of(origin), note or "", expires))
    specs: list[PolicySpec] = []
    seen_paths: set[str] = set()
    for row in connection.execute(sa.select(p).order_by(p.c.name)):
        origins = OriginEntries(origin_rows.get(row.id, ()), in_text_order=True)
        specs.append(_spec(row, cache.path(row.path), origins))
        seen_paths.add(row.path)
    cache.keep_only(seen_paths)
    return specs


def _every_origin_row(connection: sa.Connection) -> Iterator[tuple[Any, ...]]:
    """Every origin rule row as (policy id, origin, note, expiry), by policy and text.

    On SQLite and PostgreSQL the rows come straight from the driver's cursor, in the
    connection's transaction (a server-side cursor on PostgreSQL), the expiry converted
    as the column type does: a row costs about a third of a SQLAlchemy row."""
    r = OriginRuleRow.__table__
    query = sa.select(r.c.policy_id, r.c.origin, r.c.note, r.c.expires_at).order_by(
        r.c.policy_id, code_point_order(connection.dialect, r.c.origin)
    )
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        yield from connection.execution_options(yield_per=_ROWS_PER_FETCH).execute(query)
        return
    convert = r.c.expires_at.type.dialect_impl(dialect).result_processor(dialect, None)
    sql = str(query.compile(dialect=dialect))
    if not connection.in_transaction():
        connection.begin()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    # PostgreSQL (psycopg): a named cursor is a server-side one.
    cursor = (
        raw.cursor(name="corsadmin_origin_rules") if dialect.name == "postgresql" else raw.cursor()
    )
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(_ROWS_PER_FETCH):
            for policy_id, origin, note, expires in rows:
                if expires is not None and convert is not None:
                    expires = convert(expires)
                yield policy_id, origin, note, expires
    finally:
        cursor.close()


def load_snapshot(
    engine: sa.Engine,
    cache: RuleCache | None = None,
    previous: Snapshot | None = None,
    *,
    read_draft: DraftReader | None = None,
) -> Snapshot:
    """Compile a snapshot from the database (one consistent revision), taking over
    the unchanged policies of ``previous``.

    With ``previous``, only what the change log says changed since its revision is
    read (:func:`load_changes`); when the log cannot say, everything is. With
    ``read_draft``, the active draft is read in the same consistent read and tried
    against the snapshot (``Snapshot.trial``: :func:`corsadmin.engine.trial.attach_trial`);
    without it the snapshot tries no draft.
    """
    cache = cache or RuleCache()
    with engine.connect() as connection:
        connection = consistent_read(connection)
        snapshot = None
        if previous is not None and previous.loaded:
            snapshot = load_changes(connection, previous, cache, read_draft=read_draft)
        if snapshot is None:
            revision, specs, draft = _load_everything(connection, cache, read_draft)
            snapshot = Snapshot(revision, specs, previous=previous)
            if draft is not None:
                snapshot = attach_trial(snapshot, draft, _trial_of(previous))
        if snapshot is not previous and not snapshot.committed_at:
            snapshot.committed_at = read_committed_at(connection, snapshot.revision)
    return snapshot


def _load_everything(
    connection: sa.Connection, cache: RuleCache, read_draft: DraftReader | None
) -> tuple[int, list[PolicySpec], Draft | None]:
    """:func:`load_specs`, and the active draft at the same revision."""
    for _attempt in range(LOAD_ATTEMPTS):
        revision, specs = load_specs(connection, cache)
        if read_draft is None:
            return revision, specs, None
        draft = _read_draft(connection, read_draft)
        if read_revision(connection) == revision:
            return revision, specs, draft
        if connection.in_transaction():
            connection.rollback()
    raise InconsistentRead(f"policies changed during {LOAD_ATTEMPTS} reads in a row")


def _read_draft(connection: sa.Connection, read_draft: DraftReader) -> Draft | None:
    """The active draft; None on a database without the draft tables (not upgraded yet:
    the policies are enforced all the same)."""
    if not connection.in_transaction():
        connection.begin()
    try:
        with connection.begin_nested():
            return read_draft(connection)
    except sa.exc.DBAPIError as error:
        if not is_no_such_table(error):
            raise
        return None


def _trial_of(previous: Snapshot | None) -> Trial | None:
    """``previous``'s trial: the new trial takes over its compiled policies (and their
    memoized answers) that the draft still makes alike, changed or not."""
    return previous.trial if previous is not None else None


def load_changes(
    connection: sa.Connection,
    previous: Snapshot,
    cache: RuleCache,
    *,
    read_draft: DraftReader | None = None,
) -> Snapshot | None:
    """``previous`` brought to the current revision by reading only the policies and
    origin rules the change log names since its revision; None when the log cannot
    say (then load everything). One revision, never a mixture: the same check as
    :func:`load_specs` (the revision before and after the reads).

    With ``read_draft``, the draft is re-read when the log says it changed (a change
    of kind ``draft``), and ``previous``'s draft is tried against the new snapshot
    otherwise."""
    for _attempt in range(LOAD_ATTEMPTS):
        revision = read_revision(connection)
        if revision < previous.revision:
            return None  # a database other than the one previous came from
        if revision == previous.revision:
            return previous
        delta = read_delta(connection, previous.revision, revision)
        if delta is None:
            return None
        policies = _read_policies(connection, delta.policies, cache)
        settings = _read_settings(connection, delta.settings, previous, cache)
        origins = _read_origins(connection, delta.origins, previous, cache)
        if origins is None or settings is None:
            return None
        policies.update(settings)
        draft = _draft_after(connection, delta, previous, read_draft)
        if read_revision(connection) == revision:
            snapshot = previous.with_changes(revision, policies, origins)
            if draft is None:
                return snapshot
            return attach_trial(snapshot, draft, _trial_of(previous))
        if connection.in_transaction():
            connection.rollback()
    raise InconsistentRead(f"policies changed during {LOAD_ATTEMPTS} reads in a row")


def _draft_after(
    connection: sa.Connection, delta: Delta, previous: Snapshot, read_draft: DraftReader | None
) -> Draft | None:
    """The active draft after the changes of ``delta``: read again when it changed, else
    the one ``previous`` tries (None without ``read_draft``: no draft is tried)."""
    if read_draft is None:
        return None
    if delta.draft:
        return _read_draft(connection, read_draft)
    return previous.trial.draft if previous.trial is not None else None


def _read_settings(
    connection: sa.Connection, names: set[str], previous: Snapshot, cache: RuleCache
) -> dict[str, PolicySpec | None] | None:
    """The policies named, their settings as stored now and their origin rules as in
    ``previous`` (the log says they did not change: none is read). None when a policy
    is not where the log says (then load everything)."""
    if not names:
        return {}
    p = Policy.__table__
    rows = connection.execute(sa.select(p).where(p.c.name.in_(sorted(names)))).all()
    before = {spec.name: spec for spec in previous.specs}
    if {row.name for row in rows} != names or not names <= set(before):
        return None
    return {row.name: _spec(row, cache.path(row.path), before[row.name].origins) for row in rows}


def _read_policies(
    connection: sa.Connection, names: set[str], cache: RuleCache
) -> dict[str, PolicySpec | None]:
    """The policies named, as stored now (None: no longer there)."""
    found: dict[str, PolicySpec | None] = dict.fromkeys(names)
    if not names:
        return found
    p = Policy.__table__
    r = OriginRuleRow.__table__
    rows = connection.execute(sa.select(p).where(p.c.name.in_(sorted(names)))).all()
    origin_rows: dict[int, list[str | OriginEntry]] = {row.id: [] for row in rows}
    if origin_rows:
        for rule in connection.execute(
            sa.select(r.c.policy_id, r.c.origin, r.c.note, r.c.expires_at)
            .where(r.c.policy_id.in_(sorted(origin_rows)))
            .order_by(r.c.policy_id, code_point_order(connection.dialect, r.c.origin))
        ):
            origin_rows[rule.policy_id].append(_entry(rule, cache, plain=True))
    for row in rows:
        origins = OriginEntries(origin_rows[row.id], in_text_order=True)
        found[row.name] = _spec(row, cache.path(row.path), origins)
    return found


def _read_origins(
    connection: sa.Connection,
    texts: dict[str, set[str]],
    previous: Snapshot,
    cache: RuleCache,
) -> dict[str, tuple[PolicySpec, dict[str, OriginEntry | None]]] | None:
    """For each policy whose only change is some origin rules: the policy with those
    rules as stored now, and each rule's entry now (None: removed). None when a
    policy is not where the log says (then load everything)."""
    if not texts:
        return {}
    p = Policy.__table__
    r = OriginRuleRow.__table__
    ids = {
        row.id: row.name
        for row in connection.execute(
            sa.select(p.c.id, p.c.name).where(p.c.name.in_(sorted(texts)))
        )
    }
    before = {spec.name: spec for spec in previous.specs}
    if set(ids.values()) != set(texts) or not set(texts) <= set(before):
        return None
    changes: dict[str, dict[str, OriginEntry | None]] = {
        name: dict.fromkeys(wanted) for name, wanted in texts.items()
    }
    every_text = sorted(set().union(*texts.values()))
    for rule in connection.execute(
        sa.select(r.c.policy_id, r.c.origin, r.c.note, r.c.expires_at).where(
            r.c.policy_id.in_(sorted(ids)), r.c.origin.in_(every_text)
        )
    ):
        name = ids[rule.policy_id]
        if rule.origin in changes[name]:
            changes[name][rule.origin] = _entry(rule, cache)
    return {name: (_with_entries(before[name], change), change) for name, change in changes.items()}


@overload
def _entry(row: Any, cache: RuleCache) -> OriginEntry: ...


@overload
def _entry(row: Any, cache: RuleCache, *, plain: bool) -> str | OriginEntry: ...


def _entry(row: Any, cache: RuleCache, *, plain: bool = False) -> str | OriginEntry:
    """A stored rule's entry; with ``plain``, a plain rule's text (see
    :class:`~corsadmin.policy.spec.OriginEntries`)."""
    if plain:
        return plain_or_entry(row.origin, row.note or "", row.expires_at, cache.origin)
    return OriginEntry(cache.origin(row.origin), row.note or "", row.expires_at)


def _with_entries(spec: PolicySpec, changes: dict[str, OriginEntry | None]) -> PolicySpec:
    """``spec`` with these origin rules replaced, added or (None) removed, the rules kept
    in text order (a copy of the items; no rule is parsed again)."""
    return dataclasses.replace(spec, origins=spec.origins.with_changes(changes))


def spec_of(policy: Policy) -> PolicySpec:
    """A stored policy as a spec (stored values were validated on the way in)."""
    origins = OriginEntries(
        (
            plain_or_entry(r.origin, r.note or "", r.expires_at, _stored_rule)
            for r in sorted(policy.origin_rules, key=lambda r: r.origin)
        ),
        in_text_order=True,
    )
    return _spec(policy, load_path_pattern(policy.path), origins)


def _stored_rule(text: str) -> OriginRule:
    return parse_origin_rule(text, stored=True)


def _spec(row: Any, path: PathPattern, origins: OriginEntries) -> PolicySpec:
    """A policy's settings, from an ORM object or a plain row (same attribute names)."""
    plain = {name: read(getattr(row, name)) for name, read in _COLUMN_READERS}
    return PolicySpec(path=path, origins=origins, **plain)


def _text(value: str | None) -> str:
    return value or ""


def _optional_int(value: int | None) -> int | None:
    return None if value is None else int(value)


def column_reader(kind: Kind) -> Callable[[Any], Any]:
    """How a plain field's column value, of this kind, becomes the spec's value."""
    match kind:
        case Kind.TEXT | Kind.MULTILINE:
            return _text
        case Kind.TOKENS:
            return tuple
        case Kind.BOOL:
            return bool
        case Kind.INT:
            return int
        case Kind.OPTIONAL_INT:
            return _optional_int
        case Kind.PATH | Kind.ORIGINS:
            raise ValueError(f"a {kind.value} is not stored as one column")
        case _:
            assert_never(kind)


#: Each plain field's column, and how its value becomes the spec's (chosen once: a
#: snapshot load reads every policy).
_COLUMN_READERS: Final = tuple((f.name, column_reader(f.kind)) for f in PLAIN_FIELDS)
