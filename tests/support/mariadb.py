"""Throwaway MariaDB servers for tests.

``start_mariadb(base_dir)`` gives a running server:

* with ``CORSADMIN_TEST_MARIADB_URL`` set (``mysql+pymysql://user:pw@host:port/db``, a
  user allowed to create and drop databases), that server is used as is (nothing is
  started, ``stop()`` does nothing);
* otherwise a fresh data directory is made with Debian's ``mariadb-install-db`` and
  ``mariadbd`` (package ``mariadb-server``) is started on it, listening only on
  127.0.0.1 on a free port, its unix socket inside its own directory. As root the
  server runs as root (``--user=root``); otherwise as the current user.

The server's own default collation is left case-insensitive (``utf8mb4_general_ci``,
what most MariaDB and MySQL databases use), so a test notices any corsadmin table
that does not declare the collation it needs.

Every failure raises ``MariaDBError`` with the server log attached; nothing here
ever skips a test.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import URL, make_url

from .servers import LOOPBACK, free_port

ENV_URL = "CORSADMIN_TEST_MARIADB_URL"
START_TIMEOUT = 60.0
#: The account the tests use (over TCP, with a password, as an application would).
USER = "corsadmin"
PASSWORD = "corsadmin-test"
#: What every test database is created with: MariaDB's and MySQL's usual defaults.
DATABASE_CHARSET = "utf8mb4"
DATABASE_COLLATION = "utf8mb4_general_ci"
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_DIR_LEN = 80
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


class MariaDBError(RuntimeError):
    """MariaDB could not be found, started, or used."""


@dataclass
class MariaDBServer:
    """A MariaDB server for tests: ``url`` (an SQLAlchemy URL with no database) and,
    when this module started it, its directory and process."""

    url: str
    directory: Path | None = None
    process: subprocess.Popen[Any] | None = field(default=None, repr=False)

    @property
    def external(self) -> bool:
        return self.process is None

    def log_tail(self, lines: int = 60) -> str:
        if self.directory is None:
            return ""
        path = self.directory / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def find_mariadb_binaries() -> tuple[str, str]:
    """(mariadb-install-db, mariadbd): Debian's mariadb-server package."""
    install = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or next(
        (p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.path.exists(p)), None
    )
    if install is None or server is None:
        raise MariaDBError(
            "MariaDB not found: install Debian's mariadb-server package (make system-deps), "
            f"or set {ENV_URL} to a server's URL"
        )
    return install, server


def start_mariadb(base_dir: Path) -> MariaDBServer:
    """A running MariaDB server (see the module's docstring)."""
    external = os.environ.get(ENV_URL)
    if external:
        server = MariaDBServer(url=external)
        _wait_until_accepting(server, START_TIMEOUT)
        return server
    install, binary = find_mariadb_binaries()
    directory = Path(tempfile.mkdtemp(prefix="mariadb-", dir=_socket_parent(base_dir)))
    as_root = os.geteuid() == 0
    user = ["--user=root"] if as_root else []
    data = directory / "data"
    _run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            *user,
        ],
        directory,
        "mariadb-install-db",
    )
    port = free_port()
    log = (directory / "server.log").open("ab")
    process = subprocess.Popen(
        [binary, "--no-defaults", *user, *_server_options(directory, port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = URL.create(
        "mysql+pymysql", username=USER, password=PASSWORD, host=LOOPBACK, port=port
    ).render_as_string(hide_password=False)
    server = MariaDBServer(url=url, directory=directory, process=process)
    try:
        _create_test_user(server, as_root)
        _wait_until_accepting(server, START_TIMEOUT)
    except BaseException:
        server.stop()
        raise
    return server


def _server_options(directory: Path, port: int) -> list[str]:
    """Loopback only; durability traded for speed (a test server's data is thrown away)."""
    return [
        f"--datadir={directory / 'data'}",
        f"--socket={directory / 'mysqld.sock'}",
        f"--pid-file={directory / 'mysqld.pid'}",
        f"--port={port}",
        f"--bind-address={LOOPBACK}",
        "--skip-name-resolve",
        f"--character-set-server={DATABASE_CHARSET}",
        f"--collation-server={DATABASE_COLLATION}",
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--skip-log-bin",
        "--max-connections=500",
    ]


def _create_test_user(server: MariaDBServer, as_root: bool) -> None:
    """Through the unix socket as root (socket auth): the tests' TCP account."""
    assert server.directory is not None
    socket_path = server.directory / "mysqld.sock"
    end = time.monotonic() + START_TIMEOUT
    while True:
        _check_running(server)
        try:
            connection = pymysql.connect(
                unix_socket=str(socket_path), user="root" if as_root else os.environ["USER"]
            )
            break
        except pymysql.err.OperationalError:
            if time.monotonic() > end:
                raise MariaDBError(f"MariaDB did not start\n{server.log_tail()}") from None
            time.sleep(0.1)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{USER}'@'{LOOPBACK}' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{LOOPBACK}'")


def _check_running(server: MariaDBServer) -> None:
    if server.process is not None and server.process.poll() is not None:
        raise MariaDBError(f"mariadbd exited with {server.process.returncode}\n{server.log_tail()}")


def _wait_until_accepting(server: MariaDBServer, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        _check_running(server)
        try:
            with contextlib.closing(_connect(server)):
                return
        except pymysql.err.OperationalError as error:
            if time.monotonic() > end:
                raise MariaDBError(f"MariaDB not reachable: {error}\n{server.log_tail()}") from None
            time.sleep(0.1)


def _connect(server: MariaDBServer, database: str | None = None) -> pymysql.Connection[Any]:
    url = make_url(server.url)
    return pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


def create_database(server: MariaDBServer, name: str) -> str:
    """A new, empty database ``name`` with the usual defaults; its SQLAlchemy URL."""
    _check_name(name)
    with contextlib.closing(_connect(server)) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(
            f"CREATE DATABASE `{name}` CHARACTER SET {DATABASE_CHARSET} "
            f"COLLATE {DATABASE_COLLATION}"
        )
    url = make_url(server.url).set(database=name, query={"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def drop_database(server: MariaDBServer, name: str) -> None:
    _check_name(name)
    with contextlib.closing(_connect(server)) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise MariaDBError(f"not a safe database name: {name!r}")


def _socket_parent(base_dir: Path) -> Path:
    """``base_dir`` when a socket path inside it fits, else the system's temp dir."""
    if len(str(base_dir)) < _MAX_SOCKET_DIR_LEN:
        return base_dir
    return Path(tempfile.gettempdir())


def _run(cmd: list[str], directory: Path, what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=directory, check=False)
    if result.returncode != 0:
        raise MariaDBError(
            f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
