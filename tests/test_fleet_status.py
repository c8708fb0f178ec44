"""``corsadmin status``: the fleet view on the command line, text and JSON, and its
exit status (0 all current, 1 some lagging or stale)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import CorsAdmin
from corsadmin.db import fleet as fleet_table
from corsadmin.engine.fleet import WorkerFacts
from corsadmin.state import state
from tests.support.admin import PREFIX
from tests.support.api import new_token, reader
from tests.support.remote import Remote, local
from tests.support.servers import serve_wsgi_in_thread

POLICY = {"name": "api", "path": "/api/**", "origins": ["https://a.example"]}


def current_revision(app: Flask, cors: CorsAdmin) -> tuple[int, float]:
    """A change, then the revision it made and when it committed."""
    with app.app_context():
        changes = cors.store("tester", app)
        changes.create_policy(POLICY)
        revision = changes.revision()
    view = state(app).fleet_view(fallback=False)
    assert view.revision == revision
    return revision, view.committed_at


def worker(pid: int, revision: int, committed_at: float, **changes: object) -> WorkerFacts:
    now = time.time()
    facts = WorkerFacts(
        host="web-<1>",
        pid=pid,
        started_at=now - 100,
        revision=revision,
        loaded_at=committed_at + 0.04,
        committed_at=committed_at,
        checked_at=now - 0.2,
        listening=True,
        interval=1.0,
        reported_at=now - 0.2,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def test_status_lists_every_live_process_and_exits_0_when_all_are_current(
    app: Flask, cors: CorsAdmin, runner: FlaskCliRunner
) -> None:
    revision, committed = current_revision(app, cors)
    engine = state(app).engine()
    fleet_table.report(engine, worker(11, revision, committed))
    fleet_table.report(engine, worker(12, revision, committed, listening=None))
    result = runner.invoke(args=["corsadmin", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"revision {revision}: enforced by 2 of 2 workers, 0.04 s after commit"
    )
    assert lines[1].split() == [
        "HOST", "PID", "REVISION", "STATUS", "LOADED", "AFTER", "COMMIT", "CHECKED", "LISTENING",
        "STARTED",
    ]  # fmt: skip
    assert lines[2].split()[:4] == ["web-<1>", "11", str(revision), "current"]
    assert "0.04 s" in lines[2]
    assert lines[2].split()[-4] == "yes"
    assert lines[3].split()[-4] == "-"  # no notifications on its database
    assert lines[-1] == "2 processes: 2 current, 0 lagging, 0 stale"


def test_status_flags_lagging_and_stale_processes_and_exits_1(
    app: Flask, cors: CorsAdmin, runner: FlaskCliRunner
) -> None:
    revision, committed = current_revision(app, cors)
    engine = state(app).engine()
    long_ago = committed - 600
    fleet_table.report(engine, worker(21, revision, committed))
    # Still on the revision before, ten minutes after the change committed (as seen now).
    fleet_table.report(engine, worker(22, revision - 1, long_ago, interval=0.0))
    fleet_table.report(engine, worker(23, revision, committed, checked_at=time.time() - 300))
    time.sleep(1.1)  # past the lagging grace of an interval-0 process (3 x 0 + 1 s)
    result = runner.invoke(args=["corsadmin", "status"])
    assert result.exit_code == 1, result.output
    by_pid = {line.split()[1]: line.split() for line in result.output.splitlines()[2:-1]}
    assert by_pid["21"][3] == "current"
    assert by_pid["22"][3] == "LAGGING"
    assert by_pid["23"][3] == "STALE"
    assert result.output.splitlines()[0].startswith(
        f"revision {revision}: enforced by 2 of 3 workers so far"
    )
    assert result.output.splitlines()[-1] == "3 processes: 1 current, 1 lagging, 1 stale"


def test_status_json_has_the_rows_the_statuses_and_the_summary(
    app: Flask, cors: CorsAdmin, runner: FlaskCliRunner
) -> None:
    revision, committed = current_revision(app, cors)
    fleet_table.report(state(app).engine(), worker(31, revision, committed))
    result = runner.invoke(args=["corsadmin", "status", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["revision"] == revision
    assert document["reachable"] is True
    assert document["all_current"] is True
    assert document["counts"] == {"current": 1, "lagging": 0, "stale": 0}
    assert document["summary"]["text"].startswith(f"revision {revision}: enforced by 1 of 1")
    (row,) = document["workers"]
    assert (row["host"], row["pid"], row["status"], row["listening"]) == (
        "web-<1>", 31, "current", True,
    )  # fmt: skip
    assert abs(row["propagation"] - 0.04) < 1e-3
    assert row["loaded_at"].endswith("Z")
    assert row["committed_at"] == document["committed_at"]


def test_status_with_no_process_reporting_says_so(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["corsadmin", "status"])
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first.startswith("revision 0: enforced by 0 of 0 workers so far")
    assert second == "no process has reported lately (they report once they serve requests)"


NO_REPORTS = {"CORSADMIN_FLEET_REPORT": False}  # only the rows the test writes


@pytest.mark.parametrize("app_config", [NO_REPORTS])
def test_the_api_lists_the_workers_to_a_read_token(app: Flask, cors: CorsAdmin) -> None:
    revision, committed = current_revision(app, cors)
    fleet_table.report(state(app).engine(), worker(51, revision, committed))
    response = reader(app).get("/workers")
    assert response.status_code == 200
    document = response.get_json()
    assert [(w["pid"], w["status"]) for w in document["workers"]] == [(51, "current")]
    assert document["all_current"] is True
    assert app.test_client().get(f"{PREFIX}/api/v1/workers").status_code == 401


@pytest.mark.parametrize("app_config", [NO_REPORTS])
def test_status_with_url_prints_the_same_fleet_as_on_the_database(
    app: Flask, cors: CorsAdmin, runner: FlaskCliRunner
) -> None:
    token = new_token(app, "ops", "read")
    revision, committed = current_revision(app, cors)
    engine = state(app).engine()
    fleet_table.report(engine, worker(61, revision, committed))
    fleet_table.report(engine, worker(62, revision, committed, checked_at=time.time() - 300))
    here = local(runner, "status")
    with serve_wsgi_in_thread(app) as base:
        there = Remote(f"{base}{PREFIX}", token).run("status")
    assert (there.code, here.code) == (1, 1)
    assert there.err == here.err == ""

    def without_ages(out: str) -> list[list[str]]:
        return [line.split()[:4] for line in out.splitlines()]

    assert without_ages(there.out) == without_ages(here.out)
    assert there.out.splitlines()[-1] == "2 processes: 1 current, 0 lagging, 1 stale"
