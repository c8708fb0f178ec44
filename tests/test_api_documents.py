"""The policy document through the API (export; import merge or replace; dry run with the
diff) and check (the same explanation as ``corsadmin check``)."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import CorsAdmin
from corsadmin.db.export import export_text
from tests.support.api import PARTNER, Api, audit_actors, fields, problem, seed, stored, writer

OTHER = {"name": "other", "path": "/other/**", "origins": ["https://o.example"]}


@pytest.fixture
def api(app: Flask) -> Api:
    return writer(app)


def test_export_is_what_corsadmin_export_prints(app: Flask, api: Api) -> None:
    seed(app, PARTNER, OTHER)
    response = api.get("/document")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    with app.app_context():
        expected = "".join(export_text(CorsAdmin.state(app).db.session))
    assert response.get_data(as_text=True) == expected
    assert [p["name"] for p in response.get_json()["policies"]] == ["other", "partner"]


def test_import_merges_by_name_and_reports_as_the_cli(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    document = {"corsadmin": 1, "policies": [{**PARTNER, "credentials": True}, OTHER]}
    response = api.post("/document", json={"document": document})
    assert response.status_code == 200
    body = response.get_json()
    assert body["dry_run"] is False
    assert body["report"] == {
        "created": ["other"],
        "updated": ["partner"],
        "deleted": [],
        "unchanged": [],
    }
    assert body["message"] == "imported the document: 1 created, 1 updated, 0 deleted, 0 unchanged"
    assert set(audit_actors(app, 2)) == {
        ("token:ci", "policy.create"),
        ("token:ci", "policy.update"),
    }


def test_import_replace_deletes_what_the_document_leaves_out(app: Flask, api: Api) -> None:
    seed(app, PARTNER, OTHER)
    response = api.post(
        "/document", json={"document": {"corsadmin": 1, "policies": [OTHER]}, "mode": "replace"}
    )
    assert response.get_json()["report"]["deleted"] == ["partner"]
    assert [p["name"] for p in api.get("/policies").get_json()["policies"]] == ["other"]


def test_dry_run_returns_the_diff_and_writes_nothing(
    app: Flask, api: Api, runner: FlaskCliRunner, tmp_path: object
) -> None:
    seed(app, PARTNER, OTHER)
    before = stored(app)
    document = {"corsadmin": 1, "policies": [{**PARTNER, "origins": ["https://b.example"]}]}
    response = api.post(
        "/document", json={"document": document, "mode": "replace", "dry_run": True}
    )
    assert stored(app) == before
    body = response.get_json()
    assert body["dry_run"] is True
    assert [(c["name"], c["action"]) for c in body["changes"]] == [
        ("other", "delete"),
        ("partner", "update"),
    ]
    assert body["changes"][1]["origins"] == {
        "added": ["https://b.example"],
        "removed": ["https://a.example"],
        "changed": [],
    }
    assert body["message"] == "dry run: nothing was written (2 policies would change)"
    path = f"{tmp_path}/doc.json"
    with open(path, "w") as out:
        out.write(json.dumps(document))
    printed = runner.invoke(args=["corsadmin", "import", path, "--replace", "--dry-run"])
    assert printed.output.splitlines()[:-1] == body["lines"]  # the CLI's lines, as they are


def test_import_refusals_name_the_field_inside_the_document(app: Flask, api: Api) -> None:
    seed(app, PARTNER)
    before = stored(app)
    bad = {"corsadmin": 1, "policies": [{**OTHER, "path": "/api/**"}, {"name": "x"}]}
    errors = fields(api.post("/document", json={"document": bad}))
    assert errors["document.policies[1].path"] == "is required"
    assert "document.policies[0].path" not in errors  # a path clash is the store's, below
    errors = fields(api.post("/document", json={"document": [], "mode": "all", "dry_run": 1}))
    assert errors == {
        "mode": "must be one of 'merge', 'replace'",
        "dry_run": "must be true or false",
    }
    errors = fields(api.post("/document", json={"document": []}))
    assert errors == {"document": "a policy document must be a JSON object"}
    assert fields(api.post("/document", json={})) == {"document": "is required"}
    clash = {"corsadmin": 1, "policies": [{**OTHER, "path": "/api/**"}]}
    errors = fields(api.post("/document", json={"document": clash}))
    assert "already covers '/api/**'" in errors["document.policies[0].path"]
    assert stored(app) == before


# --- check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "args"),
    [
        ("https://a.example", ["--method", "PUT", "--header", "X-Token"]),
        ("https://evil.example", []),
        ("https://a.example", ["--private-network"]),
    ],
)
def test_check_explains_as_corsadmin_check(
    app: Flask, runner: FlaskCliRunner, origin: str, args: list[str]
) -> None:
    seed(app, PARTNER)
    request = {"origin": origin, "path": "/api/items"}
    if "--method" in args:
        request |= {"method": "PUT", "headers": ["X-Token"]}
    if "--private-network" in args:
        request["private_network"] = True
    body = writer(app).post("/check", json=request).get_json()
    printed = runner.invoke(args=["corsadmin", "check", origin, "/api/items", *args])
    assert body["explanation"] == printed.output.splitlines()
    assert body["allowed"] is (printed.exit_code == 0)
    assert body["policy"] == "partner"
    assert (body["preflight"] is None) is (not args)


def test_check_of_a_path_no_policy_covers(app: Flask, api: Api) -> None:
    body = api.post("/check", json={"origin": "https://a.example", "path": "/x"}).get_json()
    assert (body["allowed"], body["policy"], body["response"]["code"]) == (
        False,
        None,
        "not-covered",
    )


def test_check_refusals_name_the_field(app: Flask, api: Api) -> None:
    assert fields(api.post("/check", json={})) == {
        "origin": "is required",
        "path": "is required",
    }
    errors = fields(api.post("/check", json={"origin": "https://a", "path": "api"}))
    assert errors == {"path": "must start with '/' (the request path)"}
    errors = fields(api.post("/check", json={"origin": "https://a", "path": "/", "method": "G T"}))
    assert errors == {"method": "'G T' is not an HTTP method"}
    errors = fields(
        api.post("/check", json={"origin": "https://a", "path": "/", "headers": ["ok", "b d"]})
    )
    assert errors == {"headers[1]": "must be a header NAME or 'NAME: value'"}
    errors = fields(api.post("/check", json={"origin": 1, "path": "/", "headers": "X"}))
    assert errors == {"origin": "must be a string", "headers": "must be a list of strings"}
    assert problem(api.post("/check", json={"origin": "a", "path": "/", "more": 1}), 400)
