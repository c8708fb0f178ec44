"""Memory bounded per process (issue 9): one evaluation memo for every policy, no
per-matcher caches, a memo miss that parses the Origin once, and a large snapshot
out of the garbage collector's sight once installed."""

from __future__ import annotations

import gc
import random
import tracemalloc
import weakref
from typing import Any

import pytest

import corsadmin.policy.origins as origins_module
from corsadmin.engine.decide import Evaluation, decide
from corsadmin.engine.snapshot import Snapshot
from corsadmin.limits import EVALUATION_MEMO_LIMIT, MAX_MEMO_ORIGIN
from corsadmin.policy.origins import (
    OriginMatcher,
    OriginRuleError,
    is_canonical_request_origin,
    parse_origin_rule,
)
from corsadmin.policy.paths import PathCandidate, PathMatcher, parse_path_pattern
from corsadmin.policy.spec import validate_policy
from corsadmin.runtime.refresh import FREEZE_AFTER_RULES, SnapshotHolder


def policy(name: str, origins: list[str] | None = None) -> Any:
    return validate_policy(
        {"name": name, "path": f"/{name}/**", "origins": origins or ["https://*.t.example"]}
    )


def live_evaluations() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Evaluation))


def test_one_bound_for_every_policy_together() -> None:
    names = [f"p{i}" for i in range(5)]
    snapshot = Snapshot(1, [policy(n) for n in names])
    before = live_evaluations()
    for name in names:  # each policy alone could fill the whole bound
        for i in range(EVALUATION_MEMO_LIMIT):
            decide(snapshot, f"/{name}/x", "GET", f"https://o{i}.t.example")
    assert 0 < len(snapshot.evaluations) <= EVALUATION_MEMO_LIMIT
    assert live_evaluations() - before <= EVALUATION_MEMO_LIMIT


def test_a_reload_keeps_unchanged_answers_and_drops_the_changed_policys() -> None:
    a, b = policy("a", ["https://x.example"]), policy("b", ["https://x.example"])
    first = Snapshot(1, [a, b])
    kept = decide(first, "/b/1", "GET", "https://x.example")
    old = decide(first, "/a/1", "GET", "https://x.example")
    assert old.decision.allowed
    old_policy = old.decision.policy
    changed = policy("a", ["https://y.example"])
    second = Snapshot(2, [changed, b], previous=first)
    assert decide(second, "/b/1", "GET", "https://x.example") is kept  # memoized answer kept
    answer = decide(second, "/a/1", "GET", "https://x.example")
    assert not answer.decision.allowed  # the old policy's answer never answers for the new
    assert all(key[0] is not old_policy for key in second.evaluations)
    gone = weakref.ref(old_policy)
    del first, old, old_policy
    gc.collect()
    assert gone() is None  # not pinned by the memo


