"""The test harness itself works with real parts: PostgreSQL, MariaDB, Chromium, servers.

The ``postgres``, ``mariadb`` and ``browser`` fixtures come from conftest.py.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import create_engine, text
from werkzeug.wrappers import Request, Response

from tests.support.mariadb import MariaDBServer
from tests.support.mariadb import create_database as mariadb_database
from tests.support.mariadb import drop_database as drop_mariadb_database
from tests.support.postgres import (
    PostgresServer,
    create_database,
    drop_database,
)
from tests.support.servers import free_port, http_answers, serve_process, serve_wsgi_in_thread

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# --- PostgreSQL ---------------------------------------------------------------


def test_postgres_answers_through_sqlalchemy(postgres: PostgresServer) -> None:
    assert postgres.url.startswith("postgresql+psycopg://")
    engine = create_engine(postgres.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            version = conn.execute(text("show server_version_num")).scalar_one()
            assert int(version) >= 150000
            if not postgres.external:
                assert conn.execute(text("show listen_addresses")).scalar_one() == "127.0.0.1"
    finally:
        engine.dispose()


def test_create_database_gives_a_usable_second_database(postgres: PostgresServer) -> None:
    url = create_database(postgres, "harness_extra")
    try:
        assert url != postgres.url
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                assert conn.execute(text("select current_database()")).scalar_one() == (
                    "harness_extra"
                )
                conn.execute(text("create table t (id int primary key, name text)"))
                conn.execute(text("insert into t values (1, 'one'), (2, 'two')"))
            with engine.connect() as conn:
                assert conn.execute(text("select name from t order by id")).scalars().all() == [
                    "one",
                    "two",
                ]
        finally:
            engine.dispose()
        # The main database did not get the table: the databases are separate.
        main = create_engine(postgres.url)
        try:
            with main.connect() as conn:
                assert conn.execute(text("select to_regclass('public.t')")).scalar() is None
        finally:
            main.dispose()
    finally:
        drop_database(postgres, "harness_extra")

    admin = create_engine(postgres.admin_url)
    try:
        with admin.connect() as conn:
            left = conn.execute(
                text("select count(*) from pg_database where datname = 'harness_extra'")
            ).scalar_one()
            assert left == 0
    finally:
        admin.dispose()


# --- MariaDB ------------------------------------------------------------------


def test_mariadb_answers_on_loopback_with_the_usual_defaults(mariadb: MariaDBServer) -> None:
    assert mariadb.url.startswith("mysql+pymysql://")
    url = mariadb_database(mariadb, "harness_maria")
    try:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                assert "MariaDB" in conn.execute(text("select version()")).scalar_one()
                if not mariadb.external:
                    bind = conn.execute(text("select @@bind_address")).scalar_one()
                    assert bind == "127.0.0.1"
                # The database is case-insensitive, as most are (corsadmin's tables are not).
                assert conn.execute(text("select @@collation_database")).scalar_one() == (
                    "utf8mb4_general_ci"
                )
                conn.execute(text("create table t (name varchar(10) unique)"))
                conn.execute(text("insert into t values ('Api')"))
                assert conn.execute(text("select count(*) from t where name = 'API'")).scalar() == 1
        finally:
            engine.dispose()
    finally:
        drop_mariadb_database(mariadb, "harness_maria")
    admin = create_engine(mariadb.url)
    try:
        with admin.connect() as conn:
            left = conn.execute(
                text(
                    "select count(*) from information_schema.schemata "
                    "where schema_name = 'harness_maria'"
                )
            ).scalar_one()
            assert left == 0
    finally:
        admin.dispose()


# --- servers ------------------------------------------------------------------


def test_serve_process_waits_for_http_and_stops_the_group(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "hello.txt").write_text("hello from a subprocess")
    log = tmp_path / "server.log"
    # The HTTP server is a grandchild behind a shell: stopping must reach the group.
    server = f"'{sys.executable}' -m http.server {port} --bind 127.0.0.1"
    cmd = ["sh", "-c", f"{server} & wait"]
    url = f"http://127.0.0.1:{port}/hello.txt"
    with serve_process(
        cmd,
        port=port,
        env=dict(os.environ),
        cwd=tmp_path,
        ready_path="/hello.txt",
        log_path=log,
        timeout=20,
    ) as proc:
        assert proc.poll() is None
        assert os.getpgid(proc.pid) == proc.pid  # leads its own process group
        with _NO_PROXY.open(url, timeout=5) as resp:
            assert resp.read() == b"hello from a subprocess"
    assert proc.returncode is not None
    assert not http_answers(url, timeout=1)  # the grandchild is gone too
    assert "GET /hello.txt" in log.read_text()


def test_serve_wsgi_in_thread_serves_and_shuts_down() -> None:
    with serve_wsgi_in_thread(_echo_app) as base:
        assert base.startswith("http://127.0.0.1:")
        with _NO_PROXY.open(f"{base}/x?y=1", timeout=5) as resp:
            assert resp.read() == b"GET /x y=1"
    assert not http_answers(f"{base}/", timeout=1)


def test_serve_process_reports_a_dead_server_with_its_log(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('boom: no server here'); sys.exit(3)"]
    with (
        pytest.raises(RuntimeError, match=r"exited with 3(.|\n)*boom: no server here"),
        serve_process(
            cmd,
            port=free_port(),
            env=None,
            cwd=tmp_path,
            log_path=tmp_path / "dead.log",
            timeout=10,
        ),
    ):
        pass


@Request.application
def _echo_app(request: Request) -> Response:
    return Response(f"{request.method} {request.path} {request.query_string.decode()}")


# --- Chromium + CORS --------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>harness page</title></head>
<body>
<p id="status">loaded</p>
<script>
async function probe(api) {
  const out = {};
  for (const name of ["allowed", "denied"]) {
    try {
      const response = await fetch(api + "/" + name);
      out[name] = {ok: true, status: response.status, body: await response.json()};
    } catch (error) {
      out[name] = {ok: false, error: error.name, message: String(error.message)};
    }
  }
  document.getElementById("status").textContent = "done";
  return out;
}
</script>
</body></html>
"""


