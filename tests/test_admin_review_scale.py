"""The review screen at scale: the same findings as :func:`build_review` over every rule,
but each list bounded (REVIEW_LIST_LIMIT) with its count, the counts and the choice of
expiring and stale rules made in SQL. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.db import review as review_reads
from corsadmin.db.models import OriginRuleRow, Policy, utcnow
from corsadmin.engine.review import ReviewSettings, build_review
from tests.support.admin import PREFIX, logged_in_client

LIMIT = review_reads.REVIEW_LIST_LIMIT


def age(app: Flask, days: int, policy: str | None = None) -> None:
    """Make rules (and policies) look ``days`` old."""
    past = utcnow() - timedelta(days=days)
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine
    with engine.begin() as connection:
        rules = sa.update(OriginRuleRow).values(created_at=past)
        if policy is not None:
            ids = sa.select(Policy.id).where(Policy.name == policy).scalar_subquery()
            rules = rules.where(OriginRuleRow.policy_id == ids)
        connection.execute(rules)
        connection.execute(sa.update(Policy).values(created_at=past))


def test_the_bounded_report_finds_what_build_review_finds_over_every_rule(
    app: Flask, store: PolicyStore
) -> None:
    now = utcnow()
    soon = (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    gone = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    store.create_policy(
        {
            "name": "creds",
            "path": "/c/**",
            "credentials": True,
            "origins": [
                "https://*.tenant.example",
                "https://ok.example",
                {"origin": "https://soon.example", "expires": soon, "note": "n"},
                {"origin": "https://gone.example", "expires": gone},
                "http://plain.example",
                "http://localhost:8080",
            ],
        }
    )
    store.create_policy(
        {
            "name": "off",
            "path": "/off",
            "enabled": False,
            "private_network": True,
            "origins": ["*", "https://off.example", {"origin": "null", "expires": gone}],
        }
    )
    store.create_policy({"name": "new", "path": "/new", "origins": ["https://fresh.example"]})
    age(app, 120, "creds")
    age(app, 120, "off")
    store.session.expire_all()
    with app.app_context():
        store.session.execute(
            sa.update(OriginRuleRow)
            .where(OriginRuleRow.origin == "https://ok.example")
            .values(last_seen_at=now - timedelta(hours=1))
        )
        store.session.commit()
        settings = ReviewSettings()
        expected = build_review((review_reads.facts_of(p) for p in store.policies()), now, settings)
        report, totals = review_reads.review_report(store.session, now, settings)
    # The policies' facts carry no rules here (the rules are read in SQL): compare names.
    assert [(d.policy.name, d.status) for d in report.due] == [
        (d.policy.name, d.status) for d in expected.due
    ]
    assert report.expiring == expected.expiring
    assert report.stale == expected.stale
    assert report.risky_rules == expected.risky_rules
    assert [(p.name, r) for p, r in report.risky_policies] == [
        (p.name, r) for p, r in expected.risky_policies
    ]
    assert totals.count == expected.count
    assert {f.rule.origin for f in report.stale} == {
        "https://*.tenant.example",
        "https://soon.example",
        "http://plain.example",
        "http://localhost:8080",
    }
    assert len(report.expiring) == 3  # soon, gone, and null (on the disabled policy)


def bulk(app: Flask, name: str, count: int, **values: Any) -> None:
    """``count`` rules on policy ``name`` in one multi-row INSERT (test setup only)."""
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine
    prefix = values.pop("prefix", "https://t")
    with engine.begin() as connection:
        policy_id = connection.scalar(sa.select(Policy.id).where(Policy.name == name))
        connection.execute(
            sa.insert(OriginRuleRow),
            [
                {
                    "policy_id": policy_id,
                    "origin": f"{prefix}{i:06d}.example",
                    "note": "",
                    "created_by": "bulk",
                    "created_at": utcnow() - timedelta(days=120),
                    **values,
                }
                for i in range(count)
            ],
        )


def summary(page: str) -> dict[str, int]:
    found = re.findall(r'<a href="#(\w+)"><strong>(\d+)</strong>', page)
    return {key: int(value) for key, value in found}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return logged_in_client(app)


def test_the_review_screen_lists_at_most_the_limit_per_section_with_the_counts(
    app: Flask, store: PolicyStore, client: FlaskClient
) -> None:
    store.create_policy({"name": "big", "path": "/big/**", "origins": []})
    soon = utcnow() + timedelta(days=3)
    bulk(app, "big", LIMIT + 50, prefix="https://exp", expires_at=soon)
    bulk(app, "big", 2 * LIMIT + 7, prefix="http://plain")  # plain http: risky and stale
    bulk(app, "big", 3 * LIMIT, prefix="https://used", last_seen_at=utcnow())
    loaded: list[int] = []

    def count(*_: Any) -> None:
        loaded.append(1)

    sa.event.listen(OriginRuleRow, "load", count)
    try:
        page = client.get(f"{PREFIX}/review").text
    finally:
        sa.event.remove(OriginRuleRow, "load", count)
    assert summary(page) == {
        "due": 0,
        "expiring": LIMIT + 50,
        "stale": (LIMIT + 50) + (2 * LIMIT + 7),
        "risky": 2 * LIMIT + 7,
    }
    for section, total in (
        ("expiring", LIMIT + 50),
        ("stale", 3 * LIMIT + 57),
        ("risky", 2 * LIMIT + 7),
    ):
        part = page.split(f'<section id="{section}"')[1].split("</section>")[0]
        assert part.count('<code class="origin">') == LIMIT, section
        assert f"The first {LIMIT} of {total} are listed" in part
    assert len(loaded) <= 3 * LIMIT  # rule objects: the listed ones, never every rule
