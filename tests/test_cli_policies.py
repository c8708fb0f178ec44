"""``corsadmin policy list|show|add|update|remove`` (``corsadmin/cli/policies.py``).

Run through Flask's CLI runner against the host app (``runner`` fixture), on SQLite
and on PostgreSQL; each command's effect is checked in the database afterwards: the
policies (every field, every origin row), the revision and the audit log.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy

from corsadmin import CorsAdmin
from corsadmin.policy.fields import ANY_HEADER_WARNING
from tests.support.cli import API, by_name, invoke, ok, policy_doc, seed, view

# --- policy list / show / add -----------------------------------------------------------


def test_policy_list_on_an_empty_database_says_how_to_add_one(
    runner: FlaskCliRunner, app: Flask
) -> None:
    result = ok(runner, "policy", "list")
    assert result.stdout == (
        "no policies yet: add one with `corsadmin policy add NAME PATH --origin ...`\n"
    )
    assert view(app).revision == 0


def test_policy_add_with_every_option_stores_every_field(
    runner: FlaskCliRunner, app: Flask
) -> None:
    result = ok(
        runner,
        "--actor",
        "alice",
        "policy",
        "add",
        "partner-api",
        "/api/v1/**",
        "--origin",
        "https://app.partner.example",
        "--origin",
        "https://*.staging.partner.example",
        "--origin",
        "HTTP://LOCALHOST:*",
        "--method",
        "get",
        "--method",
        "PUT",
        "--allow-header",
        "Content-Type",
        "--allow-header",
        "Authorization",
        "--expose-header",
        "X-Request-Id",
        "--credentials",
        "--max-age",
        "600",
        "--private-network",
        "--disable",
        "--priority",
        "7",
        "--description",
        "Partner integration API",
        "--review-every-days",
        "30",
    )
    assert result.stdout == "added policy partner-api for /api/v1/** with 3 origin(s)\n"
    after = view(app)
    assert after.document == {
        "corsadmin": 1,
        "policies": [
            policy_doc(
                "partner-api",
                "/api/v1/**",
                description="Partner integration API",
                origins=[
                    "http://localhost:*",
                    "https://*.staging.partner.example",
                    "https://app.partner.example",
                ],
                methods=["GET", "PUT"],
                allow_headers=["Content-Type", "Authorization"],
                expose_headers=["X-Request-Id"],
                credentials=True,
                max_age=600,
                private_network=True,
                enabled=False,
                priority=7,
                review_every_days=30,
            )
        ],
    }
    assert after.revision == 1
    assert after.events == [("alice", "policy.create", "partner-api")]
    assert after.rows["partner-api"] == {"version": 1, "created_by": "alice", "updated_by": "alice"}
    assert {o: r[2] for o, r in after.origins["partner-api"].items()} == {
        "http://localhost:*": "alice",
        "https://*.staging.partner.example": "alice",
        "https://app.partner.example": "alice",
    }


def test_policy_add_without_options_takes_the_documented_defaults(
    runner: FlaskCliRunner, app: Flask
) -> None:
    result = ok(runner, "policy", "add", "plain", "/plain")
    assert result.stdout == "added policy plain for /plain with 0 origin(s)\n"
    assert view(app).document["policies"] == [policy_doc("plain", "/plain")]


def test_policy_list_shows_name_path_origin_count_and_flags_sorted(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(
        app,
        policy_doc("zeta", "/z/**", origins=["https://a.example", "https://b.example"]),
        policy_doc(
            "alpha",
            "/alpha/long/path/*",
            origins=["https://a.example"],
            credentials=True,
            private_network=True,
            enabled=False,
            priority=-2,
        ),
        policy_doc("mid", "/m"),
    )
    result = ok(runner, "policy", "list")
    assert result.stdout.splitlines() == [
        "NAME   PATH                ORIGINS  FLAGS",
        "alpha  /alpha/long/path/*  1        disabled,credentials,private-network,priority=-2",
        "mid    /m                  0        -",
        "zeta   /z/**               2        -",
    ]


def test_policy_show_prints_every_setting_and_origin_details(
    runner: FlaskCliRunner, app: Flask, cors: CorsAdmin, db: SQLAlchemy
) -> None:
    seed(
        app,
        policy_doc(
            "api",
            "/api/**",
            description="the api",
            origins=[
                "https://app.example",
                {
                    "origin": "https://x.example",
                    "note": "ticket 7",
                    "expires": "2031-02-03T04:05:00Z",
                },
            ],
            methods=["GET", "POST"],
            allow_headers=["X-Token"],
            expose_headers=["X-Request-Id"],
            credentials=True,
            max_age=600,
            priority=3,
            review_every_days=30,
        ),
    )
    result = ok(runner, "policy", "show", "api")
    lines = result.stdout.splitlines()
    assert lines[0] == "policy api (version 1)"
    assert lines[1:12] == [
        "  path:              /api/**",
        "  description:       the api",
        "  enabled:           true",
        "  priority:          3",
        "  methods:           GET, POST",
        "  allow headers:     X-Token",
        "  expose headers:    X-Request-Id",
        "  credentials:       true",
        "  max age:           600",
        "  private network:   false",
        "  review every:      30 days",
    ]
    stamp = r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC by seed"
    created = re.fullmatch(r"  created:           " + stamp, lines[12])
    updated = re.fullmatch(r"  updated:           " + stamp, lines[13])
    assert created, lines[12]
    assert updated, lines[13]
    with app.app_context():
        try:
            stored = cors.store("inspector", app).policy("api")
            assert created.group(1) == f"{stored.created_at:%Y-%m-%d %H:%M}"
            assert updated.group(1) == f"{stored.updated_at:%Y-%m-%d %H:%M}"
            added = {r.origin: f"{r.created_at:%Y-%m-%d}" for r in stored.origin_rules}
        finally:
            db.session.remove()
    assert abs(datetime.now(UTC) - stored.created_at) < timedelta(minutes=5)
    assert lines[14:] == [
        "  origins (2):",
        f"    https://app.example  (added {added['https://app.example']} by seed)",
        "    https://x.example  (note: ticket 7; expires 2031-02-03 04:05 UTC; "
        f"added {added['https://x.example']} by seed)",
    ]


# --- policy update / remove -------------------------------------------------------------

UPDATE_BASE = policy_doc(
    "api",
    "/api/**",
    origins=["https://app.example", "https://b.example"],
    methods=["GET", "POST"],
    credentials=True,
    max_age=60,
    priority=1,
    description="before",
    review_every_days=90,
)


@pytest.mark.parametrize(
    ("options", "changed"),
    [
        (["--path", "/v2/**"], {"path": "/v2/**"}),
        (
            ["--origin", "https://New.example:443", "--origin", "http://localhost:*"],
            {"origins": ["http://localhost:*", "https://new.example"]},
        ),
        (["--method", "put", "--method", "DELETE"], {"methods": ["PUT", "DELETE"]}),
        (["--allow-header", "X-A", "--allow-header", "X-B"], {"allow_headers": ["X-A", "X-B"]}),
        (["--expose-header", "X-Request-Id"], {"expose_headers": ["X-Request-Id"]}),
        (["--no-credentials"], {"credentials": False}),
        (["--max-age", "0"], {"max_age": 0}),
        (["--private-network"], {"private_network": True}),
        (["--disable"], {"enabled": False}),
        (["--priority", "-5"], {"priority": -5}),
        (["--description", "after"], {"description": "after"}),
        (["--review-every-days", "7"], {"review_every_days": 7}),
        (
            ["--no-credentials", "--origin", "*", "--priority", "2"],
            {"credentials": False, "origins": ["*"], "priority": 2},
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_policy_update_changes_only_the_given_options(
    runner: FlaskCliRunner, app: Flask, options: list[str], changed: dict[str, Any]
) -> None:
    before = seed(app, UPDATE_BASE)
    result = ok(runner, "--actor", "bob", "policy", "update", "api", *options)
    assert result.stdout == "updated policy api\n"
    after = view(app)
    assert after.document["policies"] == [{**UPDATE_BASE, **changed}]
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("bob", "policy.update", "api")]
    assert after.rows["api"] == {"version": 2, "created_by": "seed", "updated_by": "bob"}


def test_policy_update_enable_and_credentials_turn_flags_on(
    runner: FlaskCliRunner, app: Flask
) -> None:
    seed(app, policy_doc("off", "/off", origins=["https://a.example"], enabled=False))
    result = invoke(runner, "policy", "update", "off", "--enable", "--credentials")
    assert result.exit_code == 0, result.output
    assert result.stderr == ANY_HEADER_WARNING.format(name="off") + "\n"  # allow_headers '*'
    assert by_name(view(app))["off"] == policy_doc(
        "off", "/off", origins=["https://a.example"], credentials=True
    )


def test_policy_update_to_the_same_values_records_no_change(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, UPDATE_BASE)
    ok(runner, "policy", "update", "api", "--priority", "1", "--method", "get", "--method", "POST")
    after = view(app)
    assert after == before


def test_policy_remove_deletes_the_policy_and_its_origins(
    runner: FlaskCliRunner, app: Flask
) -> None:
    before = seed(app, API, policy_doc("keep", "/keep", origins=["https://k.example"]))
    result = ok(runner, "--actor", "carol", "policy", "remove", "api")
    assert result.stdout == "removed policy api\n"
    after = view(app)
    assert list(by_name(after)) == ["keep"]
    assert list(after.origins) == ["keep"]
    assert after.revision == before.revision + 1
    assert after.events == [*before.events, ("carol", "policy.delete", "api")]
    # The rows are really gone: the same name and path can be added again.
    ok(runner, "policy", "add", "api", "/api/**")
