"""Review status, refused origins and the audit log through the API: what the admin
screens compute, as JSON, with the same bounds; the audit log filtered and paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.admin import queries
from corsadmin.admin.settings import review_settings
from corsadmin.db import review as review_reads
from corsadmin.db.models import utcnow
from tests.support.api import PARTNER, Api, fields, seed, writer


@pytest.fixture
def api(app: Flask) -> Api:
    return writer(app)


def test_review_lists_what_the_review_screen_lists(app: Flask, api: Api) -> None:
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    seed(
        app,
        {
            **PARTNER,
            "credentials": True,
            "origins": ["https://a.example", {"origin": "https://t.example", "expires": soon}],
        },
        {"name": "open", "path": "/open/**", "origins": ["*", "http://plain.example"]},
        {
            "name": "lan",
            "path": "/lan/**",
            "origins": ["https://l.example"],
            "private_network": True,
        },
    )
    body = api.get("/review").get_json()
    with app.app_context():
        report, totals = review_reads.review_report(
            CorsAdmin.state(app).db.session, utcnow(), review_settings()
        )
    assert body["totals"] == {
        "due": totals.due,
        "expiring": totals.expiring,
        "stale": totals.stale,
        "risky": totals.risky,
        "policies": 3,
    }
    assert [(f["policy"], f["origin"], f["expiry"]) for f in body["expiring"]] == [
        ("partner", "https://t.example", "expiring")
    ]
    assert sorted((f["policy"], f["origin"]) for f in body["risky_rules"]) == sorted(
        (f.policy, f.rule.origin) for f in report.risky_rules
    )
    assert ("open", "*") in {(f["policy"], f["origin"]) for f in body["risky_rules"]}
    # partner: credentials with the default '*' request headers (any header reflected)
    risks = {p["policy"]: [r["code"] for r in p["risks"]] for p in body["risky_policies"]}
    assert risks == {"lan": ["private-network"], "partner": ["any-header-credentials"]}
    assert body["limit"] == review_reads.REVIEW_LIST_LIMIT
    assert body["settings"] == {"stale_after_days": 30, "expiring_within_days": 14}


def test_refused_lists_refused_origins_and_which_are_allowed_since(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    client = app.test_client()
    for origin in ("https://late.example", "https://late.example", "https://never.example"):
        client.get("/api/status", headers={"Origin": origin})
    with app.app_context():
        CorsAdmin.state(app).flush_usage(force=True)
    api.post("/policies/partner/origins", json={"origin": "https://late.example"})
    body = api.get("/refused").get_json()
    assert body["limit"] == queries.REFUSED_LIMIT
    rows = {r["origin"]: r for r in body["refused"]}
    assert set(rows) == {"https://late.example", "https://never.example"}
    late = rows["https://late.example"]
    assert (late["policy"], late["count"], late["kind"], late["policy_exists"]) == (
        "partner",
        2,
        "origin",
        True,
    )
    assert late["now_allowed_by"] == "https://late.example"
    assert (late["example_method"], late["example_path"]) == ("GET", "/api/status")
    assert rows["https://never.example"]["now_allowed_by"] is None
    assert api.get("/refused?policy=other").get_json()["refused"] == []
    assert len(api.get("/refused?policy=partner").get_json()["refused"]) == 2


def test_audit_is_filtered_by_policy_actor_and_action_and_paged(app: Flask, api: Api) -> None:
    seed(app, PARTNER, {"name": "other", "path": "/o/**", "origins": ["https://o.example"]})
    other = writer(app, "bot")
    for i in range(3):
        api.post("/policies/partner/origins", json={"origin": f"https://p{i}.example"})
    other.post("/policies/other/origins", json={"origin": "https://q.example"})
    events = api.get("/audit").get_json()["events"]
    assert [e["actor"] for e in events[:4]] == ["token:bot", "token:ci", "token:ci", "token:ci"]
    newest = events[0]
    assert newest["action"] == "origin.add"
    assert newest["policy"] == "other"
    assert newest["summary"] == "allowed origin https://q.example on other"
    assert newest["after"] == {"origins": ["https://q.example"]}
    by_actor = api.get("/audit", query_string={"actor": "token:ci"}).get_json()["events"]
    assert len(by_actor) == 3
    by_policy = api.get("/audit?policy=other").get_json()["events"]
    assert {e["policy"] for e in by_policy} == {"other"}
    creates = api.get("/audit?action=policy.create").get_json()["events"]
    assert sorted(e["policy"] for e in creates) == ["other", "partner"]
    first = api.get("/audit?limit=2").get_json()
    assert len(first["events"]) == 2
    second = api.get(f"/audit?limit=2&before={first['next']}").get_json()
    assert second["events"][0]["id"] < first["events"][-1]["id"]
    every = api.get("/audit?limit=500").get_json()
    assert every["next"] is None
    assert [e["id"] for e in every["events"]] == sorted(
        (e["id"] for e in every["events"]), reverse=True
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("before=99999999999999999999999", "before"),
        ("actor=%00", "actor"),
        ("policy=" + "x" * 201, "policy"),
        ("action=a%0Ab", "action"),
    ],
)
def test_audit_query_refusals_name_the_parameter(
    app: Flask, api: Api, query: str, field: str
) -> None:
    assert set(fields(api.get(f"/audit?{query}"))) == {field}


def test_refused_query_refusals_name_the_parameter(app: Flask, api: Api) -> None:
    assert set(fields(api.get("/refused?policy=a%00b"))) == {"policy"}
