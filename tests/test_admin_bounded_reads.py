"""Admin pages at scale: no page reads every origin rule of a policy.

The rules that are plainly ``https://host`` by their stored text are told apart in SQL
(:func:`corsadmin.db.review.plain_https_rule`) and never fetched; the test here
counts the origin rule rows each page loads, with a policy of N and of 10N such rules,
and checks that the SQL test and its Python twin agree and vouch only for rules with
no risk. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.admin import queries
from corsadmin.db import review as review_reads
from corsadmin.db.models import OriginRuleRow, OriginUsage, Policy, utcnow
from corsadmin.engine import review
from corsadmin.engine.review import is_plain_https_rule
from tests.support.admin import PREFIX, logged_in_client

SMALL = 150  # over one page (ORIGIN_PAGE_SIZE) already
#: Rows a page may load whatever the policy's size: a page of rules and a few more.
BOUND = queries.ORIGIN_PAGE_SIZE + 20

PIECES = [
    "https://",
    "http://",
    "HTTPS://",
    "re:",
    "*.",
    ":*",
    ":8443",
    ":443",
    ":99999",
    "a",
    "example",
    "com",
    "xn--",
    "xn--bcher-kva",
    "--",
    ".",
    "..",
    "-",
    "1",
    "127.0.0.1",
    "localhost",
    "null",
    "file://",
    "*",
    "É",
    "_",
    "/",
    "%",
    "b" * 40,
    " ",
]

HOST_PIECES = ["a", "b1", "-", "--", ".", "..", "xn--", "9", "z" * 30, "example", ".com", ".io"]


def corpus(size: int = 3000) -> list[str]:
    """Rule texts, valid and not, plain and risky, made of the pieces that matter."""
    chance = random.Random(9)
    texts = {
        "https://a.example",
        "https://t0000001.example",
        "https://a-b.c.example",
        "https://1.example",
        "https://a.b1",
        "https://example",
        "https://a.example.",
        "https://.a.example",
        "https://ab--c.example",
        "https://xn--zz.example",
        "https://a.example:443",
        "https://" + "a" * 64 + ".com",
        "https://" + "a" * 58 + ".com",
        "https://" + "a" * 59 + ".com",
        "http://a.example",
        "http://localhost:3000",
        "*",
        "null",
        "file://",
        "re:^https://a\\.example$",
        "https://*.a.example",
        "https://a.example:*",
        "https://a.example\n",  # an end-of-line anchor must not let a line break through
        "https://A.example",  # case-sensitive on every backend
        "https://a.exampl\u00e9",
    }
    while len(texts) < size:
        texts.add("".join(chance.choice(PIECES) for _ in range(chance.randint(1, 6))))
        host = "".join(chance.choice(HOST_PIECES) for _ in range(chance.randint(1, 6)))
        texts.add("https://" + host)
    return sorted(texts)


def test_a_plain_rule_has_no_risk_whatever_the_flags() -> None:
    plain = [t for t in corpus() if is_plain_https_rule(t)]
    assert len(plain) > 50
    for text in plain:
        for credentials in (False, True):
            assert review._parsed_rule_risks(text, credentials) == (), text
        assert review.refused_today(text) is None, text


def test_rule_risks_equal_the_full_classification_over_the_corpus() -> None:
    for text, credentials in itertools.product(corpus(), (False, True)):
        assert review.rule_risks(text, credentials=credentials) == review._parsed_rule_risks(
            text, credentials
        ), text


def test_the_sql_test_is_the_python_test(app: Flask) -> None:
    texts = corpus()
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine
    table = sa.table("t", sa.column("origin", sa.String))
    mysql = engine.dialect.name == "mysql"
    # MariaDB: the binary collation corsadmin's tables have (the database's is not).
    options = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if mysql else ""
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TEMPORARY TABLE t (origin VARCHAR(2100)){options}"))
        connection.execute(sa.insert(table), [{"origin": t} for t in texts])
        plain = set(
            connection.scalars(
                sa.select(table.c.origin).where(
                    review_reads.plain_https_rule(table.c.origin, connection)
                )
            )
        )
        # MariaDB's TRIM takes no set of characters: its test is the REGEXP one.
        other_rule = (
            review_reads.mysql_plain_https_rule if mysql else review_reads.portable_plain_https_rule
        )
        other = set(connection.scalars(sa.select(table.c.origin).where(other_rule(table.c.origin))))
    expected = {t for t in texts if is_plain_https_rule(t)}
    assert plain == expected
    assert other == expected


def fill(app: Flask, store: PolicyStore, rules: int) -> None:
    """One policy "big" with ``rules`` plain rules and a few risky ones, another small
    one, and a refused origin on each."""
    store.create_policy(
        {
            "name": "big",
            "path": "/big/**",
            "credentials": True,
            "origins": ["https://*.tenant.example", "http://plain.example"],
        }
    )
    store.create_policy({"name": "small", "path": "/s", "origins": ["https://s.example"]})
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine
    now = utcnow()
    with engine.begin() as connection:
        big = connection.scalar(sa.select(Policy.id).where(Policy.name == "big"))
        connection.execute(
            sa.insert(OriginRuleRow),
            [
                {
                    "policy_id": big,
                    "origin": f"https://t{i:07d}.example",
                    "note": "",
                    "created_at": now - timedelta(days=1),
                    "created_by": "bulk",
                }
                for i in range(rules)
            ],
        )
        connection.execute(
            sa.insert(OriginUsage),
            [
                {
                    "policy_name": name,
                    "origin": origin,
                    "allowed": False,
                    "count": 3,
                    "first_seen": now,
                    "last_seen": now,
                }
                for name, origin in (
                    ("big", "https://x.tenant.example"),
                    ("big", "https://t0000003.example"),
                    ("big", "https://new.example"),
                    ("small", "https://other.example"),
                )
            ],
        )


@contextmanager
def rows_loaded(app: Flask) -> Iterator[list[int]]:
    """How many origin rule rows the ORM and the core queries bring back meanwhile."""
    seen = [0]

    def count(*_: object) -> None:
        seen[0] += 1

    sa.event.listen(OriginRuleRow, "load", count)
    try:
        yield seen
    finally:
        sa.event.remove(OriginRuleRow, "load", count)


PAGES = [
    "/",
    "/?q=t000000",
    "/policies/big",
    "/policies/big/disable",
    "/policies/big/delete",
    "/policies/big/edit",
    "/review",
    "/refused",
    "/refused/allow?policy=big&origin=https://new.example",
]


@pytest.mark.parametrize("rules", [SMALL, 10 * SMALL])
def test_no_page_loads_rows_in_proportion_to_the_policy(
    app: Flask, store: PolicyStore, rules: int
) -> None:
    fill(app, store, rules)
    client: FlaskClient = logged_in_client(app)
    for page in PAGES:
        with rows_loaded(app) as seen:
            response = client.get(PREFIX + page)
        assert response.status_code == 200, (page, response.text[:300])
        assert seen[0] <= BOUND, (page, seen[0])


def test_the_pages_say_what_they_said_with_every_rule_loaded(
    app: Flask, store: PolicyStore
) -> None:
    fill(app, store, SMALL)
    client = logged_in_client(app)
    total = SMALL + 2
    listing = client.get(PREFIX + "/").text
    assert f'<td class="num">{total}</td>' in listing
    assert "risky" in listing
    found = client.get(PREFIX + "/?q=t0000149").text
    assert "big" in found
    assert "small</strong>" not in found
    confirm = client.get(PREFIX + "/policies/big/delete").text
    assert f"its {total} origin rules will be deleted" in " ".join(confirm.split())
    assert f"The first {queries.ORIGIN_PAGE_SIZE} of {total} origin rules" in confirm
    refused = client.get(PREFIX + "/refused").text
    assert refused.count("https://*.tenant.example") >= 1  # allows x.tenant.example now
    allow = client.get(PREFIX + "/refused/allow?policy=big&origin=https://new.example").text
    assert f"Origin rules now ({total})" in allow
    assert f"After ({total + 1})" in allow
    again = client.get(PREFIX + "/refused/allow?policy=big&origin=https://t0000003.example").text
    assert "already has the rule" in again
    assert f"After ({total})" in again
