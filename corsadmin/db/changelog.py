"""The change log: which policies and origin rules each revision changed.

Every change (:mod:`corsadmin.db.store`) writes its entries in its own transaction,
beside the revision it moves, and prunes the entries older than
:data:`CHANGE_LOG_REVISIONS` revisions. A process holding the snapshot of revision
R reads the entries after R (:func:`read_delta`) and re-reads only what they name
(:mod:`corsadmin.db.loader`); when the log cannot tell (an entry pruned, a
revision written by a release without the log, an ``all`` entry) it loads
everything, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import sqlalchemy as sa

from .models import ChangeLogEntry

#: How many revisions the log keeps: a process further behind than this loads everything.
CHANGE_LOG_REVISIONS: Final = 10_000
#: A change naming more entries than this (an import of many policies) is logged as
#: one ``all`` entry: reloading everything is then about as cheap.
MAX_CHANGE_ENTRIES: Final = 1_000
#: A reload reads at most this many entries; with more, it loads everything.
MAX_DELTA_ENTRIES: Final = 10_000

ChangeKind = Literal["policy", "settings", "origin", "draft", "none", "all"]


@dataclass(frozen=True)
class Change:
    """One entry: ``policy`` re-reads the named policy (which may be gone), ``settings``
    only its row (its rules did not change: a policy of a million rules is enabled
    without re-reading them), ``origin`` one rule of it, ``draft`` the active draft
    (:mod:`corsadmin.db.drafts`: made, changed, promoted or discarded), ``none`` marks a
    revision that changed nothing a snapshot holds. A release that does not know a kind loads
    everything."""

    kind: ChangeKind
    policy: str | None = None
    origin: str | None = None


def record(connection: sa.Connection, revision: int, changes: Iterable[Change]) -> None:
    """Write what ``revision`` changed (in the change's transaction) and prune old entries."""
    unique = list(dict.fromkeys(changes)) or [Change("none")]
    if len(unique) > MAX_CHANGE_ENTRIES:
        unique = [Change("all")]
    table: sa.Table = ChangeLogEntry.__table__  # type: ignore[assignment]
    connection.execute(
        sa.insert(table),
        [
            {"revision": revision, "kind": c.kind, "policy_name": c.policy, "origin": c.origin}
            for c in unique
        ],
    )
    if revision > CHANGE_LOG_REVISIONS:
        connection.execute(
            sa.delete(table).where(table.c.revision <= revision - CHANGE_LOG_REVISIONS)
        )


@dataclass
class Delta:
    """What changed between two revisions: whole policies to re-read, policies whose
    settings only changed, and per other policy, the origin rules to re-read. A policy
    whose settings and some rules changed is re-read whole."""

    policies: set[str] = field(default_factory=set)
    settings: set[str] = field(default_factory=set)
    origins: dict[str, set[str]] = field(default_factory=dict)
    #: The active draft changed (re-read it).
    draft: bool = False

    def add(self, change: Change) -> None:
        if change.kind == "draft":
            self.draft = True
            return
        name = change.policy
        if name is None or name in self.policies:
            return
        if change.kind == "policy" or (
            # settings and rules both changed: re-read it whole
            (change.kind == "settings" and name in self.origins)
            or (change.kind == "origin" and name in self.settings)
        ):
            self.policies.add(name)
            self.origins.pop(name, None)
            self.settings.discard(name)
        elif change.kind == "settings":
            self.settings.add(name)
        elif change.kind == "origin" and change.origin is not None:
            self.origins.setdefault(name, set()).add(change.origin)


def read_delta(connection: sa.Connection, since: int, until: int) -> Delta | None:
    """What revisions ``since + 1`` to ``until`` changed, or None when the log cannot
    say: a revision without entries (pruned, or written by an older release), an
    ``all`` entry, more than :data:`MAX_DELTA_ENTRIES` entries, or no log table."""
    table: sa.Table = ChangeLogEntry.__table__  # type: ignore[assignment]
    query = (
        sa.select(table.c.revision, table.c.kind, table.c.policy_name, table.c.origin)
        .where(table.c.revision > since, table.c.revision <= until)
        .order_by(table.c.revision, table.c.id)
        .limit(MAX_DELTA_ENTRIES + 1)
    )
    try:
        rows = connection.execute(query).all()
    except sa.exc.DBAPIError:  # a database not upgraded yet: no log table
        if connection.in_transaction():
            connection.rollback()
        return None
    if len(rows) > MAX_DELTA_ENTRIES:
        return None
    if {row.revision for row in rows} != set(range(since + 1, until + 1)):
        return None
    delta = Delta()
    for row in rows:
        if row.kind not in ("policy", "settings", "origin", "draft", "none"):
            return None
        delta.add(Change(row.kind, row.policy_name, row.origin))
    return delta
