"""End-to-end in real headless Chromium: pages on one loopback origin call the
standalone corsadmin server (``python manage.py run``) on another.

The server runs as its own process on SQLite and on PostgreSQL, with the test
policy document loaded by the CLI (``corsadmin import --replace``) in a separate
process beforehand. Pages are served from three more loopback origins:

- ``allowed``: listed in every policy of the document;
- ``refused``: listed in none;
- ``newcomer``: listed in none until the propagation test adds it with
  ``python manage.py corsadmin origin add`` (another process) and removes it again.

A page's ``fetch`` either reads the body or fails with the browser's
``TypeError: Failed to fetch``. Every request carries a unique ``probe`` query
parameter, so the server's request log shows whether (and how) the server
answered it: a blocked request the server answered with 200 was blocked by
Chromium's CORS check, not by the network; a preflighted request that never
reached the server was stopped by its preflight.
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
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page
from werkzeug.wrappers import Request, Response

from tests.support.backends import BACKENDS, fresh_database
from tests.support.cli import run_cli
from tests.support.servers import log_tail, serve_wsgi_in_thread
from tests.support.standalone import run_standalone

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
REFRESH_INTERVAL = 1  # seconds, CORSADMIN_REFRESH_INTERVAL of the server under test
PROPAGATION_LIMIT = 2.0  # seconds: the promise the issue makes
COOKIE = "s3cret-session"
FAILED_TO_FETCH = {"ok": False, "error": "TypeError", "message": "Failed to fetch"}

# --- the pages ----------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>corsadmin e2e page</title></head>
<body>
<p id="status">loaded</p>
<script>
// One fetch: the body the page could read, or the error the browser gave.
async function call(url, init) {
  try {
    const response = await fetch(url, Object.assign({cache: "no-store"}, init || {}));
    const text = await response.text();
    let body;
    try { body = JSON.parse(text); } catch (e) { body = text; }
    return {ok: true, status: response.status, body: body};
  } catch (error) {
    return {ok: false, error: error.name, message: String(error.message)};
  }
}

// Fetch url&n=1, url&n=2, ... every everyMs until the outcome's ok is wantOk.
async function pollUntil(url, wantOk, timeoutMs, everyMs) {
  const start = performance.now();
  let attempts = 0;
  while (true) {
    attempts += 1;
    const target = url + "&n=" + attempts;
    const outcome = await call(target);
    const elapsedMs = performance.now() - start;
    if (outcome.ok === wantOk) {
      return {reached: true, attempts: attempts, elapsedMs: elapsedMs, url: target, last: outcome};
    }
    if (elapsedMs > timeoutMs) {
      return {reached: false, attempts: attempts, elapsedMs: elapsedMs, url: target, last: outcome};
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
</script>
</body></html>
"""


@Request.application
def _page_app(request: Request) -> Response:
    if request.path != "/":
        return Response("not found", status=404)
    return Response(PAGE, mimetype="text/html")


@pytest.fixture(scope="module")
def pages() -> Iterator[dict[str, str]]:
    """Three page origins on loopback (same host, different ports: different origins)."""
    with (
        serve_wsgi_in_thread(_page_app) as allowed,
        serve_wsgi_in_thread(_page_app) as refused,
        serve_wsgi_in_thread(_page_app) as newcomer,
    ):
        yield {"allowed": allowed, "refused": refused, "newcomer": newcomer}


# --- the server under test -------------------------------------------------------------


def policy_document(allowed: str) -> dict[str, Any]:
    """The test policy: every policy allows only ``allowed``."""
    return {
        "corsadmin": 1,
        "policies": [
            {
                "name": "status",
                "path": "/api/status",
                "origins": [allowed],
                "methods": ["GET"],
            },
            {
                "name": "items",
                "path": "/api/items/<int:item_id>",
                "origins": [allowed],
                "methods": ["GET", "PUT", "DELETE"],
                "allow_headers": ["Content-Type", "X-Request-Id"],
            },
            {
                # More specific than /api/items/<int:item_id> (a literal beats `*`):
                # the same PUT, but X-Request-Id is not an allowed request header.
                "name": "item-eight",
                "path": "/api/items/8",
                "origins": [allowed],
                "methods": ["GET", "PUT"],
                "allow_headers": ["Content-Type"],
            },
            {
                "name": "foo",
                "path": "/api/foo",
                "origins": [allowed],
                "methods": ["POST"],
                "allow_headers": ["Content-Type"],
            },
            {
                "name": "whoami",
                "path": "/api/whoami",
                "origins": [allowed],
                "methods": ["GET"],
                "credentials": True,
            },
        ],
    }


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


