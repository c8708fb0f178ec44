"""The admin UI end to end, in real headless Chromium, against the standalone server.

``python manage.py run`` runs as its own process (SQLite and PostgreSQL); the
operator is created beforehand with ``corsadmin operator add --password-stdin``.
Pages on other loopback origins play the partner (who calls the API) and the
attacker (who frames the admin or posts forms to it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from werkzeug.wrappers import Request, Response

from tests.support.backends import BACKENDS, fresh_database
from tests.support.cli import run_cli
from tests.support.servers import log_tail, serve_wsgi_in_thread
from tests.support.standalone import run_standalone

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long operator password"
REFRESH_INTERVAL = 1
PROPAGATION_LIMIT = 2.0
FAILED_TO_FETCH = {"ok": False, "error": "TypeError", "message": "Failed to fetch"}
PAYLOADS = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    '"><svg onload="document.title=\'pwned\'">',
]

# --- pages on other origins -----------------------------------------------------------

PARTNER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>partner</title></head>
<body><p id="status">loaded</p>
<script>
async function call(url) {
  try {
    const response = await fetch(url, {cache: "no-store"});
    return {ok: true, status: response.status, body: await response.json()};
  } catch (error) {
    return {ok: false, error: error.name, message: String(error.message)};
  }
}
async function pollUntilOk(url, timeoutMs) {
  const start = performance.now();
  let attempts = 0;
  while (true) {
    attempts += 1;
    const outcome = await call(url + "&n=" + attempts);
    const elapsedMs = performance.now() - start;
    if (outcome.ok || elapsedMs > timeoutMs) {
      return {reached: outcome.ok, attempts: attempts, elapsedMs: elapsedMs, last: outcome};
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
</script></body></html>
"""

FRAMING_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>framing</title></head><body>
<iframe id="target" name="target" src="{src}" width="800" height="400"></iframe>
</body></html>
"""

CSRF_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>attacker</title></head><body>
<form id="attack" method="post" action="{action}">
  <input type="hidden" name="origin" value="https://evil.example">
  <input type="hidden" name="note" value="added by a cross-site form">
  <input type="hidden" name="version" value="{version}">
</form>
<script>document.getElementById("attack").submit();</script>
</body></html>
"""


@Request.application
def _pages_app(request: Request) -> Response:
    if request.path == "/":
        return Response(PARTNER_PAGE, mimetype="text/html")
    if request.path == "/frame":
        src = request.args.get("src", "")
        return Response(FRAMING_PAGE.format(src=src.replace('"', "&quot;")), mimetype="text/html")
    if request.path == "/csrf":
        action = request.args.get("action", "").replace('"', "&quot;")
        version = request.args.get("version", "1").replace('"', "&quot;")
        return Response(CSRF_PAGE.format(action=action, version=version), mimetype="text/html")
    return Response("not found", status=404)


@pytest.fixture(scope="module")
def pages() -> Iterator[dict[str, str]]:
    with serve_wsgi_in_thread(_pages_app) as partner, serve_wsgi_in_thread(_pages_app) as attacker:
        yield {"partner": partner, "attacker": attacker}


# --- the server under test ------------------------------------------------------------------


@dataclass
class Admin:
    kind: str
    base: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def admin(self) -> str:
        return f"{self.base}/corsadmin"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return run_cli(self.env, *args, stdin=stdin).stdout

    def policy(self, name: str = "status") -> dict[str, Any]:
        document = json.loads(self.cli("export"))
        found: dict[str, Any] = next(p for p in document["policies"] if p["name"] == name)
        return found

    def origins(self, name: str = "status") -> list[str]:
        return [o if isinstance(o, str) else o["origin"] for o in self.policy(name)["origins"]]

    def log(self) -> str:
        return log_tail(self.log_path)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Admin]:
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"admin-browser-{kind}")
    with fresh_database(kind, tmp, request) as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CORSADMIN_REFRESH_INTERVAL": str(REFRESH_INTERVAL),
            "PYTHONUNBUFFERED": "1",
        }
        document = {
            "corsadmin": 1,
            "policies": [
                {"name": "status", "path": "/api/status", "origins": [], "methods": ["GET"]}
            ],
        }
        path = tmp / "policy.json"
        path.write_text(json.dumps(document))
        run_cli(env, "db-upgrade")
        run_cli(env, "import", str(path), "--replace")
        added = run_cli(
            env, "operator", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n"
        ).stdout
        assert added == "added operator alice\n"
        log_path = tmp / "server.log"
        with run_standalone(env, log_path) as (base, process):
            yield Admin(kind, base, env, log_path, process)


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def log_in(page: Page, server: Admin) -> None:
    """Log in with the keyboard only: type, tab, type, Enter."""
    page.goto(f"{server.admin}/")
    assert page.url.startswith(f"{server.admin}/login?next="), page.url
    page.focus("#name")  # the login page autofocuses it; focus again to be sure
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.admin}/")
    assert page.locator(".who-name").text_content() == "alice"


