"""Cold snapshot load at scale (issue 9): time and RSS from 1,000 to 1,000,000 origin rules.

    python benchmarks/load_scale.py [--repo PATH] [--max N] [--backend sqlite|postgresql|both]

Each database is written in bulk (SQL inserts of the rows, not ``import``): one policy
of N exact rules, and N rules over 1,000 route patterns. Each load runs in a fresh
Python process (``--repo``: the checkout whose ``corsadmin`` it imports, to measure a
before), which loads the snapshot once (``load_snapshot``, what ``init_app`` does),
then reports the seconds, its RSS holding the snapshot and its peak RSS. Also
measured in a fresh process: a typed ``parse_origin_rule`` of an ordinary origin
(µs per rule, what ``corsadmin import`` validates per rule), and the longest
garbage-collector pause (``gc.callbacks``) under a flood of distinct origins with
the largest snapshot installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
SIZES = (1_000, 10_000, 100_000, 1_000_000)
PATTERNS = 1_000
CHUNK = 50_000

_CHILD = r"""
import gc, json, sys, time
import sqlalchemy as sa
from corsadmin.db.loader import load_snapshot
from corsadmin.runtime.refresh import freeze_long_lived

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0

engine = sa.create_engine(sys.argv[1])
base = rss("VmRSS")
start, cpu = time.perf_counter(), time.process_time()
snapshot = load_snapshot(engine)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
freeze_long_lived(snapshot)
gc.collect()
rules = sum(len(s.origins) for s in snapshot.specs)
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss": rss("VmRSS"), "peak": rss("VmHWM"),
                  "base": base, "rules": rules}))
"""

_PARSE_CHILD = r"""
import json, time
from corsadmin.policy.origins import parse_origin_rule
texts = [f"https://shop{i}.example.com" for i in range(100_000)]
best = float("inf")
for _ in range(3):
    start = time.process_time()
    for text in texts:
        parse_origin_rule(text)
    best = min(best, (time.process_time() - start) / len(texts))
print(json.dumps({"us": best * 1e6}))
"""

_GC_CHILD = r"""
import gc, json, sys, time
import sqlalchemy as sa
from corsadmin.db.loader import load_snapshot
from corsadmin.engine.decide import decide
from corsadmin.runtime.refresh import SnapshotHolder

snapshot = load_snapshot(sa.create_engine(sys.argv[1]))
holder = SnapshotHolder(load=lambda: snapshot, read_revision=lambda: snapshot.revision,
                        interval=3600, background=False)
holder.reload()  # installs it, and freezes it as a worker does
pauses = []
started = []
def callback(phase, info):
    if phase == "start":
        started.append(time.thread_time())
    elif started:
        pauses.append((info["generation"], time.thread_time() - started.pop()))
gc.callbacks.append(callback)
for i in range(int(sys.argv[2])):
    decide(snapshot, "/api/x", "GET", f"https://shop{i}.flood.example")
    decide(snapshot, "/api/x", "GET", f"https://shop{i}.tenant.example")
gc.callbacks.remove(callback)
print(json.dumps({"collections": len(pauses),
                  "longest_ms": max((p[1] for p in pauses), default=0.0) * 1e3}))
"""


_REQUESTS_CHILD = r"""
import os, sys, time
sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))
import bench
from corsadmin import CorsAdmin

url, n, mode, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if url == "none":
    app = bench.no_cors_app()
else:
    app, db = bench.host_app("corsadmin", url)
    app.config["CORSADMIN_REFRESH_INTERVAL"] = 3600.0
    CorsAdmin(app, db=db)  # loads the snapshot (init_app)

def env(i):
    origin = {
        "hit": f"https://shop{i % 3}.tenant.example",
        "allowed": f"https://u{i}.t.example",
        "refused": f"https://u{i}.example",
    }[mode]
    return bench.environ("/api/items/1", origin, False)