@dataclass
class Api:
    """The running standalone server: its base URL, its log, its database."""

    kind: str
    base: str
    database_url: str
    env: dict[str, str]
    log_path: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python manage.py corsadmin ARGS`` in a separate process; must succeed."""
        return run_cli(self.env, *args)

    def requests_for(self, probe: str, n: int | None = None) -> list[tuple[str, int]]:
        """(method, status) of every request the server logged for this probe id."""
        found = []
        text = _ANSI.sub("", self.log_path.read_text(errors="replace"))
        for match in _REQUEST_LINE.finditer(text):
            query = parse_qs(urlsplit(match["target"]).query)
            if query.get("probe") != [probe]:
                continue
            if n is not None and query.get("n") != [str(n)]:
                continue
            found.append((match["method"], int(match["status"])))
        return found

    def wait_for_requests(
        self, probe: str, expected: list[tuple[str, int]], n: int | None = None
    ) -> list[tuple[str, int]]:
        """The logged requests of ``probe``, waiting briefly for the log to catch up."""
        deadline = time.monotonic() + 3
        while True:
            seen = self.requests_for(probe, n)
            if seen == expected or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    def log(self) -> str:
        return log_tail(self.log_path)


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pages: dict[str, str],
) -> Iterator[Api]:
    """``python manage.py run`` on a fresh database holding the test policy document."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"browser-{kind}")
    with fresh_database(kind, tmp, request) as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CORSADMIN_REFRESH_INTERVAL": str(REFRESH_INTERVAL),
            "PYTHONUNBUFFERED": "1",
        }
        document = tmp / "policy.json"
        document.write_text(json.dumps(policy_document(pages["allowed"]), indent=2))
        run_cli(env, "db-upgrade")
        imported = run_cli(env, "import", str(document), "--replace")
        assert "5 created" in imported.stdout, imported.stdout

        log_path = tmp / "server.log"
        with run_standalone(env, log_path) as (base, _process):
            server_log = log_path.read_text(errors="replace")
            # The imported document is what the server serves (not the example policy).
            assert "5 policies at revision" in server_log, server_log
            assert "loaded the example policy" not in server_log, server_log
            yield Api(kind=kind, base=base, database_url=url, env=env, log_path=log_path)


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    """``open_page(origin)``: a fresh page (own browser context) loaded from ``origin``."""
    contexts = []

    def open_(origin: str, cookies: list[dict[str, Any]] | None = None) -> Page:
        context = browser.new_context()
        contexts.append(context)
        if cookies:
            context.add_cookies(cookies)  # type: ignore[arg-type]
        page = context.new_page()
        page.goto(f"{origin}/")
        assert page.text_content("#status") == "loaded"
        return page

    yield open_
    for context in contexts:
        context.close()


def probe_id() -> str:
    return uuid.uuid4().hex


