"""Instructions per request on the small policy, counted by callgrind (repeatable).

    python benchmarks/instructions.py [--repo DIR] [--metrics] get|preflight

Wall-clock figures move with whatever else the machine runs; instruction counts
do not (for the same interpreter, inputs and hash seed). This runs the request
loop of ``benchmarks/bench.py`` (its corsadmin app, 1 pattern, 3 origins) under
``valgrind --tool=callgrind`` twice, with 1,000 and 5,000 requests after the same
set-up, and prints the difference per request: the request's own cost, set-up
excluded. ``--repo`` measures another checkout (a commit before a change) with
this interpreter, for a before/after on one machine. ``--metrics`` measures the app
with ``CORSADMIN_METRICS`` on (prometheus_client counting every request). Needs
Debian's valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHORT, LONG = 1000, 5000


def request_loop(repo: Path, count: int, preflight: bool, metrics: bool = False) -> None:
    """Inside valgrind: set up the bench app from ``repo``, warm up, then ``count`` requests."""
    sys.path[:0] = [str(repo / "benchmarks"), str(repo)]
    import bench  # the checkout's own bench.py

    with tempfile.TemporaryDirectory() as directory:
        config = {"CORSADMIN_METRICS": True} if metrics else {}
        app = bench.corsadmin_app(bench.small_policies(), Path(directory), **config)
        state = app.extensions["corsadmin"]
        state.holder.interval = 3600.0  # no refresh or usage flush inside the count
        state.usage_flush_interval = 3600.0
        envs = [bench.environ("/api/items/1", o, preflight) for o in bench.SMALL_ORIGINS]
        for env in envs:
            bench.check_allowed(app, env)
        bench.per_request(app, envs, 300)
        bench.per_request(app, envs, count)
        state.holder.stop()


def callgrind_instructions(script: Path, args: list[str]) -> int:
    """The instructions callgrind counts for ``python script args`` (PYTHONHASHSEED=0)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(script),
        *args,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def collected(repo: Path, count: int, kind: str, metrics: bool = False) -> int:
    extra = ["--metrics"] if metrics else []
    return callgrind_instructions(
        Path(__file__), ["--inner", str(count), "--repo", str(repo), *extra, kind]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["get", "preflight"])
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the checkout to measure")
    parser.add_argument("--metrics", action="store_true", help="with CORSADMIN_METRICS on")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repo = args.repo.resolve()
    if args.inner is not None:
        request_loop(repo, args.inner, args.kind == "preflight", args.metrics)
        return 0
    long, short = (collected(repo, n, args.kind, args.metrics) for n in (LONG, SHORT))
    per_request = (long - short) // (LONG - SHORT)
    label = " (metrics on)" if args.metrics else ""
    print(f"{repo.name} {args.kind}{label}: {per_request:,} instructions per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
