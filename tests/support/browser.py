"""Headless Chromium for browser tests: Debian's /usr/bin/chromium via Playwright.

Playwright never downloads a browser here (the machine has no network for
that); `make test` installs Debian's ``chromium`` package when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser, Playwright

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
