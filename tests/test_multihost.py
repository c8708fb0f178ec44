"""Three application hosts (network namespaces, each with its own addresses and
hostname, each running gunicorn with 3 workers) sharing one PostgreSQL:

(a) a change made through the CLI on host A is enforced by every worker on A, B and C
    (the fleet view lists all nine on the new revision; each worker's answers say so);
(b) with host C cut off from the database (its packets dropped: no error, no reset),
    a change on A reaches every worker of A and B; each of C's workers notices the
    outage (it logs it, instead of hanging on the lost connection) and keeps answering
    from its last snapshot: the old revision enforced, 200s, each answer well within
    :data:`OFFLINE_REQUEST_TIMEOUT` (no database read on the request path);
(c) the link back, C's workers enforce the current revision within :data:`CATCH_UP`.

Needs root (``ip netns``) and Debian's ``iproute2``; ``make system-deps`` installs it.
The figures over 20 changes are benchmarks/multihost.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from corsadmin.runtime.notify import NETWORK_TIMEOUT
from tests.support.multihost import (
    ORIGIN,
    WORKERS,
    Fleet,
    Running,
    answers_by_worker,
    change_on,
    on_revision,
    revision,
    start_every_worker,
    wait_for,
    workers_by_host,
)
from tests.support.multihost import fleet_of_hosts as hosts_sharing_a_database
from tests.support.netns import Host, cut, restore

pytestmark = pytest.mark.slow

HOSTS: Final = 3
FIRST: Final = "https://first.example"
SECOND: Final = "https://second.example"
#: How long every worker may take to enforce a change, or to start (seconds): generous,
#: for a loaded CI machine (benchmarks/multihost.py measures the real figures).
PATIENCE: Final = 30.0
#: How long a host cut off from the database may take to enforce the current revision
#: once its link is back (seconds; 1.2 s in benchmarks/multihost.py).
CATCH_UP: Final = 20.0
#: A request to a host cut off from the database must be answered within this many
#: seconds: far more than an answer from memory takes, less than a database read over
#: the cut link takes to fail (corsadmin's NETWORK_TIMEOUT bounds the refresh thread's).
OFFLINE_REQUEST_TIMEOUT: Final = 5.0
#: What each worker logs (once) when its refresh thread loses the database.
OUTAGE_LOGGED: Final = "corsadmin could not load the CORS policy from the database"


def enforced_everywhere(fleet: Fleet, expected: int, hosts: list[Host], patience: float) -> None:
    """Every worker of ``hosts`` lists ``expected`` in the fleet view within ``patience``."""
    workers = wait_for(
        f"every worker of {[h.name for h in hosts]} on revision {expected}",
        lambda: on_revision(fleet, expected, hosts),
        patience,
        fleet,
    )
    assert len(workers) == WORKERS * len(hosts)
    assert {w.host for w in workers} == {h.name for h in hosts}
    assert all(w.propagation is not None and w.propagation >= 0 for w in workers)


def answers(
    server: Running, origin: str, timeout: float | None = None
) -> set[tuple[int, str | None]]:
    """The (status, Access-Control-Allow-Origin) pairs every worker of ``server`` sent
    to ``origin``; every one of its workers must have answered."""
    by_pid = answers_by_worker(server, origin, timeout)
    assert 0 not in by_pid, (server.host.name, by_pid)
    assert len(by_pid) == WORKERS, (server.host.name, by_pid)
    return set(by_pid.values())


def test_a_change_on_one_host_reaches_every_worker_of_every_host(tmp_path: Path) -> None:
    with hosts_sharing_a_database(HOSTS, tmp_path) as fleet:
        a, b, c = fleet.lab.hosts
        start_every_worker(fleet)
        enforced_everywhere(fleet, revision(fleet), fleet.lab.hosts, PATIENCE)

        # (a) a change made on host A
        first = change_on(fleet, a, "origin", "add", "api", FIRST)
        enforced_everywhere(fleet, first, fleet.lab.hosts, PATIENCE)
        for server in fleet.servers:
            assert answers(server, FIRST) == {(200, FIRST)}

        a_host_cut_off_keeps_its_snapshot(fleet, a, b, c)

        # (c) the link back: C catches up
        restore(c, fleet.lab)
        second = revision(fleet)
        enforced_everywhere(fleet, second, [c], CATCH_UP)
        assert answers(fleet.servers[2], SECOND) == {(200, SECOND)}


def a_host_cut_off_keeps_its_snapshot(fleet: Fleet, a: Host, b: Host, c: Host) -> None:
    """(b): C cut off, a change on A reaches A and B; C's workers log the outage and
    answer from their last snapshot, promptly."""
    c_server = fleet.servers[2]
    before = c_server.logged(OUTAGE_LOGGED)
    cut(c)
    second = change_on(fleet, a, "origin", "add", "api", SECOND)
    enforced_everywhere(fleet, second, [a, b], PATIENCE)
    for server in fleet.servers[:2]:
        assert answers(server, SECOND) == {(200, SECOND)}
    wait_for(
        f"each of {c.name}'s workers logs the outage (its refresh thread is not stuck)",
        lambda: c_server.logged(OUTAGE_LOGGED) >= before + WORKERS,
        NETWORK_TIMEOUT + PATIENCE,
        fleet,
    )
    assert answers(c_server, SECOND, OFFLINE_REQUEST_TIMEOUT) == {(200, None)}
    assert answers(c_server, FIRST, OFFLINE_REQUEST_TIMEOUT) == {(200, FIRST)}
    assert answers(c_server, ORIGIN, OFFLINE_REQUEST_TIMEOUT) == {(200, ORIGIN)}
    # The fleet view: no worker of C claims the revision it cannot have read.
    assert all(w.revision < second for w in workers_by_host(fleet).get(c.name, []))
