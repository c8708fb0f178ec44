"""The Workers screen (the fleet view in the admin UI) and the line the page after a
change shows: how far the new revision got, from the table."""

from __future__ import annotations

import html
import os
import re
import time
from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.db import fleet as fleet_table
from corsadmin.engine.fleet import WorkerFacts
from corsadmin.state import state
from tests.support.admin import PREFIX, flashes, logged_in_client, partner_client, submit


def worker(pid: int, revision: int, **changes: object) -> WorkerFacts:
    now = time.time()
    facts = WorkerFacts(
        host="web-<script>x</script>",
        pid=pid,
        started_at=now - 3600,
        revision=revision,
        loaded_at=now - 30,
        committed_at=now - 30.25,
        checked_at=now - 0.3,
        listening=True,
        interval=1.0,
        reported_at=now - 0.3,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def rows(page: str) -> dict[str, str]:
    """The Workers table: pid -> the row's text."""
    found = re.findall(r'<tr class="worker worker-(\w+)">(.*?)</tr>', page, re.S)
    result = {}
    for status, row in found:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in row.split("</td>")]
        result[cells[1]] = f"{status}|" + "|".join(cells)
    return result


def test_the_workers_screen_lists_the_live_processes_flagged_and_escaped(
    app: Flask, cors: CorsAdmin
) -> None:
    client = partner_client(app, cors)  # a change: revision 1
    engine = state(app).engine()
    with app.app_context():
        revision = cors.store("reader", app).revision()
    fleet_table.report(engine, worker(41, revision))
    # On the revision before, with a refresh interval of 0: lagging 1 s after the change.
    old = worker(42, revision - 1, committed_at=None, listening=None, interval=0.0)
    fleet_table.report(engine, old)
    fleet_table.report(engine, worker(43, revision, checked_at=time.time() - 120))
    fleet_table.report(engine, worker(44, revision, reported_at=time.time() - 600))  # gone
    time.sleep(1.1)
    page = client.get(f"{PREFIX}/workers")
    assert page.status_code == 200
    text = page.text
    assert "web-<script>" not in text
    assert "web-&lt;script&gt;x&lt;/script&gt;" in text
    found = rows(text)
    assert set(found) == {"41", "42", "43"}
    assert found["41"].startswith("current|web-<script>x</script>|41|")
    assert "|0.25 s|" in found["41"]
    assert "|yes|" in found["41"]
    assert found["42"].startswith("lagging|")
    assert "|polling|" in found["42"]
    assert found["43"].startswith("stale|")
    assert "2 min ago" in found["43"]
    assert f"Revision {revision}: enforced by 2 of 3 workers so far." in text
    assert "3 processes: 1 current, 1 lagging, 1 stale" in text
    assert 'aria-current="page">Workers</a>' in text


def test_the_workers_screen_needs_an_operator(app: Flask) -> None:
    assert app.test_client().get(f"{PREFIX}/workers").status_code in (302, 401, 403)


@pytest.mark.parametrize("app_config", [{"CORSADMIN_FLEET_HEARTBEAT": 0.3}])
def test_when_the_table_cannot_be_read_the_screen_shows_this_process_from_memory(
    app: Flask,
) -> None:
    client = logged_in_client(app)
    client.get("/api/status")  # this process starts its refresh thread, and reports
    deadline = time.monotonic() + 10
    while not state(app).fleet.reports and time.monotonic() < deadline:
        time.sleep(0.05)
    with state(app).engine().begin() as connection:
        connection.execute(sa.text("DROP TABLE corsadmin_worker"))
    page = client.get(f"{PREFIX}/workers")
    assert page.status_code == 200
    assert "The database cannot be read" in page.text
    found = rows(page.text)
    assert list(found) == [str(os.getpid())]
    assert found[str(os.getpid())].startswith("current|")  # it checked a moment ago
    assert "this process" in found[str(os.getpid())]


def test_the_page_after_a_change_says_how_far_it_got(app: Flask, cors: CorsAdmin) -> None:
    client = partner_client(app, cors)
    client.get("/api/status")  # the refresh thread starts and reports this process
    deadline = time.monotonic() + 10
    while not state(app).fleet.reports and time.monotonic() < deadline:
        time.sleep(0.05)
    response = submit(
        client,
        f"{PREFIX}/policies/partner",
        f"{PREFIX}/policies/partner/origins",
        origin="https://new.example",
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert flashes(page)[0].startswith("Saved: https://new.example is allowed on partner.")
    with app.app_context():
        revision = cors.store("reader", app).revision()
    line = re.search(r'<p class="fleet-line[^"]*" role="status">(.*?)</p>', page, re.S)
    assert line is not None, page
    text = html.unescape(re.sub(r"<[^>]+>", "", line.group(1)))
    assert re.fullmatch(
        rf"Revision {revision}: enforced by 1 of 1 worker, \d+\.\d\d s after commit\. Workers",
        text,
    ), text
    again = client.get(f"{PREFIX}/policies/partner").text
    assert "fleet-line" not in again  # only on the page after a change
