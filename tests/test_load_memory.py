"""Memory per origin rule of a loaded snapshot (issue 9: a million rules in under
400 MiB). The bound is above what a rule costs now (about 340 bytes: its text, host,
rule, entry and lookup slot) and below what it cost before (about 500 bytes, the rule
cache's second dictionary of every rule included)."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import sqlalchemy as sa

from corsadmin.db.loader import RuleCache, load_snapshot
from corsadmin.db.models import OriginRuleRow, Policy, State, utcnow
from corsadmin.db.schema import upgrade
from corsadmin.engine.decide import decide

RULES = 30_000
MAX_BYTES_PER_RULE = 400


def bulk_database(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Policy),
            [
                {
                    "name": "tenants",
                    "path": "/api/**",
                    "methods": ["GET"],
                    "allow_headers": [],
                    "expose_headers": [],
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        policy_id = conn.execute(sa.select(Policy.id)).scalar_one()
        conn.execute(
            sa.insert(OriginRuleRow),
            [
                {
                    "policy_id": policy_id,
                    "origin": f"https://shop{i}.tenant.example",
                    "note": "",
                    "created_at": now,
                    "created_by": "test",
                }
                for i in range(RULES)
            ],
        )
        conn.execute(sa.update(State).values(revision=State.revision + 1))
    return engine


def test_a_loaded_snapshot_holds_few_bytes_per_rule(tmp_path: Path) -> None:
    engine = bulk_database(tmp_path / "rules.sqlite")
    load_snapshot(engine)  # imports, caches and the engine's pool warmed up first
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = RuleCache()  # kept, as the extension keeps its own
        snapshot = load_snapshot(engine, cache)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache is not None
    assert sum(len(spec.origins) for spec in snapshot.specs) == RULES
    assert decide(snapshot, "/api/x", "GET", "https://shop7.tenant.example").decision.allowed
    assert held / RULES < MAX_BYTES_PER_RULE, f"{held / RULES:.0f} bytes per rule"