def admin_page(new_context: Any, server: Admin) -> Page:
    page: Page = new_context().new_page()
    log_in(page, server)
    return page


def partner_page(new_context: Any, pages: dict[str, str]) -> Page:
    page: Page = new_context().new_page()
    page.goto(f"{pages['partner']}/")
    assert page.text_content("#status") == "loaded"
    return page


def fetch_status(page: Page, server: Admin) -> dict[str, Any]:
    result = page.evaluate(
        "(url) => call(url)", f"{server.base}/api/status?probe={uuid.uuid4().hex}"
    )
    assert isinstance(result, dict)
    return result


# --- the operator's minute: add a partner's domain --------------------------------------------


def test_operator_allows_a_partner_origin_and_the_running_api_serves_it(
    server: Admin, pages: dict[str, str], new_context: Any
) -> None:
    partner = partner_page(new_context, pages)
    assert fetch_status(partner, server) == FAILED_TO_FETCH, server.log()

    admin = admin_page(new_context, server)
    admin.click("text=status")
    admin.wait_for_url(f"{server.admin}/policies/status")
    admin.fill("#origin", pages["partner"])
    admin.fill("#note", "ticket 42")
    admin.click("button:has-text('Allow origin')")
    admin.wait_for_url(f"{server.admin}/policies/status")
    saved_at = time.monotonic()
    flash = admin.locator(".flash-success").text_content() or ""
    assert f"{pages['partner']} is allowed on status" in flash
    # Not a promise but an observation: how many workers enforce the change, how soon.
    line = admin.locator(".fleet-line").text_content() or ""
    assert re.search(r"enforced by (\d+) of \1 workers?, \d+\.\d\d s after commit", line), line
    assert admin.locator("td", has_text="ticket 42").count() == 1

    result = partner.evaluate(
        "(url) => pollUntilOk(url, 8000)", f"{server.base}/api/status?probe={uuid.uuid4().hex}"
    )
    latency = time.monotonic() - saved_at
    assert result["reached"], (result, server.log())
    assert result["last"] == {"ok": True, "status": 200, "body": {"status": "ok"}}
    assert latency <= PROPAGATION_LIMIT, f"[{server.kind}] enforced after {latency:.2f}s"
    assert server.process.poll() is None  # the same server process: no restart
    assert pages["partner"] in server.origins()
    # The audit log names the operator.
    admin.goto(f"{server.admin}/audit?policy=status&actor=alice")
    summaries = admin.locator(".audit-summary").all_text_contents()
    assert f"allowed origin {pages['partner']} on status" in summaries
    admin.goto(f"{server.admin}/policies/status")

    # And removing it again through the confirmation page closes the door.
    admin.click(f"a[aria-label='Remove {pages['partner']}']")
    admin.click("button:has-text('Remove origin')")
    admin.wait_for_url(f"{server.admin}/policies/status")
    assert pages["partner"] not in server.origins()


# --- a change tried first: saved as draft, then promoted ------------------------------------------


