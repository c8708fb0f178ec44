"""benchmarks/backends.py keeps working on every backend (its quick smoke mode; the figures
are not checked here: timing belongs in benchmarks/RESULTS.md, not in tests)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Final

import pytest

from tests.support.backends import BACKENDS, fresh_database

REPO = Path(__file__).resolve().parent.parent
#: Seconds the smoke run may take at most (it takes a few on an idle machine).
SMOKE_TIMEOUT: Final = 300
#: The option of benchmarks/backends.py naming a server backend's empty database.
URL_OPTIONS: Final = {"postgresql": "--postgres-url", "mariadb": "--mariadb-url"}
#: The driver each backend is measured through.
DRIVERS: Final = {"sqlite": "pysqlite", "postgresql": "psycopg", "mariadb": "pymysql"}


@pytest.fixture
def server_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """The options giving the script an empty database on each selected server (the
    session's servers: it starts none)."""
    options: list[str] = []
    with ExitStack() as stack:
        for kind in BACKENDS:
            if kind in URL_OPTIONS:
                url = stack.enter_context(fresh_database(kind, tmp_path, request))
                options += [URL_OPTIONS[kind], url]
        yield options


@pytest.mark.slow
def test_the_backends_benchmark_runs_in_smoke_mode(server_urls: list[str], tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("before\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/backends.py",
            "--quick",
            "--backends",
            *BACKENDS,
            *server_urls,
            "--write",
            str(report),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert report.read_text(encoding="utf-8") == "before\n" + result.stdout  # appended
    assert "QUICK SMOKE RUN" in result.stdout
    assert "100 origin rules in 10 policies" in result.stdout
    assert "Validation of the document alone" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]] == list(BACKENDS)
    for row in rows[1:]:
        backend, driver, *figures = row.strip("| ").split(" | ")
        assert driver == DRIVERS[backend]
        assert len(figures) == 6
        assert all(figure.endswith((" ms", " s")) or figure.isdigit() for figure in figures), row


def test_rules_must_fill_whole_policies() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/backends.py", "--rules", "15", "--backends", "sqlite"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert result.returncode == 2
    assert "--rules must be a positive multiple of 10" in result.stderr


def test_the_import_benchmark_reports_seconds_and_statements() -> None:
    """benchmarks/import_policies.py's smoke run (SQLite): the three imports; the
    unchanged one and the draft read and write a chunk of policies at a time."""
    result = subprocess.run(
        [sys.executable, "benchmarks/import_policies.py", "--quick", "--backends", "sqlite"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.strip("| ").split(" | ") for line in result.stdout.splitlines()]
    figures = {row[1]: row[2:] for row in rows if row[0] == "sqlite"}
    assert set(figures) == {
        "into an empty database",
        "again, unchanged",
        "as a draft, each changed",
    }
    assert int(figures["again, unchanged"][1]) < 10  # not one read per policy
    assert int(figures["as a draft, each changed"][1]) < 20  # nor several writes per policy