def fetch(page: Page, url: str, init: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the page's ``fetch(url, init)`` gave: the body, or the browser's error."""
    result = page.evaluate("([url, init]) => call(url, init)", [url, init or {}])
    assert isinstance(result, dict)
    return result


# --- allowed origin ------------------------------------------------------------------


def test_allowed_origin_reads_a_simple_response(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    page = open_page(pages["allowed"])
    probe = probe_id()
    result = fetch(page, f"{api.base}/api/status?probe={probe}")
    assert result == {"ok": True, "status": 200, "body": {"status": "ok"}}, api.log()
    # A simple request: no preflight, one GET.
    assert api.wait_for_requests(probe, [("GET", 200)]) == [("GET", 200)], api.log()


def test_allowed_origin_sends_a_preflighted_put_with_a_custom_header(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    page = open_page(pages["allowed"])
    probe = probe_id()
    result = fetch(
        page,
        f"{api.base}/api/items/7?probe={probe}",
        {
            "method": "PUT",
            "headers": {"Content-Type": "application/json", "X-Request-Id": "req-7"},
            "body": json.dumps({"name": "seven"}),
        },
    )
    assert result == {
        "ok": True,
        "status": 200,
        "body": {"id": 7, "updated": {"name": "seven"}},
    }, api.log()
    # The browser asked first (OPTIONS, answered 204), then sent the PUT.
    expected = [("OPTIONS", 204), ("PUT", 200)]
    assert api.wait_for_requests(probe, expected) == expected, api.log()


def test_preflight_refusing_the_custom_header_blocks_the_put(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    """/api/items/8's policy allows PUT and Content-Type but not X-Request-Id."""
    page = open_page(pages["allowed"])
    blocked_probe = probe_id()
    blocked = fetch(
        page,
        f"{api.base}/api/items/8?probe={blocked_probe}",
        {
            "method": "PUT",
            "headers": {"Content-Type": "application/json", "X-Request-Id": "req-8"},
            "body": json.dumps({"name": "eight"}),
        },
    )
    assert blocked == FAILED_TO_FETCH, api.log()
    # The preflight was answered; the PUT itself never left the browser.
    assert api.wait_for_requests(blocked_probe, [("OPTIONS", 204)]) == [("OPTIONS", 204)], api.log()

    # The same PUT without the custom header passes: the header made the difference.
    probe = probe_id()
    allowed = fetch(
        page,
        f"{api.base}/api/items/8?probe={probe}",
        {
            "method": "PUT",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"name": "eight"}),
        },
    )
    assert allowed == {
        "ok": True,
        "status": 200,
        "body": {"id": 8, "updated": {"name": "eight"}},
    }, api.log()
    expected = [("OPTIONS", 204), ("PUT", 200)]
    assert api.wait_for_requests(probe, expected) == expected, api.log()
    # Nothing of the blocked request arrived later either.
    assert api.requests_for(blocked_probe) == [("OPTIONS", 204)], api.log()


def test_allowed_origin_posts_json_to_the_classic_example(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    page = open_page(pages["allowed"])
    probe = probe_id()
    result = fetch(
        page,
        f"{api.base}/api/foo?probe={probe}",
        {
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"inputVar": 21}),
        },
    )
    assert result == {"ok": True, "status": 200, "body": {"result": 42}}, api.log()
    expected = [("OPTIONS", 204), ("POST", 200)]
    assert api.wait_for_requests(probe, expected) == expected, api.log()


# --- credentials ---------------------------------------------------------------------


def _session_cookie(api: Api) -> list[dict[str, Any]]:
    return [{"name": "demo_session", "value": COOKIE, "url": f"{api.base}/"}]