def test_a_removal_saved_as_draft_is_not_enforced_until_promoted(
    server: Admin, pages: dict[str, str], new_context: Any
) -> None:
    partner = partner_page(new_context, pages)
    admin = admin_page(new_context, server)
    admin.goto(f"{server.admin}/policies/status")
    admin.fill("#origin", pages["partner"])
    admin.click("button:has-text('Allow origin')")
    admin.wait_for_url(f"{server.admin}/policies/status")
    result = partner.evaluate(
        "(url) => pollUntilOk(url, 8000)", f"{server.base}/api/status?probe={uuid.uuid4().hex}"
    )
    assert result["reached"], (result, server.log())

    # Propose removing it: the confirmation page's "Save as draft".
    admin.click(f"a[aria-label='Remove {pages['partner']}']")
    admin.click("button:has-text('Save as draft')")
    admin.wait_for_url(f"{server.admin}/draft")
    flash = admin.locator(".flash-success").text_content() or ""
    assert f"Saved in the draft: stop allowing {pages['partner']} on status" in flash
    assert admin.locator(".nav-badge").count() == 1
    assert admin.locator("tr.rule-removed code.origin").text_content() == pages["partner"]
    time.sleep(REFRESH_INTERVAL * 2)  # every worker has the draft by now: it is not enforced
    assert fetch_status(partner, server)["ok"] is True, server.log()
    assert pages["partner"] in server.origins()

    admin.click("button:has-text('Promote draft')")
    admin.wait_for_url(f"{server.admin}/policies/status")
    promoted_at = time.monotonic()
    assert "Promoted draft" in (admin.locator(".flash-success").text_content() or "")
    assert admin.locator(".nav-badge").count() == 0
    while fetch_status(partner, server) != FAILED_TO_FETCH:
        assert time.monotonic() - promoted_at < PROPAGATION_LIMIT, server.log()
        time.sleep(0.05)
    assert pages["partner"] not in server.origins()


# --- a script typed into a field never runs ------------------------------------------------------


def _assert_inert(page: Page, dialogs: list[str]) -> None:
    assert dialogs == []
    assert page.title() != "pwned"
    assert page.evaluate("document.title") != "pwned"
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main svg").count() == 0
    assert page.locator("main script").count() == 0


def test_script_payloads_typed_into_any_field_never_run(server: Admin, new_context: Any) -> None:
    admin = admin_page(new_context, server)
    dialogs: list[str] = []
    admin.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    for i, payload in enumerate(PAYLOADS):
        # A valid origin with the payload as its note: stored, then shown on several pages.
        admin.goto(f"{server.admin}/policies/status")
        admin.fill("#origin", f"https://xss{i}.example")
        admin.fill("#note", payload)
        admin.click("button:has-text('Allow origin')")
        admin.wait_for_url(f"{server.admin}/policies/status")
        _assert_inert(admin, dialogs)
        cell = admin.locator("tr", has_text=f"https://xss{i}.example").locator("td").nth(1)
        assert cell.text_content() == payload  # shown as text, exactly as typed

        # An invalid origin: the error page shows the typed value back in the field.
        admin.fill("#origin", payload)
        admin.click("button:has-text('Allow origin')")
        _assert_inert(admin, dialogs)
        assert admin.input_value("#origin") == payload
        assert admin.locator("#origin-error").count() == 1

        # The search box, the check page, a refused new-policy form, the review comment.
        admin.goto(f"{server.admin}/?q={quote(payload)}")
        _assert_inert(admin, dialogs)
        assert admin.input_value("#q") == payload
        admin.goto(f"{server.admin}/check")
        admin.fill("#origin", payload)
        admin.fill("#path", "/api/status")
        admin.fill("#headers", payload)
        admin.click("button:has-text('Check')")
        _assert_inert(admin, dialogs)
        assert payload in (admin.locator("pre.explanation").text_content() or "")
        admin.goto(f"{server.admin}/new")
        admin.fill("#name", payload)
        admin.fill("#path", payload)
        admin.fill("#description", payload)
        admin.click("button:has-text('Add policy')")
        _assert_inert(admin, dialogs)
        assert admin.input_value("#description") == payload
        admin.goto(f"{server.admin}/policies/status")
        admin.fill("#comment", payload)
        admin.click("button:has-text('Mark reviewed')")
        admin.wait_for_url(f"{server.admin}/policies/status")
        _assert_inert(admin, dialogs)

    for path in ["/", "/review", "/audit", "/policies/status"]:
        admin.goto(server.admin + path)
        _assert_inert(admin, dialogs)
    assert all(p in (admin.locator("main").text_content() or "") for p in PAYLOADS)

    login = new_context().new_page()
    login.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login.goto(f"{server.admin}/login")
    login.fill("#name", PAYLOADS[1])
    login.fill("#password", "wrong")
    login.click("button:has-text('Log in')")
    _assert_inert(login, dialogs)
    assert login.input_value("#name") == PAYLOADS[1]


