"""The version matrix: corsadmin on the Flask, Flask-SQLAlchemy, SQLAlchemy and
Flask-CORS versions users have (``make matrix``, or ``nox -s NAME`` for one).

Each combination in :data:`COMBINATIONS` is a nox session: a fresh virtualenv under
``.nox/``, ``pip install -e '.[test]'`` with that combination's versions pinned in the
same resolve, then :data:`FAST_TESTS` (the files where corsadmin meets these
libraries) on SQLite, and in the first combination (every floor, the database
drivers' included) on PostgreSQL and MariaDB too. The full suite runs on the newest
versions (:data:`NEWEST`): that is what ``make test`` installs.

``pyproject.toml``'s ranges are exactly what is tested: every lower bound is the
oldest version here, every upper bound admits the newest and nothing past its minor
(tests/test_versions.py reads this file's data with ``ast`` and checks both).
"""

from __future__ import annotations

from typing import Final

import nox

#: The newest release of each factor; the main venv (``make test``: the full suite,
#: every backend) installs these, so no session repeats them.
NEWEST: Final = {
    "flask": "3.1.3",
    "werkzeug": "3.1.9",
    "flask-sqlalchemy": "3.1.1",
    "sqlalchemy": "2.1.9",
    "flask-cors": "6.0.5",
}

#: The Werkzeug each Flask minor is tested with: the newest patch of the Werkzeug minor
#: released with it, what an installation of that Flask has. Pinned because Flask 2.3
#: sets no upper bound and pip would pick Werkzeug 3.1 (tested with Flask 3.1); this
#: way Werkzeug's floor (pyproject: werkzeug>=2.3.8) is tested too.
WERKZEUG: Final = {"2.3": "2.3.8", "3.0": "3.0.6", "3.1": "3.1.9"}

#: The combinations run per ``make matrix``, as (flask, flask-sqlalchemy, sqlalchemy,
#: flask-cors). The factors have 3, 2, 2 and 2 values (Flask 2.3/3.0/3.1, each at
#: its newest patch; Flask-SQLAlchemy 3.0/3.1 likewise; SQLAlchemy's oldest 2.0 that
#: works with both Flask-SQLAlchemy versions and corsadmin, and the newest; Flask-CORS
#: 6.0.2 and the newest 6.x). All 24 would take half an hour; these 6 are a pairwise
#: covering set (an orthogonal array): every value of every factor appears, and every
#: pair of values of two factors appears in at least one row. The first row is every
#: floor together; the all-newest row is NEWEST (the full suite).
COMBINATIONS: Final = (
    ("2.3.3", "3.0.5", "2.0.16", "6.0.2"),
    ("2.3.3", "3.1.1", "2.1.9", "6.0.5"),
    ("3.0.3", "3.0.5", "2.1.9", "6.0.5"),
    ("3.0.3", "3.1.1", "2.0.16", "6.0.2"),
    ("3.1.3", "3.0.5", "2.0.16", "6.0.5"),
    ("3.1.3", "3.1.1", "2.1.9", "6.0.2"),
)

#: The floors of the other Flask extensions corsadmin uses (pyproject's lower bounds),
#: pinned in the first combination, the one of every floor; the others install the
#: newest, as make test does.
OTHER_FLOORS: Final = {"flask-migrate": "4.0.0", "alembic": "1.13.0", "flask-wtf": "1.2.0"}

#: The floors of the database drivers (pyproject's ``postgres`` and ``mysql`` extras),
#: pinned in the first combination too, which runs on every backend: the oldest
#: SQLAlchemy with the oldest psycopg and PyMySQL against real PostgreSQL and MariaDB
#: servers. The other combinations run on SQLite.
DRIVER_FLOORS: Final = {"psycopg": "3.2.1", "pymysql": "1.1.0"}

#: The fast subset: extension init and the request hook (test_extension), the
#: headers Flask-CORS writes and its options read back (test_import_flask_cors),
#: store writes and the usage upsert (test_store, test_usage, test_signals),
#: migrations (test_migrations), the admin UI's login and forms (test_admin_operators),
#: the CLI (test_cli_policies) and the API (test_api_policies,
#: test_api_bodies: the bounded body read differs between Flask 3.1 and older).
FAST_TESTS: Final = (
    "tests/test_extension.py",
    "tests/test_import_flask_cors.py",
    "tests/test_store.py",
    "tests/test_usage.py",
    "tests/test_signals.py",
    "tests/test_migrations.py",
    "tests/test_admin_operators.py",
    "tests/test_cli_policies.py",
    "tests/test_api_policies.py",
    "tests/test_api_bodies.py",
)

#: pytest's arguments for every session: two processes (the CI machine's cores), a
#: file's tests in one process. The backends: :func:`backends`
#: (CORSADMIN_TEST_BACKENDS, tests/support/backends.py).
PYTEST_ARGS: Final = ("-n", "2", "--dist", "loadfile", "-q")

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True


def session_name(combination: tuple[str, str, str, str]) -> str:
    """``flask2.3.3-fsa3.0.5-sa2.0.16-cors6.0.2``: the versions, in the tuple's order."""
    flask, flask_sqlalchemy, sqlalchemy, flask_cors = combination
    return f"flask{flask}-fsa{flask_sqlalchemy}-sa{sqlalchemy}-cors{flask_cors}"


def pins(combination: tuple[str, str, str, str]) -> list[str]:
    """The pip requirements that pin ``combination``, the Werkzeug of its Flask, and in the
    first combination :data:`OTHER_FLOORS`."""
    flask, flask_sqlalchemy, sqlalchemy, flask_cors = combination
    werkzeug = WERKZEUG[".".join(flask.split(".")[:2])]
    floors = {**OTHER_FLOORS, **DRIVER_FLOORS} if combination == COMBINATIONS[0] else {}
    return [
        f"flask=={flask}",
        f"werkzeug=={werkzeug}",
        f"flask-sqlalchemy=={flask_sqlalchemy}",
        f"sqlalchemy=={sqlalchemy}",
        f"flask-cors=={flask_cors}",
        *(f"{name}=={version}" for name, version in floors.items()),
    ]


def backends(combination: tuple[str, str, str, str]) -> str:
    """CORSADMIN_TEST_BACKENDS for ``combination``: every backend for the first (every
    floor, the drivers' included), SQLite for the others."""
    return "sqlite,postgresql,mariadb" if combination == COMBINATIONS[0] else "sqlite"


def register(combination: tuple[str, str, str, str]) -> None:
    """One nox session for ``combination``: install it, check it, run the fast subset
    (or the test files given after ``--``: ``nox -s NAME -- tests/test_paths.py``)."""

    @nox.session(name=session_name(combination))
    def run(session: nox.Session) -> None:
        session.install("-e", ".[test]", *pins(combination))
        session.run("python", "-m", "pip", "check")
        session.run(
            "python",
            "-m",
            "pytest",
            *PYTEST_ARGS,
            *(session.posargs or FAST_TESTS),
            env={"CORSADMIN_TEST_BACKENDS": backends(combination)},
        )


for _combination in COMBINATIONS:
    register(_combination)
