"""Plain rules held as text (issue 9: a million rules in a few hundred MiB).

A policy's ordinary exact rules with no note and no expiry are kept as their texts in
:class:`OriginEntries` and as dictionary keys in :class:`OriginMatcher`; the objects
are built when read or matched. These tests hold that this changes nothing anyone can
observe: the entries read back, the equality, the answers, the incremental updates.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from corsadmin.db.loader import RuleCache, load_snapshot
from corsadmin.db.store import PolicyStore
from corsadmin.engine.snapshot import Snapshot
from corsadmin.policy.origins import (
    OriginMatcher,
    canonical_exact_rule,
    is_canonical_exact_rule,
    parse_origin_rule,
)
from corsadmin.policy.spec import (
    OriginEntries,
    OriginEntry,
    parse_origin_entry,
    validate_policy,
)

MIXED = [
    "https://shop.example",
    "http://localhost:8080",
    "https://*.t.example",
    "http://dev.example:*",
    "null",
    "re:^https://[a-z]+\\.r\\.example$",
    "https://192.0.2.1",
    "https://xn--bcher-kva.example",
    "https://[::1]:8443",
    "file://",
]


def entries(texts: list[str]) -> list[OriginEntry]:
    return [parse_origin_entry(t) for t in texts]


def test_plain_rules_are_held_as_text_and_read_back_as_the_same_entries() -> None:
    original = [
        *entries(MIXED),
        OriginEntry(parse_origin_rule("https://noted.example"), "partner"),
        OriginEntry(
            parse_origin_rule("https://until.example"), "", datetime(2031, 1, 1, tzinfo=UTC)
        ),
    ]
    held = OriginEntries.of(original)
    assert list(held) == original
    assert held == tuple(original)
    assert held == original
    assert [held[i] for i in range(len(held))] == original
    assert len(held) == len(original)
    assert set(held.plain_texts()) == {"https://shop.example", "http://localhost:8080"}
    assert {e.rule.text for e in held.detailed()} == {e.rule.text for e in original} - set(
        held.plain_texts()
    )
    assert list(held.texts()) == [e.rule.text for e in original]
    assert hash(held) == hash(OriginEntries.of(list(original)))
    assert held != OriginEntries.of(original[1:])


def test_a_text_is_held_alone_exactly_when_it_is_a_canonical_exact_origin() -> None:
    candidates = [
        *MIXED,
        "HTTPS://Shop.Example",
        "https://shop.example/",
        "https://shop.example:443",
        "https://a_b.example",
        "ws://x.example:80",
        "wss://x.example:444",
        "https://1.example.2",
        "https://" + "a" * 64 + ".example",
        "https://" + ".".join(["a" * 63] * 4),
        "re://x.example",
        "https://-x.example",
    ]
    for text in candidates:
        rule = canonical_exact_rule(text)
        assert is_canonical_exact_rule(text) is (rule is not None), text
        if rule is not None:
            assert rule == parse_origin_rule(text) == parse_origin_rule(text, stored=True)
            assert rule.text == text


def test_find_and_with_changes_match_a_plain_tuple_through_a_random_walk() -> None:
    rng = random.Random(9)
    pool = [f"https://t{i}.example" for i in range(40)] + MIXED
    model: dict[str, OriginEntry] = {}
    held = OriginEntries((), in_text_order=True)
    for _step in range(200):
        text = rng.choice(pool)
        if text in model and rng.random() < 0.5:
            change: OriginEntry | None = None
            del model[text]
        else:
            note = rng.choice(["", "", "n"])
            change = OriginEntry(parse_origin_rule(text), note)
            model[text] = change
        held = held.with_changes({text: change})
        expected = [model[t] for t in sorted(model)]
        assert list(held) == expected
        probe = rng.choice(pool)
        assert held.find(probe) == model.get(probe)


def test_a_matcher_given_texts_answers_as_one_given_rules() -> None:
    texts = [f"https://t{i}.example" for i in range(50)]
    rules = [parse_origin_rule(t) for t in [*texts, *MIXED]]
    full = OriginMatcher(rules)
    lean = OriginMatcher([parse_origin_rule(t) for t in MIXED], texts)
    probes = [*texts, "https://x.t.example", "http://dev.example:9", "null", "https://no.example"]
    probes += ["https://abc.r.example", "https://T1.example", "https://192.0.2.1", "file://"]
    for origin in probes:
        assert lean.verdict(origin) == full.verdict(origin), origin
    assert lean.rules == full.rules
    assert repr(lean) == repr(full)
    smaller = lean.updated([parse_origin_rule("https://new.example")], ["https://t3.example"])
    assert smaller.match("https://t3.example") is None
    assert smaller.match("https://new.example") == parse_origin_rule("https://new.example")
    assert lean.match("https://t3.example") == parse_origin_rule("https://t3.example")


def test_a_loaded_snapshot_holds_plain_rules_as_text_only(store: PolicyStore, db: object) -> None:
    texts = [f"https://shop{i}.tenant.example" for i in range(2_000)]
    store.create_policy({"name": "tenants", "path": "/api/**", "origins": [*texts, *MIXED]})
    engine: sa.Engine = db.engine  # type: ignore[attr-defined]
    snapshot = load_snapshot(engine, RuleCache())
    (spec,) = snapshot.specs
    assert set(texts) <= set(spec.origins.plain_texts())
    typed = validate_policy({"name": "x", "path": "/x", "origins": [*texts, *MIXED]})
    assert list(spec.origins) == sorted(typed.origins, key=lambda e: e.rule.text)
    policy = snapshot.policy_for("/api/x")
    assert policy is not None
    assert policy.origins.match("https://shop7.tenant.example") == parse_origin_rule(
        "https://shop7.tenant.example"
    )
    # A rule with an expiry is an entry: the snapshot sees it expire.
    soon = datetime.now(UTC) + timedelta(days=1)
    store.add_origin("tenants", "https://shop8.tenant.example", expires=soon)
    again = load_snapshot(engine, RuleCache(), previous=snapshot)
    (spec,) = again.specs
    assert spec.origin("https://shop8.tenant.example") == OriginEntry(
        parse_origin_rule("https://shop8.tenant.example"), "", soon
    )
    assert again.valid_until == soon.timestamp()
    later = Snapshot(again.revision, again.specs, now=soon + timedelta(seconds=1))
    policy = later.policy_for("/api/x")
    assert policy is not None
    assert policy.origins.match("https://shop8.tenant.example") is None


def test_memory_per_plain_rule_stays_small() -> None:
    """What makes a million rules fit in a few hundred MiB: a plain rule costs its text,
    a tuple slot and a dictionary key (about 130 bytes with its text), not three more
    objects and a second string (about 300 more)."""
    count = 20_000
    texts = [f"https://shop{i:06d}.tenant.example" for i in range(count)]
    text_bytes = sum(sys.getsizeof(t) for t in texts)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = OriginEntries(texts, in_text_order=True)
        matcher = OriginMatcher((), held.plain_texts())
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_rule = (after - before) / count
    assert per_rule < 60, per_rule  # beyond the texts themselves (shared, not copied)
    assert text_bytes / count < 100
    assert matcher.match(texts[5]) is not None