# --- CSRF ----------------------------------------------------------------------------------------


def test_a_form_posted_without_its_csrf_token_changes_nothing(
    server: Admin, pages: dict[str, str], new_context: Any
) -> None:
    admin = admin_page(new_context, server)
    before = server.origins()

    # The admin's own form with its token removed.
    admin.goto(f"{server.admin}/policies/status")
    form = "form[action$='/policies/status/origins']"
    admin.evaluate(
        "(selector) => document.querySelector(selector + \" input[name='csrf_token']\").remove()",
        form,
    )
    assert admin.locator(f"{form} input[name='csrf_token']").count() == 0
    admin.fill("#origin", "https://no-token.example")
    admin.click("button:has-text('Allow origin')")
    assert "security token" in (admin.locator(".alert-error").text_content() or "")

    # A page on another origin posting to the admin with the operator's cookies
    # (127.0.0.1 on another port is the same site, so SameSite=Lax still sends them).
    # It even knows the current version: only the missing token stops it.
    admin.goto(f"{server.admin}/policies/status")
    version = admin.locator(f"{form} input[name='version']").get_attribute("value") or ""
    assert version.isdigit()
    attacker = admin.context.new_page()
    attacker.goto(
        f"{pages['attacker']}/csrf?action={quote(server.admin + '/policies/status/origins')}"
        f"&version={version}"
    )
    attacker.wait_for_url(f"{server.admin}/policies/status/origins")
    assert "security token" in (attacker.locator(".alert-error").text_content() or "")

    assert server.origins() == before
    assert "https://no-token.example" not in server.cli("export")
    assert "https://evil.example" not in server.cli("export")


# --- logged out --------------------------------------------------------------------------------

ADMIN_PATHS = [
    "/",
    "/policies/status",
    "/policies/status/edit",
    "/policies/status/delete",
    "/policies/status/disable",
    "/new",
    "/review",
    "/refused",
    "/refused/allow?policy=status&origin=https://x.example",
    "/policies/status/origins/edit?origin=https://x.example",
    "/audit",
    "/check?origin=https://x.example&path=/api/status",
]


def test_a_logged_out_visitor_reaches_no_admin_page(server: Admin, new_context: Any) -> None:
    visitor = new_context().new_page()
    for path in ADMIN_PATHS:
        response = visitor.goto(server.admin + path)
        assert response is not None
        assert visitor.url.startswith(f"{server.admin}/login?next="), (path, visitor.url)
        assert visitor.locator("h1").text_content() == "Log in"
        assert "/api/status" not in (visitor.locator("main").text_content() or "")

    # Logged in, then out with the button: the door closes again.
    admin = admin_page(new_context, server)
    admin.click("button:has-text('Log out')")
    admin.wait_for_url(f"{server.admin}/login")
    for path in ADMIN_PATHS[:3]:
        admin.goto(server.admin + path)
        assert admin.url.startswith(f"{server.admin}/login?next="), (path, admin.url)


# --- framing ----------------------------------------------------------------------------------


def _frame_loaded(page: Page, src: str) -> bool:
    """Did the iframe pointing at ``src`` show that document (not Chromium's error page)?"""
    frame = page.frame(name="target")
    assert frame is not None
    deadline = time.monotonic() + 5
    while frame.url in ("", "about:blank") and time.monotonic() < deadline:
        time.sleep(0.05)
    return frame.url == src


def test_an_admin_page_cannot_be_framed(
    server: Admin, pages: dict[str, str], new_context: Any
) -> None:
    context = new_context()
    log_in(context.new_page(), server)
    attacker = context.new_page()

    # The control: the same server's non-admin page is framed without trouble.
    control = f"{server.base}/"
    attacker.goto(f"{pages['attacker']}/frame?src={quote(control)}")
    attacker.wait_for_load_state("load")
    assert _frame_loaded(attacker, control)

    for path in ["/login", "/", "/policies/status"]:
        src = server.admin + path
        attacker.goto(f"{pages['attacker']}/frame?src={quote(src)}")
        attacker.wait_for_load_state("load")
        assert not _frame_loaded(attacker, src), path
        frame = attacker.frame(name="target")
        assert frame is not None
        assert frame.url.startswith("chrome-error://"), frame.url  # Chromium refused it
        assert "corsadmin.css" not in frame.content()
