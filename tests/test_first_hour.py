"""Issue 13, "the first hour": what a newcomer meets first.

The quick start (``make run`` prints the admin URL and the exact command for the
first operator; the README says the same in separate steps), the login page's
hint, ``policy add``'s defaults in ``--help`` and its warning for ``*`` headers
with credentials, the review screen's risk for them, what ``db-upgrade`` did, and
the host's own login: a logout link (``CORSADMIN_LOGOUT_URL``) and a 403 page for a
logged-in user who is not an operator (``CORSADMIN_NOT_OPERATOR``).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import flask_migrate
import pytest
from flask import Flask, request, session
from flask.testing import FlaskClient
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin, standalone
from corsadmin.admin.access import NotAnOperator
from corsadmin.db.schema import current_revision, head_revision
from corsadmin.engine.review import PolicyFacts, policy_risks
from corsadmin.policy.fields import ANY_HEADER_WARNING, DEFAULT_METHODS, DEFAULT_REVIEW_EVERY_DAYS
from tests.support.admin import PREFIX, add_operator, logged_in_client
from tests.support.api import reader
from tests.support.cli import REPO_ROOT, invoke, ok
from tests.support.host import close_app, close_host, create_host, make_app
from tests.support.servers import free_port
from tests.support.standalone import standalone_app

README: Final = REPO_ROOT / "README.md"
MAKEFILE: Final = REPO_ROOT / "Makefile"
#: Seconds ``manage.py run`` may take to print its first steps (a cold start on a busy CI).
RUN_OUTPUT_TIMEOUT: Final = 60.0
SECRET_KEY: Final = "first-hour-tests-secret-key-0123456789abcdef"
FIRST_OPERATOR: Final = ".venv/bin/python manage.py corsadmin operator add admin"


@pytest.fixture
def demo(database_url: str) -> Iterator[Flask]:
    """The standalone app in this process (SQLite and PostgreSQL), migrated, empty."""
    with standalone_app(database_url, SECRET_KEY=SECRET_KEY) as app:
        yield app


def readme_code_blocks() -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


# --- the quick start ------------------------------------------------------------------


def test_first_steps_name_the_admin_url_and_the_first_operator_command(demo: Flask) -> None:
    lines = standalone.first_steps(demo, "0.0.0.0", 8000, python=".venv/bin/python")
    assert lines == [
        "corsadmin: admin UI at http://127.0.0.1:8000/corsadmin/",
        "corsadmin: no operator yet; create the first one in another terminal "
        f"(it asks for a password twice):\n    {FIRST_OPERATOR}",
    ]
    shown = next(b for b in readme_code_blocks() if b.startswith("corsadmin: empty database"))
    loaded = standalone.prepare_database(demo)
    assert loaded[0] in shown
    assert loaded[1].split(" (")[0] in shown  # "schema ready, 1 policy at revision 1"
    for line in standalone.first_steps(demo, "127.0.0.1", 5000, python=".venv/bin/python"):
        assert line in shown  # the README shows what `make run` prints
    add_operator(demo, "admin")
    assert standalone.first_steps(demo, "::1", 5000) == [
        "corsadmin: admin UI at http://[::1]:5000/corsadmin/"
    ]


def test_the_python_command_is_the_venv_path_a_person_types() -> None:
    checkout = "/home/me/corsadmin"
    assert standalone.python_command(f"{checkout}/.venv/bin/python", checkout) == (
        ".venv/bin/python"
    )
    assert standalone.python_command("/usr/bin/python3", checkout) == "/usr/bin/python3"


def test_manage_py_run_prints_the_admin_url_and_the_operator_command(tmp_path: Path) -> None:
    """The real ``manage.py run`` (what ``make run`` executes), stopped once it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "CORSADMIN_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite'}", SECRET_KEY=SECRET_KEY)
    env["PYTHONPATH"] = str(REPO_ROOT)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output = _read_until(proc, "operator add admin")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    python = standalone.python_command(sys.executable, str(REPO_ROOT))
    assert f"corsadmin: admin UI at http://127.0.0.1:{port}/corsadmin/\n" in output
    assert f"\n    {python} manage.py corsadmin operator add admin" in output


