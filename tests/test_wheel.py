"""The wheel works on its own: built from the repository, installed in a fresh
virtual environment, used by a host application outside the source tree.

The migrations and templates are force-included in the wheel as
``corsadmin/migrations`` and ``corsadmin/templates``; this checks that an
installed corsadmin finds them there (not in a checkout) and that a host's
``flask corsadmin db-upgrade`` builds the schema from them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

HOSTAPP = '''
"""A host application: its own Flask-SQLAlchemy db, corsadmin registered on it."""
from pathlib import Path

from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin

db = SQLAlchemy()
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(
    Path(__file__).resolve().with_name("host.sqlite")
)
db.init_app(app)
cors = CorsAdmin(app, db=db)


@app.get("/api/hello")
def hello():
    return jsonify(hello="world")
'''

PROBE = """
import json
import sys

import sqlalchemy as sa

import corsadmin
from corsadmin.db.models import Base
from corsadmin.db.schema import current_revision
from corsadmin.resources import migrations_directory, templates_directory
from hostapp import app, db

client = app.test_client()
allowed = client.get("/api/hello", headers={"Origin": "https://app.example"})
refused = client.get("/api/hello", headers={"Origin": "https://evil.example"})
with app.app_context():
    tables = sorted(sa.inspect(db.engine).get_table_names())
    revision = current_revision(db.engine)
print(json.dumps({
    "sys_path_has_repo": any(p.rstrip("/") == sys.argv[1] for p in sys.path),
    "corsadmin_file": corsadmin.__file__,
    "migrations": str(migrations_directory()),
    "templates": str(templates_directory()),
    "tables": tables,
    "model_tables": sorted(Base.metadata.tables),
    "revision": revision,
    "allowed": [allowed.status_code, allowed.get_json(), allowed.headers.get(
        "Access-Control-Allow-Origin"), allowed.headers.get("Vary")],
    "refused": [refused.status_code, refused.headers.get("Access-Control-Allow-Origin")],
}))
"""


@dataclass
class Installed:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


def _clean_env(venv: Path | None = None) -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DATABASE_URL"}
        and not k.startswith(("FLASK_", "CORSADMIN_"))
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, built from the repository and installed in a fresh virtual environment."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist)],
        cwd=REPO,
        env=_clean_env(),
    )
    wheels = list(dist.glob("corsadmin-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=_clean_env())
    # pip's own cache (the default) keeps repeated runs fast.
    _run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", str(wheels[0])],
        cwd=base,
        env=_clean_env(venv),
    )
    return Installed(wheels[0], venv)


def test_wheel_ships_migrations_templates_and_py_typed(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    for required in (
        "corsadmin/migrations/env.py",
        "corsadmin/migrations/alembic.ini",
        "corsadmin/migrations/script.py.mako",
        "corsadmin/migrations/versions/0001_initial.py",
        "corsadmin/templates/corsadmin/base.html",
        "corsadmin/py.typed",
        "corsadmin/__init__.py",
        "corsadmin/cli/__init__.py",
    ):
        assert required in names, sorted(names)
    # Only the package: no top-level migrations/templates, tests or the standalone app.
    tops = {name.split("/")[0] for name in names}
    assert tops == {"corsadmin", installed.wheel.name.split("-py3")[0] + ".dist-info"}


def test_installed_wheel_serves_a_host_application(installed: Installed, tmp_path: Path) -> None:
    work = tmp_path / "host"
    work.mkdir()
    assert REPO not in work.parents
    (work / "hostapp.py").write_text(HOSTAPP)
    (work / "probe.py").write_text(PROBE)
    env = _clean_env(installed.venv)
    flask = str(installed.bin / "flask")

    upgrade = _run([flask, "--app", "hostapp", "corsadmin", "db-upgrade"], cwd=work, env=env)
    assert upgrade.stdout.startswith("created corsadmin's tables (revision "), upgrade.stdout
    assert (work / "host.sqlite").is_file()

    added = _run(
        [
            flask,
            "--app",
            "hostapp",
            "corsadmin",
            "--actor",
            "wheel-test",
            "policy",
            "add",
            "api",
            "/api/**",
            "--origin",
            "https://app.example",
        ],
        cwd=work,
        env=env,
    )
    assert added.stdout == "added policy api for /api/** with 1 origin(s)\n"

    probe = _run([str(installed.bin / "python"), "probe.py", str(REPO)], cwd=work, env=env)
    facts = json.loads(probe.stdout)
    site_packages = [
        p for p in installed.venv.glob("lib/python*/site-packages/corsadmin") if p.is_dir()
    ]
    assert len(site_packages) == 1
    package = site_packages[0].resolve()

    assert facts["sys_path_has_repo"] is False
    assert Path(facts["corsadmin_file"]).resolve() == package / "__init__.py"
    assert Path(facts["migrations"]).resolve() == package / "migrations"
    assert Path(facts["templates"]).resolve() == package / "templates"
    assert (package / "migrations" / "versions" / "0001_initial.py").is_file()
    assert {
        "corsadmin_alembic_version",
        "corsadmin_audit_event",
        "corsadmin_origin_rule",
        "corsadmin_policy",
        "corsadmin_state",
    } <= set(facts["tables"])
    assert facts["tables"] == sorted(["corsadmin_alembic_version", *facts["model_tables"]])
    assert facts["revision"] == "0008_refused_examples"
    assert facts["allowed"] == [200, {"hello": "world"}, "https://app.example", "Origin"]
    assert facts["refused"] == [200, None]
