"""The HTTP API end to end: a pipeline's script adds an origin, a real page uses it.

``gunicorn -w 3 manage:create_app()`` serves the standalone app (SQLite and PostgreSQL);
a page on a loopback origin calls its demo API from headless Chromium. The pipeline is
``examples/preview-origin.sh`` (bash and curl, as the README shows it) with a write
token made by the real CLI (``corsadmin token create pipeline --scope write``):

1. before: the page's fetch is blocked (its origin is not allowed);
2. the script adds the origin (with a note and an expiry): within a second of its
   exit, the page's fetch succeeds, on every worker it reaches;
3. the script removes it: within a second the page is blocked again;
4. the audit log names ``token:pipeline`` for both changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.backends import BACKENDS, fresh_database
from tests.support.browser import document, fetch, page_app
from tests.support.cli import REPO_ROOT, run_cli
from tests.support.servers import (
    LOOPBACK,
    free_port,
    gunicorn_command,
    serve_process,
    serve_wsgi_in_thread,
)

pytestmark = pytest.mark.browser

SCRIPT = REPO_ROOT / "examples" / "preview-origin.sh"
WORKERS = 3  # gunicorn -w
REFRESH_INTERVAL = 0.2  # seconds (CORSADMIN_REFRESH_INTERVAL)
PROPAGATION_LIMIT = 1.0  # seconds from the script's exit: the promise
#: Successive answers that must agree before a change counts as enforced: twice the
#: workers, so a worker still on the old policy would most likely be seen.
STEADY_ANSWERS = 2 * WORKERS
POLL_PAUSE = 0.02  # seconds between two fetches of the page
SCRIPT_TIMEOUT = 30  # seconds
BLOCKED = {"ok": False, "error": "TypeError"}  # what a CORS refusal looks like to fetch()
POLICY = "status"
NOTE = "preview of branch pr-42"
EXPIRES = "2099-01-01T00:00:00Z"


@dataclass
class Deployment:
    env: dict[str, str]  # the server's and the CLI's environment
    base: str  # the server's base URL
    secret: str  # the pipeline's write token
    origin: str  # the preview environment's origin (the page's)
    page: Page  # loaded from that origin


def gunicorn(port: int) -> list[str]:
    return gunicorn_command(WORKERS, port, "manage:create_app()")


@pytest.fixture(params=BACKENDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, browser: Browser
) -> Iterator[Deployment]:
    with (
        serve_wsgi_in_thread(page_app) as preview,
        serve_wsgi_in_thread(page_app) as other,
        fresh_database(request.param, tmp_path, request) as url,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CORSADMIN_REFRESH_INTERVAL": str(REFRESH_INTERVAL),
            "PYTHONUNBUFFERED": "1",
        }
        live = tmp_path / "live.json"
        live.write_text(json.dumps(document(other)))
        run_cli(env, "db-upgrade")
        run_cli(env, "import", str(live), "--replace")
        secret = run_cli(env, "token", "create", "pipeline", "--scope", "write").stdout.strip()
        port = free_port()
        log = tmp_path / "gunicorn.log"
        with serve_process(gunicorn(port), port=port, env=env, cwd=REPO_ROOT, log_path=log):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{preview}/")
            try:
                yield Deployment(env, f"http://{LOOPBACK}:{port}", secret, preview, page)
            finally:
                context.close()


def pipeline(deployment: Deployment, *args: str) -> float:
    """Run the example script (bash + curl) with the pipeline's token; it must succeed.
    Returns the monotonic time of its exit."""
    env = {
        **os.environ,
        "CORSADMIN_URL": f"{deployment.base}/corsadmin",
        "CORSADMIN_TOKEN": deployment.secret,
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    exited = time.monotonic()
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return exited


def settles(deployment: Deployment, since: float, allowed: bool) -> float:
    """Fetch from the page until STEADY_ANSWERS in a row are allowed (or blocked); the
    seconds from ``since`` to the first of them. Fails once PROPAGATION_LIMIT is past."""
    steady = 0
    first = 0.0
    n = 0
    while steady < STEADY_ANSWERS:
        n += 1
        asked = time.monotonic()
        result = fetch(deployment.page, f"{deployment.base}/api/status?n={n}")
        if (result["ok"] is True) == allowed:
            first = first if steady else asked
            steady += 1
        else:
            assert result == BLOCKED or result["ok"] is True, result  # nothing else
            steady = 0
        waited = time.monotonic() - since
        assert waited < PROPAGATION_LIMIT, (allowed, n, steady, result)
        time.sleep(POLL_PAUSE)
    return first - since


def audit(deployment: Deployment) -> list[dict[str, Any]]:
    """The API's audit log of the policy, newest first, read with the pipeline's token."""
    call = urllib.request.Request(
        f"{deployment.base}/corsadmin/api/v1/audit?policy={POLICY}",
        headers={"Authorization": f"Bearer {deployment.secret}"},
    )
    with urllib.request.urlopen(call, timeout=SCRIPT_TIMEOUT) as response:
        events = json.load(response)["events"]
    assert isinstance(events, list)
    return events


def test_a_pipeline_adds_a_preview_origin_and_removes_it(deployment: Deployment) -> None:
    origin = deployment.origin
    assert fetch(deployment.page, f"{deployment.base}/api/status?n=0") == BLOCKED

    added = pipeline(deployment, "add", POLICY, origin, NOTE, EXPIRES)
    settles(deployment, added, allowed=True)

    removed = pipeline(deployment, "remove", POLICY, origin)
    settles(deployment, removed, allowed=False)

    newest = audit(deployment)[:2]
    assert [(e["actor"], e["action"]) for e in newest] == [
        ("token:pipeline", "origin.remove"),
        ("token:pipeline", "origin.add"),
    ], newest
    assert origin in json.dumps(newest[1]["after"]), newest[1]
    assert NOTE in json.dumps(newest[1]["after"]), newest[1]
    assert origin in json.dumps(newest[0]["before"]), newest[0]
