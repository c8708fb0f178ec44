"""``corsadmin export`` streams: the same bytes as the whole document dumped at once,
read in chunks, with memory that does not grow with the rules. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import CorsAdmin, PolicyStore
from corsadmin.db.export import EXPORT_CHUNK_ROWS, export_text
from corsadmin.db.models import OriginRuleRow, Policy, utcnow
from tests.support.cli import ok

#: Rules whose order differs between code points and a natural-language collation
#: (PostgreSQL's en_US sorts 'a-b' after 'ab'), an IDN, every kind of rule, and notes
#: that JSON escapes (quotes, backslashes, non-ASCII, a tag).
ORIGINS: list[Any] = [
    "https://ab.example",
    "https://a-b.example",
    "https://a.example",
    "https://a0.example",
    "https://B.example",
    "https://bücher.example",
    "http://localhost:3000",
    "https://*.sub.example",
    "https://api.example:*",
    "null",
    {"origin": "https://n.example", "note": 'say "hi" \\ Ä 😀 </script>'},
    {"origin": "https://e.example", "expires": "2031-02-03T04:05:06Z"},
    {"origin": "https://ne.example", "note": "both", "expires": "2030-01-01"},
    "re:^https://[a-z]+\\.regex\\.example$",
]


def expected(store: PolicyStore) -> str:
    """What export printed before it streamed: the document dumped at once."""
    return json.dumps(store.export_document(), indent=2, ensure_ascii=False) + "\n"


def streamed(store: PolicyStore) -> str:
    return "".join(export_text(store.session)) + "\n"


def test_an_empty_database_streams_the_same_bytes(store: PolicyStore) -> None:
    assert streamed(store) == expected(store) == '{\n  "corsadmin": 1,\n  "policies": []\n}\n'


def test_a_varied_policy_set_streams_byte_for_byte_what_the_whole_document_was(
    store: PolicyStore, runner: FlaskCliRunner
) -> None:
    store.create_policy(
        {
            "name": "alpha",
            "path": "/a/*",
            "origins": ORIGINS,
            "methods": ["GET", "PUT"],
            "allow_headers": ["X-Token"],
            "expose_headers": ["X-Id"],
            "max_age": 30,
            "private_network": True,
            "priority": 2,
            "description": "Ä\nsecond line",
            "review_every_days": 10,
        }
    )
    store.create_policy({"name": "empty", "path": "/e", "origins": [], "enabled": False})
    store.create_policy(
        {"name": "creds", "path": "/c/**", "origins": ["https://c.example"], "credentials": True}
    )
    store.create_policy({"name": "zeta", "path": "/z/**", "origins": ["*"]})
    document = expected(store)
    assert streamed(store) == document
    assert ok(runner, "export").stdout == document
    assert '"origins": []' in document
    assert "😀" in document


def bulk_policy(app: Flask, store: PolicyStore, name: str, rules: int) -> None:
    """A policy through the store, then ``rules`` more rules in one multi-row INSERT."""
    store.create_policy({"name": name, "path": f"/{name}/**", "origins": ["https://a.example"]})
    now = utcnow()
    with CorsAdmin.state(app).db.engine.begin() as connection:
        policy_id = connection.scalar(sa.select(Policy.id).where(Policy.name == name))
        connection.execute(
            sa.insert(OriginRuleRow),
            [
                {
                    "policy_id": policy_id,
                    "origin": f"https://t{i:06d}.example",
                    "note": "bulk" if i % 3 else "",
                    "created_at": now,
                    "created_by": "bulk",
                }
                for i in range(rules)
            ],
        )


def peak_while_streaming(store: PolicyStore) -> tuple[int, int]:
    """The peak of traced memory while the export is read and hashed, and its length."""
    store.session.expire_all()
    digest = hashlib.sha256()
    size = 0
    tracemalloc.start()
    try:
        for piece in export_text(store.session):
            digest.update(piece.encode())
            size += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    store.session.rollback()
    return peak, size


def test_memory_while_exporting_does_not_grow_with_the_rules(
    app: Flask, store: PolicyStore
) -> None:
    bulk_policy(app, store, "one", 2 * EXPORT_CHUNK_ROWS)
    small_peak, small_size = peak_while_streaming(store)
    bulk_policy(app, store, "two", 20 * EXPORT_CHUNK_ROWS)
    big_peak, big_size = peak_while_streaming(store)
    assert big_size > 8 * small_size
    # Ten times the rules: the same chunk in memory (the whole document would be 10x).
    assert big_peak < 1.5 * small_peak + 256 * 1024, (small_peak, big_peak)
    store.session.expire_all()
    tracemalloc.start()
    try:
        document = expected(store)  # how export read the policy before it streamed
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert big_peak < whole_peak / 5, (big_peak, whole_peak)
    assert streamed(store) == document
