"""The one validation layer: every rule of the policy document, each error naming its field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from corsadmin import ValidationError, parse_document, validate_policy
from corsadmin.policy import DEFAULT_METHODS, apply_changes, parse_origin_entry, parse_time

BASE: dict[str, Any] = {"name": "api", "path": "/api/**", "origins": []}


def one_origin(**fields: Any) -> dict[str, Any]:
    return {"origins": [{"origin": "https://a.example", **fields}]}


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        validate_policy(data)
    return {e.field: e.message for e in raised.value.errors}


def test_defaults_are_the_documents() -> None:
    spec = validate_policy(BASE)
    assert spec.methods == DEFAULT_METHODS
    assert spec.allow_headers == ("*",)
    assert spec.expose_headers == ()
    assert (spec.credentials, spec.private_network, spec.enabled) == (False, False, True)
    assert (spec.max_age, spec.priority, spec.review_every_days) == (None, 0, 90)
    assert spec.description == ""


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"name": None}, "name", "required"),
        ({"name": "API"}, "name", "not a valid name"),
        ({"name": "-api"}, "name", "not a valid name"),
        ({"name": "a" * 65}, "name", "at most 64"),
        ({"path": None}, "path", "required"),
        ({"path": "api/**"}, "path", "/"),
        ({"path": 7}, "path", "string"),
        ({"origins": "https://a.example"}, "origins", "list"),
        ({"origins": ["https://a.example/x"]}, "origins[0]", "path is not allowed"),
        ({"origins": [{"note": "no origin"}]}, "origins[0].origin", "required"),
        (
            {"origins": [{"origin": "https://a.example", "colour": 1}]},
            "origins[0].colour",
            "unknown",
        ),
        (
            {"origins": [{"origin": "https://a.example", "expires": "soon"}]},
            "origins[0].expires",
            "ISO",
        ),
        (
            {"origins": [{"origin": "https://a.example", "expires": "2027-01-01T00:00:00"}]},
            "origins[0].expires",
            "time zone",
        ),
        (one_origin(note=5), "origins[0].note", "string"),
        ({"methods": ["GET", "G T"]}, "methods[1]", "HTTP method"),
        ({"methods": []}, "methods", "at least one"),
        ({"allow_headers": ["X-Ok", "bad header"]}, "allow_headers[1]", "header name"),
        ({"expose_headers": [3]}, "expose_headers[0]", "string"),
        ({"credentials": "yes"}, "credentials", "true or false"),
        ({"private_network": 1}, "private_network", "true or false"),
        ({"enabled": None}, "enabled", "true or false"),
        ({"max_age": -1}, "max_age", "0 or more"),
        ({"max_age": True}, "max_age", "whole number"),
        ({"max_age": 1.5}, "max_age", "whole number"),
        ({"priority": "high"}, "priority", "whole number"),
        ({"review_every_days": 0}, "review_every_days", "1 to 3650"),
        ({"description": ["x"]}, "description", "string"),
        ({"descripton": "typo"}, "descripton", "unknown field"),
        ({"credentials": True, "origins": ["*"]}, "origins[0]", "credentials"),
        ({"credentials": True, "expose_headers": ["*"]}, "expose_headers", "wildcard"),
    ],
)
def test_each_rule_is_enforced_with_its_field(
    change: dict[str, Any], field: str, fragment: str
) -> None:
    errors = errors_of({**BASE, **change})
    assert field in errors, errors
    assert fragment in errors[field]


def test_origins_are_required_but_may_be_empty() -> None:
    assert "origins" in errors_of({"name": "a", "path": "/a"})
    assert validate_policy({"name": "a", "path": "/a", "origins": []}).origins == ()


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of({"name": "Bad", "path": "nope", "origins": ["x"], "max_age": -5})
    assert set(errors) == {"name", "path", "origins[0]", "max_age"}


def test_values_are_normalized() -> None:
    spec = validate_policy(
        {
            **BASE,
            "origins": [
                "HTTPS://App.Example:443/",
                "https://app.example",
                {"origin": "https://b.example", "note": "  ticket 7 ", "expires": "2030-01-02"},
            ],
            "methods": ["get", "Post", "GET"],
            "allow_headers": ["Content-Type", "content-type", "X-Id"],
            "expose_headers": "X-Request-Id, X-Trace",
        }
    )
    assert [e.rule.text for e in spec.origins] == ["https://app.example", "https://b.example"]
    assert spec.origins[1].note == "ticket 7"
    assert spec.origins[1].expires == datetime(2030, 1, 2, tzinfo=UTC)
    assert spec.methods == ("GET", "POST")
    assert spec.allow_headers == ("Content-Type", "X-Id")
    assert spec.expose_headers == ("X-Request-Id", "X-Trace")


def test_star_among_headers_means_any() -> None:
    assert validate_policy({**BASE, "allow_headers": ["X-A", "*"]}).allow_headers == ("*",)


def test_flask_rules_can_be_pasted_as_patterns() -> None:
    assert validate_policy({**BASE, "path": "/api/<int:id>/items"}).path.text == "/api/*/items"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-01T00:00:00Z", datetime(2027, 3, 1, tzinfo=UTC)),
        ("2027-03-01T02:00:00+02:00", datetime(2027, 3, 1, tzinfo=UTC)),
        ("2027-03-01", datetime(2027, 3, 1, tzinfo=UTC)),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_changes_are_validated_as_a_whole() -> None:
    spec = validate_policy({**BASE, "origins": ["*"]})
    with pytest.raises(ValidationError) as raised:
        apply_changes(spec, {"credentials": True})
    assert raised.value.errors[0].field == "origins[0]"
    assert apply_changes(spec, {"max_age": 5}).max_age == 5


def test_an_operator_typed_origin_names_the_form_fields() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_origin_entry("https://x.example/path", expires="never")
    fields = {e.field for e in raised.value.errors}
    assert fields == {"origin"}
    with pytest.raises(ValidationError) as raised:
        parse_origin_entry("https://x.example", expires="never")
    assert {e.field for e in raised.value.errors} == {"expires"}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "a policy document must be a JSON object"),
        ({"policies": []}, "corsadmin: must be 1"),
        ({"corsadmin": 1, "policies": {}}, "policies: must be a list"),
        ({"corsadmin": 1, "policies": [], "extra": 1}, "extra: unknown field"),
        (
            {"corsadmin": 1, "policies": [BASE, dict(BASE, path="/other")]},
            "policies[1].name: 'api' is used by policies[0] too",
        ),
        (
            {"corsadmin": 1, "policies": [BASE, dict(BASE, name="b")]},
            "policies[1].path: '/api/**' is used by policies[0] too",
        ),
        (
            {"corsadmin": 1, "policies": [dict(BASE, origins=["https://*.com"])]},
            "policies[0].origins[0]: ",
        ),
    ],
)
def test_document_errors_have_places(document: Any, expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_document(document)
    messages = [str(e) for e in raised.value.errors]
    assert any(m.startswith(expected) for m in messages), messages
