"""The database side on SQLite, PostgreSQL and MariaDB (issue 14): loads, reloads, writes.

    python benchmarks/backends.py                  N = 10,000 origin rules, every backend
    python benchmarks/backends.py --rules 100000   another N (a multiple of 10)
    python benchmarks/backends.py --quick          smoke mode: 100 rules, 3 repeats
    python benchmarks/backends.py --write FILE     also appends the report to FILE

The request hot path never reads the database (it answers from the snapshot in
memory), so what a backend costs is paid when a snapshot is loaded and when a
policy is written. For each backend (a SQLite file; a PostgreSQL and a MariaDB
server started through ``tests/support``, unless ``--postgres-url`` /
``--mariadb-url`` name an empty database) the same policy set is written: N
origin rules, 10 per policy (``bench.large_policies``: exact, ``*.`` wildcards,
some ``re:``). Measured, in this process, through corsadmin's public API:

* ``import`` of that document into the empty database (``import_document``,
  replace=True), once; and, first of all, its validation alone (``parse_document``),
  the first time in the process and again;
* a cold snapshot load (``load_snapshot`` with a fresh ``RuleCache``);
* ``origin add`` through ``PolicyStore`` (one transaction: the rule and its audit
  event), each in its own session on a writer engine;
* after each add, the reload a worker makes (``load_snapshot(previous=...)`` on a
  reader engine: other connections): the change-log path, which reads only what
  changed; its SQL statements are counted (a reload that read every rule again
  would show in its time, not in that count: the rules are read on a raw cursor).
  Each snapshot is then frozen out of the garbage collector's reach
  (``freeze_long_lived``, as a worker does once it installed it): otherwise a full
  collection of this process's objects, 0.1 s, lands in one reload in ten.

The three databases are open at once and measured in turn, round by round, so that
a disturbance of a shared machine does not land on one backend only. Each figure is
the median (and nearest-rank p95) of the repeats, wall-clock time; the CPU time of
the cold load is this (client) process's: corsadmin's and the driver's share.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's corsadmin and tests.support
sys.path.insert(0, str(REPO / "benchmarks"))

import bench  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from corsadmin.db.loader import RuleCache, load_snapshot  # noqa: E402
from corsadmin.db.schema import upgrade  # noqa: E402
from corsadmin.db.store import PolicyStore  # noqa: E402
from corsadmin.engine.snapshot import Snapshot  # noqa: E402
from corsadmin.policy.document import parse_document  # noqa: E402
from corsadmin.runtime.refresh import freeze_long_lived  # noqa: E402

#: Every backend measured, in the report's order.
BACKENDS: Final = ("sqlite", "postgresql", "mariadb")
#: The origin rules of the policy set (N), unless --rules.
DEFAULT_RULES: Final = 10_000
#: N in smoke mode (--quick).
QUICK_RULES: Final = 100
#: Repeats of the cold load (each one reads every rule).
COLD_REPEATS: Final = 10
#: Repeats of ``origin add`` and the reload after it.
WRITE_REPEATS: Final = 20
#: Repeats of everything in smoke mode.
QUICK_REPEATS: Final = 3
#: The share of the repeats under the "p95" figure (nearest rank).
P95: Final = 0.95


@dataclass
class Spread:
    """Seconds of repeated runs."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(P95 * len(ordered)) - 1)]


@dataclass
class BackendFigures:
    backend: str
    driver: str
    rules: int
    imported: float
    cold: Spread
    cold_cpu: float
    add: Spread
    reload: Spread
    reload_statements: int


def _timed(func: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    func()
    return time.perf_counter() - start, time.process_time() - cpu


def _rules_in(snapshot: Snapshot) -> int:
    return sum(len(spec.origins) for spec in snapshot.specs)


class Subject:
    """One backend under measure: its database (a writer and a reader engine: other
    connections, as the CLI's and a worker's), its snapshot and its figures so far."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.writer, self.reader = sa.create_engine(url), sa.create_engine(url)
        self.imported = 0.0
        self.cold: list[tuple[float, float]] = []
        self.adds: list[float] = []
        self.reloads: list[float] = []
        self.statements: list[int] = []
        self._cache = RuleCache()
        self._snapshot: Snapshot | None = None
        self._count = 0
        sa.event.listen(self.reader, "before_cursor_execute", self._counted)

    def _counted(self, *_: object) -> None:
        self._count += 1

    def import_all(self, document: dict[str, Any]) -> None:
        """``import`` (replace=True) into the empty database, timed once."""
        upgrade(self.writer)
        with Session(self.writer) as session:
            store = PolicyStore(session, actor="bench")
            self.imported = _timed(lambda: store.import_document(document, replace=True))[0]

    def cold_load(self, rules: int) -> None:
        gc.collect()  # the last load's garbage is not this one's cost
        snapshot: list[Snapshot] = []
        self.cold.append(_timed(lambda: snapshot.append(load_snapshot(self.reader, RuleCache()))))
        assert _rules_in(snapshot[0]) == rules

    def add_and_reload(self, policy: str, origin: str) -> None:
        """``origin add`` in a session of its own (as one CLI command), then the reload
        a worker makes from the change log."""
        if self._snapshot is None:
            self._snapshot = load_snapshot(self.reader, self._cache)
            freeze_long_lived(self._snapshot)
        before = _rules_in(self._snapshot)
        with Session(self.writer) as session:
            store = PolicyStore(session, actor="bench")
            self.adds.append(_timed(lambda: store.add_origin(policy, origin))[0])
        self._count = 0
        start = time.perf_counter()
        self._snapshot = load_snapshot(self.reader, self._cache, previous=self._snapshot)
        self.reloads.append(time.perf_counter() - start)
        self.statements.append(self._count)
        freeze_long_lived(self._snapshot)  # as a worker does once it installed it
        assert _rules_in(self._snapshot) == before + 1

    def figures(self, rules: int) -> BackendFigures:
        return BackendFigures(
            self.backend,
            self.writer.dialect.driver,
            rules,
            self.imported,
            Spread([wall for wall, _ in self.cold]),
            statistics.median(cpu for _, cpu in self.cold),
            Spread(self.adds),
            Spread(self.reloads),
            int(statistics.median(self.statements)),
        )

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def measure(subjects: list[Subject], rules: int, quick: bool) -> list[BackendFigures]:
    """Every figure of every backend, their databases empty; the backends in turn, round
    by round (a disturbance of the shared machine does not land on one backend only)."""
    policies = bench.large_policies(rules // bench.RULES_PER_PATTERN)
    for subject in subjects:
        subject.import_all({"corsadmin": 1, "policies": policies})
    for _ in range(QUICK_REPEATS if quick else COLD_REPEATS):
        for subject in subjects:
            subject.cold_load(rules)
    changed = policies[len(policies) // 2]["name"]
    for k in range(QUICK_REPEATS if quick else WRITE_REPEATS):
        for subject in subjects:
            subject.add_and_reload(changed, f"https://n{k}.bench.example")
    return [subject.figures(rules) for subject in subjects]


@contextmanager
def mariadb_database(url: str | None, directory: Path) -> Iterator[tuple[str, Any]]:
    """(url of an empty database, server or None), as ``bench.postgres_database``."""
    from tests.support.mariadb import create_database, start_mariadb

    if url:
        yield url, None
        return
    server = start_mariadb(directory)
    try:
        yield create_database(server, "bench"), server
    finally:
        server.stop()


@contextmanager
def backend_database(backend: str, urls: dict[str, str | None], directory: Path) -> Iterator[str]:
    """The url of an empty database of ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'backends.sqlite'}"
        return
    servers = {"postgresql": bench.postgres_database, "mariadb": mariadb_database}
    with servers[backend](urls.get(backend), directory) as (url, _server):
        yield url


