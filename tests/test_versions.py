"""pyproject.toml's dependency ranges are exactly what the version matrix tests.

The matrix is data in ``noxfile.py`` (read here with ``ast``: nox need not be
installed): :data:`COMBINATIONS` (a session each, ``make matrix``), ``WERKZEUG`` (the
Werkzeug each Flask minor runs on) and ``NEWEST`` (what ``make test`` runs the full
suite on). Each lower bound must be the oldest version tested, each upper bound must
admit the newest tested and nothing past its minor, and the combinations must cover
every pair of versions, as the noxfile says. The floors of Flask-Migrate, Alembic and
Flask-WTF (``OTHER_FLOORS``, pinned in the first combination) are pyproject's too.
"""

from __future__ import annotations

import ast
import itertools
import tomllib
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any, Final

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT: Final = Path(__file__).resolve().parent.parent
#: The columns of noxfile's COMBINATIONS, in order.
FACTORS: Final = ("flask", "flask-sqlalchemy", "sqlalchemy", "flask-cors")
#: Every dependency whose range the matrix decides (Werkzeug follows Flask).
MATRIX_PACKAGES: Final = (*FACTORS, "werkzeug")
#: The other Flask extensions: their floors are pinned in the first combination
#: (noxfile's OTHER_FLOORS), their newest everywhere else.
OTHER_EXTENSIONS: Final = ("flask-migrate", "alembic", "flask-wtf")


def noxfile_data() -> dict[str, Any]:
    """The literal values noxfile.py assigns at its top level, by name."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    data: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            try:
                data[node.target.id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return data


def declared() -> dict[str, Requirement]:
    """pyproject.toml's ``dependencies``, by package name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = (Requirement(text) for text in project["dependencies"])
    return {requirement.name.lower(): requirement for requirement in requirements}


def minor(version: Version) -> tuple[int, int]:
    return version.major, version.minor


def versions_tested() -> dict[str, list[Version]]:
    """Every version the matrix and the full suite run, per package, oldest first."""
    data = noxfile_data()
    versions: dict[str, set[Version]] = {name: set() for name in MATRIX_PACKAGES}
    for combination in data["COMBINATIONS"]:
        assert len(combination) == len(FACTORS)
        for name, text in zip(FACTORS, combination, strict=True):
            versions[name].add(Version(text))
        flask = Version(combination[0])
        versions["werkzeug"].add(Version(data["WERKZEUG"][f"{flask.major}.{flask.minor}"]))
    for name in MATRIX_PACKAGES:
        versions[name].add(Version(data["NEWEST"][name]))
    return {name: sorted(found) for name, found in versions.items()}


def bounds(name: str) -> tuple[Version, Version]:
    """The declared range of ``name``: (lower, upper), refusing any other form."""
    specifiers = {spec.operator: Version(spec.version) for spec in declared()[name].specifier}
    assert set(specifiers) == {">=", "<"}, f"{name}: declare >=oldest tested,<next minor"
    return specifiers[">="], specifiers["<"]


@pytest.mark.parametrize("name", MATRIX_PACKAGES)
def test_each_lower_bound_is_the_oldest_version_the_matrix_tests(name: str) -> None:
    lower, _ = bounds(name)
    assert lower == versions_tested()[name][0]


@pytest.mark.parametrize("name", MATRIX_PACKAGES)
def test_each_upper_bound_admits_the_newest_tested_and_stops_at_its_next_minor(
    name: str,
) -> None:
    _, upper = bounds(name)
    versions = versions_tested()[name]
    assert all(declared()[name].specifier.contains(v) for v in versions)
    newest = versions[-1]
    assert upper == Version(f"{newest.major}.{newest.minor + 1}")


def test_the_newest_of_each_column_is_what_the_full_suite_runs() -> None:
    data = noxfile_data()
    for index, name in enumerate(FACTORS):
        column = [Version(combination[index]) for combination in data["COMBINATIONS"]]
        assert max(column) == Version(data["NEWEST"][name]), name


@pytest.mark.parametrize("name", MATRIX_PACKAGES)
def test_the_full_suite_runs_on_the_newest_tested_minor(name: str) -> None:
    newest = Version(noxfile_data()["NEWEST"][name])
    assert minor(Version(installed_version(name))) == minor(newest)


def test_the_combinations_cover_every_value_and_every_pair_of_values() -> None:
    combinations = noxfile_data()["COMBINATIONS"]
    assert len(set(combinations)) == len(combinations)
    for (i, first), (j, second) in itertools.combinations(enumerate(FACTORS), 2):
        values_i = {c[i] for c in combinations}
        values_j = {c[j] for c in combinations}
        seen = {(c[i], c[j]) for c in combinations}
        missing = set(itertools.product(values_i, values_j)) - seen
        assert not missing, f"{first} x {second}: never together: {sorted(missing)}"


def test_every_tested_flask_minor_names_its_werkzeug_and_nothing_else() -> None:
    data = noxfile_data()
    flask_minors = {minor(Version(c[0])) for c in data["COMBINATIONS"]}
    flask_minors.add(minor(Version(data["NEWEST"]["flask"])))
    assert {minor(Version(key)) for key in data["WERKZEUG"]} == flask_minors
    newest = Version(data["NEWEST"]["flask"])
    werkzeug = data["WERKZEUG"][f"{newest.major}.{newest.minor}"]
    assert werkzeug == data["NEWEST"]["werkzeug"]


@pytest.mark.parametrize("name", OTHER_EXTENSIONS)
def test_the_other_extensions_lower_bounds_are_the_floors_the_matrix_pins(name: str) -> None:
    floors = noxfile_data()["OTHER_FLOORS"]
    assert set(floors) == set(OTHER_EXTENSIONS)
    lower = [Version(s.version) for s in declared()[name].specifier if s.operator == ">="]
    assert lower == [Version(floors[name])]


#: The database drivers, by the pyproject extra that installs each.
DRIVERS: Final = {"postgres": "psycopg", "mysql": "pymysql"}


@pytest.mark.parametrize(("extra", "name"), sorted(DRIVERS.items()))
def test_the_drivers_lower_bounds_are_the_floors_the_matrix_pins(extra: str, name: str) -> None:
    """The first combination runs on every backend with these pinned (psycopg 3.2.0's
    ``binary`` extra asks for a psycopg-binary that does not exist: 3.2.1 is the floor)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (text,) = project["optional-dependencies"][extra]
    requirement = Requirement(text)
    assert requirement.name == name
    assert set(noxfile_data()["DRIVER_FLOORS"]) == set(DRIVERS.values())
    lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert lower == [Version(noxfile_data()["DRIVER_FLOORS"][name])]
