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
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from corsadmin.db.models import OriginRuleRow, Policy, utcnow  # noqa: E402
from tests.support.admin import PREFIX, logged_in_client  # noqa: E402
from tests.support.host import close_host, make_host  # noqa: E402

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


def fill(url: str, rules: int) -> None:
    host = make_host(url)
    try:
        with host.app.app_context():
            host.cors.store("bench", host.app).create_policy(
                {"name": "big", "path": "/big/**", "origins": ["https://a.example"]}
            )
            engine = host.db.engine
        old = utcnow() - timedelta(days=120)
        with engine.begin() as connection:
            policy_id = connection.scalar(sa.select(Policy.id).where(Policy.name == "big"))
            for start in range(0, rules, 10_000):
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
                        for i in range(start, min(rules, start + 10_000))
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


def measure(url: str, rules: int, repeats: int, only_export: bool = False) -> dict[str, float]:
    fill(url, rules)
    figures: dict[str, float] = {}
    if not only_export:
        figures.update(requests(url, rules, repeats))
    export(url, figures)
    return figures


def requests(url: str, rules: int, repeats: int) -> dict[str, float]:
    """The admin pages and ``policy show``, timed in process."""
    host = make_host(url)
    figures: dict[str, float] = {}
    try:
        client = logged_in_client(host.app, "benchmark")

        def get(path: str, **args: str) -> None:
            response = client.get(PREFIX + path, query_string=args)
            assert response.status_code == 200, response.status_code

        last = f"https://t{rules - 50:07d}.example"
        figures["page"] = timed(lambda: get("/policies/big"), repeats)
        figures["search"] = timed(lambda: get("/policies/big", q="T00001"), repeats)
        figures["late page"] = timed(lambda: get("/policies/big", after=last), repeats)
        figures["review"] = timed(lambda: get("/review"), max(1, repeats // 2))
        runner = host.app.test_cli_runner()
        figures["policy show"] = timed(
            lambda: runner.invoke(args=["corsadmin", "policy", "show", "big"]), repeats
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only-export", action="store_true", help="measure the export only")
    parser.add_argument("--postgres-url", help="a PostgreSQL database URL (emptied first)")
    args = parser.parse_args()
    results = {}
    for rules in args.sizes:
        if args.postgres_url:
            engine = sa.create_engine(args.postgres_url)
            with engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            url = args.postgres_url
            results[rules] = measure(url, rules, args.repeats, args.only_export)
        else:
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite:///{directory}/bench.sqlite"
                results[rules] = measure(url, rules, args.repeats, args.only_export)
        print(rules, json.dumps({k: round(v, 4) for k, v in results[rules].items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