bench.per_request(app, [env(i) for i in range(300)], 300)
envs = [env(i + 1000) for i in range(n)]
open(go + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
bench.per_request(app, envs, n)
"""

N1, N2 = 300, 1300


def _instructions(repo: Path, url: str, n: int, mode: str, directory: Path) -> int:
    """Instructions of ``n`` requests after the set-up (callgrind, instrumented only once
    the app has loaded: ``callgrind_control -i on``)."""
    go = directory / f"go-{mode}-{n}"
    process = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            _REQUESTS_CHILD,
            url,
            str(n),
            mode,
            str(go),
        ],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo), "PYTHONHASHSEED": "0"},
        stderr=subprocess.PIPE,
        text=True,
    )
    while not Path(str(go) + ".ready").exists():
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read()[-3000:] if process.stderr else "")
        time.sleep(0.2)
    subprocess.run(
        ["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True
    )
    go.touch()
    _, err = process.communicate()
    go.unlink()
    Path(str(go) + ".ready").unlink()
    found = re.search(r"Collected : (\d+)", err)
    if found is None:
        raise RuntimeError(err[-3000:])
    return int(found.group(1))


def per_request_instructions(repo: Path, url: str, mode: str, directory: Path) -> int:
    """Instructions per request: (I(N2) - I(N1)) / (N2 - N1)."""
    high = _instructions(repo, url, N2, mode, directory)
    low = _instructions(repo, url, N1, mode, directory)
    return (high - low) // (N2 - N1)


def miss_hit_instructions(
    repo: Path, url: str, directory: Path, floor: int | None = None
) -> dict[str, int]:
    """Instructions per request above a bare Flask request (the CORS layer) for a memo hit,
    a miss allowed by ``*.t.example`` and a miss refused, with the database at ``url``
    (its policy must cover ``/api/**``, allow ``https://shop{0,1,2}.tenant.example`` and
    ``https://*.t.example``)."""
    if floor is None:
        floor = per_request_instructions(repo, "none", "hit", directory)
    return {
        mode: per_request_instructions(repo, url, mode, directory) - floor
        for mode in ("hit", "allowed", "refused")
    }


def _run(repo: Path, code: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def build_database(url: str, rules: int, patterns: int, extra: tuple[str, ...] = ()) -> None:
    """``rules`` exact origin rules over ``patterns`` policies (``/api/**`` when one,
    ``/api/svc<i>/**`` otherwise), every row written in bulk."""
    sys.path.insert(0, str(HERE.parent))
    from corsadmin.db.models import OriginRuleRow, Policy, State, utcnow
    from corsadmin.db.schema import upgrade

    engine = sa.create_engine(url)
    upgrade(engine)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Policy),
            [
                {
                    "name": "tenants" if patterns == 1 else f"svc{i}",
                    "path": "/api/**" if patterns == 1 else f"/api/svc{i}/**",
                    "methods": ["GET", "POST"],
                    "allow_headers": ["content-type"],
                    "expose_headers": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(patterns)
            ],
        )
        ids = list(conn.execute(sa.select(Policy.id).order_by(Policy.id)).scalars())
        for start in range(0, rules, CHUNK):
            conn.execute(
                sa.insert(OriginRuleRow),
                [
                    {
                        "policy_id": ids[i % patterns],
                        "origin": f"https://shop{i}.tenant.example",
                        "note": "",
                        "created_at": now,
                        "created_by": "bench",
                    }
                    for i in range(start, min(rules, start + CHUNK))
                ],
            )
        for origin in extra:  # to the first policy
            conn.execute(
                sa.insert(OriginRuleRow),
                [{"policy_id": ids[0], "origin": origin, "note": "", "created_at": now}],
            )
        conn.execute(sa.update(State).values(revision=State.revision + 1))
    engine.dispose()


@contextlib.contextmanager
def database(backend: str, directory: Path, name: str) -> Iterator[str]:
    """The url of a new empty database of this backend."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / (name + '.sqlite')}"
        return
    sys.path.insert(0, str(HERE.parent))
    from tests.support.postgres import create_database, start_postgres

    server = start_postgres(directory / ("pg-" + name))
    try:
        yield create_database(server, "bench")
    finally:
        server.stop()


@dataclass
class LoadRow:
    backend: str
    rules: int
    patterns: int
    seconds: float
    cpu: float
    rss_mib: float
    peak_mib: float
    base_mib: float


@dataclass
class LoadScaleFigures:
    loads: list[LoadRow]
    parse_us: float
    gc_rules: int
    gc_collections: int
    gc_longest_ms: float


def load_scale(
    repo: Path, sizes: tuple[int, ...] = SIZES, backends: tuple[str, ...] = ("sqlite",)
) -> LoadScaleFigures:
    """The figures (``repo``: the checkout measured); the largest SQLite database of one
    policy also serves the GC-pause run."""
    loads: list[LoadRow] = []
    gc_figures: dict[str, Any] = {"collections": 0, "longest_ms": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for backend in backends:
            for patterns in (1, PATTERNS):
                for size in sizes:
                    with database(backend, directory, f"{backend}{patterns}x{size}") as url:
                        build_database(url, size, patterns)
                        got = _run(repo, _CHILD, url)
                        loads.append(
                            LoadRow(
                                backend,
                                got["rules"],
                                patterns,
                                got["seconds"],
                                got["cpu"],
                                got["rss"],
                                got["peak"],
                                got["base"],
                            )
                        )
                        if backend == "sqlite" and patterns == 1 and size == max(sizes):
                            gc_figures = _run(repo, _GC_CHILD, url, "100000")
                        if url.startswith("sqlite"):
                            Path(url.removeprefix("sqlite:///")).unlink()
    parse = _run(repo, _PARSE_CHILD)
    return LoadScaleFigures(
        loads, parse["us"], max(sizes), gc_figures["collections"], gc_figures["longest_ms"]
    )


def instruction_table(repo: Path, sizes: tuple[int, ...] = (3, 1_000_000)) -> str:
    """Instructions per request in the CORS layer (above a bare Flask request), memo hit
    and misses, for one policy of each size (SQLite)."""
    lines = [
        "| rules | memo hit | miss, allowed | miss, refused | miss / hit |",
        "|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        floor = per_request_instructions(repo, "none", "hit", directory)
        for size in sizes:
            url = f"sqlite:///{directory / f'i{size}.sqlite'}"
            build_database(url, size, 1, extra=("https://*.t.example",))
            cost = miss_hit_instructions(repo, url, directory, floor)
            worst = max(cost["allowed"], cost["refused"]) / cost["hit"]
            lines.append(
                f"| {size + 1:,} | {cost['hit']:,} | {cost['allowed']:,} |"
                f" {cost['refused']:,} | {worst:.2f}x |"
            )
    return "\n".join(lines)


def table(figures: LoadScaleFigures) -> str:
    lines = [
        "| backend | rules | policies | cold load (s) | its CPU (s) | RSS holding it (MiB) |"
        " peak RSS (MiB) | RSS before load (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in figures.loads:
        lines.append(
            f"| {row.backend} | {row.rules:,} | {row.patterns:,} | {row.seconds:.2f} |"
            f" {row.cpu:.2f} |"
            f" {row.rss_mib:.0f} | {row.peak_mib:.0f} | {row.base_mib:.0f} |"
        )
    lines.append("")
    lines.append(f"Typed `parse_origin_rule` of an ordinary origin: {figures.parse_us:.1f} µs/rule")
    lines.append(
        f"Longest GC pause (CPU) under 200,000 new-origin decisions at "
        f"{figures.gc_rules:,} rules: {figures.gc_longest_ms:.1f} ms "
        f"({figures.gc_collections} collections)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE.parent)
    parser.add_argument("--max", type=int, default=max(SIZES))
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--instructions", action="store_true", help="only the hit/miss instruction counts"
    )
    args = parser.parse_args()
    if args.instructions:
        print(instruction_table(args.repo.resolve()))
        return
    sizes = tuple(s for s in SIZES if s <= args.max)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(table(load_scale(args.repo.resolve(), sizes, backends)))


if __name__ == "__main__":
    main()