def _read_until(proc: subprocess.Popen[str], marker: str) -> str:
    """What ``proc`` printed up to the line holding ``marker`` (read by a thread: the
    server keeps running and prints nothing more until asked)."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    output = ""
    deadline = time.monotonic() + RUN_OUTPUT_TIMEOUT
    while marker not in output:
        left = deadline - time.monotonic()
        assert left > 0, f"manage.py run printed no {marker!r} in time:\n{output}"
        try:
            output += lines.get(timeout=min(left, 1.0))
        except queue.Empty:
            assert proc.poll() is None, f"manage.py run ended:\n{output}"
    return output


def test_the_readme_quick_start_runs_and_tests_in_separate_steps() -> None:
    blocks = readme_code_blocks()
    run = [b for b in blocks if "make run" in b and not b.startswith("make run HOST")]
    assert run, "the README has no `make run` block"
    assert all("make test" not in block for block in run)
    assert any(block.startswith("make test") for block in blocks)
    assert any(FIRST_OPERATOR in block for block in blocks)
    makefile = MAKEFILE.read_text(encoding="utf-8")
    assert "\nVENV ?= .venv\n" in makefile
    assert "\nrun: $(APP_STAMP)\n\texec $(VENV_PY) manage.py run " in makefile


def test_the_readme_never_says_bare_python_for_manage_py() -> None:
    text = README.read_text(encoding="utf-8")
    bare = [m.start() for m in re.finditer(r"(?<![/\w])python manage\.py", text)]
    assert bare == [], [text[i - 40 : i + 40] for i in bare]


def test_the_login_page_hint_says_how_to_add_an_operator(demo: Flask) -> None:
    page = demo.test_client().get(f"{PREFIX}/login")
    assert page.status_code == 200
    assert "<code>.venv/bin/python manage.py corsadmin operator add NAME</code>" in page.text
    assert "<code>flask corsadmin operator add NAME</code>" in page.text


# --- db-upgrade says what it did --------------------------------------------------------


def test_db_upgrade_says_created_upgraded_or_nothing_to_do(database_url: str) -> None:
    host = create_host({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    try:
        runner = host.app.test_cli_runner()
        head = head_revision()
        created = ok(runner, "db-upgrade", "--revision", "0005_api_tokens")
        assert created.stdout == "created corsadmin's tables (revision 0005_api_tokens)\n"
        upgraded = ok(runner, "db-upgrade")
        assert upgraded.stdout == f"upgraded corsadmin's tables from 0005_api_tokens to {head}\n"
        again = ok(runner, "db-upgrade")
        assert again.stdout == f"corsadmin's tables are already at {head}, nothing to do\n"
        with host.app.app_context():
            assert current_revision(host.db.engine) == head
    finally:
        close_host(host)


# --- policy add: its defaults in --help, credentials with any header ----------------------


def test_policy_add_help_names_every_default(app: Flask) -> None:
    runner = app.test_cli_runner()
    text = " ".join(ok(runner, "policy", "add", "--help").stdout.split())  # unwrapped
    methods = ", ".join(DEFAULT_METHODS)
    assert f"An HTTP method (repeatable). Default: {methods} (all of them)." in text
    assert "or '*' (repeatable). Default: * (any request header; with --credentials, " in text
    assert "Allow credentials. Default: --no-credentials." in text
    assert f"Review interval. Default: {DEFAULT_REVIEW_EVERY_DAYS}." in text
    update = " ".join(ok(runner, "policy", "update", "--help").stdout.split())
    assert "Default:" not in update  # there, an option not given leaves the field as it is


@pytest.mark.parametrize(
    ("options", "warned"),
    [
        (["--credentials"], True),  # allow_headers defaults to *
        (["--credentials", "--allow-header", "*", "--allow-header", "X-A"], True),
        (["--credentials", "--allow-header", "Content-Type"], False),
        ([], False),
    ],
    ids=["credentials", "star-and-a-name", "named-headers", "no-credentials"],
)
def test_policy_add_warns_when_credentials_reflect_any_header(
    app: Flask, options: list[str], warned: bool
) -> None:
    result = invoke(
        app.test_cli_runner(), "policy", "add", "api", "/api/**",
        "--origin", "https://app.example", *options,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "added policy api for /api/** with 1 origin(s)\n"
    assert result.stderr == (ANY_HEADER_WARNING.format(name="api") + "\n" if warned else "")


def test_policy_update_warns_when_it_turns_credentials_on_over_any_header(app: Flask) -> None:
    runner = app.test_cli_runner()
    ok(runner, "policy", "add", "api", "/api/**", "--origin", "https://app.example")
    turned_on = invoke(runner, "policy", "update", "api", "--credentials")
    assert turned_on.exit_code == 0, turned_on.output
    assert turned_on.stderr == ANY_HEADER_WARNING.format(name="api") + "\n"
    assert "reflected in Access-Control-Allow-Headers" in turned_on.stderr
    ok(runner, "policy", "update", "api", "--priority", "2")  # neither field: no warning
    ok(runner, "policy", "update", "api", "--allow-header", "Content-Type")  # named: none


def test_credentials_with_any_header_do_reflect_any_request_header(app: Flask) -> None:
    """What the warning says is what happens (and why the review flags it)."""
    runner = app.test_cli_runner()
    ok(runner, "policy", "add", "api", "/api/**", "--origin", "https://app.example")
    invoke(runner, "policy", "update", "api", "--credentials")
    answer = app.test_client().options(
        "/api/items/1",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-anything-at-all",
        },
    )
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert answer.headers["Access-Control-Allow-Headers"].lower() == "x-anything-at-all"


def test_the_review_flags_any_header_with_credentials(app: Flask) -> None:
    runner = app.test_cli_runner()
    ok(runner, "policy", "add", "named", "/named/**", "--credentials", "--allow-header", "X-A")
    invoke(runner, "policy", "add", "wide", "/wide/**", "--credentials")
    ok(runner, "policy", "add", "public", "/public/**")  # * headers without credentials
    client = logged_in_client(app)
    page = client.get(f"{PREFIX}/review")
    assert page.status_code == 200
    risky = page.text.split('id="risky-h"', 1)[1].split("</section>", 1)[0]
    assert risky.count("any-header-credentials") == 1
    assert ">wide</a>" in risky
    assert ">named</a>" not in risky
    assert ">public</a>" not in risky
    assert "allows any request header with credentials" in risky
    facts = PolicyFacts(
        name="p", path="/p", created_at=datetime.now(UTC), credentials=True, allow_headers=("*",)
    )
    assert [r.code for r in policy_risks(facts)] == ["any-header-credentials"]
    assert policy_risks(replace(facts, credentials=False)) == ()


# --- the host's own login: a non-operator gets a 403 page, the nav a logout link ---------

#: The host's users and whether each is a corsadmin operator (its role check).
HOST_USERS: Final = {"olivia": True, "nate": False}
HTML: Final = {"Accept": "text/html"}


def host_operator() -> str | None:
    """The host's CORSADMIN_OPERATOR_LOADER, written as the README says."""
    user = session.get("user")
    if user is None:
        return None  # no one logged in: sent to the login page
    if not HOST_USERS[user]:
        raise NotAnOperator()  # logged in, not an operator: a 403 page
    return str(user)


