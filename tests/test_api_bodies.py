"""Bad input is never a 500: bodies that are not JSON, not an object, too large, too
deep, holding what no database stores; fields of the wrong type; unknown paths and
methods. Each is a problem naming what is wrong, and nothing changes."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from corsadmin.api.body import MAX_API_BODY_BYTES
from corsadmin.policy.document import MAX_DOCUMENT_DEPTH
from tests.support.api import PARTNER, Api, fields, problem, seed, stored, writer

#: Every request with a body: (method, path).
WITH_BODIES = [
    ("POST", "/policies"),
    ("PUT", "/policies/partner"),
    ("PATCH", "/policies/partner"),
    ("POST", "/policies/partner/origins"),
    ("PATCH", "/policies/partner/origins"),
    ("POST", "/document"),
    ("POST", "/check"),
    ("POST", "/draft/import"),
]

MALFORMED = [
    (b"{", "is not valid JSON"),
    (b"", "is not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"a": "\\ud800"}', "holds a lone surrogate escape (\\ud800)"),
    (b'{"\\udfff": 1}', "holds a lone surrogate escape (\\udfff)"),
    (b'{"a": "\xff"}', "is not UTF-8 text (byte 7)"),
    (b'{"a": ' + b"1" * 5000 + b"}", "has a whole number of more than"),
    (
        b'{"a": ' + b"[" * (MAX_DOCUMENT_DEPTH + 1) + b"]" * (MAX_DOCUMENT_DEPTH + 1) + b"}",
        "is nested too deeply",
    ),
    (b"[" * 100_000 + b"]" * 100_000, "is nested too deeply"),
]


@pytest.fixture
def api(app: Flask) -> Api:
    seed(app, PARTNER)
    return writer(app)


def test_a_malformed_body_is_400_naming_the_body(app: Flask, api: Api) -> None:
    before = stored(app)
    for raw, message in MALFORMED:
        for method, path in WITH_BODIES:
            response = api.call(
                method, path, data=raw, content_type="application/json", headers={"If-Match": "*"}
            )
            errors = fields(response)
            assert list(errors) == ["body"], (method, path, raw[:20])
            assert message in errors["body"], (method, path, errors)
    assert stored(app) == before


def test_a_body_that_is_not_json_is_415(app: Flask, api: Api) -> None:
    before = stored(app)
    for method, path in WITH_BODIES:
        for data, content_type in [
            ("name=x", "application/x-www-form-urlencoded"),
            ('{"name": "x"}', "text/plain"),
            ("", None),
        ]:
            response = api.call(
                method, path, data=data, content_type=content_type, headers={"If-Match": "*"}
            )
            assert problem(response, 415)["detail"].startswith("send the body as JSON")
    assert (
        api.post(
            "/check", data='{"origin": "a", "path": "/"}', content_type="application/problem+json"
        ).status_code
        == 200
    )
    assert stored(app) == before


def test_a_body_over_the_bound_is_413_unread(app: Flask, api: Api) -> None:
    before = stored(app)
    big = b'{"name": "' + b"x" * MAX_API_BODY_BYTES + b'"}'
    response = api.post("/policies", data=big, content_type="application/json")
    assert problem(response, 413)["type"] == "urn:corsadmin:problem:too-large"
    chunked = api.post(
        "/document",
        input_stream=io.BytesIO(big),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
        headers={"Transfer-Encoding": "chunked"},
    )
    assert problem(chunked, 413)
    assert stored(app) == before


WRONG_POLICIES: list[tuple[dict[str, object], str]] = [
    ({**PARTNER, "name": "other", "path": "/o", "methods": 5}, "methods"),
    ({**PARTNER, "name": "other", "path": "/o", "credentials": "yes"}, "credentials"),
    ({**PARTNER, "name": "other", "path": "/o", "max_age": 10**40}, "max_age"),
    ({**PARTNER, "name": "other", "path": "/o", "priority": True}, "priority"),
    ({**PARTNER, "name": "nul\x00", "path": "/o"}, "name"),
    ({**PARTNER, "name": "other", "path": "/o\x00"}, "path"),
    ({**PARTNER, "name": "other", "path": "/o", "description": "a\x00b"}, "description"),
    (
        {
            **PARTNER,
            "name": "other",
            "path": "/o",
            "origins": [{"origin": "https://n", "note": "\x00"}],
        },
        "origins[0].note",
    ),
    ({**PARTNER, "name": "other", "path": "/o", "origins": [["https://n"]]}, "origins[0]"),
    ({**PARTNER, "name": "other", "path": "/o", "origins": "https://n"}, "origins"),
]


def test_wrong_values_in_a_policy_are_400_naming_the_field(app: Flask, api: Api) -> None:
    before = stored(app)
    for body, field in WRONG_POLICIES:
        assert field in fields(api.post("/policies", json=body)), body
        put = api.put("/policies/partner", json=body, headers={"If-Match": "*"})
        assert field in fields(put), body
    assert stored(app) == before


WRONG_RULES: list[dict[str, object]] = [
    {"origin": "https://b\x00"},
    {"origin": "https://b", "note": "\x00"},
    {"origin": "https://b", "note": 5},
    {"origin": "https://b", "expires": "tomorrow"},
    {"origin": "https://b", "expires": 1},
    {"origin": "x" * 5000},
    {"origin": None},
]


def test_wrong_values_of_an_origin_rule_are_400(app: Flask, api: Api) -> None:
    before = stored(app)
    for body in WRONG_RULES:
        assert fields(api.post("/policies/partner/origins", json=body)), body
        assert fields(api.patch("/policies/partner/origins", json=body)), body
    assert stored(app) == before


def test_unknown_paths_and_methods_are_problems(app: Flask, api: Api) -> None:
    assert problem(api.get("/nowhere"), 404)["type"] == "urn:corsadmin:problem:not-found"
    assert problem(api.get(""), 404)
    assert problem(api.get("/policies/partner/elsewhere"), 404)
    response = api.put("/review")
    assert problem(response, 405)["type"] == "urn:corsadmin:problem:method-not-allowed"
    assert response.headers["Allow"] == "GET"
    response = api.call("POST", "/policies/partner")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "PUT", "PATCH", "DELETE"}
    assert problem(api.call("DELETE", "/openapi.json"), 405)
