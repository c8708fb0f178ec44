"""The standalone app on its own: ``corsadmin/standalone.py`` and its entry point
``manage.py`` (``python manage.py run|db|corsadmin``, ``flask --app manage``), the
example policy it loads into an empty database, its instance secret key, its
``DATABASE_URL``, its session cookie and its demo API.

The library is tested through a minimal host app (``tests/support/host.py``); the
standalone server in a browser, under load and across processes is tested in
test_browser.py, test_admin_browser.py, test_load.py, test_harness.py, test_refresh.py
and test_wheel.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from corsadmin import standalone
from tests.support.admin import add_operator, log_in
from tests.support.cli import REPO_ROOT, policy_doc
from tests.support.standalone import standalone_app

SECRET_KEY = "standalone-tests-secret-key-0123456789abcdef"


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The standalone app in this process (SQLite and PostgreSQL), migrated, empty."""
    with standalone_app(database_url, SECRET_KEY=SECRET_KEY) as app:
        yield app


# --- manage.py: the real entry points ----------------------------------------------------


def test_entry_points_in_subprocesses(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "CORSADMIN_")) and k != "DATABASE_URL"
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    env["CORSADMIN_ACTOR"] = "subprocess"
    bindir = Path(sys.executable).parent

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    upgrade = run(sys.executable, "manage.py", "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "cli.sqlite").is_file()

    empty = run(sys.executable, "manage.py", "corsadmin", "policy", "list")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("no policies yet")

    added = run(
        sys.executable, "manage.py", "corsadmin", "policy", "add", "api", "/api/**",
        "--origin", "https://app.example",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = run(sys.executable, "manage.py", "corsadmin", "policy", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "NAME  PATH     ORIGINS  FLAGS",
        "api   /api/**  1        -",
    ]

    exported = run(str(bindir / "flask"), "--app", "manage", "corsadmin", "export")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {
        "corsadmin": 1,
        "policies": [policy_doc("api", "/api/**", origins=["https://app.example"])],
    }

    refused = run(
        str(bindir / "flask"), "--app", "manage", "corsadmin", "check",
        "https://evil.example", "/api/x",
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stdout.splitlines()[-1] == "verdict: REFUSED"

    shown = run(sys.executable, "manage.py", "corsadmin", "policy", "show", "api")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "policy api (version 1)"
    assert any(line.endswith("UTC by subprocess") for line in shown.stdout.splitlines())

    mistake = run(sys.executable, "manage.py", "corsadmin", "policy", "show", "nope")
    assert mistake.returncode == 1
    assert mistake.stderr == "error: no policy named 'nope'\n"
    assert mistake.stdout == ""


# --- the example policy -----------------------------------------------------------------


def test_an_empty_database_gets_the_example_policy_once(app: Flask) -> None:
    first = standalone.prepare_database(app)
    assert first[0].startswith("corsadmin: empty database, loaded the example policy")
    assert first[1].startswith("corsadmin: schema ready, 1 policy at revision 1 (")
    with app.app_context():
        store = standalone.cors.store("tests", app)
        assert store.export_document() == {
            "corsadmin": 1,
            "policies": [
                policy_doc(
                    "example-api",
                    "/api/**",
                    description="The classic Flask-CORS example, as data",
                    origins=["http://localhost:3000", "https://yourapp.com"],
                    methods=["GET", "POST", "PUT", "DELETE"],
                    allow_headers=["Content-Type", "Authorization"],
                )
            ],
        }
        assert [e.actor for e in store.audit_events()] == [standalone.EXAMPLE_ACTOR]
        store.delete_policy("example-api")  # used, then emptied: not a new database
    again = standalone.prepare_database(app)
    assert again == [again[0]]
    assert again[0].startswith("corsadmin: schema ready, 0 policies at revision 2 (")


# --- the instance: secret key, database URL ---------------------------------------------


def test_the_instance_secret_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = standalone.instance_secret_key(str(tmp_path))
    assert len(key) >= 32
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert standalone.instance_secret_key(str(tmp_path)) == key
    path.write_text("short\n", encoding="ascii")
    with pytest.raises(RuntimeError, match="holds no usable secret key"):
        standalone.instance_secret_key(str(tmp_path))


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ("", "sqlite:///{instance}/corsadmin.sqlite"),
        ("postgres://u@db/x", "postgresql+psycopg://u@db/x"),
        (" postgresql://u@db/x ", "postgresql+psycopg://u@db/x"),
        ("mysql://u@db/x", "mysql+pymysql://u@db/x?charset=utf8mb4"),
        ("mariadb://u:p@db:3307/x", "mariadb+pymysql://u:p@db:3307/x?charset=utf8mb4"),
        ("mariadb://u@db/x?ssl=1", "mariadb+pymysql://u@db/x?ssl=1&charset=utf8mb4"),
        ("mysql+pymysql://u@db/x?charset=utf8mb4", "mysql+pymysql://u@db/x?charset=utf8mb4"),
        ("oracle://u@db/x", "oracle://u@db/x"),
    ],
    ids=[
        "unset",
        "postgres",
        "postgresql-spaced",
        "mysql",
        "mariadb",
        "mariadb-with-query",
        "mysql-with-driver",
        "other",
    ],
)
def test_database_url_defaults_to_sqlite_and_points_servers_at_their_drivers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", env)
    assert standalone.database_url(str(tmp_path)) == url.format(instance=tmp_path)


#: A value of each environment key the standalone app reads, and what app.config gets.
ENVIRONMENT_SAMPLES = {
    "CORSADMIN_REFRESH_INTERVAL": ("0.5", 0.5),
    "CORSADMIN_USAGE_FLUSH_INTERVAL": ("3", 3.0),
    "CORSADMIN_SESSION_IDLE_MINUTES": ("15", 15),
    "CORSADMIN_ALERT_WEBHOOK_URL": ("https://hooks.example/cors", "https://hooks.example/cors"),
    "CORSADMIN_ALERT_WEBHOOK_SECRET": ("a-secret-of-24-characters", "a-secret-of-24-characters"),
    "CORSADMIN_ALERT_INTERVAL": ("30", 30.0),
    "CORSADMIN_FLEET_HEARTBEAT": ("2.5", 2.5),
}


def test_every_environment_key_is_read_and_named_in_the_readme(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert set(ENVIRONMENT_SAMPLES) == set(standalone.ENVIRONMENT_KEYS)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    for key, (text, _) in ENVIRONMENT_SAMPLES.items():
        monkeypatch.setenv(key, text)
    app = standalone.create_app()
    try:
        for key, (_, value) in ENVIRONMENT_SAMPLES.items():
            assert app.config[key] == value, key
    finally:
        app.extensions["corsadmin"].holder.stop()
    readme = (REPO_ROOT / "README.md").read_text()
    sentence = readme[readme.index("The standalone app (`manage.py`) also reads") :]
    sentence = " ".join(sentence[: sentence.index("from the environment")].split())
    for key in standalone.ENVIRONMENT_KEYS:
        assert f"`{key}`" in sentence, key


# --- the session cookie -----------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite_lax(app: Flask) -> None:
    add_operator(app)
    response = log_in(app.test_client())
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


# --- the demo API -----------------------------------------------------------------------


def test_the_demo_api_answers_under_the_example_policy(app: Flask) -> None:
    standalone.prepare_database(app)
    client = app.test_client()
    origin = {"Origin": "http://localhost:3000"}
    doubled = client.post("/api/foo", json={"inputVar": 21}, headers=origin)
    assert doubled.get_json() == {"result": 42}
    assert doubled.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    for bad in ({"inputVar": True}, {"inputVar": "21"}, [21]):
        refused = client.post("/api/foo", json=bad)
        assert (refused.status_code, refused.get_json()) == (400, {"error": "Invalid input"})
    assert client.get("/api/status").get_json() == {"status": "ok"}
    assert client.get("/api/items/7").get_json() == {"id": 7, "name": "item 7"}
    assert client.put("/api/items/7", json={"a": 1}).get_json() == {"id": 7, "updated": {"a": 1}}
    assert client.delete("/api/items/7").status_code == 204
    assert client.get("/api/worker").get_json() == {"pid": os.getpid()}
    client.set_cookie("demo_session", "s1")
    assert client.get("/api/whoami").get_json() == {"cookie": "s1"}
    assert client.get("/").get_json()["admin"] == "/corsadmin/"
    evil = client.get("/api/status", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers
