"""Helpers of the draft impact tests: usage counted through the real recorder, draft
traffic rows written as the runtime's writer writes them (one row per policy,
outcome and origin)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from corsadmin.db.models import DraftTrafficRow
from corsadmin.runtime.usage import UsageRecorder


def count_usage(
    engine: sa.Engine,
    policy: str,
    origin: str,
    times: int,
    *,
    rule: str | None = None,
    allowed: bool = False,
) -> None:
    """``times`` requests from ``origin`` on ``policy``, counted by a usage recorder (as
    the request hook counts them) and flushed to the usage table."""
    recorder = UsageRecorder()
    for _ in range(times):
        recorder.record(policy, origin, rule, allowed)
    recorder.flush(engine)


def allowed_by_itself(engine: sa.Engine, policy: str, origin: str, times: int) -> None:
    """Requests from ``origin``, allowed by its own exact rule."""
    count_usage(engine, policy, origin, times, rule=origin, allowed=True)


def add_traffic(
    engine: sa.Engine,
    draft_id: int,
    policy: str,
    outcome: str,
    origin: str,
    count: int,
    *,
    path: str = "/api/items",
    method: str = "GET",
    last_seen: datetime | None = None,
) -> None:
    """One ``corsadmin_draft_traffic`` row."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(DraftTrafficRow).values(
                draft_id=draft_id,
                policy_name=policy,
                outcome=outcome,
                origin=origin,
                count=count,
                first_seen=now,
                last_seen=last_seen or now,
                example_path=path,
                example_method=method,
            )
        )
