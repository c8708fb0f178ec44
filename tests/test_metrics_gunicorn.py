"""Metrics under gunicorn's several workers (prometheus_client's multiprocess mode):
the scrape sums the decisions of every worker and shows each one's revision."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import (
    LOOPBACK,
    burst,
    free_port,
    gunicorn_command,
    log_tail,
    serve_process,
)
from tests.test_boot_load import ORIGIN, prepared_database

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
#: Requests sent at most while waiting for both workers to answer one (in bursts of
#: slow requests sent together, which reach different workers).
MAX_REQUESTS = 100

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(port: int, path: str, origin: str | None = None) -> bytes:
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}")
    if origin is not None:
        request.add_header("Origin", origin)
    with _opener.open(request, timeout=10) as response:
        body: bytes = response.read()
        return body


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = get(port, "/metrics").decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def revision_pids(port: int) -> set[int]:
    return {int(labels["pid"]) for labels, _value in scrape(port)["corsadmin_revision"]}


def wait_for_series_to_go(port: int, pid: int, deadline: float = 20.0) -> bool:
    """True once the scrape has no revision series of ``pid`` (an exited worker)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if pid not in revision_pids(port):
                return True
        except OSError:
            pass  # no worker free to answer yet
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_the_scrape_sums_every_worker_and_shows_each_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.sqlite'}"
    prepared_database(url)  # one policy, "api", at revision 1
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        **os.environ,
        "METRICS_DATABASE_URL": url,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    conf = ["-c", "tests/support/metrics_gunicorn_conf.py"]
    cmd = gunicorn_command(WORKERS, port, "tests.support.metrics_app:create_app()", *conf)
    with serve_process(
        cmd, port=port, env=env, cwd=REPO_ROOT, ready_path="/metrics", log_path=log_path
    ):
        pids: set[int] = set()
        sent = 0
        while len(pids) < WORKERS and sent < MAX_REQUESTS:
            answers = burst(lambda: get(port, "/api/slow", ORIGIN), 2 * WORKERS)
            pids.update(json.loads(body)["pid"] for body in answers)
            sent += len(answers)
        get(port, "/api/x", "https://evil.example")
        get(port, "/api/x")  # no Origin: not counted
        assert len(pids) == WORKERS, log_tail(log_path)
        found = scrape(port)
        victim = min(pids)
        os.kill(victim, signal.SIGTERM)  # the master starts another; child_exit forgets it
        assert wait_for_series_to_go(port, victim), log_tail(log_path)
    decisions = {
        (labels["policy"], labels["outcome"]): value
        for labels, value in found["corsadmin_decisions_total"]
    }
    assert decisions == {("api", "allowed"): sent, ("api", "origin-not-allowed"): 1}
    revisions = {labels["pid"]: value for labels, value in found["corsadmin_revision"]}
    assert {int(pid) for pid in revisions} >= pids
    assert all(revisions[str(pid)] == 1 for pid in pids)
    assert all(labels["app"] == "served" for labels, _ in found["corsadmin_revision"])
    load_counts = [value for _labels, value in found["corsadmin_snapshot_load_seconds_count"]]
    assert sum(load_counts) >= WORKERS  # each worker loaded its snapshot
