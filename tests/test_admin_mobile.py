"""Issue 13, the admin UI in real headless Chromium: every screen on a phone (390x844)
without sideways scrolling (a screenshot of each in tmp), and the keyboard focus on
the message after a save. The app is served from a thread; SQLite only (the layout
does not depend on the database; the views are tested on both elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page

from corsadmin import CorsAdmin
from corsadmin.db.models import OriginUsage, utcnow
from tests.support.admin import PASSWORD, PREFIX, add_operator, in_app
from tests.support.servers import serve_wsgi_in_thread

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

#: An iPhone 12-sized viewport (CSS pixels).
PHONE = {"width": 390, "height": 844}
#: The narrowest an origin's cell text may get on a phone (CSS pixels; about 15
#: characters of the monospace font).
MIN_ORIGIN_WIDTH = 120
#: An origin long enough to overflow a phone-sized table cell unless it is wrapped.
LONG_ORIGIN = "https://a-very-long-partner-subdomain.customer-portal.partner-company.example"


def _seed(app: Flask, cors: CorsAdmin) -> None:
    add_operator(app)
    with app.app_context():
        store = cors.store("seed", app)
        store.create_policy(
            {
                "name": "partner-api-with-a-long-name",
                "path": "/api/v1/partners/<int:partner_id>/orders/**",
                "description": "Orders of partners. " * 8,
                "origins": [
                    LONG_ORIGIN,
                    {"origin": "https://b.example", "note": "ticket 7 " * 10},
                    "re:^https://[a-z0-9-]+\\.preview\\.partner-company\\.example$",
                ],
                "methods": ["GET", "POST", "PUT"],
                "allow_headers": ["Content-Type", "Authorization", "X-Request-Id"],
            }
        )
        session = CorsAdmin.state(app).db.session
        now = utcnow()
        session.add(
            OriginUsage(
                policy_name="partner-api-with-a-long-name",
                origin="https://refused-partner-with-a-long-host-name.example.org",
                allowed=False,
                count=12345,
                first_seen=now,
                last_seen=now,
            )
        )
        session.commit()
    in_app(
        app,
        lambda s: s.update_policy("partner-api-with-a-long-name", {"max_age": 600}),
    )


@pytest.fixture
def base_url(app: Flask, cors: CorsAdmin) -> Iterator[str]:
    _seed(app, cors)
    with serve_wsgi_in_thread(app) as url:
        yield url


def _log_in(context: BrowserContext, base_url: str) -> Page:
    page = context.new_page()
    page.goto(f"{base_url}{PREFIX}/login")
    page.fill("#name", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{PREFIX}/")
    return page


def _screens() -> list[tuple[str, str]]:
    name = "partner-api-with-a-long-name"
    refused = "https://refused-partner-with-a-long-host-name.example.org"
    check = (
        f"check?origin={quote(LONG_ORIGIN)}&path=/api/v1/partners/7/orders/1"
        "&method=DELETE&headers=X-Custom"
    )
    return [
        ("policies", ""),
        ("policy", f"policies/{name}"),
        ("policy-search", f"policies/{name}?q=example"),
        ("new-policy", "new"),
        ("edit-policy", f"policies/{name}/edit"),
        ("edit-origin", f"policies/{name}/origins/edit?origin={quote(LONG_ORIGIN)}"),
        ("remove-origin", f"policies/{name}/origins/remove?origin={quote(LONG_ORIGIN)}"),
        ("disable", f"policies/{name}/disable"),
        ("review", "review"),
        ("refused", "refused"),
        ("allow-refused", f"refused/allow?policy={name}&origin={quote(refused)}"),
        ("audit", "audit"),
        ("check", "check"),
        ("check-result", check),
        ("tokens", "tokens"),
        ("new-token", "tokens/new"),
        ("workers", "workers"),
        ("draft", "draft"),
    ]


def _overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no sideways scroll)."""
    width = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert isinstance(width, int)
    return width


#: What sticks out past the right edge (for the failure message): the outermost
#: elements whose box ends beyond the viewport.
STICKING_OUT = """() => {
  const out = (e) => e.getBoundingClientRect().right > window.innerWidth + 0.5;
  const clipped = (e) => {
    for (let a = e.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    }
    return false;
  };
  return [...document.querySelectorAll('body *')]
    .filter((e) => out(e) && !clipped(e))
    .slice(0, 4).map((e) => e.tagName + '.' + e.className + ': ' + e.textContent.slice(0, 40));
}"""


def test_every_screen_fits_a_phone(browser: Browser, base_url: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    try:
        login = context.new_page()
        login.goto(f"{base_url}{PREFIX}/login")
        login.screenshot(path=str(tmp_path / "mobile-login.png"), full_page=True)
        overflowing: dict[str, object] = {}
        if _overflow(login) > 0:
            overflowing["login"] = _overflow(login)
        page = _log_in(context, base_url)
        for label, path in _screens():
            response = page.goto(f"{base_url}{PREFIX}/{path}")
            assert response is not None
            assert response.status == 200, (label, response.status)
            page.screenshot(path=str(tmp_path / f"mobile-{label}.png"), full_page=True)
            if _overflow(page) > 0:
                overflowing[label] = (_overflow(page), page.evaluate(STICKING_OUT))
        assert overflowing == {}, f"wider than 390 px (screenshots in {tmp_path})"
        page.goto(f"{base_url}{PREFIX}/policies/partner-api-with-a-long-name")
        widths = page.evaluate(
            "() => [...document.querySelectorAll('table code.origin')]"
            ".map((e) => e.getBoundingClientRect().width)"
        )
        # Origins keep a readable width in their cells: never a character a line.
        assert widths
        assert min(widths) >= MIN_ORIGIN_WIDTH, widths
    finally:
        context.close()


def test_the_navigation_is_compact_on_a_phone(browser: Browser, base_url: str) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = _log_in(context, base_url)
        header = page.locator("header.top").bounding_box()
        assert header is not None
        # Every section one tap away, and the header leaves most of the screen to the page.
        assert page.locator("nav.nav a").count() >= 8
        assert header["height"] <= PHONE["height"] / 4
    finally:
        context.close()


def test_focus_is_on_the_message_after_a_save(app: Flask, browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    try:
        page = _log_in(context, base_url)
        page.goto(f"{base_url}{PREFIX}/policies/partner-api-with-a-long-name/edit")
        page.fill("#max_age", "900")
        page.check("input[name=methods][value=DELETE]")  # real checkboxes, a real POST
        page.uncheck("input[name=methods][value=PUT]")
        page.click("button.button[type=submit]")
        page.wait_for_url(f"{base_url}{PREFIX}/policies/partner-api-with-a-long-name")
        focused = page.evaluate(
            "() => [document.activeElement.className, document.activeElement.textContent]"
        )
        assert focused[0].split()[0] == "flash", focused
        assert focused[1].strip().startswith("Saved."), focused
        stored = in_app(app, lambda s: s.spec("partner-api-with-a-long-name").methods)
        assert stored == ("GET", "POST", "DELETE")
    finally:
        context.close()
