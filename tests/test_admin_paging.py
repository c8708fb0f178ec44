"""The policy page at scale: origin rules paged (a SQL LIMIT, keyset links), searched
(case-insensitive substring, LIKE wildcards literal), the count shown, and the page's
reads bounded whatever the policy's size. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from corsadmin import CorsAdmin
from corsadmin.admin.queries import MAX_SEARCH_LENGTH, ORIGIN_PAGE_SIZE
from corsadmin.db.models import OriginRuleRow, Policy, utcnow
from tests.support.admin import PREFIX, field_errors, form_for, logged_in_client

URL = f"{PREFIX}/policies/big"


def make_policy(app: Flask, cors: CorsAdmin, origins: list[Any], name: str = "big") -> None:
    """A policy created through the store (every rule validated)."""
    with app.app_context():
        cors.store("seed", app).create_policy(
            {"name": name, "path": f"/{name}/**", "origins": origins}
        )


def bulk_rules(app: Flask, name: str, count: int) -> None:
    """``count`` more rules on policy ``name`` in one multi-row INSERT (test setup only:
    the texts are what the store would store, https://tNNNNNN.example)."""
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine
    now = utcnow()
    with engine.begin() as connection:
        policy_id = connection.scalar(sa.select(Policy.id).where(Policy.name == name))
        connection.execute(
            sa.insert(OriginRuleRow),
            [
                {
                    "policy_id": policy_id,
                    "origin": f"https://t{i:06d}.example",
                    "note": "",
                    "created_at": now,
                    "created_by": "bulk",
                }
                for i in range(count)
            ],
        )


def shown_origins(page: str) -> list[str]:
    return [html.unescape(o) for o in re.findall(r'<code class="origin">([^<]*)</code>', page)]


def link(page: str, rel: str) -> str | None:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def count_badge(page: str) -> int:
    match = re.search(r'<span class="count-badge">(\d+)</span>', page)
    assert match, "no count on the page"
    return int(match.group(1))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return logged_in_client(app)


def test_a_small_policy_shows_every_rule_on_one_page_without_paging_links(
    app: Flask, cors: CorsAdmin, client: FlaskClient
) -> None:
    make_policy(app, cors, ["https://b.example", {"origin": "https://a.example", "note": "n"}])
    page = client.get(URL).text
    assert shown_origins(page) == ["https://a.example", "https://b.example"]
    assert count_badge(page) == 2
    assert link(page, "next") is None
    assert link(page, "prev") is None


def test_a_large_policy_is_paged_and_the_links_walk_every_rule_once_both_ways(
    app: Flask, cors: CorsAdmin, client: FlaskClient
) -> None:
    origins = [f"https://s{i:03d}.example" for i in range(2 * ORIGIN_PAGE_SIZE + 37)]
    make_policy(app, cors, origins)
    page = client.get(URL).text
    assert count_badge(page) == len(origins)
    assert f"{len(origins)} rules: showing {ORIGIN_PAGE_SIZE}" in page
    seen: list[list[str]] = [shown_origins(page)]
    while (url := link(page, "next")) is not None:
        page = client.get(url).text
        seen.append(shown_origins(page))
    assert [len(s) for s in seen] == [ORIGIN_PAGE_SIZE, ORIGIN_PAGE_SIZE, 37]
    assert [o for s in seen for o in s] == sorted(origins)
    back: list[list[str]] = []
    while (url := link(page, "prev")) is not None:
        page = client.get(url).text
        back.append(shown_origins(page))
    assert back == seen[:-1][::-1]
    assert link(page, "prev") is None
    assert link(page, "next") is not None


def test_search_is_a_case_insensitive_substring_of_rule_or_note_and_links_keep_it(
    app: Flask, cors: CorsAdmin, client: FlaskClient
) -> None:
    origins: list[Any] = [f"https://shop{i:03d}.tenant.example" for i in range(250)]
    origins += [{"origin": "https://billing.example", "note": "Ticket SHOP-9"}]
    origins += [f"https://other{i:03d}.example" for i in range(50)]
    make_policy(app, cors, origins)
    page = client.get(URL, query_string={"q": "SHOP"}).text
    assert count_badge(page) == 301
    assert "251 of 301 rules match" in page
    first = shown_origins(page)
    assert first[0] == "https://billing.example"
    assert len(first) == ORIGIN_PAGE_SIZE
    assert 'value="SHOP"' in page
    url = link(page, "next")
    assert url is not None
    assert parse_qs(urlsplit(url).query)["q"] == ["SHOP"]
    rest: list[str] = []
    while url is not None:
        page = client.get(url).text
        rest += shown_origins(page)
        url = link(page, "next")
    assert len(first) + len(rest) == 251
    assert all("shop" in o for o in rest)
    none = client.get(URL, query_string={"q": "nowhere"}).text
    assert shown_origins(none) == []
    assert "No origin rule matches" in none


def test_like_wildcards_in_a_search_are_taken_literally(
    app: Flask, cors: CorsAdmin, client: FlaskClient
) -> None:
    make_policy(
        app,
        cors,
        [
            "https://a-b.example",
            "https://a_b.example",
            "https://axb.example",
            {"origin": "https://pct.example", "note": "100% sure \\o/"},
        ],
    )

    def found(q: str) -> list[str]:
        response = client.get(URL, query_string={"q": q})
        assert response.status_code == 200
        return shown_origins(response.text)

    assert found("a_b") == ["https://a_b.example"]
    assert found("%") == ["https://pct.example"]
    assert found("0% s") == ["https://pct.example"]
    assert found("\\o") == ["https://pct.example"]
    assert found("_") == ["https://a_b.example"]
    assert found("A-B") == ["https://a-b.example"]


@pytest.mark.parametrize(
    "args",
    [
        {"q": "x" * (MAX_SEARCH_LENGTH + 1)},
        {"q": "a\x00b"},
        {"q": "a\x1bb"},
        {"after": "https://a\x00.example"},
        {"before": "y" * 5000},
    ],
    ids=["long", "nul", "escape", "nul-cursor", "long-cursor"],
)
def test_a_search_or_link_that_cannot_be_used_is_a_400_with_a_message_never_a_500(
    app: Flask, cors: CorsAdmin, client: FlaskClient, args: dict[str, str]
) -> None:
    make_policy(app, cors, ["https://a.example"])
    response = client.get(URL, query_string=args)
    assert response.status_code == 400
    (message,) = field_errors(response.text, "rule-q")
    assert message.startswith(("Search: ", "That page link is not valid"))
    assert shown_origins(response.text) == ["https://a.example"]  # the first page, unfiltered


def test_every_feature_of_the_list_holds_on_a_later_page(
    app: Flask, cors: CorsAdmin, client: FlaskClient
) -> None:
    expires = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%d")
    target = {"origin": "https://zzz.example", "note": "the last one", "expires": expires}
    make_policy(app, cors, [f"https://r{i:03d}.example" for i in range(150)] + [target])
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine
    with engine.begin() as connection:
        connection.execute(
            sa.update(OriginRuleRow)
            .where(OriginRuleRow.origin == "https://zzz.example")
            .values(last_seen_at=utcnow() - timedelta(hours=2))
        )
    url = link(client.get(URL).text, "next")
    assert url is not None
    page = client.get(url).text
    assert "https://zzz.example" in shown_origins(page)
    assert "the last one" in page
    assert "expiring" in page
    assert "2 hours ago" in page
    edit = f"{PREFIX}/policies/big/origins/edit?origin=https://zzz.example"
    assert html.escape(edit) in page or edit in html.unescape(page)
    remove = f"{PREFIX}/policies/big/origins/remove?origin=https://zzz.example"
    assert remove in html.unescape(page)
    confirm = client.get(remove).text
    data = form_for(confirm, f"{PREFIX}/policies/big/origins/remove").fields
    assert data["csrf_token"]
    assert client.post(f"{PREFIX}/policies/big/origins/remove", data=data).status_code == 302
    assert shown_origins(client.get(URL, query_string={"q": "zzz"}).text) == []
    add = form_for(client.get(url).text, f"{PREFIX}/policies/big/origins").fields
    add.update(origin="https://r000.example")  # a rule it has, on page 1: linked
    again = client.post(f"{PREFIX}/policies/big/origins", data=add)
    assert again.status_code == 400
    assert "Edit the note or expiry of https://r000.example" in again.text


@contextmanager
def reads(app: Flask) -> Iterator[dict[str, int]]:
    """Statements run and origin rule rows turned into objects, while inside."""
    counts = {"statements": 0, "rules": 0}
    with app.app_context():
        engine = CorsAdmin.state(app).db.engine

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def loaded(*_: Any) -> None:
        counts["rules"] += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(OriginRuleRow, "load", loaded)
    try:
        yield counts
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(OriginRuleRow, "load", loaded)


def test_the_page_reads_one_page_of_rows_whatever_the_policy_size(
    app: Flask, cors: CorsAdmin, client: FlaskClient
) -> None:
    make_policy(app, cors, ["https://a.example"], name="small")
    make_policy(app, cors, ["https://a.example"], name="big")
    bulk_rules(app, "small", 150)
    bulk_rules(app, "big", 6000)
    measured = {}
    for name in ("small", "big"):
        for args in ({}, {"q": "t0001"}, {"after": "https://t000120.example"}):
            with reads(app) as counts:
                response = client.get(f"{PREFIX}/policies/{name}", query_string=args)
            assert response.status_code == 200
            assert counts["rules"] <= ORIGIN_PAGE_SIZE + 1, (name, args, counts)
            measured[name, str(args)] = counts["statements"]
    for args in ({}, {"q": "t0001"}, {"after": "https://t000120.example"}):
        assert measured["small", str(args)] == measured["big", str(args)]
    assert count_badge(client.get(f"{PREFIX}/policies/big").text) == 6001
