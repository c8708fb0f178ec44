"""``corsadmin check ORIGIN PATH`` (``corsadmin/cli/check.py``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.cli import invoke, policy_doc, seed

CHECK_POLICIES = (
    policy_doc(
        "api",
        "/api/**",
        origins=["https://app.example", "https://*.partner.example"],
        methods=["GET", "PUT"],
        allow_headers=["X-Token", "Content-Type"],
        expose_headers=["X-Request-Id"],
        credentials=True,
        max_age=600,
    ),
    policy_doc("items", "/api/items/*", origins=["https://app.example"]),
    policy_doc("boosted", "/api/*/x", origins=["https://app.example"], priority=5),
    policy_doc("off", "/off/**", origins=["https://app.example"], enabled=False),
    policy_doc("public", "/public/**", origins=["*"]),
    policy_doc("lan", "/lan/**", origins=["https://app.example"], private_network=True),
)


def check(runner: FlaskCliRunner, *args: str) -> tuple[int, list[str]]:
    result = invoke(runner, "check", *args)
    assert isinstance(result.exception, SystemExit) or result.exception is None
    assert result.stderr == ""
    return result.exit_code, result.stdout.splitlines()


def test_check_allowed_request_names_policy_rule_and_exact_headers(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://app.example", "/api/status")
    assert code == 0
    assert lines == [
        "request: GET /api/status from https://app.example (revision 1)",
        "policy: api (path /api/**, priority 0)",
        "origin: origin allowed by rule 'https://app.example' (exact) of policy 'api'",
        "response headers:",
        "  Access-Control-Allow-Origin: https://app.example",
        "  Access-Control-Expose-Headers: X-Request-Id",
        "  Access-Control-Allow-Credentials: true",
        "  Vary: Origin",
        "verdict: ALLOWED",
    ]


def test_check_preflight_section_when_method_or_headers_need_one(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(
        runner, "https://a.partner.example", "/api/z", "--method", "put", "--header", "X-Token"
    )
    assert code == 0
    assert lines[0] == "request: PUT /api/z from https://a.partner.example (revision 1)"
    assert (
        "origin: origin allowed by rule 'https://*.partner.example' (subdomain) of policy 'api'"
        in lines
    )
    start = lines.index(
        "preflight: a browser sends one first, because PUT is not a simple method; it sets X-Token"
    )
    end = lines.index("response headers:")
    assert lines[start + 1] == "preflight response headers:"
    assert sorted(lines[start + 2 : end]) == sorted(
        [
            "  Access-Control-Allow-Origin: https://a.partner.example",
            "  Access-Control-Allow-Credentials: true",
            "  Access-Control-Expose-Headers: X-Request-Id",
            "  Access-Control-Allow-Headers: x-token",
            "  Access-Control-Allow-Methods: GET, PUT",
            "  Access-Control-Max-Age: 600",
            "  Vary: Origin",
        ]
    )
    assert lines[end + 1] == "  Access-Control-Allow-Origin: https://a.partner.example"
    assert lines[-1] == "verdict: ALLOWED"


ALLOWED_API_HEADERS = [
    "  Access-Control-Allow-Origin: https://app.example",
    "  Access-Control-Expose-Headers: X-Request-Id",
    "  Access-Control-Allow-Credentials: true",
    "  Vary: Origin",
]


@pytest.mark.parametrize(
    ("args", "expected", "response"),
    [
        (
            ["https://evil.example", "/api/x"],
            ["origin: refused: no origin rule of policy 'api' matches 'https://evil.example'"],
            ["  Vary: Origin"],
        ),
        (
            ["https://app.example", "/nothing/here"],
            ["policy: none - no enabled policy covers this path; no CORS headers are sent"],
            ["  (none)"],
        ),
        (
            ["https://app.example", "/off/z"],
            ["policy: none - no enabled policy covers this path; no CORS headers are sent"],
            ["  (none)"],
        ),
        (
            ["https://app.example", "/api/x", "--method", "DELETE"],
            [
                "preflight: a browser sends one first, because DELETE is not a simple method",
                "preflight refused: the method DELETE is not allowed",
            ],
            ALLOWED_API_HEADERS,
        ),
        (
            ["https://app.example", "/api/x", "--header", "X-Other"],
            [
                "preflight: a browser sends one first, because it sets X-Other",
                "preflight refused: the header(s) X-Other are not allowed",
            ],
            ALLOWED_API_HEADERS,
        ),
        (
            ["https://app.example", "/api/x", "--method", "PATCH", "--header", "X-Other"],
            [
                "preflight: a browser sends one first, because PATCH is not a simple method; "
                "it sets X-Other",
                "preflight refused: the method PATCH is not allowed; "
                "the header(s) X-Other are not allowed",
            ],
            ALLOWED_API_HEADERS,
        ),
    ],
    ids=[
        "origin-not-listed",
        "path-not-covered",
        "policy-disabled",
        "method",
        "header",
        "method-and-header",
    ],
)
def test_check_refused_exits_2_and_says_why(
    runner: FlaskCliRunner,
    app: Flask,
    args: list[str],
    expected: list[str],
    response: list[str],
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, *args)
    assert code == 2
    assert lines[-1] == "verdict: REFUSED"
    for line in expected:
        assert line in lines
    assert lines[lines.index("response headers:") + 1 : -1] == response


def test_check_lists_the_other_candidates_and_why_they_lose(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://app.example", "/api/items/x")
    assert code == 0
    assert lines[1:4] == [
        "policy: boosted (path /api/*/x, priority 5)",
        "  also matched: items (path /api/items/*, priority 0) - loses to boosted on priority",
        "  also matched: api (path /api/**, priority 0) - loses to boosted on priority",
    ]
    code, lines = check(runner, "https://app.example", "/api/items/7")
    assert code == 0
    assert lines[1:3] == [
        "policy: items (path /api/items/*, priority 0)",
        "  also matched: api (path /api/**, priority 0) - loses to items on specificity",
    ]
    assert "  Access-Control-Allow-Origin: https://app.example" in lines


@pytest.mark.parametrize(
    ("path", "verdict", "code"),
    [("/lan/printer", "ALLOWED", 0), ("/api/printer", "REFUSED", 2)],
    ids=["policy-allows-private-network", "policy-does-not"],
)
def test_check_private_network_preflight(
    runner: FlaskCliRunner, app: Flask, path: str, verdict: str, code: int
) -> None:
    """A private network preflight passes only with Access-Control-Allow-Private-Network: true."""
    seed(app, *CHECK_POLICIES)
    exit_code, lines = check(runner, "https://app.example", path, "--private-network")
    assert "preflight: a browser sends one first, because it reaches a private network" in lines
    preflight = lines[lines.index("preflight response headers:") : lines.index("response headers:")]
    granted = "  Access-Control-Allow-Private-Network: true" in preflight
    assert granted is (verdict == "ALLOWED")
    assert lines[-1] == f"verdict: {verdict}"
    assert exit_code == code


def test_check_any_origin_policy_answers_star(runner: FlaskCliRunner, app: Flask) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://anyone.example", "/public/file")
    assert code == 0
    assert "  Access-Control-Allow-Origin: *" in lines
    assert "  Vary: Origin" not in lines


@pytest.mark.parametrize(
    ("header", "preflight"),
    [
        ("Content-Type: text/plain", False),
        ("Accept", False),
        ("Content-Type: application/json", True),
        ("X-Token", True),
    ],
)
def test_check_preflight_only_for_non_safelisted_headers(
    runner: FlaskCliRunner, app: Flask, header: str, preflight: bool
) -> None:
    seed(app, *CHECK_POLICIES)
    code, lines = check(runner, "https://app.example", "/api/x", "--header", header)
    assert code == 0
    assert ("preflight response headers:" in lines) is preflight
