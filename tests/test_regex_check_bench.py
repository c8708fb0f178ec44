"""benchmarks/regex_check.py keeps working (one run per pattern; its figures are in
benchmarks/RESULTS.md, its target is the benchmark's, not this test's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.regex_cases import PATHOLOGICAL

REPO = Path(__file__).resolve().parent.parent


def test_the_benchmark_times_every_pattern_and_each_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/regex_check.py", "--repeat", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: slower than the target here
    rows = [line for line in done.stdout.splitlines() if line.startswith("| `re:")]
    assert len(rows) == len(PATHOLOGICAL) + 1
    assert all("| too complex |" in row for row in rows), rows
