"""Throwaway PostgreSQL servers for tests.

``start_postgres(base_dir)`` gives a running server and a database on it:

* with ``CORSADMIN_TEST_POSTGRES_URL`` set, that server is used as is (nothing
  is started, ``stop()`` does nothing);
* otherwise a fresh cluster is made with the newest ``initdb``/``pg_ctl`` under
  ``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package), with trust
  auth, listening on 127.0.0.1 on a free port (and on the ``listen`` addresses
  given, trusting the ``trusted`` networks: the multi-host tests' bridge), its
  unix socket inside its own directory. As root, the cluster belongs to the
  ``postgres`` user and the binaries run through ``runuser -u postgres --``
  (postgres refuses root).

Every failure raises ``PostgresError`` with the server log attached; nothing
here ever skips a test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from .servers import free_port

ENV_URL = "CORSADMIN_TEST_POSTGRES_URL"
PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
DEFAULT_DATABASE = "corsadmin_test"
START_TIMEOUT = 30.0
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_DIR_LEN = 80


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, started, or used."""


@dataclass
class PostgresServer:
    """A PostgreSQL server for tests.

    ``url`` is an SQLAlchemy URL (``postgresql+psycopg://...``) of the test
    database; ``admin_url`` is the same server's ``postgres`` database, used to
    create and drop databases.
    """

    url: str
    admin_url: str
    directory: Path | None = None
    port: int | None = None
    _pg_ctl: Path | None = None
    _as_postgres: bool = False
    #: Addresses it listens on besides 127.0.0.1.
    listen: tuple[str, ...] = ()
    _stopped: bool = field(default=False, repr=False)

    @property
    def external(self) -> bool:
        """True when the server came from CORSADMIN_TEST_POSTGRES_URL."""
        return self.directory is None

    @property
    def log_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "server.log"

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines)

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove its directory."""
        if self._stopped:
            return
        self._stopped = True
        if self.directory is None:
            return
        try:
            if self._pg_ctl is not None and (self.directory / "data" / "postmaster.pid").exists():
                _run(
                    [
                        str(self._pg_ctl),
                        "-D",
                        str(self.directory / "data"),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    as_postgres=self._as_postgres,
                    cwd=self.directory,
                    log_path=self.log_path,
                    what="pg_ctl stop",
                    timeout=60,
                )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def halt(server: PostgresServer) -> None:
    """Stop a server this process started (``start_postgres``), keeping its data, as an
    outage would: :func:`resume` starts it again on the same port."""
    _pg_ctl(server, ["-m", "immediate", "-w", "stop"], "pg_ctl stop")


def resume(server: PostgresServer) -> None:
    """Start again a server :func:`halt` stopped."""
    assert server.directory is not None
    assert server.port is not None
    options = _server_options(server.directory, server.port, server.listen)
    args = ["-l", str(server.log_path), "-o", options, "-w", "-t", str(int(START_TIMEOUT))]
    _pg_ctl(server, [*args, "start"], "pg_ctl start")


def _pg_ctl(server: PostgresServer, args: list[str], what: str) -> None:
    if server.directory is None or server._pg_ctl is None:
        raise PostgresError(
            f"{what}: this test stops and starts its own server; it cannot use {ENV_URL}"
        )
    _run(
        [str(server._pg_ctl), "-D", str(server.directory / "data"), *args],
        as_postgres=server._as_postgres,
        cwd=server.directory,
        log_path=server.log_path,
        what=what,
        timeout=START_TIMEOUT + 30,
    )


def start_postgres(
    base_dir: Path,
    database: str = DEFAULT_DATABASE,
    *,
    listen: tuple[str, ...] = (),
    trusted: tuple[str, ...] = (),
) -> PostgresServer:
    """Start (or, with CORSADMIN_TEST_POSTGRES_URL, reuse) a server with an empty database.

    ``listen``: addresses to listen on besides 127.0.0.1; ``trusted``: networks (CIDR)
    whose clients connect without a password (trust, in pg_hba.conf). A server of its
    own only: with either, CORSADMIN_TEST_POSTGRES_URL is not used."""
    external = os.environ.get(ENV_URL, "").strip()
    if external and not (listen or trusted):
        url = _sqlalchemy_url(make_url(external))
        server = PostgresServer(
            url=url.render_as_string(hide_password=False),
            admin_url=url.render_as_string(hide_password=False),
        )
        _wait_until_accepting(server, START_TIMEOUT)
        return server

    initdb, pg_ctl = find_postgres_binaries()
    as_postgres = os.geteuid() == 0
    last_error: PostgresError | None = None
    for _attempt in range(3):
        directory = _fresh_cluster_dir(base_dir, as_postgres)
        port = free_port()
        try:
            server = _start_cluster(
                directory, port, (initdb, pg_ctl), as_postgres, (listen, trusted)
            )
        except _PortTaken as exc:
            # Another process grabbed the port between free_port() and bind().
            last_error = exc
            shutil.rmtree(directory, ignore_errors=True)
            continue
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        atexit.register(server.stop)
        try:
            _wait_until_accepting(server, START_TIMEOUT)
            server.url = create_database(server, database)
        except BaseException:
            server.stop()
            raise
        return server
    assert last_error is not None
    raise last_error


def create_database(server: PostgresServer, name: str) -> str:
    """Create an empty database ``name`` on ``server``; return its SQLAlchemy URL."""
    _check_name(name)
    try:
        with psycopg.connect(
            _libpq_url(server.admin_url), autocommit=True, connect_timeout=10
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise PostgresError(
            f"could not create database {name!r}: {exc}\n{_log_section(server)}"
        ) from exc
    return make_url(server.admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server: PostgresServer, name: str) -> None:
    """Drop database ``name`` (if it exists), closing any sessions still on it."""
    _check_name(name)
    try:
        with psycopg.connect(
            _libpq_url(server.admin_url), autocommit=True, connect_timeout=10
        ) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        raise PostgresError(
            f"could not drop database {name!r}: {exc}\n{_log_section(server)}"
        ) from exc


def find_postgres_binaries() -> tuple[Path, Path]:
    """Return (initdb, pg_ctl) of the newest PostgreSQL under /usr/lib/postgresql."""
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if PG_ROOT.is_dir():
        for version_dir in PG_ROOT.iterdir():
            bindir = version_dir / "bin"
            if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
                key = tuple(int(p) for p in re.findall(r"\d+", version_dir.name)) or (0,)
                candidates.append((key, bindir))
    if not candidates:
        raise PostgresError(
            f"no initdb/pg_ctl found under {PG_ROOT}/*/bin: install Debian's 'postgresql' "
            "package (`make test` does), or set "
            f"{ENV_URL}=postgresql+psycopg://user@host:port/db to use a running server"
        )
    bindir = max(candidates)[1]
    return bindir / "initdb", bindir / "pg_ctl"


# --- internals ---------------------------------------------------------------


class _PortTaken(PostgresError):
    pass


def _fresh_cluster_dir(base_dir: Path, as_postgres: bool) -> Path:
    """A new empty directory for one cluster, usable by the server's user.

    Falls back to the system temp dir when ``base_dir`` is unusable: as root,
    pytest's tmp dirs are mode 0700 so the postgres user cannot reach them, and
    deep paths would overflow the unix socket path limit.
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
    if len(str(directory)) > _MAX_SOCKET_DIR_LEN or (
        as_postgres and not _postgres_can_use(directory)
    ):
        shutil.rmtree(directory, ignore_errors=True)
        directory = Path(tempfile.mkdtemp(prefix="corsadmin-pg-"))
        if as_postgres:
            shutil.chown(directory, user=SUPERUSER, group=None)
            if not _postgres_can_use(directory):
                shutil.rmtree(directory, ignore_errors=True)
                raise PostgresError(
                    f"user {SUPERUSER!r} cannot write to {directory}: "
                    "its parent directories must be searchable by that user"
                )
    return directory