@pytest.mark.browser
def test_chromium_enforces_cors_between_two_loopback_servers(browser: Browser) -> None:
    seen: list[tuple[str, str | None]] = []
    lock = threading.Lock()
    origin_holder: dict[str, str] = {}

    @Request.application
    def page_app(request: Request) -> Response:
        return Response(PAGE, mimetype="text/html")

    @Request.application
    def api_app(request: Request) -> Response:
        with lock:
            seen.append((request.path, request.headers.get("Origin")))
        if request.path == "/allowed":
            response = Response(json.dumps({"hello": "from B"}), mimetype="application/json")
            response.headers["Access-Control-Allow-Origin"] = origin_holder["page"]
            return response
        if request.path == "/denied":
            return Response(json.dumps({"secret": "unreadable"}), mimetype="application/json")
        return Response("not found", status=404)

    with (
        serve_wsgi_in_thread(page_app) as page_base,
        serve_wsgi_in_thread(api_app) as api_base,
    ):
        assert page_base != api_base  # two origins: same host, different ports
        origin_holder["page"] = page_base
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{page_base}/")
            assert page.text_content("#status") == "loaded"
            result = page.evaluate("api => probe(api)", api_base)
            assert page.text_content("#status") == "done"
        finally:
            context.close()

    assert result["allowed"] == {"ok": True, "status": 200, "body": {"hello": "from B"}}
    assert result["denied"]["ok"] is False
    assert result["denied"]["error"] == "TypeError"
    # Both requests reached B with the page's origin: the browser, not the
    # network, kept the second response from the page.
    assert sorted(seen) == [("/allowed", page_base), ("/denied", page_base)]
