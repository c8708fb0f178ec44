"""OriginMatcher.updated: a matcher plus and minus some rules, without compiling the
others again, answers as a matcher built from scratch does (pure Python)."""

from __future__ import annotations

import random

from corsadmin.policy.origins import OriginMatcher, parse_origin_rule

POOL = [
    *(f"https://shop{i}.tenant.example" for i in range(40)),
    "https://*.wild.example",
    "https://*.deep.wild.example",
    "http://localhost:*",
    "http://127.0.0.1:*",
    "re:^https://[a-z]+\\.re\\.example$",
    "re:^https://app[0-9]\\.re2\\.example$",
    "null",
    "file://",
    "*",
]
ASKED = [
    *(f"https://shop{i}.tenant.example" for i in range(45)),
    "https://a.wild.example",
    "https://x.deep.wild.example",
    "http://localhost:8080",
    "http://127.0.0.1:3000",
    "https://abc.re.example",
    "https://app7.re2.example",
    "null",
    "file://",
    "https://nobody.example",
    "not an origin",
]


def test_updated_answers_as_a_fresh_matcher_through_a_random_walk() -> None:
    rng = random.Random(9)
    current: set[str] = set(rng.sample(POOL, 20))
    matcher = OriginMatcher(parse_origin_rule(t) for t in current)
    for _step in range(300):
        added = set(rng.sample(POOL, rng.randint(0, 3)))
        removed = set(rng.sample(sorted(current), min(len(current), rng.randint(0, 3))))
        removed -= added
        current = (current - removed) | added
        before = matcher
        before_answers = [before.match(origin) for origin in ASKED]
        matcher = matcher.updated([parse_origin_rule(t) for t in added], removed)
        fresh = OriginMatcher(parse_origin_rule(t) for t in current)
        assert matcher.rules == fresh.rules
        assert matcher.allows_any == fresh.allows_any
        assert [matcher.match(o) for o in ASKED] == [fresh.match(o) for o in ASKED]
        # The old matcher is untouched (a snapshot in force keeps answering with it).
        assert [before.match(o) for o in ASKED] == before_answers


def test_updated_shares_the_lookups_of_kinds_it_does_not_change() -> None:
    matcher = OriginMatcher(parse_origin_rule(t) for t in [*POOL[:40], "https://*.wild.example"])
    added = matcher.updated([parse_origin_rule("https://new.example")], ())
    assert added._exact is not matcher._exact
    assert added._subdomain is matcher._subdomain
    assert matcher.match("https://new.example") is None
    assert added.match("https://new.example") is not None
