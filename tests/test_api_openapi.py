"""The OpenAPI description cannot drift from the API: its paths and methods are the
blueprint's rules, both ways; and schemathesis, generating requests from it on a
bounded, deterministic budget, finds no 5xx and no response that does not conform."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks as sc

from corsadmin.api.openapi import openapi_document
from corsadmin.api.problems import PROBLEM_TYPES
from tests.support.api import PARTNER, PREFIX, new_token, seed, seed_draft
from tests.support.backends import BACKENDS, fresh_database
from tests.support.host import close_host, make_host

#: Endpoints of the blueprint that are no operation: the problems of unknown paths and
#: methods (every path under the API that no operation has).
NOT_OPERATIONS: Final = {"corsadmin_api.unknown"}

#: Requests schemathesis makes per operation and generation mode (positive, negative).
#: Deterministic (derandomized): the same requests on every run.
MAX_EXAMPLES: Final = 8


def _rule_operations(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("corsadmin_api.") or rule.endpoint in NOT_OPERATIONS:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


def _described_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "patch", "delete"}
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


def test_the_description_has_exactly_the_blueprints_operations(app: Flask) -> None:
    described = app.test_client().get(PREFIX + "/openapi.json").get_json()
    assert described == openapi_document(PREFIX)
    rules = _rule_operations(app)
    operations = _described_operations(described)
    assert rules - operations == set(), "routes the OpenAPI description does not describe"
    assert operations - rules == set(), "operations the blueprint does not have"
    ids = [op["operationId"] for item in described["paths"].values() for op in _ops(item)]
    assert len(ids) == len(set(ids))


def _ops(item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (op for key, op in item.items() if key != "parameters")


def test_the_description_follows_the_admin_prefix(database_url: str) -> None:
    host = make_host(database_url, CORSADMIN_URL_PREFIX="/ops/cors")
    try:
        described = host.app.test_client().get("/ops/cors/api/v1/openapi.json").get_json()
        assert described["servers"] == [{"url": "/ops/cors/api/v1"}]
    finally:
        close_host(host)


def test_every_problem_type_is_described(app: Flask) -> None:
    problem = openapi_document(PREFIX)["components"]["schemas"]["Problem"]
    assert problem["properties"]["type"]["enum"] == sorted(PROBLEM_TYPES)


# --- schemathesis -------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, str]]:
    """One host app per backend for every operation (a fresh one per operation would
    cost more than the requests), holding a policy and a draft so that the operations
    on them find something, and a write token's secret."""
    with fresh_database(request.param, tmp_path_factory.mktemp("fuzz"), request) as url:
        host = make_host(url)
        try:
            seed(host.app, PARTNER)
            draft = {"corsadmin": 1, "policies": [{**PARTNER, "origins": ["https://b.example"]}]}
            seed_draft(host.app, draft)
            yield host.app, new_token(host.app, "schemathesis", "write")
        finally:
            close_host(host)


#: The description as the default admin prefix serves it (test above: equal).
schema = schemathesis.openapi.from_dict(openapi_document(PREFIX))

#: What every response is checked for: never a server error; a status code, a content
#: type, headers and a body the description declares.
CHECKS: Final = [
    sc.not_a_server_error,
    sc.status_code_conformance,
    sc.content_type_conformance,
    sc.response_headers_conformance,
    sc.response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_conforming_answers_and_never_a_5xx(
    case: Any, fuzzed: tuple[Flask, str]
) -> None:
    app, secret = fuzzed
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)
