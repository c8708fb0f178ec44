"""Trying a change first, proven in real headless Chromium.

The standalone server runs as its own process (SQLite and PostgreSQL); a page on
the partner's origin calls it. A draft that removes the partner's origin is made
by the CLI in another process:

1. the page still succeeds (the live policy is enforced, the draft only reported);
2. ``corsadmin draft report`` lists the partner's origin as "would be refused",
   counted from the page's own requests by the server's worker;
3. after ``corsadmin draft promote`` the same page is blocked, within the
   propagation promise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.support.backends import BACKENDS, fresh_database
from tests.support.browser import document, fetch, page_app
from tests.support.cli import REPO_ROOT, run_cli
from tests.support.servers import serve_wsgi_in_thread
from tests.support.standalone import run_standalone

pytestmark = pytest.mark.browser

REFRESH_INTERVAL = 1  # seconds (CORSADMIN_REFRESH_INTERVAL)
FLUSH_INTERVAL = 1  # seconds (CORSADMIN_USAGE_FLUSH_INTERVAL): the report's refresh
PROPAGATION_LIMIT = 2.0  # seconds: the promise
REPORT_LIMIT = 15.0  # seconds for the draft to reach the worker and its counts the table


@pytest.fixture(params=BACKENDS)
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, browser: Browser
) -> Iterator[tuple[dict[str, str], str, str, Page]]:
    """(env, server base URL, partner origin, a page loaded from the partner's origin)."""
    with (
        serve_wsgi_in_thread(page_app) as partner,
        serve_wsgi_in_thread(page_app) as other,
        fresh_database(request.param, tmp_path, request) as url,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CORSADMIN_REFRESH_INTERVAL": str(REFRESH_INTERVAL),
            "CORSADMIN_USAGE_FLUSH_INTERVAL": str(FLUSH_INTERVAL),
            "PYTHONUNBUFFERED": "1",
        }
        live = tmp_path / "live.json"
        live.write_text(json.dumps(document(partner, other)))
        run_cli(env, "db-upgrade")
        run_cli(env, "import", str(live), "--replace")
        (tmp_path / "draft.json").write_text(json.dumps(document(other)))
        with run_standalone(env, tmp_path / "server.log") as (base, _process):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{partner}/")
            try:
                yield env, base, partner, page
            finally:
                context.close()


def test_a_draft_removing_the_partner_is_reported_then_promoted(
    setup: tuple[dict[str, str], str, str, Page], tmp_path: Path
) -> None:
    env, base, partner, page = setup
    assert fetch(page, f"{base}/api/status?n=0")["ok"] is True

    run_cli(env, "draft", "import", str(tmp_path / "draft.json"), "--reason", "partner leaves")
    diff = run_cli(env, "draft", "diff").stdout
    assert f"- origin {partner}" in diff, diff

    # The draft is tried, not enforced: every call from the partner still succeeds,
    # and the worker's counts reach the report.
    deadline = time.monotonic() + REPORT_LIMIT
    n = 0
    report = ""
    while time.monotonic() < deadline:
        n += 1
        result = fetch(page, f"{base}/api/status?n={n}")
        assert result["ok"] is True, (n, result)
        report = run_cli(env, "draft", "report").stdout
        if any("would be refused" in line and partner in line for line in report.splitlines()):
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the report never showed {partner} as would be refused:\n{report}")

    run_cli(env, "draft", "promote")
    promoted = time.monotonic()
    while True:
        n += 1
        result = fetch(page, f"{base}/api/status?n={n}")
        if result == {"ok": False, "error": "TypeError"}:
            break
        assert time.monotonic() - promoted < PROPAGATION_LIMIT, result
        time.sleep(0.05)
    assert time.monotonic() - promoted < PROPAGATION_LIMIT
    # And the draft is closed: there is no active draft to show.
    shown = subprocess.run(
        [sys.executable, "manage.py", "corsadmin", "draft", "show"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 1
    assert "error: there is no active draft" in shown.stderr
