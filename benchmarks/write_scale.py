"""One rule written into one large policy, and ``import`` of a large policy (issue 9).

    python benchmarks/write_scale.py                       1,000 to 100,000 rules, SQLite
    python benchmarks/write_scale.py --sizes 1000000 --backends sqlite postgresql
    python benchmarks/write_scale.py --sizes 0 --imports 100000 1000000   imports only

For each backend and size it makes a fresh database (corsadmin's migrations), one
policy ``tenants`` created through the store and N exact origin rules added with
bulk INSERTs (the texts the store stores; the setup is not what is measured). Then,
through :class:`corsadmin.PolicyStore` (no extension: the write alone, not the
reload after it), it times ``origin add`` (a new rule with a note), ``origin change``
(that rule's note), ``origin remove`` (one of the N), ``set_enabled`` (off), each the
median of ``--repeats`` runs, and the bytes the origin add wrote to the audit table
(the JSON of ``before`` and ``after`` as stored). ``import`` of a document of N rules
in one policy (PostgreSQL) is timed whole and split: validation (``parse_document``)
and the rest (the database). PostgreSQL is a throwaway server started like
``bench.py``'s ``postgres_database``, or ``--postgres-url``. Only the public API is
used, so the same script measures an older tree (run it from that tree's root).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path.cwd()
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from corsadmin import PolicyStore  # noqa: E402
from corsadmin.db.models import AuditEvent, OriginRuleRow, Policy, State, utcnow  # noqa: E402
from corsadmin.db.schema import upgrade  # noqa: E402
from corsadmin.policy.document import parse_document  # noqa: E402

DEFAULT_SIZES = (1_000, 10_000, 100_000)
INSERT_BATCH = 50_000
POLICY = "tenants"


@dataclass
class WriteFigures:
    backend: str
    rules: int
    add: float
    change: float
    remove: float
    set_enabled: float
    audit_bytes: int


@dataclass
class ImportFigures:
    backend: str
    rules: int
    total: float
    validation: float

    @property
    def database(self) -> float:
        return self.total - self.validation


def _origin(i: int) -> str:
    return f"https://shop{i}.tenant.example"


def bulk_policy(engine: sa.Engine, size: int) -> None:
    """Policy ``tenants`` with ``size`` exact rules, written with bulk INSERTs."""
    upgrade(engine)
    with Session(engine) as session:
        PolicyStore(session, actor="bench").create_policy(
            {"name": POLICY, "path": "/api/**", "origins": []}
        )
    now = utcnow()
    with engine.begin() as conn:
        policy_id = conn.execute(sa.select(Policy.id)).scalar_one()
        for start in range(0, size, INSERT_BATCH):
            conn.execute(
                sa.insert(OriginRuleRow),
                [
                    {
                        "policy_id": policy_id,
                        "origin": _origin(i),
                        "note": "",
                        "created_at": now,
                        "created_by": "bench",
                    }
                    for i in range(start, min(size, start + INSERT_BATCH))
                ],
            )
        conn.execute(sa.update(State).values(revision=State.revision + 1))


def _timed(engine: sa.Engine, action: Callable[[PolicyStore, int], object], repeats: int) -> float:
    times = []
    for run in range(repeats):
        with Session(engine) as session:
            store = PolicyStore(session, actor="bench")
            start = time.perf_counter()
            action(store, run)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _audit_bytes(engine: sa.Engine) -> int:
    with Session(engine) as session:
        event = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None
        assert event.action == "origin.add"
        return len(json.dumps(event.before)) + len(json.dumps(event.after))


def measure_writes(engine: sa.Engine, backend: str, size: int, repeats: int) -> WriteFigures:
    """The figures of one policy of ``size`` rules in ``engine`` (filled by bulk_policy)."""
    bulk_policy(engine, size)
    add = _timed(
        engine, lambda s, r: s.add_origin(POLICY, f"https://new{r}.example", note="t"), repeats
    )
    audit = _audit_bytes(engine)
    change = _timed(
        engine,
        lambda s, r: s.change_origin(POLICY, f"https://new{r}.example", note="changed"),
        repeats,
    )
    remove = _timed(engine, lambda s, r: s.remove_origin(POLICY, _origin(r)), repeats)
    enabled = _timed(engine, lambda s, r: s.set_enabled(POLICY, r % 2 == 1), repeats)
    return WriteFigures(backend, size, add, change, remove, enabled, audit)


def measure_import(engine: sa.Engine, backend: str, size: int) -> ImportFigures:
    """``import`` of one policy of ``size`` rules into an empty database."""
    upgrade(engine)
    origins: list[Any] = [_origin(i) for i in range(size)]
    document = {
        "corsadmin": 1,
        "policies": [{"name": POLICY, "path": "/api/**", "origins": origins}],
    }
    start = time.perf_counter()
    parse_document(document)
    validation = time.perf_counter() - start
    with Session(engine) as session:
        start = time.perf_counter()
        PolicyStore(session, actor="bench").import_document(document)
        total = time.perf_counter() - start
    return ImportFigures(backend, size, total, validation)


@contextmanager
def postgres_server(directory: Path, postgres_url: str | None) -> Iterator[Any]:
    """A throwaway PostgreSQL server (as bench.py's ``postgres_database``), or None
    when ``postgres_url`` names a database to use."""
    if postgres_url:
        yield None
        return
    from tests.support.postgres import start_postgres

    server = start_postgres(directory / "pg")
    try:
        yield server
    finally:
        server.stop()


_names = iter(range(1, 1_000_000))


@contextmanager
def database(
    backend: str, directory: Path, server: Any, postgres_url: str | None
) -> Iterator[sa.Engine]:
    """A fresh, empty database of ``backend``."""
    number = next(_names)
    if backend == "sqlite":
        path = directory / f"write-{number}.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()
            path.unlink(missing_ok=True)
        return
    if server is None:  # a given database: emptied by dropping corsadmin's tables
        engine = sa.create_engine(str(postgres_url))
        _drop_tables(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    from tests.support.postgres import create_database, drop_database

    name = f"write{number}"
    engine = sa.create_engine(create_database(server, name))
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(server, name)


def _drop_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in sa.inspect(conn).get_table_names():
            if table.startswith("corsadmin_"):
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))


def write_scale_figures(
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    backends: tuple[str, ...] = ("sqlite",),
    imports: tuple[int, ...] = (),
    repeats: int = 3,
    postgres_url: str | None = None,
) -> tuple[list[WriteFigures], list[ImportFigures]]:
    """Every figure: writes per backend and size, imports (PostgreSQL) per size."""
    writes: list[WriteFigures] = []
    loads: list[ImportFigures] = []
    needs_postgres = "postgresql" in backends or bool(imports)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with postgres_server(directory, postgres_url if needs_postgres else "-") as server:
            for backend in backends:
                for size in sizes:
                    with database(backend, directory, server, postgres_url) as engine:
                        writes.append(measure_writes(engine, backend, size, repeats))
                    print(f"  {writes[-1]}", file=sys.stderr)
            for size in imports:
                with database("postgresql", directory, server, postgres_url) as engine:
                    loads.append(measure_import(engine, "postgresql", size))
                print(f"  {loads[-1]}", file=sys.stderr)
    return writes, loads


def table(writes: list[WriteFigures], loads: list[ImportFigures]) -> str:
    lines = []
    if writes:
        lines += [
            "| backend | rules | origin add | origin change | origin remove | set_enabled "
            "| audit bytes per add |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {f.backend} | {f.rules:,} | {_ms(f.add)} | {_ms(f.change)} | {_ms(f.remove)} "
            f"| {_ms(f.set_enabled)} | {f.audit_bytes:,} |"
            for f in writes
        ]
    if loads:
        lines += [
            "",
            "| import | rules | total | validation | database |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {f.backend} | {f.rules:,} | {f.total:.1f} s | {f.validation:.1f} s "
            f"| {f.database:.1f} s |"
            for f in loads
        ]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--backends", nargs="+", default=["sqlite"])
    parser.add_argument("--imports", type=int, nargs="*", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    sizes = tuple(s for s in args.sizes if s > 0)
    writes, loads = write_scale_figures(
        sizes, tuple(args.backends), tuple(args.imports), args.repeats, args.postgres_url
    )
    print(table(writes, loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
