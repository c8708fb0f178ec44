"""The API's policies and origin rules: the same store calls as the CLI, ETag and If-Match,
problems naming the field, every change audited as the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from corsadmin.admin.queries import MAX_CURSOR_LENGTH
from corsadmin.limits import MAX_ORIGIN_PAGE
from tests.support.api import (
    PARTNER,
    Api,
    audit_actors,
    fields,
    problem,
    reader,
    seed,
    stored,
    writer,
)


@pytest.fixture
def api(app: Flask) -> Api:
    return writer(app)


def test_list_is_empty_then_names_every_policy_with_its_rules_counted(app: Flask, api: Api) -> None:
    assert api.get("/policies").get_json() == {"policies": []}
    seed(app, PARTNER, {"name": "open", "path": "/open/**", "origins": ["*"]})
    listed = api.get("/policies").get_json()["policies"]
    assert [(p["name"], p["path"], p["origin_count"], p["version"]) for p in listed] == [
        ("open", "/open/**", 1, 1),
        ("partner", "/api/**", 1, 1),
    ]


def test_create_returns_the_policy_its_etag_and_location_and_audits_the_token(
    app: Flask, api: Api
) -> None:
    response = api.post("/policies", json={**PARTNER, "credentials": True})
    assert response.status_code == 201
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == "/corsadmin/api/v1/policies/partner"
    body = response.get_json()
    assert body["version"] == 1
    assert body["created_by"] == "token:ci"
    assert body["policy"]["credentials"] is True
    assert body["policy"]["origins"] == ["https://a.example"]
    assert body["policy"]["methods"][:3] == ["GET", "HEAD", "POST"]  # the defaults
    assert audit_actors(app, 1) == [("token:ci", "policy.create")]


def test_create_refusals_name_the_field_with_the_stores_message(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    errors = fields(api.post("/policies", json={**PARTNER, "path": "/api/**"}))
    assert errors == {
        "name": "a policy named 'partner' exists already",
        "path": "policy 'partner' already covers '/api/**'",
    }
    errors = fields(
        api.post(
            "/policies", json={"name": "x", "path": "nope", "origins": ["https://a/b"], "y": 1}
        )
    )
    assert set(errors) == {"path", "origins[0]", "y"}
    assert errors["y"] == "unknown field"
    assert set(fields(api.post("/policies", json={"path": "/a"}))) == {"name", "origins"}


def test_get_one_policy_with_every_rule_and_its_etag(app: Flask, api: Api) -> None:
    seed(app, {**PARTNER, "origins": [{"origin": "https://b.example", "note": "ticket 7"}]})
    response = api.get("/policies/partner")
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    body = response.get_json()
    assert body["policy"]["origins"] == [{"origin": "https://b.example", "note": "ticket 7"}]
    assert body["created_by"] == "seed"
    assert problem(api.get("/policies/nope"), 404)["detail"] == "no policy named 'nope'"
    # A name no policy can have (here a NUL) is not found, never sent to the database.
    assert problem(api.get("/policies/a%00b"), 404)["type"] == "urn:corsadmin:problem:not-found"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_changing_a_policy_needs_if_match_else_428_and_nothing_changes(
    app: Flask, api: Api, method: str
) -> None:
    seed(app, PARTNER)
    before = stored(app)
    response = api.call(method, "/policies/partner", json={**PARTNER, "credentials": True})
    assert "If-Match" in problem(response, 428)["detail"]
    assert stored(app) == before


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_stale_if_match_is_412_and_nothing_changes(app: Flask, api: Api, method: str) -> None:
    seed(app, PARTNER)
    api.post("/policies/partner/origins", json={"origin": "https://b.example"})  # version 2
    before = stored(app)
    response = api.call(
        method, "/policies/partner", json={**PARTNER, "enabled": False}, headers={"If-Match": '"1"'}
    )
    body = problem(response, 412)
    assert body["type"] == "urn:corsadmin:problem:stale"
    assert "your version 1, now 2" in body["detail"]
    assert stored(app) == before


def test_a_malformed_if_match_is_400_naming_it(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    response = api.patch("/policies/partner", json={"enabled": False}, headers={"If-Match": "1"})
    assert set(fields(response)) == {"If-Match"}


def test_patch_changes_the_given_fields_and_moves_the_etag(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    etag = api.get("/policies/partner").headers["ETag"]
    response = api.patch(
        "/policies/partner", json={"max_age": 600, "methods": ["GET"]}, headers={"If-Match": etag}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    policy = response.get_json()["policy"]
    assert (policy["max_age"], policy["methods"], policy["origins"]) == (
        600,
        ["GET"],
        ["https://a.example"],
    )
    assert response.get_json()["updated_by"] == "token:ci"
    assert audit_actors(app, 1) == [("token:ci", "policy.update")]
    errors = fields(api.patch("/policies/partner", json={}, headers={"If-Match": '"2"'}))
    assert errors == {"": "nothing to change: give at least one field"}
    errors = fields(api.patch("/policies/partner", json={"max_age": -1}, headers={"If-Match": "*"}))
    assert set(errors) == {"max_age"}


def test_put_replaces_the_whole_policy_left_out_fields_take_their_defaults(
    app: Flask, api: Api
) -> None:
    seed(app, {**PARTNER, "credentials": True, "max_age": 60})
    response = api.put(
        "/policies/partner",
        json={"path": "/v2/**", "origins": ["https://c.example"]},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.get_json()
    policy = response.get_json()["policy"]
    assert (policy["name"], policy["path"], policy["credentials"], policy["max_age"]) == (
        "partner",
        "/v2/**",
        False,
        None,
    )
    assert policy["origins"] == ["https://c.example"]


def test_put_with_another_name_renames_and_says_where(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    response = api.put(
        "/policies/partner", json={**PARTNER, "name": "renamed"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 200
    assert response.headers["Location"].endswith("/policies/renamed")
    assert api.get("/policies/partner").status_code == 404


def test_delete_removes_the_policy(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    response = api.delete("/policies/partner", headers={"If-Match": '"1"'})
    assert response.status_code == 204
    assert response.get_data() == b""
    assert api.get("/policies").get_json() == {"policies": []}
    assert audit_actors(app, 1) == [("token:ci", "policy.delete")]
    assert problem(api.delete("/policies/partner", headers={"If-Match": "*"}), 404)


# --- origin rules -----------------------------------------------------------------------


def test_add_origin_says_allowed_changed_or_unchanged_as_the_cli(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    added = api.post("/policies/partner/origins", json={"origin": "HTTPS://B.example"})
    assert added.status_code == 201
    body = added.get_json()
    assert body["outcome"] == "allowed"
    assert body["origin"] == {"origin": "https://b.example", "note": "", "expires": None}
    assert body["message"] == (
        "allowed https://b.example on partner; every worker checks for it within 0.2s"
        ", the fleet view shows who enforces it"
    )
    assert added.headers["ETag"] == '"2"'
    changed = api.post(
        "/policies/partner/origins", json={"origin": "https://b.example", "note": "ticket 9"}
    )
    assert changed.status_code == 200
    assert changed.get_json()["message"].startswith(
        "changed https://b.example on partner: note '' -> 'ticket 9'"
    )
    same = api.post("/policies/partner/origins", json={"origin": "https://b.example"})
    assert same.get_json()["outcome"] == "unchanged"
    assert same.get_json()["origin"]["note"] == "ticket 9"  # kept: not given
    assert audit_actors(app, 2) == [("token:ci", "origin.add"), ("token:ci", "origin.add")]


def test_add_origin_refusals_name_the_field(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    before = stored(app)
    assert set(fields(api.post("/policies/partner/origins", json={"note": "x"}))) == {"origin"}
    errors = fields(api.post("/policies/partner/origins", json={"origin": "https://a/b"}))
    assert set(errors) == {"origin"}
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    errors = fields(
        api.post("/policies/partner/origins", json={"origin": "https://c", "expires": past})
    )
    assert errors == {"expires": "is in the past"}
    errors = fields(api.post("/policies/partner/origins", json={"origin": 7, "colour": "red"}))
    assert errors == {"colour": "unknown field", "origin": "must be a string"}
    assert problem(api.post("/policies/nope/origins", json={"origin": "https://c"}), 404)
    assert stored(app) == before


def test_an_origin_change_checks_if_match_when_given(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    before = stored(app)
    response = api.post(
        "/policies/partner/origins",
        json={"origin": "https://b.example"},
        headers={"If-Match": '"7"'},
    )
    assert problem(response, 412)
    assert stored(app) == before
    response = api.post(
        "/policies/partner/origins",
        json={"origin": "https://b.example"},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 201


def test_patch_origin_changes_note_and_expiry_of_a_rule_it_has(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    response = api.patch(
        "/policies/partner/origins",
        json={"origin": "https://a.example", "expires": later.isoformat(), "note": "trial"},
    )
    assert response.status_code == 200
    assert response.get_json()["origin"]["expires"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
    response = api.patch(
        "/policies/partner/origins", json={"origin": "https://a.example", "expires": None}
    )
    assert response.get_json()["origin"] == {
        "origin": "https://a.example",
        "note": "trial",
        "expires": None,
    }
    missing = api.patch("/policies/partner/origins", json={"origin": "https://z", "note": ""})
    assert problem(missing, 404)["detail"] == "policy 'partner' has no origin rule 'https://z'"
    errors = fields(api.patch("/policies/partner/origins", json={"origin": "https://a.example"}))
    assert errors == {"": "nothing to change: give note or expires"}


def test_remove_origin_names_it_in_the_query(app: Flask, api: Api) -> None:
    seed(
        app,
        {**PARTNER, "origins": ["https://a.example", "re:^https://app-[0-9]+\\.example\\.com$"]},
    )
    response = api.delete(
        "/policies/partner/origins",
        query_string={"origin": "re:^https://app-[0-9]+\\.example\\.com$"},
    )
    assert response.status_code == 204
    assert api.get("/policies/partner").get_json()["policy"]["origins"] == ["https://a.example"]
    assert audit_actors(app, 1) == [("token:ci", "origin.remove")]
    gone = api.delete("/policies/partner/origins", query_string={"origin": "https://zz.example"})
    assert (
        problem(gone, 404)["detail"] == "policy 'partner' has no origin rule 'https://zz.example'"
    )
    assert fields(api.delete("/policies/partner/origins")) == {
        "origin": "is required (the query parameter)"
    }
    junk = api.delete("/policies/partner/origins", query_string={"origin": "https://a\x00"})
    assert set(fields(junk)) == {"origin"}


# --- a page of origin rules ------------------------------------------------------------


def test_origin_pages_list_every_rule_once_in_the_full_listings_order(app: Flask) -> None:
    origins = [f"https://p{i:03}.example" for i in range(250)][::-1]
    seed(app, {"name": "big", "path": "/big/**", "origins": origins, "max_age": 60})
    api = reader(app)  # reading needs no write scope
    everything = api.get("/policies/big").get_json()
    first = api.get("/policies/big/origins")
    assert first.status_code == 200
    assert first.headers["ETag"] == '"1"'
    page = first.get_json()
    assert page["origin_count"] == 250
    assert len(page["rules"]) == 100  # the default limit
    settings = {k: v for k, v in everything["policy"].items() if k != "origins"}
    assert page["policy"] == settings
    assert "origins" not in page["policy"]
    assert page["version"] == everything["version"]
    seen = list(page["rules"])
    while page["next"] is not None:
        page = api.get("/policies/big/origins", query_string={"after": page["next"], "limit": 70})
        assert page.status_code == 200
        page = page.get_json()
        assert len(page["rules"]) <= 70
        seen += page["rules"]
    assert seen == everything["rules"]  # each once, in the same order
    last = api.get("/policies/big/origins", query_string={"after": seen[-1]["origin"]})
    assert last.get_json()["rules"] == []
    assert last.get_json()["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_ORIGIN_PAGE + 1)}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "https://a.example\x00"}, "after"),
        ({"after": "x" * (MAX_CURSOR_LENGTH + 1)}, "after"),
    ],
)
def test_an_origin_page_refuses_a_bad_limit_or_cursor_naming_it(
    app: Flask, query: dict[str, str], field: str
) -> None:
    seed(app, PARTNER)
    response = reader(app).get("/policies/partner/origins", query_string=query)
    assert field in fields(response)


def test_an_origin_page_of_a_missing_policy_is_404(app: Flask) -> None:
    problem(reader(app).get("/policies/nope/origins"), 404)
