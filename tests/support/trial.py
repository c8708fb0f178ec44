"""Helpers for the tests of trying a draft on live traffic.

:func:`discard_draft` closes the active draft as ``DraftStore.discard`` does (it is
used when it exists): one store change, the draft row's status ``discarded``, the
revision moved with a ``draft`` change log entry, so every worker drops the trial.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from corsadmin import CorsAdmin
from corsadmin.db.audit import add_event
from corsadmin.db.changelog import Change
from corsadmin.db.drafts import ACTIVE, DraftStore
from corsadmin.db.models import DraftRow, DraftTrafficRow, utcnow
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
    discard: Any = getattr(drafts, "discard", None)
    if discard is not None:  # the real one (corsadmin.db.promote)
        return int(discard())
    table: sa.Table = DraftRow.__table__  # type: ignore[assignment]
    with store._change():
        found = store.session.execute(
            sa.select(table.c.id).where(table.c.status == ACTIVE).with_for_update()
        ).scalar_one()
        store.session.execute(
            sa.update(table)
            .where(table.c.id == found)
            .values(status="discarded", closed_at=utcnow(), closed_by=store.actor)
        )
        store._changes.append(Change("draft"))
        add_event(
            store.session,
            actor=store.actor,
            action="draft.discard",
            policy_name=None,
            summary=f"draft {found}: discarded",
            before={"draft": found},
            after=None,
            revision=store._revision,
        )
        store._events.append(("draft.discard", None))
    return int(found)


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
