"""Several application hosts sharing one PostgreSQL, for tests/test_multihost.py and
benchmarks/multihost.py.

:func:`fleet_of_hosts` starts PostgreSQL listening on the database bridge of a
:func:`tests.support.netns.lab`, migrates it and adds one policy, then runs gunicorn
(:data:`WORKERS` sync workers, ``tests/support/fleet_app.py``: refresh interval 0.2 s,
LISTEN/NOTIFY on) inside every host, each connecting to the database through its own
link. A reader app in this namespace (reporting nothing itself) reads the fleet view;
:func:`change_on` makes a change through the CLI run inside one host.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flask import Flask
from sqlalchemy.engine import make_url

from corsadmin import CorsAdmin
from corsadmin.engine.fleet import WorkerFacts
from corsadmin.state import state
from tests.support import fleet_app
from tests.support.host import close_host, make_host
from tests.support.netns import Host, Lab, lab
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.servers import burst, gunicorn_command, log_tail, serve_process, until

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
APP: Final = "tests.support.fleet_app:create_app()"
#: Gunicorn sync workers per host.
WORKERS: Final = 3
#: The port every host's gunicorn listens on (each host has its own addresses).
PORT: Final = 8000
ORIGIN: Final = "https://app.example"
POLICY: Final = {"name": "api", "path": "/api/**", "origins": [ORIGIN], "methods": ["GET"]}
#: How long one request to a host may take (seconds): far more than a request answered
#: from memory, far less than one waiting on a database that does not answer.
REQUEST_TIMEOUT: Final = 10.0
#: How long one CLI command run inside a host may take (seconds).
CLI_TIMEOUT: Final = 60.0
#: How many bursts of slow requests may be sent to find every worker of a host.
BURSTS: Final = 20

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Running:
    """One host's gunicorn."""

    host: Host
    log: Path

    def url(self, path: str) -> str:
        return f"http://{self.host.front_ip}:{PORT}{path}"

    def logged(self, text: str) -> int:
        """How many times its log (gunicorn's and its workers' output) holds ``text``."""
        try:
            return self.log.read_text(errors="replace").count(text)
        except OSError:
            return 0


@dataclass(frozen=True)
class Fleet:
    """The hosts, their servers, the database and a reader of the fleet view."""

    lab: Lab
    servers: list[Running]
    database: PostgresServer
    reader: Flask

    def url_for(self, host: Host) -> str:
        """The database's URL as ``host`` reaches it (through its own link)."""
        url = make_url(self.database.url).set(host=self.lab.db_address)
        return url.render_as_string(hide_password=False)

    def logs(self) -> str:
        return "\n".join(f"--- {s.host.name} ---\n{log_tail(s.log, 30)}" for s in self.servers)


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLEET_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }


@contextlib.contextmanager
def _reader(database_url: str) -> Iterator[Flask]:
    """The schema migrated, :data:`POLICY`, and an app reading the fleet view."""
    host = make_host(database_url, CORSADMIN_FLEET_REPORT=False)
    with host.app.app_context():
        host.cors.store("tester", host.app).create_policy(dict(POLICY))
    close_host(host)
    reader = fleet_app.create_app(database_url, CORSADMIN_FLEET_REPORT=False)
    try:
        yield reader
    finally:
        CorsAdmin.state(reader).extension.stop(reader)  # type: ignore[attr-defined]
        with reader.app_context():
            state(reader).db.engine.dispose()


@contextlib.contextmanager
def fleet_of_hosts(count: int, tmp: Path) -> Iterator[Fleet]:
    """``count`` hosts, each serving :data:`WORKERS` workers, and their database."""
    with contextlib.ExitStack() as stack:
        hosts = stack.enter_context(lab(count))
        database = start_postgres(
            tmp / "pg", listen=(hosts.db_address,), trusted=(hosts.db_network,)
        )
        stack.callback(database.stop)
        reader = stack.enter_context(_reader(database.url))
        fleet = Fleet(lab=hosts, servers=[], database=database, reader=reader)
        for host in hosts.hosts:
            log = tmp / f"{host.name}.log"
            cmd = gunicorn_command(
                WORKERS, PORT, APP, "--graceful-timeout", "3", host=host.front_ip
            )
            env = _env(fleet.url_for(host))
            stack.enter_context(
                serve_process(
                    host.command(cmd),
                    port=PORT,
                    env=env,
                    cwd=REPO_ROOT,
                    log_path=log,
                    host=host.front_ip,
                )
            )
            fleet.servers.append(Running(host=host, log=log))
        yield fleet


