"""The standalone corsadmin application: corsadmin with its own operators, plus a demo API.

``manage.py`` at the top of the repository is its command line (``python manage.py
run|db|corsadmin ...``); ``flask --app manage ...`` works too. The database is
``DATABASE_URL`` (SQLite in the instance folder by default; ``postgresql://...``
for PostgreSQL). The admin UI is at /corsadmin/ with corsadmin's own operators:
``.venv/bin/python manage.py corsadmin operator add NAME`` (``--password-stdin`` for
scripts); ``manage.py run`` prints the admin URL and that command (:func:`first_steps`).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from flask import Flask, jsonify, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from .db.operators import list_operators
from .extension import CorsAdmin
from .resources import migrations_directory

#: Where the standalone app is rooted: the directory of ``manage.py`` (the checkout).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

db = SQLAlchemy()
migrate = Migrate()
cors = CorsAdmin(db=db)

EXAMPLE_POLICY: dict[str, Any] = {
    "corsadmin": 1,
    "policies": [
        {
            "name": "example-api",
            "path": "/api/**",
            "description": "The classic Flask-CORS example, as data",
            "origins": ["http://localhost:3000", "https://yourapp.com"],
            "methods": ["GET", "POST", "PUT", "DELETE"],
            "allow_headers": ["Content-Type", "Authorization"],
        }
    ],
}
EXAMPLE_ACTOR = "manage.py:example"


def _instance_path() -> str:
    """``instance/`` beside ``manage.py``, as when the app was defined there."""
    return os.path.join(_ROOT, "instance")


def database_url(instance_path: str) -> str:
    """``DATABASE_URL``, with PostgreSQL URLs pointed at psycopg 3 and MariaDB/MySQL ones
    at PyMySQL (in full UTF-8); SQLite by default."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "corsadmin.sqlite")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    for prefix in ("mysql://", "mariadb://"):
        if url.startswith(prefix):
            url = prefix[:-3] + "+pymysql://" + url[len(prefix) :]
            break
    if url.startswith(("mysql+", "mariadb+")) and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def instance_secret_key(instance_path: str) -> str:
    """A random key made once per instance and kept in ``instance/secret_key`` (mode 0600),
    so sessions survive restarts and every worker of the instance signs alike."""
    path = os.path.join(instance_path, "secret_key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it this very moment
            with open(path, encoding="ascii") as existing:
                key = existing.read().strip()
            if len(key) >= 32:
                return key
            time.sleep(0.02)
        raise RuntimeError(
            f"{path} holds no usable secret key; delete it to make a new one"
        ) from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as new:
        new.write(key + "\n")
    return key


#: The settings the standalone app reads from the environment, and how each is read
#: (``SECRET_KEY``, ``DATABASE_URL`` and ``SESSION_COOKIE_SECURE`` are read apart).
ENVIRONMENT_KEYS: Final[dict[str, Callable[[str], object]]] = {
    "CORSADMIN_REFRESH_INTERVAL": float,
    "CORSADMIN_USAGE_FLUSH_INTERVAL": float,
    "CORSADMIN_SESSION_IDLE_MINUTES": int,
    "CORSADMIN_ALERT_WEBHOOK_URL": str,
    "CORSADMIN_ALERT_WEBHOOK_SECRET": str,
    "CORSADMIN_ALERT_INTERVAL": float,
    "CORSADMIN_FLEET_HEARTBEAT": float,
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The standalone app: corsadmin (admin UI with built-in operators) plus demo API routes."""
    # Named and rooted as before the move (manage.py at the top of a checkout): the
    # instance folder stays where it was, and the app serves no /static of its own.
    app = Flask(
        "manage", root_path=_ROOT, instance_path=_instance_path(), instance_relative_config=True
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=database_url(app.instance_path),
        # The admin UI's own operators and login page (`corsadmin operator add NAME`).
        CORSADMIN_BUILTIN_LOGIN=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE", "") in ("1", "true"),
    )
    if os.environ.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    for key, convert in ENVIRONMENT_KEYS.items():
        if os.environ.get(key):
            app.config[key] = convert(os.environ[key])
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(migrations_directory()))
    cors.init_app(app)
    register_demo_api(app)
    return app


def register_demo_api(app: Flask) -> None:
    """What protected routes look like: the example policy covers /api/**."""

    @app.get("/")
    def index() -> Any:
        return jsonify(
            service="corsadmin demo",
            admin="/corsadmin/",
            try_it="curl -i -H 'Origin: http://localhost:3000' -X POST "
            "-H 'Content-Type: application/json' -d '{\"inputVar\": 21}' "
            "http://127.0.0.1:5000/api/foo",
        )

    @app.post("/api/foo")
    def foo() -> Any:
        """The classic example: doubles inputVar."""
        data = request.get_json(silent=True)
        value = data.get("inputVar") if isinstance(data, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return jsonify(error="Invalid input"), 400
        return jsonify(result=value * 2)

    @app.get("/api/status")
    def status() -> Any:
        return jsonify(status="ok")

    @app.route("/api/items/<int:item_id>", methods=["GET", "PUT", "DELETE"])
    def item(item_id: int) -> Any:
        if request.method == "PUT":
            return jsonify(id=item_id, updated=request.get_json(silent=True))
        if request.method == "DELETE":
            return "", 204
        return jsonify(id=item_id, name=f"item {item_id}")

    @app.get("/api/worker")
    def worker() -> Any:
        """Which process answered (to watch every worker pick up a change)."""
        return jsonify(pid=os.getpid())

    @app.get("/api/whoami")
    def whoami() -> Any:
        """Answers whether the browser sent the session cookie (credentialed calls)."""
        return jsonify(cookie=request.cookies.get("demo_session"))

    @app.get("/api/error")
    def error() -> Any:
        raise RuntimeError("a demo server error")


def prepare_database(app: Flask) -> list[str]:
    """Create or upgrade the schema; load the example policy into a never-used database."""
    messages = []
    with app.app_context():
        cors.upgrade_schema(app)
        store = cors.store(EXAMPLE_ACTOR, app)
        if store.revision() == 0 and not store.policies():
            store.import_document(EXAMPLE_POLICY)
            messages.append(
                "corsadmin: empty database, loaded the example policy: /api/** allows "
                "http://localhost:3000 and https://yourapp.com (GET, POST, PUT, DELETE; "
                "Content-Type, Authorization)"
            )
        count = len(store.policies())
        where = str(app.config["SQLALCHEMY_DATABASE_URI"]).split("@")[-1]  # no password
        messages.append(
            f"corsadmin: schema ready, {count} polic{'y' if count == 1 else 'ies'} "
            f"at revision {store.revision()} ({where})"
        )
    return messages


#: Addresses that mean "every interface": the admin URL printed for them is loopback's.
_ANY_ADDRESS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, not bound


def python_command(executable: str | None = None, cwd: str | None = None) -> str:
    """The interpreter running this, as a person would type it here: relative to the
    current directory when it is under it (``.venv/bin/python`` in a checkout)."""
    executable = executable or sys.executable
    cwd = cwd or os.getcwd()
    relative = os.path.relpath(executable, cwd)
    return executable if relative.startswith("..") else relative


def first_steps(app: Flask, host: str, port: int, python: str | None = None) -> list[str]:
    """What ``manage.py run`` prints before serving: where the admin UI is, and the exact
    command that creates the first operator (while there is none)."""
    shown_host = "127.0.0.1" if host in _ANY_ADDRESS else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    with app.app_context():
        prefix = cors.state(app).admin_prefix
        operators = list_operators(cors.state(app).db.session)
    lines = [f"corsadmin: admin UI at http://{shown_host}:{port}{prefix}/"]
    if not operators:
        command = f"{python or python_command()} manage.py corsadmin operator add admin"
        lines.append(
            "corsadmin: no operator yet; create the first one in another terminal "
            f"(it asks for a password twice):\n    {command}"
        )
    return lines