def validation_seconds(rules: int) -> tuple[float, float]:
    """``parse_document`` of the document alone (no database): (the first in the process,
    as in a CLI ``import``: the public suffix list loaded, the ``re:`` rules checked; a
    second, as inside each ``import`` measured after it)."""
    document = {
        "corsadmin": 1,
        "policies": bench.large_policies(rules // bench.RULES_PER_PATTERN),
    }
    first = _timed(lambda: parse_document(document))[0]
    return first, _timed(lambda: parse_document(document))[0]


def backends_benchmark(
    backends: tuple[str, ...], rules: int, quick: bool, urls: dict[str, str | None]
) -> list[BackendFigures]:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        subjects: list[Subject] = []
        for backend in backends:
            url = stack.enter_context(backend_database(backend, urls, Path(tmp)))
            subjects.append(Subject(backend, url))
            stack.callback(subjects[-1].dispose)
        figures = measure(subjects, rules, quick)
    for f in figures:
        print(
            f"  {f.backend}: cold {_ms(f.cold.median)}, reload {_ms(f.reload.median)}, "
            f"add {_ms(f.add.median)}, import {_ms(f.imported)}",
            file=sys.stderr,
        )
    return figures


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _pair(spread: Spread) -> str:
    return f"{_ms(spread.median)} / {_ms(spread.p95)}"


def report(figures: list[BackendFigures], validation: tuple[float, float], quick: bool) -> str:
    rules = figures[0].rules if figures else 0
    cold_n = QUICK_REPEATS if quick else COLD_REPEATS
    write_n = QUICK_REPEATS if quick else WRITE_REPEATS
    lines = [
        "## Three backends (issue 14): loads, reloads, writes",
        "",
        *(["**QUICK SMOKE RUN: tiny counts, the figures mean nothing.**", ""] if quick else []),
        f"{rules:,} origin rules in {rules // bench.RULES_PER_PATTERN:,} policies. "
        f"Median / p95 of {cold_n} cold loads and of {write_n} `origin add`s, each "
        "followed by the reload from the change log on other connections; "
        "`import` once; the backends in turn, round by round. "
        f"`python benchmarks/backends.py --rules {rules}`; {bench.machine()}; "
        f"load average {os.getloadavg()[0]:.1f} at the end of the run.",
        "",
        "| backend | driver | cold load | its CPU (client) | reload after one add "
        "| SQL statements per reload | `origin add` | `import` of all |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f.backend} | {f.driver} | {_pair(f.cold)} | {_ms(f.cold_cpu)} | {_pair(f.reload)} "
        f"| {f.reload_statements} | {_pair(f.add)} | {_ms(f.imported)} |"
        for f in figures
    ]
    lines += [
        "",
        f"Validation of the document alone (`parse_document`, no database): {_ms(validation[1])} "
        f"as inside each `import` above; {_ms(validation[0])} the first time in a process "
        "(the public suffix list loaded, the `re:` rules checked: a CLI `import`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rules", type=int, default=DEFAULT_RULES, help="a multiple of 10")
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny counts")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to use")
    parser.add_argument("--mariadb-url", help="an empty MariaDB database to use")
    parser.add_argument("--write", type=Path, help="also append the report to this file")
    args = parser.parse_args(argv)
    rules = QUICK_RULES if args.quick else args.rules
    if rules <= 0 or rules % bench.RULES_PER_PATTERN:
        parser.error(f"--rules must be a positive multiple of {bench.RULES_PER_PATTERN}")
    urls = {"postgresql": args.postgres_url, "mariadb": args.mariadb_url}
    validation = validation_seconds(rules)
    figures = backends_benchmark(tuple(args.backends), rules, args.quick, urls)
    text = report(figures, validation, args.quick)
    print(text, end="")
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