def change_on(fleet: Fleet, host: Host, *args: str) -> int:
    """``flask corsadmin ARGS`` run inside ``host`` (it must succeed); the database's
    revision after it."""
    cmd = [sys.executable, "-m", "flask", "--app", APP, "corsadmin", *args]
    result = subprocess.run(
        host.command(cmd),
        cwd=REPO_ROOT,
        env=_env(fleet.url_for(host)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args} on {host.name}: {result.stdout}{result.stderr}"
    return revision(fleet)


def workers_by_host(fleet: Fleet) -> dict[str, list[WorkerFacts]]:
    """The fleet view's rows (every live process that reported), by host name."""
    with fleet.reader.app_context():
        view = state(fleet.reader).fleet_view(fallback=False)
    found: dict[str, list[WorkerFacts]] = {}
    for worker, _status in view.workers:
        found.setdefault(worker.host, []).append(worker)
    return found


def on_revision(fleet: Fleet, revision: int, hosts: list[Host]) -> list[WorkerFacts] | None:
    """Every worker of ``hosts`` when each host lists :data:`WORKERS` rows, all on
    ``revision``; else None."""
    rows = workers_by_host(fleet)
    chosen = [rows.get(host.name, []) for host in hosts]
    if any(len(listed) != WORKERS for listed in chosen):
        return None
    workers = [w for listed in chosen for w in listed]
    return workers if all(w.revision == revision for w in workers) else None


def get(url: str, origin: str, timeout: float = REQUEST_TIMEOUT) -> tuple[int, dict[str, str], str]:
    """GET ``url`` with ``Origin: origin``: status, headers, body."""
    request = urllib.request.Request(url, headers={"Origin": origin})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def answers_by_worker(
    server: Running, origin: str, timeout: float | None = None
) -> dict[int, tuple[int, str | None]]:
    """Each of the host's workers' answer to a slow request from ``origin``: by pid, the
    status and the Access-Control-Allow-Origin sent (bursts until every worker answered;
    an answer other than 200 is kept, under pid 0). Each request must be answered
    within ``timeout`` seconds (default :data:`REQUEST_TIMEOUT`)."""
    found: dict[int, tuple[int, str | None]] = {}
    url = server.url("/api/slow")
    for _ in range(BURSTS):
        sent = burst(lambda: get(url, origin, timeout or REQUEST_TIMEOUT), 2 * WORKERS)
        for code, headers, body in sent:
            pid = json.loads(body)["pid"] if code == 200 else 0
            found[pid] = (code, headers.get("Access-Control-Allow-Origin"))
        if len(found) >= WORKERS:
            break
    return found


def wait_for(what: str, check: Callable[[], Any], patience: float, fleet: Fleet) -> Any:
    """``check()``'s first true result within ``patience`` seconds, or AssertionError."""
    return until(what, check, patience, fleet.logs, step=0.05)


def revision(fleet: Fleet) -> int:
    """The database's current revision."""
    with fleet.reader.app_context():
        return state(fleet.reader).read_revision()


def start_every_worker(fleet: Fleet) -> dict[str, set[int]]:
    """A request to every worker of every host (a worker's refresh thread, and its reports
    to the fleet view, start on its first request); the pids by host name."""
    pids: dict[str, set[int]] = {}
    for server in fleet.servers:
        answers = answers_by_worker(server, ORIGIN)
        assert {code for code, _ in answers.values()} == {200}, (server.host, answers)
        assert len(answers) == WORKERS, (server.host, answers, fleet.logs())
        pids[server.host.name] = set(answers)
    return pids
