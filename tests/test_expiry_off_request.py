"""An origin rule's expiry is applied by the poller thread ahead of time (issue 9): the
request at the expiry instant swaps in a snapshot prepared before, and compiles nothing;
the rule still stops being allowed at its expiry instant."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from corsadmin.engine.decide import decide
from corsadmin.engine.snapshot import Snapshot
from corsadmin.policy.spec import validate_policy
from corsadmin.runtime.refresh import SnapshotHolder, after_expiry

KEPT = "https://kept.example"
LEAVING = "https://leaving.example"
LATER = "https://later.example"


def snapshot_expiring(*expiries: datetime, bulk: int = 20_000) -> Snapshot:
    origins: list[object] = [KEPT]
    for i, when in enumerate(expiries):
        origins.append({"origin": LEAVING if i == 0 else LATER, "expires": when.isoformat()})
    origins += [f"https://bulk{i}.example" for i in range(bulk)]
    return Snapshot(7, [validate_policy({"name": "api", "path": "/api/**", "origins": origins})])


def allowed(snapshot: Snapshot, origin: str) -> bool:
    return decide(snapshot, "/api/x", "GET", origin).decision.allowed


@pytest.fixture
def recompiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread of every ``Snapshot.recompiled`` call (the real method)."""
    calls: list[str] = []
    real = Snapshot.recompiled

    def recorded(self: Snapshot, now: datetime | None = None) -> Snapshot:
        calls.append(threading.current_thread().name)
        return real(self, now)

    monkeypatch.setattr(Snapshot, "recompiled", recorded)
    return calls


def test_no_request_applies_an_expiry_and_the_rule_stops_at_its_instant(
    recompiles: list[str],
) -> None:
    # Far enough ahead that the poller thread prepares both even on a loaded machine.
    expires = datetime.now(UTC) + timedelta(seconds=3)
    later = expires + timedelta(milliseconds=30)  # two expiries a moment apart
    first = snapshot_expiring(expires, later)
    holder = SnapshotHolder(
        load=lambda: first, read_revision=lambda: 7, interval=0.2, name="expiry"
    )
    holder.reload()
    seen: list[tuple[float, bool, bool]] = []
    try:
        deadline = later.timestamp() + 0.5
        while time.time() < deadline:
            before = time.time()
            snapshot = holder.current()
            seen.append((before, allowed(snapshot, LEAVING), allowed(snapshot, LATER)))
            assert allowed(snapshot, KEPT)
    finally:
        holder.stop()
    assert any(ok for when, ok, _ in seen if when < expires.timestamp() - 0.1)
    assert not any(ok for when, ok, _ in seen if when >= expires.timestamp())
    assert not any(ok for when, _, ok in seen if when >= later.timestamp())
    assert any(ok for when, _, ok in seen if when < later.timestamp() - 0.01)
    assert holder.expiries_in_request == 0
    assert len(recompiles) >= 2  # both expiries were prepared...
    assert set(recompiles) == {"expiry-refresh"}  # ...by the poller thread only


def test_without_a_poller_thread_the_request_still_applies_the_expiry() -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.0)
    first = snapshot_expiring(expires, bulk=10)
    holder = SnapshotHolder(
        load=lambda: first, read_revision=lambda: 7, interval=60, background=False
    )
    holder.reload()
    assert allowed(holder.current(), LEAVING)
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 0.01)
    assert not allowed(holder.current(), LEAVING)
    assert holder.expiries_in_request == 1


def test_the_prepared_snapshot_is_the_snapshot_at_the_expiry_instant() -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    first = snapshot_expiring(expires)
    ready = after_expiry(first)
    assert ready.valid_until > first.valid_until
    assert ready.compiled_at == expires
    assert not allowed(ready, LEAVING)
    assert allowed(ready, KEPT)
    assert ready.specs == first.specs  # the same policies: only the compiled rules differ
    assert ready.revision == first.revision
