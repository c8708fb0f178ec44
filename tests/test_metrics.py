"""Prometheus metrics (CORSADMIN_METRICS): decisions by policy and outcome, the
revision, snapshot loads and their failures, propagation; off by default; served
where the host mounts them (corsadmin.metrics)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from corsadmin import CorsAdmin
from corsadmin.engine.outcome import OUTCOMES
from corsadmin.metrics import metrics_view, metrics_wsgi_app
from corsadmin.runtime.metrics import process_metrics
from corsadmin.signals import snapshot_loaded
from corsadmin.state import state
from tests.support.host import close_app, make_app

REPO_ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://app.example"
METRICS_ON = {"CORSADMIN_METRICS": True}
_names = itertools.count()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def decisions(policy: str, outcome: str) -> float:
    return sample("corsadmin_decisions_total", policy=policy, outcome=outcome)


def new_policy(app: Flask, **fields: Any) -> str:
    """A policy with a name no other test used (the metrics are per process)."""
    name = f"metrics-{next(_names)}-{os.getpid()}"
    policy = {"name": name, "path": "/api/**", "origins": [ORIGIN], "methods": ["GET"]}
    with app.app_context():
        CorsAdmin.state(app).store("tester").create_policy({**policy, **fields})
    return name


def decision_series() -> list[dict[str, str]]:
    return [
        s.labels
        for family in REGISTRY.collect()
        if family.name == "corsadmin_decisions"
        for s in family.samples
        if s.name == "corsadmin_decisions_total"
    ]


@pytest.mark.parametrize("app_config", [METRICS_ON])
def test_real_requests_are_counted_by_policy_and_outcome(app: Flask) -> None:
    name = new_policy(app, allow_headers=["Content-Type"])
    before = {code: decisions(name, code) for code in OUTCOMES}
    no_policy = decisions("", "no-policy")
    client = app.test_client()
    client.get("/api/status", headers={"Origin": ORIGIN})
    client.get("/api/status", headers={"Origin": ORIGIN})
    client.get("/api/status", headers={"Origin": "https://evil.example"})
    client.get("/api/status", headers={"Origin": "https://app.example/not-an-origin"})
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}
    client.options("/api/items/1", headers=preflight)
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    client.options("/api/items/1", headers={**headers, "Access-Control-Request-Headers": "x-a"})
    pna = {**headers, "Access-Control-Request-Private-Network": "true"}
    client.options("/api/items/1", headers=pna)
    client.get("/api/status")  # no Origin: not a CORS request, not counted
    client.get("/elsewhere", headers={"Origin": ORIGIN})  # no policy covers it
    counted = {code: decisions(name, code) - before[code] for code in OUTCOMES}
    assert counted == {
        "allowed": 2,
        "origin-not-allowed": 1,
        "method-not-allowed": 1,
        "header-not-allowed": 1,
        "private-network-not-allowed": 1,
        "not-a-serialized-origin": 1,
        "no-policy": 0,
    }
    assert decisions("", "no-policy") - no_policy == 1


@pytest.mark.parametrize("app_config", [METRICS_ON])
def test_no_series_is_labelled_by_origin_or_path(app: Flask) -> None:
    name = new_policy(app)
    client = app.test_client()
    client.get("/api/status", headers={"Origin": "https://refused-0.example"})
    before = len(decision_series())
    for i in range(1, 200):  # a flood of new origins and paths
        client.get(f"/api/items/{i}", headers={"Origin": f"https://refused-{i}.example"})
    assert len(decision_series()) == before
    assert decisions(name, "origin-not-allowed") == 200
    for labels in decision_series():
        assert set(labels) == {"policy", "outcome"}
        assert labels["outcome"] in OUTCOMES


@pytest.mark.parametrize("app_config", [METRICS_ON])
def test_the_revision_and_the_loads_are_recorded(app: Flask) -> None:
    loads = sample("corsadmin_snapshot_load_seconds_count")
    new_policy(app)  # this process reloads at once
    revision = state(app).holder.snapshot.revision
    assert sample("corsadmin_revision", app=app.name) == revision
    assert sample("corsadmin_snapshot_load_seconds_count") == loads + 1
    assert sample("corsadmin_snapshot_load_seconds_sum") > 0


@pytest.mark.parametrize("app_config", [METRICS_ON])
def test_propagation_is_observed_when_another_app_changes_the_policy(
    app: Flask, database_url: str
) -> None:
    new_policy(app)
    other = make_app(
        database_url,
        CORSADMIN_METRICS=True,
        CORSADMIN_REFRESH_IN_BACKGROUND=False,
        CORSADMIN_REFRESH_INTERVAL=3600,
    )
    seen: list[dict[str, Any]] = []

    def receiver(_sender: object, **kwargs: Any) -> None:
        seen.append(kwargs)

    snapshot_loaded.connect(receiver, other)
    try:
        holder = state(other).holder
        holder.current()  # the first load: no propagation (nothing was enforced before)
        count = sample("corsadmin_propagation_seconds_count")
        total = sample("corsadmin_propagation_seconds_sum")
        new_policy(app, path="/other/**")  # committed by the first app, enforced there
        assert sample("corsadmin_propagation_seconds_count") == count + 1
        assert holder.check()  # the other app installs the newer revision
        assert sample("corsadmin_propagation_seconds_count") == count + 2
        observed = sample("corsadmin_propagation_seconds_sum") - total
        assert 0 <= observed < 3600
        assert seen[-1]["committed_at"] > 0
        assert seen[-1]["revision"] == holder.snapshot.revision
    finally:
        snapshot_loaded.disconnect(receiver, other)
        close_app(other)


def test_load_failures_are_counted(tmp_path: Path) -> None:
    app = Flask("failing")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'empty.sqlite'}",  # no corsadmin tables
        CORSADMIN_METRICS=True,
        CORSADMIN_REFRESH_IN_BACKGROUND=False,
        CORSADMIN_REFRESH_INTERVAL=0,
    )
    CorsAdmin(app)
    failures = sample("corsadmin_snapshot_load_failures_total")
    client = app.test_client()
    response = client.get("/api/x", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    client.get("/api/x", headers={"Origin": ORIGIN})
    assert sample("corsadmin_snapshot_load_failures_total") == failures + 2


@pytest.mark.parametrize("app_config", [{}])
def test_metrics_are_off_by_default(app: Flask) -> None:
    assert state(app).metrics is None
    name = new_policy(app)
    app.test_client().get("/api/status", headers={"Origin": ORIGIN})
    assert decisions(name, "allowed") == 0
    assert state(app).holder.snapshot.revision >= 1


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


OFF_APP = """
import json, sys, tempfile
from tests.support.host import make_host
host = make_host("sqlite:///" + tempfile.mkdtemp() + "/off.sqlite")
with host.app.app_context():
    host.cors.store("t", host.app).create_policy(
        {"name": "api", "path": "/api/**", "origins": ["https://app.example"]})
