"""The active draft through the API: show, import, report, promote and discard, with
If-Match on the draft's version, as ``corsadmin draft ...`` does them."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.support.api import PARTNER, Api, audit_actors, fields, problem, seed, stored, writer

NARROWER = {"corsadmin": 1, "policies": [{**PARTNER, "origins": ["https://b.example"]}]}


@pytest.fixture
def api(app: Flask) -> Api:
    return writer(app)


def test_no_draft_is_404_everywhere(app: Flask, api: Api) -> None:
    for method, path in [
        ("GET", "/draft"),
        ("GET", "/draft/report"),
        ("POST", "/draft/promote"),
        ("POST", "/draft/discard"),
    ]:
        body = problem(api.call(method, path, headers={"If-Match": "*"}), 404)
        assert body["detail"] == "there is no active draft"


def test_import_show_and_report_a_draft_leaves_the_live_policy_alone(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    live = api.get("/document").get_data()
    response = api.post("/draft/import", json={"document": NARROWER, "reason": "partner moves"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["policies"], body["version"]) == (["partner"], 1)
    assert body["message"] == f"draft {body['draft']} (version 1) proposes changes to: partner"
    assert response.headers["ETag"] == '"1"'
    assert api.get("/document").get_data() == live
    shown = api.get("/draft")
    assert shown.headers["ETag"] == '"1"'
    draft = shown.get_json()
    assert (draft["reason"], draft["created_by"]) == ("partner moves", "token:ci")
    assert draft["diff"][0]["origins"] == {
        "added": ["https://b.example"],
        "removed": ["https://a.example"],
        "changed": [],
    }
    report = api.get("/draft/report").get_json()
    assert report["draft"]["id"] == body["draft"]
    assert report["history"]["policies"] == ["partner"]
    assert audit_actors(app, 1) == [("token:ci", "draft.save")]


def test_draft_import_refusals_name_the_field(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    before = stored(app)
    errors = fields(api.post("/draft/import", json={"document": {"corsadmin": 2, "policies": []}}))
    assert errors == {"document.corsadmin": "must be 1 (the format of this document)"}
    errors = fields(api.post("/draft/import", json={"document": NARROWER, "reason": "x" * 5000}))
    assert set(errors) == {"reason"}
    assert stored(app) == before


@pytest.mark.parametrize("action", ["promote", "discard"])
def test_promote_and_discard_need_if_match_on_the_drafts_version(
    app: Flask, api: Api, action: str
) -> None:
    seed(app, PARTNER)
    api.post("/draft/import", json={"document": NARROWER})
    api.post("/draft/import", json={"document": NARROWER, "reason": "again"})  # version 2
    before = stored(app)
    assert problem(api.post(f"/draft/{action}"), 428)
    stale = problem(api.post(f"/draft/{action}", headers={"If-Match": '"1"'}), 412)
    assert "your version 1, now 2" in stale["detail"]
    assert stored(app) == before


def test_promote_makes_the_draft_live_as_the_token(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    etag = api.post("/draft/import", json={"document": NARROWER}).headers["ETag"]
    response = api.post("/draft/promote", headers={"If-Match": etag})
    assert response.status_code == 200
    body = response.get_json()
    assert body["policies"] == ["partner"]
    assert body["message"].startswith(f"promoted draft {body['draft']} at revision ")
    assert body["message"].endswith(": changed partner")
    assert api.get("/policies/partner").get_json()["policy"]["origins"] == ["https://b.example"]
    assert ("token:ci", "draft.promote") in audit_actors(app, 3)
    assert problem(api.get("/draft"), 404)


def test_discard_drops_the_draft(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    api.post("/draft/import", json={"document": NARROWER})
    live = api.get("/document").get_data()
    response = api.post("/draft/discard", headers={"If-Match": "*"})
    body = response.get_json()
    assert body["message"] == f"discarded draft {body['draft']}; the live policies are unchanged"
    assert api.get("/document").get_data() == live
    assert audit_actors(app, 1) == [("token:ci", "draft.discard")]


def test_promote_is_refused_when_the_live_policy_moved(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    api.post("/draft/import", json={"document": NARROWER})
    api.post("/policies/partner/origins", json={"origin": "https://c.example"})
    before = stored(app)
    body = problem(api.post("/draft/promote", headers={"If-Match": "*"}), 409)
    assert body["type"] == "urn:corsadmin:problem:conflict"
    assert body["detail"].startswith("policy 'partner' changed since the draft was made")
    assert stored(app) == before
