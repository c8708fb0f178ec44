"""Headless Chromium for browser tests: Debian's /usr/bin/chromium via Playwright.

Playwright never downloads a browser here (the machine has no network for
that); `make test` installs Debian's ``chromium`` package when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright
from werkzeug.wrappers import Request, Response

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No outside network here: keep Chromium from phoning home at all.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=PrivateNetworkAccessSendPreflights,"
    "PrivateNetworkAccessRespectPreflightResults",
]


class ChromiumMissingError(RuntimeError):
    """/usr/bin/chromium is not installed."""


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch headless Debian Chromium through ``playwright`` (never skips)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        raise ChromiumMissingError(
            f"{CHROMIUM} not found: browser tests need Debian's 'chromium' package "
            "(`make test` installs it; by hand: apt-get install -y chromium). "
            "Playwright's own browser downloads are not used."
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_ARGS),
    )


#: A page that fetches a URL on request (browser tests of CORS answers).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>partner</title></head>
<body><p id="status">loaded</p>
<script>
async function call(url) {
  try {
    const response = await fetch(url, {cache: "no-store"});
    return {ok: true, status: response.status, body: await response.text()};
  } catch (error) {
    return {ok: false, error: error.name};
  }
}
</script></body></html>
"""


@Request.application
def page_app(request: Request) -> Response:
    """A page on an origin of its own, with ``call(url)``: a fetch, its outcome as data."""
    return Response(PAGE, mimetype="text/html")


def document(*origins: str) -> dict[str, Any]:
    """A policy document: ``GET /api/status`` allowed to ``origins``."""
    return {
        "corsadmin": 1,
        "policies": [
            {"name": "status", "path": "/api/status", "origins": list(origins), "methods": ["GET"]}
        ],
    }


def fetch(page: Page, url: str) -> dict[str, Any]:
    """``call(url)`` in ``page``: {ok, status, body} or {ok: false, error}."""
    result = page.evaluate("(url) => call(url)", url)
    assert isinstance(result, dict)
    return result