client = host.app.test_client()
client.get("/api/status", headers={"Origin": "https://app.example"})
client.get("/api/status", headers={"Origin": "https://evil.example"})
host.cors.stop(host.app)
print(json.dumps({"imported": "prometheus_client" in sys.modules}))
"""


def test_with_metrics_off_no_metric_is_registered() -> None:
    done = run_python(OFF_APP)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"imported": False}


MISSING_CLIENT = """
import sys
sys.modules["prometheus_client"] = None  # as if the extra were not installed
from flask import Flask
from corsadmin import CorsAdmin
app = Flask("x")
app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", CORSADMIN_METRICS=True)
CorsAdmin(app)
"""


def test_metrics_on_without_prometheus_client_fail_init_app_clearly() -> None:
    done = run_python(MISSING_CLIENT)
    assert done.returncode != 0
    assert "MetricsUnavailable" in done.stderr
    assert "CORSADMIN_METRICS" in done.stderr
    assert "corsadmin[metrics]" in done.stderr


def test_several_apps_share_one_set_of_metric_objects(tmp_path: Path) -> None:
    apps = [
        make_app(f"sqlite:///{tmp_path / f'{i}.sqlite'}", CORSADMIN_METRICS=True) for i in range(2)
    ]
    try:
        recorders = [state(app).metrics for app in apps]
        assert all(r is not None and r.metrics is process_metrics() for r in recorders)
    finally:
        for app in apps:
            close_app(app)


@pytest.mark.parametrize("app_config", [METRICS_ON])
def test_the_host_mounts_a_view_or_a_wsgi_app(app: Flask) -> None:
    assert "/metrics" not in {rule.rule for rule in app.url_map.iter_rules()}  # not by default
    app.add_url_rule("/metrics", view_func=metrics_view)
    name = new_policy(app)
    app.test_client().get("/api/status", headers={"Origin": ORIGIN})
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    line = f'corsadmin_decisions_total{{outcome="allowed",policy="{name}"}} 1.0'
    assert line in response.text
    served = DispatcherMiddleware(app.wsgi_app, {"/internal/metrics": metrics_wsgi_app()})
    body = b"".join(Client(served).get("/internal/metrics").response)
    assert line.encode() in body
    assert b"corsadmin_revision{" in body


def test_the_metrics_benchmark_runs_in_smoke_mode() -> None:
    """``bench.py --metrics`` (figures in benchmarks/RESULTS.md): it runs, measuring
    the same requests with metrics off and on (no assertion on the times here)."""
    done = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--metrics", "--quick"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines() if "|" in line]
    assert rows[2:] == ["GET, allowed", "preflight, allowed", "GET, refused"]
