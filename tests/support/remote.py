"""The CLI's remote mode in tests: the real app served over HTTP on loopback, the
``corsadmin`` console script's module run in a subprocess whose environment holds no
database URL, and the same command run locally (``flask corsadmin``) to compare."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from flask.testing import FlaskCliRunner

from tests.support.cli import CLI_TIMEOUT, REPO_ROOT, invoke


@dataclass(frozen=True)
class Outcome:
    """What a command did: its exit status, standard output and standard error."""

    code: int
    out: str
    err: str


def clean_env(**extra: str) -> dict[str, str]:
    """An environment with no database URL, no app and no proxy: PATH, a UTF-8 locale."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **extra}


@dataclass
class Remote:
    """``python -m corsadmin.cli.remote ARGS`` against ``url`` with ``token``."""

    url: str
    token: str

    def run(self, *args: str, token: str | None = None) -> Outcome:
        return _script(args, clean_env(CORSADMIN_URL=self.url, CORSADMIN_TOKEN=token or self.token))

    def run_without_url(self, *args: str) -> Outcome:
        return _script(args, clean_env())


def _script(args: tuple[str, ...], env: dict[str, str]) -> Outcome:
    result = subprocess.run(
        [sys.executable, "-m", "corsadmin.cli.remote", *args],
        cwd=REPO_ROOT,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def local(runner: FlaskCliRunner, *args: str) -> Outcome:
    """``flask corsadmin ARGS`` on the app's database, in this process."""
    result = invoke(runner, *args)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def write_json(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)