@pytest.fixture
def session_host(database_url: str) -> Iterator[Flask]:
    """A host application with its own session login (as Flask-Login keeps one) and no
    built-in login: /accounts/login?user=NAME logs in, /accounts/logout logs out."""
    app = make_app(
        database_url,
        CORSADMIN_BUILTIN_LOGIN=False,
        CORSADMIN_OPERATOR_LOADER=host_operator,
        CORSADMIN_LOGIN_URL="account_login",
        CORSADMIN_LOGOUT_URL="account_logout",
    )

    def account_login() -> str:
        if request.args.get("user") in HOST_USERS:
            session["user"] = request.args["user"]
        return "log in here"

    def account_logout() -> str:
        session.pop("user", None)
        return "logged out"

    app.add_url_rule("/accounts/login", "account_login", account_login)
    app.add_url_rule("/accounts/logout", "account_logout", account_logout)
    yield app
    close_app(app)


def _logged_in(app: Flask, user: str) -> FlaskClient:
    client = app.test_client()
    assert client.get(f"/accounts/login?user={user}").status_code == 200
    return client


def test_a_logged_out_browser_is_sent_to_the_hosts_login(session_host: Flask) -> None:
    response = session_host.test_client().get(f"{PREFIX}/review", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts/login?next=%2Fcorsadmin%2Freview"


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_logged_in_non_operator_gets_a_403_page_not_a_login_loop(
    session_host: Flask, accept: str
) -> None:
    client = _logged_in(session_host, "nate")
    for path in ("/", "/review", "/policies/none"):
        response = client.get(f"{PREFIX}{path}", headers={"Accept": accept})
        assert response.status_code == 403, path
        assert "Location" not in response.headers
        assert "logged in, but not as an operator" in response.text
        assert '<a class="button" href="/accounts/logout">Log out</a>' in response.text
        assert "/accounts/login" not in response.text
    posted = client.post(f"{PREFIX}/new", data={"name": "x"})
    assert posted.status_code == 403


def test_an_operator_of_the_host_gets_in_with_a_logout_link(session_host: Flask) -> None:
    client = _logged_in(session_host, "olivia")
    page = client.get(f"{PREFIX}/", headers=HTML)
    assert page.status_code == 200
    who = page.text.split('<div class="who">', 1)[1].split("</div>", 1)[0]
    assert "olivia" in who
    assert '<a class="button-link" href="/accounts/logout">Log out</a>' in who
    assert client.get("/accounts/logout").status_code == 200  # the link's target
    assert client.get(f"{PREFIX}/", headers=HTML).status_code == 302  # logged out now


@pytest.mark.parametrize("logout", [None, "/bye", "https://sso.example/logout"])
def test_the_logout_link_is_the_configured_one_or_none(
    session_host: Flask, logout: str | None
) -> None:
    session_host.config["CORSADMIN_LOGOUT_URL"] = logout
    page = _logged_in(session_host, "olivia").get(f"{PREFIX}/", headers=HTML)
    assert page.status_code == 200
    if logout is None:
        assert "Log out" not in page.text
    else:
        assert f'<a class="button-link" href="{logout}">Log out</a>' in page.text


def test_a_bad_logout_url_is_refused_naming_the_key(database_url: str) -> None:
    with pytest.raises(ValueError, match="CORSADMIN_LOGOUT_URL"):
        make_app(database_url, CORSADMIN_LOGOUT_URL=42)


def test_the_readme_login_example_checks_the_role_in_code() -> None:
    example = next(b for b in readme_code_blocks() if "CORSADMIN_OPERATOR_LOADER" in b)
    assert "raise NotAnOperator()" in example
    assert "return None" in example
    assert 'app.config["CORSADMIN_LOGOUT_URL"]' in example


# --- embedding: the admin UI needs SECRET_KEY ------------------------------------------


@pytest.mark.parametrize("builtin", [True, False], ids=["builtin-login", "host-loader"])
def test_without_secret_key_every_admin_page_says_so_instead_of_a_traceback(
    database_url: str, builtin: bool
) -> None:
    app = make_app(
        database_url,
        SECRET_KEY=None,
        CORSADMIN_BUILTIN_LOGIN=builtin,
        CORSADMIN_OPERATOR_LOADER=None if builtin else (lambda: "carol"),
    )
    try:
        app.testing = False  # as in production: an uncaught error would be a bare 500
        client = app.test_client()
        for path in ("/", "/login", "/new", "/review"):
            page = client.get(f"{PREFIX}{path}", headers=HTML)
            assert page.status_code == 500, path
            assert "needs the application&#39;s SECRET_KEY" in page.text, path
            assert "<h1>500 · Internal Server Error</h1>" in page.text
        posted = client.post(f"{PREFIX}/login", data={"name": "a", "password": "b"})
        assert posted.status_code == 500
        assert client.get(f"{PREFIX}/static/corsadmin.css").status_code == 200
        api = reader(app).get("/policies")  # the JSON API carries no session: no key needed
        assert api.status_code == 200, api.text
        assert api.get_json()["policies"] == []
        app.config["SECRET_KEY"] = SECRET_KEY  # set after init_app: the admin UI opens
        assert client.get(f"{PREFIX}/", headers=HTML).status_code in (200, 302)
    finally:
        close_app(app)


# --- embedding: the host's own autogenerate leaves corsadmin's tables alone ------------


def _readme_include_name() -> Callable[[str, str, Any], bool]:
    """The README's ``include_name``, run as written."""
    block = next(b for b in readme_code_blocks() if b.startswith("def include_name("))
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # the README's own example
    found: Callable[[str, str, Any], bool] = namespace["include_name"]
    return found


@contextmanager
def logging_kept() -> Iterator[None]:
    """Flask-Migrate's generated env.py runs ``logging.config.fileConfig``, which
    disables every logger that exists (corsadmin's too) and replaces the root's
    handlers: put the logging configuration back as it was, so that the log captures
    of the tests that run later in this process still see corsadmin's records."""
    manager = logging.Logger.manager
    before = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for name, logger in list(manager.loggerDict.items()):
            if isinstance(logger, logging.Logger):
                disabled, level, handlers, propagate = before.get(
                    name, (False, logging.NOTSET, [], True)
                )
                logger.disabled, logger.propagate = disabled, propagate
                logger.setLevel(level)
                logger.handlers[:] = handlers
        root.setLevel(root_level)
        root.handlers[:] = root_handlers


def _autogenerate(database_url: str, directory: Path, how: str) -> str:
    """A host app with its own model and Flask-Migrate, on a database that holds
    corsadmin's tables: the script ``flask db migrate`` writes (``how``: the README's
    ``Migrate(..., include_name=...)``, its env.py edit, or neither)."""
    app = Flask("autogenerate_host")
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY=SECRET_KEY)
    db = SQLAlchemy()

    class Widget(db.Model):  # type: ignore[name-defined,misc]
        id = db.Column(db.Integer, primary_key=True)

    cors = CorsAdmin(db=db)
    db.init_app(app)
    cors.init_app(app)
    extra = {"include_name": _readme_include_name()} if how == "Migrate" else {}
    Migrate(app, db, directory=str(directory), **extra)
    try:
        with app.app_context(), logging_kept():
            cors.upgrade_schema(app)
            flask_migrate.init(str(directory))
            if how == "env.py":
                _edit_env_py(directory / "env.py")
            flask_migrate.migrate(str(directory), message="host")
    finally:
        cors.stop(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    (script,) = (directory / "versions").glob("*.py")
    return script.read_text(encoding="utf-8")


def _edit_env_py(env: Path) -> None:
    """The README's env.py edit: include_name in both context.configure calls."""
    text = env.read_text(encoding="utf-8")
    offline = "url=url, target_metadata=get_metadata(), literal_binds=True"
    online = "target_metadata=get_metadata(),\n            **conf_args"
    assert text.count(offline) == 1, "Flask-Migrate's env.py changed"
    assert text.count(online) == 1, "Flask-Migrate's env.py changed"
    text = text.replace(offline, offline + ", include_name=include_name")
    with_name = "target_metadata=get_metadata(),\n            include_name=include_name,\n"
    text = text.replace(online, with_name + "            **conf_args")
    block = next(b for b in readme_code_blocks() if b.startswith("def include_name("))
    text = text.replace("\ndef run_migrations_offline", f"\n{block}\n\ndef run_migrations_offline")
    env.write_text(text, encoding="utf-8")


@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
@pytest.mark.parametrize("how", ["Migrate", "env.py", "neither"])
def test_the_hosts_autogenerate_leaves_corsadmins_tables_alone(
    database_url: str, tmp_path: Path, how: str
) -> None:
    script = _autogenerate(database_url, tmp_path / "migrations", how)
    assert "op.create_table('widget'" in script
    dropped = re.findall(r"op\.drop_table\('(corsadmin_\w+)'\)", script)
    if how == "neither":
        assert "corsadmin_policy" in dropped  # what the README warns about
        assert "corsadmin_alembic_version" in dropped
    else:
        assert dropped == []
        assert "corsadmin_" not in script
