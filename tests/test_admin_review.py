"""The review logic and the audit diff: pure functions, no Flask, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from corsadmin.admin.audit import changes, display, pretty
from corsadmin.engine.review import (
    PolicyFacts,
    ReviewSettings,
    RuleFacts,
    allowing_rule,
    build_review,
    expiry_state,
    is_loopback_host,
    is_stale,
    policy_risks,
    review_status,
    rule_risks,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def policy(**changes: object) -> PolicyFacts:
    fields: dict[str, object] = {"name": "p", "path": "/api/**", "created_at": NOW - 10 * DAY}
    fields.update(changes)
    return PolicyFacts(**fields)  # type: ignore[arg-type]


def rule(origin: str = "https://a.example", **changes: object) -> RuleFacts:
    fields: dict[str, object] = {"origin": origin, "created_at": NOW - 10 * DAY}
    fields.update(changes)
    return RuleFacts(**fields)  # type: ignore[arg-type]


# --- review due ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_days_ago", "reviewed_days_ago", "every", "due", "days_left"),
    [
        (10, None, 90, False, 80),  # never reviewed: counted from creation
        (90, None, 90, True, 0),  # due exactly at the interval
        (89, None, 90, False, 1),
        (200, None, 90, True, -110),
        (200, 10, 90, False, 80),  # a review restarts the clock
        (200, 90, 90, True, 0),
        (200, 91, 90, True, -1),
        (5, 1, 1, True, 0),
        (400, 2, 1, True, -1),
    ],
)
def test_review_status(
    created_days_ago: int, reviewed_days_ago: int | None, every: int, due: bool, days_left: int
) -> None:
    facts = policy(
        created_at=NOW - created_days_ago * DAY,
        reviewed_at=None if reviewed_days_ago is None else NOW - reviewed_days_ago * DAY,
        reviewed_by=None if reviewed_days_ago is None else "alice",
        review_every_days=every,
    )
    status = review_status(facts, NOW)
    assert status.due is due
    assert status.days_left(NOW) == days_left
    assert status.last_reviewed_by == (None if reviewed_days_ago is None else "alice")


def test_review_due_at_is_one_interval_after_the_last_review() -> None:
    reviewed = NOW - 3 * DAY
    status = review_status(policy(reviewed_at=reviewed, review_every_days=30), NOW)
    assert status.due_at == reviewed + 30 * DAY
    assert status.last_reviewed_at == reviewed


# --- expiry -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires", "within", "state"),
    [
        (None, 14, None),
        (NOW - DAY, 14, "expired"),
        (NOW, 14, "expired"),  # expires at "now": matches nothing any more
        (NOW + timedelta(seconds=1), 14, "expiring"),
        (NOW + 14 * DAY, 14, "expiring"),  # the boundary is inside
        (NOW + 14 * DAY + timedelta(seconds=1), 14, None),
        (NOW + 3 * DAY, 2, None),
        (NOW + 3 * DAY, 3, "expiring"),
        (NOW + DAY, 0, None),
    ],
)
def test_expiry_state(expires: datetime | None, within: int, state: str | None) -> None:
    assert expiry_state(rule(expires_at=expires), NOW, within) == state


# --- stale ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_days_ago", "seen_days_ago", "stale"),
    [
        (1, None, False),  # just added, never seen: not yet stale
        (29, None, False),
        (30, None, True),  # added 30 days ago and never seen
        (100, 29, False),
        (100, 30, True),
        (100, 31, True),
        (100, 0, False),
        (None, None, True),  # unknown age and never seen
    ],
)
def test_is_stale(created_days_ago: int | None, seen_days_ago: int | None, stale: bool) -> None:
    facts = rule(
        created_at=None if created_days_ago is None else NOW - created_days_ago * DAY,
        last_seen_at=None if seen_days_ago is None else NOW - seen_days_ago * DAY,
    )
    assert is_stale(facts, NOW, 30) is stale


def test_stale_after_days_is_a_setting() -> None:
    facts = rule(created_at=NOW - 100 * DAY, last_seen_at=NOW - 8 * DAY)
    assert is_stale(facts, NOW, 7)
    assert not is_stale(facts, NOW, 9)


# --- broad and risky ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "credentials", "codes"),
    [
        ("https://app.partner.example", False, []),
        ("https://app.partner.example", True, []),
        ("*", False, ["any"]),
        ("null", False, ["null"]),
        ("null", True, ["null"]),
        ("re:^https://[a-z]+\\.partner\\.example$", False, ["regex"]),
        ("re:^https://[a-z]+\\.partner\\.example$", True, ["regex", "wildcard-credentials"]),
        ("https://*.partner.example", False, []),
        ("https://*.partner.example", True, ["wildcard-credentials"]),
        ("https://partner.example:*", False, []),
        ("https://partner.example:*", True, ["wildcard-credentials"]),
        ("http://localhost:*", False, []),
        ("http://localhost:*", True, ["wildcard-credentials"]),
        ("http://localhost:3000", False, []),
        ("http://127.0.0.1:8080", False, []),
        ("http://[::1]:8080", False, []),
        ("http://app.localhost", False, []),
        ("http://partner.example", False, ["plain-http"]),
        ("http://10.0.0.7", False, ["plain-http"]),
        ("http://*.partner.example", False, ["plain-http"]),
        ("http://*.partner.example", True, ["wildcard-credentials", "plain-http"]),
        ("http://partner.example:*", True, ["wildcard-credentials", "plain-http"]),
        ("not an origin", False, ["invalid"]),
        # Stored by an earlier version, refused if written today: still read as the
        # snapshot reads it (a regex), and the reviewer is told why it would be refused.
        ("re:https://.*example\\.com", False, ["refused-today", "regex"]),
        (
            "re:https://(www.)?example\\.com",
            True,
            ["refused-today", "regex", "wildcard-credentials"],
        ),
    ],
)
def test_rule_risks(origin: str, credentials: bool, codes: list[str]) -> None:
    risks = rule_risks(origin, credentials=credentials)
    assert [r.code for r in risks] == codes
    assert all(r.message for r in risks)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("localhost.example", False),
        ("mylocalhost", False),
        ("10.0.0.1", False),
        ("[::2]", False),
        ("example.com", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_private_network_is_a_policy_risk() -> None:
    assert [r.code for r in policy_risks(policy(private_network=True))] == ["private-network"]
    assert policy_risks(policy()) == ()


# --- the report ------------------------------------------------------------------------------


def test_build_review_sorts_every_finding_into_its_list() -> None:
    fresh = rule("https://fresh.example", last_seen_at=NOW - DAY)
    expired = rule("https://gone.example", expires_at=NOW - DAY, last_seen_at=NOW - 60 * DAY)
    expiring = rule("https://soon.example", expires_at=NOW + 3 * DAY, last_seen_at=NOW)
    unseen = rule("https://quiet.example", created_at=NOW - 45 * DAY, last_seen_at=None)
    old_seen = rule("https://old.example", created_at=NOW - 90 * DAY, last_seen_at=NOW - 40 * DAY)
    star = rule("*", last_seen_at=NOW)
    policies = [
        policy(
            name="b-due",
            created_at=NOW - 100 * DAY,
            rules=(fresh, expired, expiring, unseen, old_seen),
        ),
        policy(name="a-risky", private_network=True, rules=(star,)),
        policy(
            name="c-disabled",
            enabled=False,
            created_at=NOW - 500 * DAY,
            reviewed_at=NOW - DAY,
            rules=(rule("https://off.example", created_at=NOW - 400 * DAY),),
        ),
    ]
    report = build_review(
        policies, NOW, ReviewSettings(stale_after_days=30, expiring_within_days=14)
    )

    assert [d.policy.name for d in report.due] == ["b-due"]
    assert [(f.policy, f.rule.origin, f.expiry) for f in report.expiring] == [
        ("b-due", "https://gone.example", "expired"),
        ("b-due", "https://soon.example", "expiring"),
    ]
    # Oldest first; the expired rule is not repeated as stale; a disabled policy's
    # rules cannot be seen, so they are never stale.
    assert [f.rule.origin for f in report.stale] == ["https://quiet.example", "https://old.example"]
    assert [(f.policy, f.rule.origin) for f in report.risky_rules] == [("a-risky", "*")]
    assert [(p.name, [r.code for r in risks]) for p, risks in report.risky_policies] == [
        ("a-risky", ["private-network"])
    ]
    assert report.count == 1 + 2 + 2 + 1 + 1
    assert not report.empty


def test_build_review_of_healthy_policies_is_empty() -> None:
    healthy = policy(rules=(rule(last_seen_at=NOW - DAY),))
    report = build_review([healthy], NOW)
    assert report.empty
    assert report.count == 0
    assert build_review([], NOW).empty


def test_build_review_uses_the_settings() -> None:
    facts = policy(rules=(rule(expires_at=NOW + 20 * DAY, last_seen_at=NOW - 10 * DAY),))
    assert build_review([facts], NOW).empty
    tight = build_review([facts], NOW, ReviewSettings(stale_after_days=7, expiring_within_days=30))
    assert [f.expiry for f in tight.expiring] == ["expiring"]
    assert len(tight.stale) == 1


def test_due_reviews_are_ordered_by_due_date() -> None:
    report = build_review(
        [
            policy(name="late", created_at=NOW - 100 * DAY),
            policy(name="later", created_at=NOW - 300 * DAY),
            policy(name="on-time", created_at=NOW - 95 * DAY),
        ],
        NOW,
    )
    assert [d.policy.name for d in report.due] == ["later", "late", "on-time"]


# --- refused origins: allowed since? ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "origin", "expected"),
    [
        ((), "https://a.example", None),
        ((rule("https://a.example"),), "https://a.example", "https://a.example"),
        ((rule("https://a.example"),), "https://b.example", None),
        ((rule("https://*.a.example"),), "https://x.a.example", "https://*.a.example"),
        ((rule("https://a.example", expires_at=NOW - DAY),), "https://a.example", None),
        (
            (rule("https://a.example", expires_at=NOW + DAY),),
            "https://a.example",
            "https://a.example",
        ),
        ((rule("null"),), "null", "null"),
        ((rule("*"),), "https://anything.example", "*"),
        ((rule("garbage rule"),), "https://a.example", None),
    ],
)
def test_allowing_rule(rules: tuple[RuleFacts, ...], origin: str, expected: str | None) -> None:
    assert allowing_rule(rules, origin, NOW) == expected


# --- the audit diff ------------------------------------------------------------------------------

BEFORE = {
    "name": "p",
    "path": "/api/**",
    "description": "",
    "origins": ["https://a.example", {"origin": "https://b.example", "note": "old"}],
    "methods": ["GET"],
    "allow_headers": ["*"],
    "expose_headers": [],
    "credentials": False,
    "max_age": None,
    "private_network": False,
    "enabled": True,
    "priority": 0,
    "review_every_days": 90,
}


def test_changes_lists_fields_and_origins_that_differ() -> None:
    after = {
        **BEFORE,
        "methods": ["GET", "POST"],
        "credentials": True,
        "max_age": 600,
        "origins": [
            {"origin": "https://b.example", "note": "new", "expires": "2027-01-01T00:00:00Z"},
            "https://c.example",
        ],
    }
    assert [(c.field, c.before, c.after) for c in changes(BEFORE, after)] == [
        ("methods", "GET", "GET, POST"),
        ("credentials", "false", "true"),
        ("max_age", "-", "600"),
        ("origin https://a.example", "allowed", ""),
        ("origin https://b.example", "note: old", "note: new; expires 2027-01-01T00:00:00Z"),
        ("origin https://c.example", "", "allowed"),
    ]


def test_changes_of_a_creation_and_a_deletion_show_every_field() -> None:
    created = changes(None, BEFORE)
    assert ("name", "", "p") in [(c.field, c.before, c.after) for c in created]
    assert ("origin https://b.example", "", "note: old") in [
        (c.field, c.before, c.after) for c in created
    ]
    deleted = changes(BEFORE, None)
    assert ("path", "/api/**", "") in [(c.field, c.before, c.after) for c in deleted]
    assert changes(BEFORE, BEFORE) == []


def test_changes_of_operator_events() -> None:
    diff = changes({"name": "bob", "disabled": False}, {"name": "bob", "disabled": True})
    assert [(c.field, c.before, c.after) for c in diff] == [("disabled", "false", "true")]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (True, "true"), (False, "false"), ([], "(none)"), (["a", "b"], "a, b"), (5, "5")],
)
def test_display(value: object, text: str) -> None:
    assert display(value) == text


def test_pretty() -> None:
    assert pretty(None) == "(none)"
    assert '"name": "p"' in pretty(BEFORE)


def test_allowing_rule_reads_a_stored_rule_as_the_snapshot_does() -> None:
    """A rule stored before a write-time check was added still allows what the live
    snapshot lets in, so the refused-origins report does not call it refused."""
    stored = (rule("re:https://.*example\\.com"),)
    assert allowing_rule(stored, "https://api.example.com", NOW) == "re:https://.*example\\.com"
