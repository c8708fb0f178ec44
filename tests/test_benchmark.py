"""The benchmark script keeps working (its quick smoke mode; figures are not checked here:
timing belongs in benchmarks/RESULTS.md, not in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, create_database, drop_database

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_in_smoke_mode(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = create_database(postgres, "bench_smoke")
    report = tmp_path / "report.md"
    try:
        result = subprocess.run(
            [
                sys.executable,
                "benchmarks/bench.py",
                "--quick",
                "--postgres-url",
                url,
                "--write",
                str(report),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        drop_database(postgres, "bench_smoke")
    assert result.returncode == 0, result.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert text == result.stdout.rstrip("\n") + "\n"
    assert "QUICK SMOKE RUN" in text
    for row in (
        "| static Flask-CORS | 1 pattern, 3 origins |",
        "| corsadmin | 1 pattern, 3 origins |",
        "| static Flask-CORS | 10,000 origins in one list |",
        "| static Flask-CORS | 1,000 resources x 10 origins |",
        "| corsadmin | 1,000 patterns, 10,000 rules |",
        "| corsadmin / static Flask-CORS, small |",
        "Snapshot load from PostgreSQL, 10,000 origin rules",
        "Propagation: gunicorn, 2 workers, PostgreSQL",
    ):
        assert row in text, row


@pytest.mark.parametrize("mode", ["none", "elsewhere", "here", "changed"])
@pytest.mark.parametrize("kind", ["get", "preflight"])
def test_the_trial_benchmark_loop_runs_each_mode(mode: str, kind: str) -> None:
    """``bench.py --trial`` counts this loop under callgrind; here it runs bare (the
    live answer is checked before and after the draft is made, in every mode)."""
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/trial_bench.py",
            "--inner",
            "50",
            "--modes",
            mode,
            "--kinds",
            kind,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