def retained_bytes(work: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_an_origin_matcher_keeps_nothing_per_origin_it_matched() -> None:
    matcher = OriginMatcher([parse_origin_rule("https://*.t.example")])

    def match_many() -> None:
        for i in range(5000):  # 1,000-character origins
            matcher.match(f"https://{i:08d}{'a' * 55}." + "b" * 60 * 0 + "c" * 900)

    assert retained_bytes(match_many) < 200_000  # a cache would hold megabytes


def test_a_path_matcher_keeps_nothing_per_path_it_matched() -> None:
    matcher = PathMatcher([PathCandidate(parse_path_pattern("/api/**"), 0, "api", "api")])

    def match_many() -> None:
        for i in range(5000):
            matcher.match(f"/api/{i}/" + "x" * 1000)

    assert retained_bytes(match_many) < 200_000


def test_an_origin_longer_than_any_browser_sends_is_answered_but_not_memoized() -> None:
    snapshot = Snapshot(1, [policy("a")])
    long_origin = "https://" + "a" * MAX_MEMO_ORIGIN + ".t.example"
    assert decide(snapshot, "/a/1", "GET", long_origin).decision.code == "malformed-origin"
    assert len(snapshot.evaluations) == 0
    headers = ",".join(f"x-h{i}" for i in range(200))
    decide(snapshot, "/a/1", "OPTIONS", "https://o.t.example", "GET", headers)
    assert len(snapshot.evaluations) == 0


def test_a_memo_miss_parses_the_origin_at_most_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = origins_module.parse_origin_rule

    def counting(text: str, *, stored: bool = False) -> Any:
        calls.append(text)
        return real(text, stored=stored)

    monkeypatch.setattr(origins_module, "parse_origin_rule", counting)
    snapshot = Snapshot(1, [policy("a", ["https://x.example", "https://*.t.example"])])
    for origin in (
        "https://refused.example",  # the common shape: no full parse at all
        "https://xn--bcher-kva.t.example",  # punycode: the full parse, once
        "https://Refused.example",  # not canonical: once
        "https://o.t.example:8443",
    ):
        calls.clear()
        evaluation = decide(snapshot, "/a/1", "GET", origin)
        assert len(calls) <= 1, (origin, calls)
        assert evaluation.usage_origin is not None


def full_parse_says(value: str) -> bool:
    """The reference: is_canonical_request_origin as it was, through the full parse."""
    if value in ("null", "file://"):
        return True
    if len(value) > origins_module.MAX_ORIGIN_LENGTH or "://" not in value:
        return False
    try:
        rule = parse_origin_rule(value)
    except OriginRuleError:
        return False
    return rule.kind == "exact" and rule.text == value


def test_the_quick_origin_check_agrees_with_the_full_parse() -> None:
    rng = random.Random(9)
    pieces = ["https", "http", "ws", "file", "re", "HTTPS", "a+b", "://", ":", ".", "-", "_"]
    pieces += ["xn--", "xn--bcher-kva", "0x1f", "08", "1", "443", "80", "65535", "65536", "0"]
    pieces += ["a", "b" * 63, "c" * 64, "/", "[::1]", "*", "%", "A", "ä", "127.0.0.1"]
    values = [
        "https://a.example",
        "https://a.example:443",
        "http://a.example:80",
        "https://a.example:0443",
        "https://a.1",
        "https://a.0x1f",
        "https://a.b1",
        "re://a.example",
        "file://a",
        "https://" + ".".join(["a" * 63] * 4),
        "https://" + ".".join(["a" * 63] * 3) + "." + "b" * 61,
        "https://-a.example",
        "https://a_b.example",
    ]
    for _ in range(20000):
        values.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))))
        values.append(
            rng.choice(["https://", "http://", "ws://"])
            + ".".join(rng.choice(pieces[12:]) for _ in range(rng.randint(1, 4)))
            + rng.choice(["", ":1", ":443", ":80", ":08", ":99999"])
        )
    matcher = OriginMatcher([parse_origin_rule("https://*.a.example")])
    for value in values:
        assert is_canonical_request_origin(value) == full_parse_says(value), value
        assert matcher.verdict(value)[1] == full_parse_says(value), value


def large_snapshot(rules: int) -> Snapshot:
    spec = validate_policy(
        {"name": "big", "path": "/**", "origins": [f"https://s{i}.example" for i in range(rules)]}
    )
    return Snapshot(1, [spec])


def test_a_large_snapshot_is_out_of_the_collectors_sight_once_installed() -> None:
    snapshot = large_snapshot(FREEZE_AFTER_RULES)
    holder = SnapshotHolder(
        load=lambda: snapshot, read_revision=lambda: 1, interval=60, background=False
    )
    compiled = snapshot.policy_for("/x")
    try:
        holder.reload()
        assert holder.snapshot is snapshot
        # gc.get_objects() lists what full collections walk: not the snapshot any more
        tracked = gc.get_objects()
        assert not any(o is compiled for o in tracked)
        assert gc.get_freeze_count() >= FREEZE_AFTER_RULES
    finally:
        gc.unfreeze()
