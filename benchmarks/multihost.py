"""Propagation across hosts: three application hosts sharing one PostgreSQL.

    sudo .venv/bin/python benchmarks/multihost.py              20 changes, prints the figures
    sudo .venv/bin/python benchmarks/multihost.py --changes 5  fewer

Each host is a Linux network namespace with its own addresses and hostname
(``tests/support/netns.py``: 198.18.0.0/15 only), running gunicorn with 3 sync
workers of ``tests/support/fleet_app.py`` (CORSADMIN_REFRESH_INTERVAL=0.2,
LISTEN/NOTIFY on); PostgreSQL (a throwaway server from ``tests/support/postgres.py``)
listens on the database bridge, each host reaching it through its own veth pair.

Every change is made through the CLI (``flask corsadmin origin add``) run inside
host A; its propagation is the time from its commit (``corsadmin_state.changed_at``)
until the last of the nine workers installed it, as each worker reports in the fleet
view (``loaded_at - committed_at``: one clock, the machine's). The next change waits
until every worker enforces the last one. Then host C is cut off from the database for
:data:`CUT` seconds (its packets dropped, no error, no reset) while a change is made
on A: how soon each of C's workers notices (logs the outage) and how soon after the
link is back all of them enforce the change.

Needs root (``ip netns``) and Debian's ``iproute2``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from corsadmin.runtime.notify import NETWORK_TIMEOUT  # noqa: E402
from tests.support.multihost import (  # noqa: E402
    WORKERS,
    Fleet,
    answers_by_worker,
    change_on,
    fleet_of_hosts,
    on_revision,
    revision,
    start_every_worker,
    wait_for,
)
from tests.support.netns import cut, restore  # noqa: E402

HOSTS: Final = 3
#: Changes measured by default.
CHANGES: Final = 20
#: How long every worker may take to enforce one change before the run fails (seconds).
PATIENCE: Final = 30.0
#: How long host C stays cut off from the database (seconds).
CUT: Final = 20.0
OUTAGE_LOGGED: Final = "corsadmin could not load the CORS policy from the database"


def propagation(fleet: Fleet, index: int) -> tuple[float, list[tuple[str, float]]]:
    """Make change ``index`` on host A and wait until every worker enforces it: the
    slowest worker's propagation, and every worker's with its host (seconds)."""
    origin = f"https://change-{index}.example"
    expected = change_on(fleet, fleet.lab.hosts[0], "origin", "add", "api", origin)
    workers = wait_for(
        f"every worker on revision {expected}",
        lambda: on_revision(fleet, expected, fleet.lab.hosts),
        PATIENCE,
        fleet,
    )
    each = [(w.host, w.propagation) for w in workers if w.propagation is not None]
    assert len(each) == WORKERS * HOSTS, workers
    assert all(w.listening for w in workers), workers  # woken by NOTIFY, not polling alone
    return max(p for _, p in each), each


def enforced_by_every_worker(fleet: Fleet, origin: str) -> bool:
    """Every worker of every host allows ``origin`` (its own answers)."""
    for server in fleet.servers:
        answers = answers_by_worker(server, origin)
        if len(answers) != WORKERS or set(answers.values()) != {(200, origin)}:
            return False
    return True


def outage(fleet: Fleet) -> tuple[float, float]:
    """Cut host C off for :data:`CUT` seconds while a change is made on A: seconds until
    each of C's workers logged the outage, and from the link's return until all of them
    enforced the change."""
    a, _, c = fleet.lab.hosts
    server = fleet.servers[2]
    before = server.logged(OUTAGE_LOGGED)
    cut(c)
    started = time.monotonic()
    try:
        expected = change_on(fleet, a, "origin", "add", "api", "https://during-cut.example")
        wait_for(
            "C's workers log the outage",
            lambda: server.logged(OUTAGE_LOGGED) >= before + WORKERS,
            NETWORK_TIMEOUT + PATIENCE,
            fleet,
        )
        noticed = time.monotonic() - started
        time.sleep(max(0.0, CUT - noticed))
    finally:
        restore(c, fleet.lab)
    back = time.monotonic()
    wait_for("C catches up", lambda: on_revision(fleet, expected, [c]), PATIENCE, fleet)
    return noticed, time.monotonic() - back


def summary(name: str, values: Sequence[float]) -> str:
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
    return (
        f"| {name} | {len(values)} | {min(values) * 1000:.0f} ms | "
        f"{statistics.median(values) * 1000:.0f} ms | {p95 * 1000:.0f} ms | "
        f"{max(values) * 1000:.0f} ms |"
    )


def measure(
    fleet: Fleet, changes: int
) -> tuple[list[float], list[tuple[str, float]], float, float]:
    """The slowest worker's propagation per change, every worker's with its host, and
    the outage's two figures (see :func:`outage`)."""
    start_every_worker(fleet)
    wait_for(
        "every worker current",
        lambda: on_revision(fleet, revision(fleet), fleet.lab.hosts),
        PATIENCE,
        fleet,
    )
    slowest: list[float] = []
    every: list[tuple[str, float]] = []
    for index in range(changes):
        last, each = propagation(fleet, index)
        slowest.append(last)
        every.extend(each)
    assert enforced_by_every_worker(fleet, f"https://change-{changes - 1}.example")
    noticed, caught_up = outage(fleet)
    return slowest, every, noticed, caught_up


def run(changes: int) -> str:
    with (
        tempfile.TemporaryDirectory(prefix="multihost-") as tmp,
        fleet_of_hosts(HOSTS, Path(tmp)) as fleet,
    ):
        slowest, every, noticed, caught_up = measure(fleet, changes)
        hosts = fleet.lab.hosts
    return "\n".join(
        [
            f"{HOSTS} hosts x {WORKERS} gunicorn workers, {changes} changes made on host A "
            "(CLI), from the commit until the worker installed it:",
            "",
            "| propagation | n | min | median | p95 | max |",
            "|---|---:|---:|---:|---:|---:|",
            summary(f"until the last of the {HOSTS * WORKERS} workers", slowest),
            summary("each worker", [p for _, p in every]),
            *(
                summary(f"each worker of {host.name}", [p for h, p in every if h == host.name])
                for host in hosts
            ),
            "",
            f"Host C cut off for {CUT:.0f} s (a change made on A meanwhile): each of its "
            f"workers logged the outage within {noticed:.1f} s of the cut "
            f"(NETWORK_TIMEOUT = {NETWORK_TIMEOUT} s); all enforced the change "
            f"{caught_up:.2f} s after the link was back.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--changes", type=int, default=CHANGES, help="changes measured")
    args = parser.parse_args(argv)
    if args.changes < 2:
        parser.error("--changes must be at least 2 (a p95 needs two figures)")
    print(run(args.changes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
