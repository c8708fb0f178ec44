"""Instructions per request, memo hit against memo miss (issue 9), under callgrind.

    python benchmarks/miss_instructions.py         runs valgrind itself, prints the table

Timing a few microseconds on a shared machine is noisy; instruction counts are
not. Each figure is (I(N2) - I(N1)) / (N2 - N1) for the same setup, so set-up
and warm-up cancel out. The app is bench.py's small corsadmin app with one more
rule, ``https://*.t.example``, so that a miss can be allowed (a new subdomain)
or refused (a new host); the floor is the same host app without CORS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

N1, N2 = 500, 2500
MODES = ("hit", "allowed", "refused")


def run(n: int, which: str, mode: str) -> None:
    import bench

    with tempfile.TemporaryDirectory() as directory:
        if which == "cors":
            policies = bench.small_policies()
            policies[0]["origins"] = [*bench.SMALL_ORIGINS, "https://*.t.example"]
            app = bench.corsadmin_app(policies, Path(directory))
            state = app.extensions["corsadmin"]
            state.holder.interval = 3600.0
            state.usage_flush_interval = 3600.0
        else:
            app = bench.no_cors_app()

        def env(i: int) -> dict[str, object]:
            origin = {
                "hit": bench.SMALL_ORIGINS[i % 3],
                "allowed": f"https://u{i}.t.example",
                "refused": f"https://u{i}.example",
            }[mode]
            return bench.environ("/api/items/1", origin, False)

        bench.per_request(app, [env(i) for i in range(300)], 300)
        bench.per_request(app, [env(i + 1000) for i in range(n)], n)


def instructions(n: int, which: str, mode: str) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            str(n),
            which,
            mode,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr[-2000:]
    return int(found.group(1))


def per_request(which: str, mode: str) -> int:
    return (instructions(N2, which, mode) - instructions(N1, which, mode)) // (N2 - N1)


def main() -> None:
    floor = per_request("none", "hit")
    cost = {mode: per_request("cors", mode) - floor for mode in MODES}
    print(f"no CORS: {floor:,} instructions/request")
    for mode in MODES:
        ratio = cost[mode] / cost["hit"]
        print(f"corsadmin, {mode}: {cost[mode]:,} above the floor ({ratio:.1f}x a hit)")


if __name__ == "__main__":
    if len(sys.argv) == 4:
        run(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    else:
        main()
