"""Under load, while the policy changes: the standalone app under gunicorn on PostgreSQL
and on MariaDB.

The performance issue promises two things, tested here against a real server
(``gunicorn -w 3 manage:create_app()``, refresh interval 0.2 s) on a fresh
PostgreSQL database (changes announced by NOTIFY) and a fresh MariaDB one (polled):

- under a bounded load on loopback (allowed, refused and preflight requests
  and requests without ``Origin``) while the policy alternates between two
  documents about five times a second, no response is a 5xx and every
  response's ``Access-Control-*`` and ``Vary`` headers are exactly those of
  one document or the other, never a mixture;
- a change committed by another process is enforced by every gunicorn worker
  within 1 second.

The two documents, A and B, hold one policy (same name, same path ``/api/**``)
and differ in every field that reaches a header: the origins (one allowed only
by A, one only by B, one by both, one by neither), the methods, the allowed
request headers, the exposed headers, ``max_age``, ``credentials`` and
``private_network``. The headers each document calls for are computed here
from the document itself (:func:`expected_headers`), not asked of corsadmin.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from corsadmin.db.store import PolicyStore
from tests.support.backends import SERVER_BACKENDS, fresh_database
from tests.support.cli import run_cli
from tests.support.servers import (
    LOOPBACK,
    free_port,
    gunicorn_command,
    log_tail,
    serve_process,
)

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
REFRESH_INTERVAL = 0.2  # seconds: CORSADMIN_REFRESH_INTERVAL of the server under test
PROPAGATION_LIMIT = 1.0  # seconds: the promise, every worker within it
HTTP_TIMEOUT = 10.0

LOAD_SECONDS = 4.0  # the load stops after this long...
LOAD_MAX_REQUESTS = 6000  # ...or after this many requests, whichever comes first
LOAD_CLIENTS = 4
MIN_CHECKED = 300  # responses the load must at least have checked
CHANGE_EVERY = 0.2  # seconds between two policy changes during the load
PROPAGATION_CHANGES = 5
PROPAGATION_POLLERS = 6

# --- the two policy documents ------------------------------------------------------------

ONLY_A = "https://only-a.example"
ONLY_B = "https://only-b.example"
BOTH = "https://both.example"
NEITHER = "https://neither.example"
ORIGINS = (ONLY_A, ONLY_B, BOTH, NEITHER)

POLICY_A: dict[str, Any] = {
    "name": "load",
    "path": "/api/**",
    "origins": [ONLY_A, BOTH],
    "methods": ["GET", "PUT", "DELETE"],
    "allow_headers": ["Content-Type"],
    "expose_headers": ["X-Request-Id", "X-Only-A"],
    "credentials": True,
    "max_age": 600,
    "private_network": True,
}
POLICY_B: dict[str, Any] = {
    "name": "load",
    "path": "/api/**",
    "origins": [ONLY_B, BOTH],
    "methods": ["GET", "POST", "PUT"],
    "allow_headers": ["Content-Type", "X-Trace"],
    "expose_headers": ["X-Only-B"],
    "credentials": False,
    "max_age": 30,
    "private_network": False,
}
POLICIES = {"A": POLICY_A, "B": POLICY_B}


def document(state: str) -> dict[str, Any]:
    return {"corsadmin": 1, "policies": [POLICIES[state]]}


# --- what a response must carry, derived from the document --------------------------------


@dataclass(frozen=True)
class Kind:
    """One shape of request the load sends (with or without an Origin)."""

    name: str
    method: str = "GET"
    request_method: str | None = None  # Access-Control-Request-Method (a preflight)
    request_headers: str | None = None  # Access-Control-Request-Headers
    private_network: bool = False  # Access-Control-Request-Private-Network: true

    @property
    def preflight(self) -> bool:
        return self.request_method is not None

    @property
    def status(self) -> int:
        # A covered preflight is answered 204 before routing; the GETs reach the view.
        return 204 if self.preflight else 200

    def headers(self, origin: str | None) -> dict[str, str]:
        headers = {} if origin is None else {"Origin": origin}
        if self.request_method is not None:
            headers["Access-Control-Request-Method"] = self.request_method
        if self.request_headers is not None:
            headers["Access-Control-Request-Headers"] = self.request_headers
        if self.private_network:
            headers["Access-Control-Request-Private-Network"] = "true"
        return headers


SIMPLE_GET = Kind("get")
PREFLIGHT_PUT = Kind(
    "preflight-put", method="OPTIONS", request_method="PUT", request_headers="content-type"
)
# GET is allowed by both; x-trace only by B: the Allow-Headers answer differs.
PREFLIGHT_GET_TRACE = Kind(
    "preflight-get-trace",
    method="OPTIONS",
    request_method="GET",
    request_headers="x-trace, content-type",
)
# DELETE only by A; the private network only by A.
PREFLIGHT_DELETE_PRIVATE = Kind(
    "preflight-delete-private",
    method="OPTIONS",
    request_method="DELETE",
    request_headers="content-type",
    private_network=True,
)
KINDS = (SIMPLE_GET, PREFLIGHT_PUT, PREFLIGHT_GET_TRACE, PREFLIGHT_DELETE_PRIVATE)

# Every request shape of the load: each kind with each origin, and one without Origin.
SHAPES: tuple[tuple[Kind, str | None], ...] = (
    *((kind, origin) for kind in KINDS for origin in ORIGINS),
    (SIMPLE_GET, None),
)

HeaderSet = tuple[tuple[str, str], ...]


def expected_headers(policy: dict[str, Any], origin: str | None, kind: Kind) -> HeaderSet:
    """The ``Access-Control-*`` and ``Vary`` headers (lower-case names, sorted) that
    ``policy`` calls for, by the Fetch standard and Flask-CORS's way of writing them
    (lists joined by ", " in sorted order)."""
    # The answer depends on the Origin header on a covered path, refusals included.
    headers = [("vary", "Origin")]
    if origin is None or origin not in policy["origins"]:
        return tuple(sorted(headers))
    headers.append(("access-control-allow-origin", origin))
    if policy["credentials"]:
        headers.append(("access-control-allow-credentials", "true"))
    if policy["expose_headers"]:
        headers.append(
            ("access-control-expose-headers", ", ".join(sorted(policy["expose_headers"])))
        )
    if kind.private_network:
        # Flask-CORS answers a private-network request either way; only "true" grants it.
        granted = "true" if policy["private_network"] else "false"
        headers.append(("access-control-allow-private-network", granted))
    if kind.preflight and kind.request_method in policy["methods"]:
        allowed = {h.lower() for h in policy["allow_headers"]}
        requested = [h.strip() for h in (kind.request_headers or "").split(",") if h.strip()]
        granted_headers = sorted(h for h in requested if h.lower() in allowed)
        if granted_headers:
            headers.append(("access-control-allow-headers", ", ".join(granted_headers)))
        headers.append(("access-control-allow-methods", ", ".join(sorted(policy["methods"]))))
        headers.append(("access-control-max-age", str(policy["max_age"])))
    return tuple(sorted(headers))


def expected(state: str, origin: str | None, kind: Kind) -> HeaderSet:
    return expected_headers(POLICIES[state], origin, kind)


def cors_headers_of(response: http.client.HTTPResponse) -> HeaderSet:
    """Every Access-Control-* and Vary header of a response, repeated ones included."""
    return tuple(
        sorted(
            (name.lower(), value)
            for name, value in response.getheaders()
            if name.lower().startswith("access-control-") or name.lower() == "vary"
        )
    )


def classify(headers: HeaderSet, origin: str | None, kind: Kind) -> str:
    """'A', 'B', 'both' (the two documents agree on this request) or 'neither'."""
    under_a = headers == expected("A", origin, kind)
    under_b = headers == expected("B", origin, kind)
    if under_a and under_b:
        return "both"
    return "A" if under_a else "B" if under_b else "neither"


def test_the_expectations_follow_the_documents() -> None:
    """The derived expectations, spelled out for two shapes (so the derivation is checked)."""
    assert expected("A", BOTH, PREFLIGHT_DELETE_PRIVATE) == (
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-headers", "content-type"),
        ("access-control-allow-methods", "DELETE, GET, PUT"),
        ("access-control-allow-origin", BOTH),
        ("access-control-allow-private-network", "true"),
        ("access-control-expose-headers", "X-Only-A, X-Request-Id"),
        ("access-control-max-age", "600"),
        ("vary", "Origin"),
    )
    assert expected("B", BOTH, PREFLIGHT_DELETE_PRIVATE) == (
        ("access-control-allow-origin", BOTH),
        ("access-control-allow-private-network", "false"),
        ("access-control-expose-headers", "X-Only-B"),
        ("vary", "Origin"),
    )
    assert expected("B", BOTH, PREFLIGHT_GET_TRACE) == (
        ("access-control-allow-headers", "content-type, x-trace"),
        ("access-control-allow-methods", "GET, POST, PUT"),
        ("access-control-allow-origin", BOTH),
        ("access-control-expose-headers", "X-Only-B"),
        ("access-control-max-age", "30"),
        ("vary", "Origin"),
    )
    assert expected("A", ONLY_B, SIMPLE_GET) == (("vary", "Origin"),)
    # Every shape sent with an origin one of the documents allows tells A from B, so
    # a response that is neither (a mixture) cannot pass for one of them.
    for kind, origin in SHAPES:
        if origin in (ONLY_A, ONLY_B, BOTH):
            assert expected("A", origin, kind) != expected("B", origin, kind), (kind, origin)
        else:
            assert expected("A", origin, kind) == expected("B", origin, kind), (kind, origin)


# --- the deployment: PostgreSQL, the CLI, gunicorn -----------------------------------------


@dataclass
class Deployment:
    """The running gunicorn server, its database, and a store to change the policy."""

    port: int
    database_url: str
    log_path: Path
    engine: sa.Engine
    pids: set[int]
    state: str = "A"  # the document the database holds now

    def log(self) -> str:
        return log_tail(self.log_path, 80)

    def change_to(self, state: str) -> float:
        """Replace the policy by document ``state``; the monotonic time of its commit."""
        committed: list[float] = []
        with Session(self.engine) as session:
            store = PolicyStore(
                session, actor="load-test", on_commit=lambda: committed.append(time.monotonic())
            )
            report = store.import_document(document(state), replace=True)
        assert report.updated == ["load"], f"{state}: {report}"
        assert len(committed) == 1, committed
        self.state = state
        return committed[0]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: HeaderSet
    body: bytes


def request(
    port: int, method: str, path: str, headers: dict[str, str], timeout: float = HTTP_TIMEOUT
) -> Answer:
    """One request on its own connection (gunicorn's sync workers close it anyway)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, cors_headers_of(response), body)
    finally:
        connection.close()


def ask_worker(port: int, origin: str) -> tuple[int, str, Answer]:
    """GET /api/worker from ``origin``: (the answering pid, 'A'/'B'/..., the answer)."""
    answer = request(port, "GET", "/api/worker", SIMPLE_GET.headers(origin))
    assert answer.status == 200, answer
    pid = json.loads(answer.body)["pid"]
    return int(pid), classify(answer.headers, origin, SIMPLE_GET), answer


def discover_workers(port: int, timeout: float = 20.0) -> set[int]:
    """Poll /api/worker from a few threads until ``WORKERS`` distinct pids answered."""
    pids: set[int] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + timeout
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            while time.monotonic() < deadline:
                pid, _verdict, _answer = ask_worker(port, BOTH)
                with lock:
                    pids.add(pid)
                    if len(pids) >= WORKERS:
                        return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(PROPAGATION_POLLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + HTTP_TIMEOUT)
    assert not errors, errors
    return pids


@pytest.fixture(scope="module", params=SERVER_BACKENDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """``gunicorn -w 3 manage:create_app()`` on a fresh PostgreSQL (changes announced
    by NOTIFY) or MariaDB (polled) database holding A."""
    tmp = tmp_path_factory.mktemp("load")
    engine: sa.Engine | None = None
    with fresh_database(request.param, tmp, request) as url:
        try:
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "CORSADMIN_REFRESH_INTERVAL": str(REFRESH_INTERVAL),
                "PYTHONUNBUFFERED": "1",
            }
            path_a = tmp / "a.json"
            path_a.write_text(json.dumps(document("A"), indent=2))
            run_cli(env, "db-upgrade")
            imported = run_cli(env, "import", str(path_a), "--replace")
            assert "1 created" in imported.stdout, imported.stdout

            port = free_port()
            log_path = tmp / "gunicorn.log"
            cmd = gunicorn_command(WORKERS, port, "manage:create_app()")
            with serve_process(
                cmd, port=port, env=env, cwd=REPO_ROOT, ready_path="/", log_path=log_path
            ) as proc:
                pids = discover_workers(port)
                assert len(pids) == WORKERS, (
                    f"only {len(pids)} worker(s) answered: {pids}\n{log_tail(log_path)}"
                )
                assert proc.pid not in pids  # the answers come from the forked workers
                engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
                yield Deployment(
                    port=port, database_url=url, log_path=log_path, engine=engine, pids=pids
                )
        finally:
            if engine is not None:
                engine.dispose()


# --- load while the policy changes -------------------------------------------------------


@dataclass
class Observation:
    kind: Kind
    origin: str | None
    status: int
    headers: HeaderSet
    verdict: str


def test_load_while_the_policy_changes_gives_one_document_or_the_other(
    deployment: Deployment,
) -> None:
    port = deployment.port
    observations: list[Observation] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    sent = 0

    def take_ticket() -> bool:
        nonlocal sent
        with lock:
            if stop.is_set() or sent >= LOAD_MAX_REQUESTS:
                return False
            sent += 1
            return True

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while take_ticket():
            kind, origin = rng.choice(SHAPES)
            path = f"/api/items/{rng.randrange(1, 1000)}"
            try:
                answer = request(port, kind.method, path, kind.headers(origin))
            except Exception as exc:  # a reset or a timeout is a failure too
                with lock:
                    failures.append(f"{kind.method} {path} from {origin}: {exc!r}")
                continue
            verdict = classify(answer.headers, origin, kind)
            with lock:
                observations.append(
                    Observation(kind, origin, answer.status, answer.headers, verdict)
                )

    changes: list[str] = []
    change_errors: list[BaseException] = []

    def changer() -> None:
        try:
            # On a fixed cadence (not a pause after each change), so about 1/CHANGE_EVERY a second.
            tick = time.monotonic()
            while True:
                tick += CHANGE_EVERY
                if stop.wait(max(0.0, tick - time.monotonic())):
                    return
                target = "B" if deployment.state == "A" else "A"
                deployment.change_to(target)
                changes.append(target)
        except BaseException as exc:
            change_errors.append(exc)

    clients = [
        threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(LOAD_CLIENTS)
    ]
    change_thread = threading.Thread(target=changer, daemon=True)
    started = time.monotonic()
    change_thread.start()
    for thread in clients:
        thread.start()
    # Bounded in time and in count: stop after LOAD_SECONDS, or when the tickets ran out.
    while time.monotonic() - started < LOAD_SECONDS and any(t.is_alive() for t in clients):
        time.sleep(0.05)
    stop.set()
    for thread in clients:
        thread.join(HTTP_TIMEOUT + 5)
    change_thread.join(30)
    elapsed = time.monotonic() - started
    assert not change_errors, change_errors
    assert not any(t.is_alive() for t in [*clients, change_thread]), "a load thread hung"

    summary = (
        f"{len(observations)} responses in {elapsed:.1f}s, {len(changes)} changes "
        f"({len(changes) / elapsed:.1f}/s)"
    )
    assert not failures, f"{summary}; requests that failed:\n" + "\n".join(failures[:20])

    server_errors = [o for o in observations if o.status >= 500]
    assert not server_errors, (
        f"{summary}; {len(server_errors)} 5xx, e.g. "
        f"{[(o.kind.name, o.origin, o.status) for o in server_errors[:5]]}\n{deployment.log()}"
    )
    wrong_status = [o for o in observations if o.status != o.kind.status]
    assert not wrong_status, (
        f"{summary}; unexpected statuses: "
        f"{[(o.kind.name, o.origin, o.status) for o in wrong_status[:10]]}"
    )
    mixtures = [o for o in observations if o.verdict == "neither"]
    assert not mixtures, f"{summary}; {len(mixtures)} response(s) matching neither A nor B:\n" + (
        "\n".join(
            f"{o.kind.name} from {o.origin}: got {o.headers}\n"
            f"  A: {expected('A', o.origin, o.kind)}\n"
            f"  B: {expected('B', o.origin, o.kind)}"
            for o in mixtures[:5]
        )
    )

    counts = Counter(o.verdict for o in observations)
    summary += f"; A only {counts['A']}, B only {counts['B']}, both {counts['both']}"
    print(summary)
    assert len(observations) >= MIN_CHECKED, summary
    # "Several times a second", all along the load.
    assert len(changes) >= max(2, int(3 * elapsed)), summary
    # The server really followed the changes: answers under each document were seen.
    assert counts["A"] > 0, summary
    assert counts["B"] > 0, summary
    shapes_seen = {(o.kind, o.origin) for o in observations}
    assert shapes_seen == set(SHAPES), f"{summary}; shapes never sent: {set(SHAPES) - shapes_seen}"


# --- every worker within a second ---------------------------------------------------------


@dataclass
class Poll:
    sent: float
    received: float
    pid: int
    verdict: str


def watch_until_every_worker_enforces(
    deployment: Deployment, state: str, since: float, timeout: float
) -> tuple[dict[int, float], list[Poll]]:
    """Poll /api/worker from ``ONLY_A`` (allowed by A, refused by B) from several threads
    until every worker answered under ``state``; per pid, seconds from ``since``
    (monotonic) to its first answer under ``state``."""
    polls: list[Poll] = []
    first: dict[int, float] = {}
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []
    deadline = since + timeout

    def poll() -> None:
        try:
            while not done.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                pid, verdict, _answer = ask_worker(deployment.port, ONLY_A)
                received = time.monotonic()
                with lock:
                    polls.append(Poll(sent, received, pid, verdict))
                    if verdict == state and pid not in first:
                        first[pid] = received - since
                        if set(first) >= deployment.pids:
                            done.set()
        except BaseException as exc:
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(PROPAGATION_POLLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + HTTP_TIMEOUT)
    assert not errors, errors
    return first, polls


def test_every_worker_enforces_a_change_within_a_second(deployment: Deployment) -> None:
    # Whatever ran before, start with every worker enforcing what the database holds.
    settled, polls = watch_until_every_worker_enforces(
        deployment, deployment.state, time.monotonic(), timeout=5.0
    )
    assert set(settled) == deployment.pids, (
        f"not every worker enforces {deployment.state}: {settled} "
        f"(pids seen {sorted({p.pid for p in polls})})\n{deployment.log()}"
    )

    measured: list[dict[int, float]] = []
    rng = random.Random(7)
    for _ in range(PROPAGATION_CHANGES):
        # Land the change at a random moment of the workers' polling cycle.
        time.sleep(rng.uniform(0.05, 0.05 + REFRESH_INTERVAL))
        target = "B" if deployment.state == "A" else "A"
        committed = deployment.change_to(target)
        first, polls = watch_until_every_worker_enforces(
            deployment, target, committed, timeout=3 * PROPAGATION_LIMIT
        )
        measured.append(first)
        report = "; ".join(
            f"change {i + 1}: " + ", ".join(f"{pid}={t:.3f}s" for pid, t in sorted(m.items()))
            for i, m in enumerate(measured)
        )
        strangers = {p.pid for p in polls} - deployment.pids
        assert not strangers, f"answers from unknown workers {strangers} (a worker restarted?)"
        assert set(first) == deployment.pids, (
            f"to {target}: workers never seen enforcing it within "
            f"{3 * PROPAGATION_LIMIT:.0f}s: {deployment.pids - set(first)}; {report}\n"
            f"{deployment.log()}"
        )
        # Only A or B, and once a worker answered under the new document, never the old one.
        assert {p.verdict for p in polls} <= {"A", "B"}, [
            p for p in polls if p.verdict not in ("A", "B")
        ]
        went_back = [
            p
            for p in polls
            if p.pid in first and p.sent > committed + first[p.pid] and p.verdict != target
        ]
        assert not went_back, f"a worker answered the old document again: {went_back}; {report}"
        slowest = max(first.values())
        assert slowest < PROPAGATION_LIMIT, (
            f"to {target}: a worker took {slowest:.3f}s (limit {PROPAGATION_LIMIT}s); {report}"
        )
    print(
        "propagation (seconds from commit to each worker's first answer under the new "
        "document): "
        + "; ".join(
            ", ".join(f"{t:.3f}" for _pid, t in sorted(m.items())) + f" (max {max(m.values()):.3f})"
            for m in measured
        )
    )
