"""The admin UI and the CLI with one large policy: page, search, review, export, show.

    python benchmarks/admin_scale.py                  1,000 and 100,000 rules, SQLite
    python benchmarks/admin_scale.py --sizes 1000 10000 --postgres-url URL

For each size it makes a fresh database (corsadmin's migrations), one policy created
through the store, and N more origin rules added with one multi-row INSERT (the texts
are what the store stores; a bulk insert keeps the setup fast). Then it times, in
process, the admin policy page (first page, a search, a page near the end), the review
screen and ``policy show``; and runs ``corsadmin export`` in a child process, reporting
its time, then runs it again under tracemalloc for the peak of memory it allocates (the
process's RSS is dominated by the snapshot the extension loads at start). Only
HTTP requests and CLI commands are used, so the same script measures an older tree
(run it from that tree's root).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path.cwd()
#: Refused origins recorded on "big" (the refused report lists them).
REFUSED_ROWS = 100
#: Pages not timed (``--skip``): an older tree's refused report takes minutes at 100,000.
SKIP: set[str] = set()
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from corsadmin.db.models import OriginRuleRow, OriginUsage, Policy, utcnow  # noqa: E402
from tests.support.admin import PREFIX, logged_in_client  # noqa: E402
from tests.support.host import close_host, make_host  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402

CHILD = """
import sys, time, tracemalloc
sys.path.insert(0, {repo!r})
from tests.support.host import make_host, close_host
host = make_host({url!r})
with host.app.app_context():
    start = time.perf_counter()
    host.app.cli.main(args=["corsadmin", "export"], standalone_mode=False)
    took = time.perf_counter() - start
    tracemalloc.start()
    host.app.cli.main(args=["corsadmin", "export"], standalone_mode=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
sys.stdout.flush()
print(f"{{took}} {{peak}}", file=sys.stderr)
close_host(host)
"""


def fill(url: str, rules: int, policies: int = 1) -> None:
    """Policy "big" and ``policies - 1`` copies of it ("p0001"...), ``rules`` origin rules
    in all (the same texts in each), and a few refused origins on "big"."""
    host = make_host(url)
    try:
        with host.app.app_context():
            host.cors.store("bench", host.app).create_policy(
                {"name": "big", "path": "/big/**", "origins": ["https://a.example"]}
            )
            engine = host.db.engine
        old = utcnow() - timedelta(days=120)
        with engine.begin() as connection:
            big = dict(
                connection.execute(sa.select(Policy).where(Policy.name == "big")).mappings().one()
            )
            copies = [
                {**big, "id": None, "name": f"p{j:04d}", "path": f"/p{j:04d}/**"}
                for j in range(1, policies)
            ]
            for copy in copies:
                del copy["id"]
            if copies:
                connection.execute(sa.insert(Policy), copies)
            ids = list(connection.scalars(sa.select(Policy.id).order_by(Policy.name)))
            each = rules // policies
            for policy_id in ids:
                for start in range(0, each, 10_000):
                    connection.execute(
                        sa.insert(OriginRuleRow),
                        [
                            {
                                "policy_id": policy_id,
                                "origin": f"https://t{i:07d}.example",
                                "note": f"tenant {i}" if i % 2 else "",
                                "created_at": old,
                                "created_by": "bulk",
                            }
                            for i in range(start, min(each, start + 10_000))
                        ],
                    )
            now = utcnow()
            connection.execute(
                sa.insert(OriginUsage),
                [
                    {
                        "policy_name": "big",
                        "origin": f"https://r{i}.example",
                        "allowed": False,
                        "count": i + 1,
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for i in range(REFUSED_ROWS)
                ],
            )
    finally:
        close_host(host)


def timed(func: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    url: str, rules: int, repeats: int, only_export: bool = False, policies: int = 1
) -> dict[str, float]:
    fill(url, rules, policies)
    figures: dict[str, float] = {}
    if not only_export:
        figures.update(requests(url, rules // policies, repeats))
    export(url, figures)
    return figures


def pages(rules: int) -> dict[str, tuple[str, dict[str, str]]]:
    """Every admin page that shows policies or rules, with its query string."""
    last = f"https://t{max(rules - 50, 0):07d}.example"
    return {
        "policies": ("/", {}),
        "policies search": ("/", {"q": "t00001"}),
        "page": ("/policies/big", {}),
        "search": ("/policies/big", {"q": "T00001"}),
        "late page": ("/policies/big", {"after": last}),
        "edit form": ("/policies/big/edit", {}),
        "disable confirm": ("/policies/big/disable", {}),
        "delete confirm": ("/policies/big/delete", {}),
        "refused": ("/refused", {}),
        "allow refused": ("/refused/allow", {"policy": "big", "origin": "https://r1.example"}),
        "review": ("/review", {}),
    }


def requests(url: str, rules: int, repeats: int) -> dict[str, float]:
    """The admin pages, ``policy list`` and ``policy show``, timed in process."""
    host = make_host(url)
    figures: dict[str, float] = {}
    try:
        client = logged_in_client(host.app, "benchmark")
        for label, (path, args) in pages(rules).items():
            if label in SKIP:
                continue

            def get(path: str = path, args: dict[str, str] = args) -> None:
                response = client.get(PREFIX + path, query_string=args)
                assert response.status_code == 200, (path, response.status_code)

            figures[label] = timed(get, repeats if label != "review" else max(1, repeats // 2))
        runner = host.app.test_cli_runner()
        for command in (["policy", "list"], ["policy", "show", "big"]):
            figures[" ".join(command)] = timed(
                lambda command=command: runner.invoke(args=["corsadmin", *command]), repeats
            )
    finally:
        close_host(host)
    return figures


def export(url: str, figures: dict[str, float]) -> None:
    """``corsadmin export`` in a child process: its time and its allocation peak."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), url=url)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
        cwd=REPO,
    )
    took, peak = child.stderr.split()[-2:]
    figures["export"] = float(took)
    figures["export peak MiB (tracemalloc)"] = int(peak) / 2**20


