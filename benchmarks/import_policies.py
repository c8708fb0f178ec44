"""``import`` of a document of many small policies, on SQLite, PostgreSQL and MariaDB:
into an empty database, then again unchanged (what a GitOps job does on every run),
then as a draft that adds a rule to every policy.

    python benchmarks/import_policies.py                    10,000 policies, every backend
    python benchmarks/import_policies.py --policies 1000    another count
    python benchmarks/import_policies.py --quick            smoke mode: 50 policies

Each policy has two origin rules, one with a note. Measured, in this process, through
``PolicyStore.import_document(replace=True)``: the seconds and the SQL statements sent
(a statement is a round trip to a server: over a network each costs its latency on
top of what is measured here on loopback). The servers are started as
``benchmarks/backends.py`` starts them (``--postgres-url`` / ``--mariadb-url``: an
empty database of one's own instead).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's corsadmin and tests.support
sys.path.insert(0, str(REPO / "benchmarks"))

import sqlalchemy as sa  # noqa: E402
from backends import BACKENDS, backend_database  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from corsadmin.db.drafts import DraftStore  # noqa: E402
from corsadmin.db.schema import upgrade  # noqa: E402
from corsadmin.db.store import PolicyStore  # noqa: E402

DEFAULT_POLICIES: Final = 10_000
QUICK_POLICIES: Final = 50


def document(count: int) -> dict[str, Any]:
    """``count`` policies, two rules each (one with a note)."""
    return {
        "corsadmin": 1,
        "policies": [
            {
                "name": f"tenant-{i:06d}",
                "path": f"/t/{i}/**",
                "origins": [
                    f"https://app.t{i}.example",
                    {"origin": f"https://admin.t{i}.example", "note": "ticket"},
                ],
            }
            for i in range(count)
        ],
    }


def _one_more(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with one more origin rule (what a draft proposes for each)."""
    return {**policy, "origins": [*policy["origins"], f"https://new.{policy['name']}.example"]}


def counted(engine: sa.Engine, work: Callable[[], object]) -> tuple[float, int]:
    """Seconds and SQL statements of ``work()``."""
    sent = [0]

    def count(*_: object) -> None:
        sent[0] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    started = time.perf_counter()
    try:
        work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return time.perf_counter() - started, sent[0]


def measure(url: str, doc: dict[str, Any]) -> list[tuple[str, float, int]]:
    engine = sa.create_engine(url)
    upgrade(engine)
    figures = []
    changed = {"corsadmin": 1, "policies": [_one_more(p) for p in doc["policies"]]}
    try:
        for label in ("into an empty database", "again, unchanged", "as a draft, each changed"):
            with Session(engine) as session:
                store = PolicyStore(session, actor="bench")
                if label.startswith("as a draft"):
                    work = partial(DraftStore(store).import_document, changed, replace=True)
                else:
                    work = partial(store.import_document, doc, replace=True)
                seconds, statements = counted(engine, work)
            figures.append((label, seconds, statements))
    finally:
        engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--policies", type=int, default=DEFAULT_POLICIES)
    parser.add_argument("--quick", action="store_true", help="smoke mode: 50 policies")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to use")
    parser.add_argument("--mariadb-url", help="an empty MariaDB database to use")
    args = parser.parse_args(argv)
    count = QUICK_POLICIES if args.quick else args.policies
    doc = document(count)
    urls = {"postgresql": args.postgres_url, "mariadb": args.mariadb_url}
    lines = [
        f"`import` of {count:,} policies (two rules each), replace mode:",
        "",
        "| backend | import | seconds | SQL statements |",
        "|---|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        for backend in args.backends:
            url = stack.enter_context(backend_database(backend, urls, Path(tmp)))
            for label, seconds, statements in measure(url, doc):
                lines.append(f"| {backend} | {label} | {seconds:.2f} | {statements:,} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
