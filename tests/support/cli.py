"""Running the operator's real entry point, ``python manage.py corsadmin ...``, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py corsadmin ARGS`` with ``env``; it must succeed (exit 0)."""
    cmd = [sys.executable, "manage.py", "corsadmin", *args]
    result = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd[1:])} exited with {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result
