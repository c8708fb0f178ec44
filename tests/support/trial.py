"""Helpers for the tests of trying a draft on live traffic.

:func:`discard_draft` closes the active draft of an app or a database with
``DraftStore.discard``: one store change, the revision moved with a ``draft`` change
log entry, so every worker drops the trial.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from corsadmin import CorsAdmin
from corsadmin.db.drafts import DraftStore
from corsadmin.db.models import DraftTrafficRow
from corsadmin.db.store import PolicyStore

#: (policy, outcome, origin) -> (count, example path, example method)
TrafficRows = dict[tuple[str, str, str], tuple[int, str, str]]


def discard_draft(target: Flask | sa.Engine, actor: str = "tester") -> int | None:
    """Discard the active draft of ``target``'s database; its id (None: there is none)."""
    if isinstance(target, Flask):
        with target.app_context():
            return _discard(CorsAdmin.state(target).store(actor))
    with Session(target) as session:
        return _discard(PolicyStore(session, actor=actor))


def _discard(store: PolicyStore) -> int | None:
    drafts = DraftStore(store)
    if drafts.active() is None:
        return None
    return drafts.discard()


def traffic_rows(engine: sa.Engine, draft: int | None = None) -> TrafficRows:
    """The ``corsadmin_draft_traffic`` rows (of one draft, or all)."""
    table: sa.Table = DraftTrafficRow.__table__  # type: ignore[assignment]
    query = sa.select(
        table.c.policy_name,
        table.c.outcome,
        table.c.origin,
        table.c.count,
        table.c.example_path,
        table.c.example_method,
    )
    if draft is not None:
        query = query.where(table.c.draft_id == draft)
    with engine.connect() as connection:
        return {
            (policy, outcome, origin): (int(count), path, method)
            for policy, outcome, origin, count, path, method in connection.execute(query)
        }