def figures(
    sizes: list[tuple[int, int]],
    repeats: int = 3,
    postgres_url: str | None = None,
    only_export: bool = False,
) -> dict[str, dict[str, float]]:
    """Seconds per page and command, per (rules, policies), on a fresh database each."""
    results: dict[str, dict[str, float]] = {}
    for rules, policies in sizes:
        key = f"{rules:,} rules / {policies:,} polic{'y' if policies == 1 else 'ies'}"
        if postgres_url:
            engine = sa.create_engine(postgres_url)
            with engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            results[key] = measure(postgres_url, rules, repeats, only_export, policies)
        else:
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite:///{directory}/bench.sqlite"
                results[key] = measure(url, rules, repeats, only_export, policies)
        print(key, json.dumps({k: round(v, 4) for k, v in results[key].items()}), flush=True)
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    """The figures as a markdown table: one row per page or command, one column per size."""
    sizes = list(results)
    labels = list(dict.fromkeys(label for figures in results.values() for label in figures))
    lines = ["| page or command | " + " | ".join(sizes) + " |"]
    lines.append("|---|" + "---:|" * len(sizes))
    for label in labels:
        cells = [f"{results[size].get(label, float('nan')):.3f}" for size in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--spread", nargs="+", default=[], help="RULES:POLICIES, e.g. 1000000:1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="+", default=[], help="pages not to time")
    parser.add_argument("--only-export", action="store_true", help="measure the export only")
    parser.add_argument("--postgres-url", help="a PostgreSQL database URL (emptied first)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server and use it"
    )
    args = parser.parse_args()
    SKIP.update(args.skip)
    if args.postgres:
        server = start_postgres(Path(tempfile.mkdtemp(prefix="admin-scale-")))
        try:
            args.postgres_url = server.url
            return run(args)
        finally:
            server.stop()
    return run(args)


def run(args: argparse.Namespace) -> int:
    sizes = [(n, 1) for n in args.sizes]
    sizes += [(int(a), int(b)) for a, b in (s.split(":") for s in args.spread)]
    print(table(figures(sizes, args.repeats, args.postgres_url, args.only_export)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