def _postgres_can_use(directory: Path) -> bool:
    try:
        shutil.chown(directory, user=SUPERUSER, group=None)
    except (LookupError, PermissionError) as exc:
        raise PostgresError(
            f"running as root but cannot hand {directory} to user {SUPERUSER!r}: {exc} "
            "(Debian's 'postgresql' package creates that user)"
        ) from exc
    probe = subprocess.run(
        ["runuser", "-u", SUPERUSER, "--", "test", "-w", str(directory)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=30,
    )
    return probe.returncode == 0


def _start_cluster(
    directory: Path,
    port: int,
    binaries: tuple[Path, Path],
    as_postgres: bool,
    network: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
) -> PostgresServer:
    initdb, pg_ctl = binaries
    listen, trusted = network
    data = directory / "data"
    log_path = directory / "server.log"
    _run(
        [
            str(initdb),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        as_postgres=as_postgres,
        cwd=directory,
        log_path=None,
        what="initdb",
        timeout=120,
    )
    _trust(data, trusted)
    options = _server_options(directory, port, listen)
    server = PostgresServer(
        url="",
        admin_url=URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            host="127.0.0.1",
            port=port,
            database="postgres",
        ).render_as_string(hide_password=False),
        directory=directory,
        port=port,
        _pg_ctl=pg_ctl,
        _as_postgres=as_postgres,
        listen=listen,
    )
    try:
        _run(
            [
                str(pg_ctl),
                "-D",
                str(data),
                "-l",
                str(log_path),
                "-o",
                options,
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
            ],
            as_postgres=as_postgres,
            cwd=directory,
            log_path=log_path,
            what="pg_ctl start",
            timeout=START_TIMEOUT + 30,
        )
    except PostgresError as exc:
        log = _tail(log_path, 200)
        if "could not bind" in log or "Address already in use" in log:
            server.stop()
            raise _PortTaken(str(exc)) from exc
        server.stop()
        raise
    return server


def _trust(data: Path, networks: tuple[str, ...]) -> None:
    """Let clients from ``networks`` (CIDR) in without a password."""
    if networks:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.writelines(f"host all all {network} trust\n" for network in networks)


def _server_options(directory: Path, port: int, listen: tuple[str, ...] = ()) -> str:
    return " ".join(
        [
            f"-c listen_addresses={','.join(('127.0.0.1', *listen))}",
            f"-p {port}",
            f"-k {directory}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=100",
        ]
    )


def _run(
    cmd: list[str],
    *,
    as_postgres: bool,
    cwd: Path,
    log_path: Path | None,
    what: str,
    timeout: float,
) -> None:
    full = ["runuser", "-u", SUPERUSER, "--", *cmd] if as_postgres else cmd
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(
            full,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(
            f"{what} timed out after {timeout:.0f}s: {' '.join(full)}\n"
            f"--- output ---\n{_text(exc.stdout)}{_text(exc.stderr)}\n"
            f"--- log {log_path} ---\n{_tail(log_path)}"
        ) from exc
    if proc.returncode != 0:
        raise PostgresError(
            f"{what} failed (exit {proc.returncode}): {' '.join(full)}\n"
            f"--- output ---\n{proc.stdout}{proc.stderr}\n"
            f"--- log {log_path} ---\n{_tail(log_path)}"
        )


def _wait_until_accepting(server: PostgresServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(_libpq_url(server.admin_url), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise PostgresError(
        f"PostgreSQL at {_safe(server.admin_url)} did not accept connections within "
        f"{timeout:.0f}s: {last}\n{_log_section(server)}"
    )


def _sqlalchemy_url(url: URL) -> URL:
    if not url.drivername.startswith("postgresql"):
        raise PostgresError(f"{ENV_URL} is not a PostgreSQL URL: {_safe(str(url))}")
    return url.set(drivername="postgresql+psycopg")


def _libpq_url(sqlalchemy_url: str) -> str:
    """The same URL in the form libpq/psycopg accepts (no '+driver')."""
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"unsuitable database name: {name!r}")


def _log_section(server: PostgresServer) -> str:
    if server.log_path is None:
        return f"(external server from {ENV_URL}: no log here)"
    return f"--- log {server.log_path} ---\n{server.log_tail()}"


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output


def _tail(path: Path | None, lines: int = 60) -> str:
    if path is None:
        return "(no log)"
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(log empty)"
    return f"(no log at {path})"