def test_credentialed_request_reads_the_cookie_where_the_policy_allows_credentials(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    page = open_page(pages["allowed"], cookies=_session_cookie(api))
    probe = probe_id()
    result = fetch(page, f"{api.base}/api/whoami?probe={probe}", {"credentials": "include"})
    assert result == {"ok": True, "status": 200, "body": {"cookie": COOKIE}}, api.log()
    assert api.wait_for_requests(probe, [("GET", 200)]) == [("GET", 200)], api.log()

    # Without `credentials: "include"` the browser sends no cookie cross-origin:
    # the cookie above arrived because the request was credentialed.
    plain = fetch(page, f"{api.base}/api/whoami?probe={probe_id()}")
    assert plain == {"ok": True, "status": 200, "body": {"cookie": None}}, api.log()


def test_credentialed_request_is_blocked_where_the_policy_has_no_credentials(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    page = open_page(pages["allowed"], cookies=_session_cookie(api))
    probe = probe_id()
    result = fetch(page, f"{api.base}/api/status?probe={probe}", {"credentials": "include"})
    assert result == FAILED_TO_FETCH, api.log()
    # The server answered 200; Chromium refused to hand the response to the page
    # (no Access-Control-Allow-Credentials: true).
    assert api.wait_for_requests(probe, [("GET", 200)]) == [("GET", 200)], api.log()


# --- refused origin ------------------------------------------------------------------


def test_refused_origin_is_blocked_by_the_browser(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    page = open_page(pages["refused"])
    probe = probe_id()
    result = fetch(page, f"{api.base}/api/status?probe={probe}")
    assert result == FAILED_TO_FETCH, api.log()
    # The server answered the simple GET with 200: the block is Chromium's CORS check.
    assert api.wait_for_requests(probe, [("GET", 200)]) == [("GET", 200)], api.log()

    # A preflighted request from the refused origin never gets past its preflight.
    post_probe = probe_id()
    posted = fetch(
        page,
        f"{api.base}/api/foo?probe={post_probe}",
        {
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"inputVar": 21}),
        },
    )
    assert posted == FAILED_TO_FETCH, api.log()
    assert api.wait_for_requests(post_probe, [("OPTIONS", 204)]) == [("OPTIONS", 204)], api.log()


# --- propagation from another process -------------------------------------------------


def _poll(page: Page, url: str, want_ok: bool) -> dict[str, Any]:
    """Fetch ``url`` every ~100 ms until its outcome's ``ok`` is ``want_ok`` (8 s at most)."""
    result = page.evaluate("([url, wantOk]) => pollUntil(url, wantOk, 8000, 100)", [url, want_ok])
    assert isinstance(result, dict)
    return result


def test_origin_added_and_removed_by_the_cli_is_enforced_within_two_seconds(
    api: Api, pages: dict[str, str], open_page: Any
) -> None:
    newcomer = pages["newcomer"]
    page = open_page(newcomer)

    # Before: the newcomer's origin is refused (and the server did answer).
    before_probe = probe_id()
    before = fetch(page, f"{api.base}/api/status?probe={before_probe}")
    assert before == FAILED_TO_FETCH, api.log()
    assert api.wait_for_requests(before_probe, [("GET", 200)]) == [("GET", 200)], api.log()

    # Add it from another process; the running server must notice by itself.
    add_started = time.monotonic()
    added = api.cli("origin", "add", "status", newcomer)
    added_at = time.monotonic()  # the CLI process has exited
    assert f"allowed {newcomer} on status" in added.stdout, added.stdout
    allowed = _poll(page, f"{api.base}/api/status?probe={probe_id()}", want_ok=True)
    add_latency = time.monotonic() - added_at

    assert allowed["reached"], (
        f"[{api.kind}] {newcomer} still refused {add_latency:.2f}s after `origin add` "
        f"({allowed['attempts']} attempts, last: {allowed['last']})\n{api.log()}"
    )
    assert allowed["last"] == {"ok": True, "status": 200, "body": {"status": "ok"}}
    assert add_latency <= PROPAGATION_LIMIT, (
        f"[{api.kind}] `origin add` took {add_latency:.2f}s to be enforced "
        f"(limit {PROPAGATION_LIMIT}s, {allowed['attempts']} attempts)"
    )

    # Remove it again from another process: refused again, soon.
    remove_started = time.monotonic()
    removed = api.cli("origin", "remove", "status", newcomer)
    removed_at = time.monotonic()
    assert f"removed {newcomer} from status" in removed.stdout, removed.stdout
    refused_probe = probe_id()
    refused = _poll(page, f"{api.base}/api/status?probe={refused_probe}", want_ok=False)
    remove_latency = time.monotonic() - removed_at

    assert refused["reached"], (
        f"[{api.kind}] {newcomer} still allowed {remove_latency:.2f}s after `origin remove` "
        f"({refused['attempts']} attempts, last: {refused['last']})\n{api.log()}"
    )
    assert refused["last"] == FAILED_TO_FETCH, refused
    # The refused probe reached the server and got its 200: a CORS block, not an outage.
    assert api.wait_for_requests(refused_probe, [("GET", 200)], n=refused["attempts"]) == [
        ("GET", 200)
    ], api.log()
    assert remove_latency <= PROPAGATION_LIMIT, (
        f"[{api.kind}] `origin remove` took {remove_latency:.2f}s to be enforced "
        f"(limit {PROPAGATION_LIMIT}s, {refused['attempts']} attempts); "
        f"`origin add` took {add_latency:.2f}s"
    )
    print(
        f"\n[{api.kind}] propagation: origin add enforced after {add_latency:.2f}s "
        f"({allowed['attempts']} fetches), origin remove after {remove_latency:.2f}s "
        f"({refused['attempts']} fetches), measured from the CLI's exit; the CLI processes "
        f"ran {added_at - add_started:.2f}s and {removed_at - remove_started:.2f}s"
    )
