"""What needs an operator's decision: review due, stale, expiring and risky rules.

Pure Python: no Flask, no database. The facts come in as plain dataclasses
(:mod:`corsadmin.db.review` reads them from the tables), the answers go out
as plain dataclasses, and "now" is always an argument, so every rule here is
tested without a clock or a server.

The rules:

- a policy's review is **due** once ``review_every_days`` have passed since it
  was last reviewed (or, never reviewed, since it was created);
- an origin rule is **expired** once its ``expires`` time has passed, and
  **expiring** when that time is within ``expiring_within_days``;
- an origin rule of an enabled policy is **stale** when no request matched it
  for ``stale_after_days`` (counting from when it was added if it was never
  seen; a disabled policy matches nothing, so its rules are never called stale);
- an origin rule is **broad or risky** when it is ``*``, ``null``, ``file://`` or ``re:``, a
  wildcard (``*.`` subdomain or ``:*`` port) on a policy that allows
  credentials, or a plain ``http:`` origin other than a loopback one; a policy
  is risky when it answers private network access preflights.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ..config import DEFAULT_EXPIRING_WITHIN_DAYS, DEFAULT_STALE_AFTER_DAYS
from ..policy.fields import DEFAULT_REVIEW_EVERY_DAYS
from ..policy.origins import OriginMatcher, OriginRule, OriginRuleError, parse_origin_rule

ExpiryState = Literal["expired", "expiring"]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})

#: The longest rule :func:`is_plain_https_rule` vouches for without parsing it
#: ("https://" and 63 characters: no host label can then be over 63 long).
PLAIN_RULE_MAX_LENGTH: Final = 71
PLAIN_PREFIX: Final = "https://"
#: What a plain rule's host may hold, and what its last label may (letters only: no IP).
PLAIN_HOST_CHARS: Final = "abcdefghijklmnopqrstuvwxyz0123456789.-"
PLAIN_LAST_LABEL_CHARS: Final = "abcdefghijklmnopqrstuvwxyz"
#: The same shape as one expression: labels of PLAIN_HOST_CHARS, a last label of letters
#: (Python's and PCRE's syntax alike: MariaDB's REGEXP runs it too).
PLAIN_RULE_PATTERN: Final = r"https://[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]+"
_PLAIN_RULE_RE: Final = re.compile(PLAIN_RULE_PATTERN)


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """One stored origin rule, as the review needs it."""

    origin: str
    note: str = ""
    expires_at: datetime | None = None
    created_at: datetime | None = None
    created_by: str = ""
    last_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """One stored policy, as the review needs it."""

    name: str
    path: str
    created_at: datetime
    review_every_days: int = DEFAULT_REVIEW_EVERY_DAYS
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    enabled: bool = True
    credentials: bool = False
    private_network: bool = False
    version: int = 1
    rules: tuple[RuleFacts, ...] = ()
    #: The policy's ``allow_headers`` (``*``: any request header).
    allow_headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS
    expiring_within_days: int = DEFAULT_EXPIRING_WITHIN_DAYS


@dataclass(frozen=True, slots=True)
class ReviewStatus:
    """When a policy's review falls due, and whether it is due now."""

    due: bool
    due_at: datetime
    last_reviewed_at: datetime | None
    last_reviewed_by: str | None

    def days_left(self, now: datetime) -> int:
        """Whole days until due (negative: days overdue)."""
        return _whole_days(self.due_at - now)


@dataclass(frozen=True, slots=True)
class Risk:
    """Why a rule or policy deserves a second look: a short code and a sentence."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """One origin rule on the review screen, with why it is there."""

    policy: str
    rule: RuleFacts
    expiry: ExpiryState | None = None
    stale: bool = False
    risks: tuple[Risk, ...] = ()


@dataclass(frozen=True, slots=True)
class DueReview:
    policy: PolicyFacts
    status: ReviewStatus


@dataclass
class ReviewReport:
    """Everything the review screen shows, each list sorted for reading."""

    due: list[DueReview] = field(default_factory=list)
    expiring: list[RuleFinding] = field(default_factory=list)
    stale: list[RuleFinding] = field(default_factory=list)
    risky_rules: list[RuleFinding] = field(default_factory=list)
    risky_policies: list[tuple[PolicyFacts, tuple[Risk, ...]]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many items need a decision."""
        return (
            len(self.due)
            + len(self.expiring)
            + len(self.stale)
            + len(self.risky_rules)
            + len(self.risky_policies)
        )

    @property
    def empty(self) -> bool:
        return self.count == 0


#: One day, the unit of :func:`_whole_days`.
_DAY: Final = timedelta(days=1)


def _whole_days(delta: timedelta) -> int:
    """Days in ``delta``, a part of a day counting as a day: right after a 90-day
    review the next one is due in 90 days, not 89 (being due is :attr:`ReviewStatus.due`,
    which shows at once; a negative count is the days overdue)."""
    return -(-delta // _DAY)


# --- policies ----------------------------------------------------------------------------


def review_status(policy: PolicyFacts, now: datetime) -> ReviewStatus:
    """When the policy's next review is due, and whether that is now."""
    since = policy.reviewed_at or policy.created_at
    due_at = since + timedelta(days=policy.review_every_days)
    return ReviewStatus(
        due=due_at <= now,
        due_at=due_at,
        last_reviewed_at=policy.reviewed_at,
        last_reviewed_by=policy.reviewed_by,
    )


def policy_risks(policy: PolicyFacts) -> tuple[Risk, ...]:
    """Risks of the policy as a whole (independent of its rules)."""
    risks: list[Risk] = []
    if policy.private_network:
        risks.append(
            Risk(
                "private-network",
                "answers private network access preflights: public pages may reach "
                "this service on a private network",
            )
        )
    if policy.credentials and "*" in policy.allow_headers:
        risks.append(
            Risk(
                "any-header-credentials",
                "allows any request header with credentials: each credentialed request's "
                "own header names are reflected in Access-Control-Allow-Headers (list "
                "the headers pages need instead of *)",
            )
        )
    return tuple(risks)


# --- origin rules --------------------------------------------------------------------------


def expiry_state(rule: RuleFacts, now: datetime, within_days: int) -> ExpiryState | None:
    """'expired', 'expiring' (within ``within_days``), or None."""
    if rule.expires_at is None:
        return None
    if rule.expires_at <= now:
        return "expired"
    if rule.expires_at <= now + timedelta(days=within_days):
        return "expiring"
    return None


def is_stale(rule: RuleFacts, now: datetime, stale_after_days: int) -> bool:
    """No request matched the rule for ``stale_after_days`` (counted from when it was
    added if it was never seen)."""
    reference = rule.last_seen_at or rule.created_at
    if reference is None:
        return True
    return now - reference >= timedelta(days=stale_after_days)


def is_loopback_host(host: str) -> bool:
    """localhost, a name under .localhost, 127.0.0.0/8 or [::1]."""
    host = host.lower()
    if host in LOOPBACK_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parsed_rule(text: str) -> OriginRule | None:
    """The stored rule parsed again as the snapshot reads it (None if it no longer
    parses at all)."""
    try:
        return parse_origin_rule(text, stored=True)
    except OriginRuleError:
        return None


def refused_today(text: str) -> str | None:
    """Why a stored rule would be refused if it were written now (a check added
    since it was stored, e.g. a ``re:`` rule that lets in sites it does not name),
    or None."""
    try:
        parse_origin_rule(text)
    except OriginRuleError as exc:
        return str(exc)
    return None


def is_plain_https_rule(text: str) -> bool:
    """True when ``text`` is, by its shape alone, an exact ``https://`` rule that parses
    as it is, today and stored: lower-case ASCII labels, a last label of letters (not an
    IP address), no empty label, no ``--`` (so no punycode), no port, at most
    :data:`PLAIN_RULE_MAX_LENGTH` characters. Such a rule has no risk whatever the
    policy's flags: the review does not parse it. ``db.review.plain_https_rule`` is the
    same test in SQL (the two are checked against each other)."""
    return (
        len(text) <= PLAIN_RULE_MAX_LENGTH
        and "--" not in text
        and _PLAIN_RULE_RE.fullmatch(text) is not None
    )


def rule_risks(text: str, *, credentials: bool) -> tuple[Risk, ...]:
    """Why an origin rule is broad or risky (empty when it is not)."""
    return () if is_plain_https_rule(text) else _parsed_rule_risks(text, credentials)


def _parsed_rule_risks(text: str, credentials: bool) -> tuple[Risk, ...]:
    rule = parsed_rule(text)
    if rule is None:
        return (Risk("invalid", "no longer a valid origin rule"),)
    risks: list[Risk] = []
    why = refused_today(text)
    if why is not None:
        risks.append(
            Risk(
                "refused-today",
                f"stored by an earlier version; it would be refused if written today: {why}",
            )
        )
    if rule.kind == "any":
        risks.append(Risk("any", "'*' lets every site on the web read these responses"))
    elif rule.kind == "null":
        risks.append(
            Risk(
                "null",
                "'null' is sent by sandboxed frames and file: pages: anyone can send it",
            )
        )
    elif rule.kind == "file":
        risks.append(
            Risk(
                "file",
                "'file://' is sent by file: pages in some Android WebViews: any local file "
                "or app can send it",
            )
        )
    elif rule.kind == "regex":
        risks.append(Risk("regex", "a regular expression: check by hand what it matches, as code"))
    if credentials and rule.kind in ("subdomain", "any_port", "regex"):
        risks.append(
            Risk(
                "wildcard-credentials",
                "a wildcard on a policy that allows credentials: every matching site "
                "may act as the logged-in user",
            )
        )
    if rule.scheme == "http" and rule.host is not None and not is_loopback_host(rule.host):
        risks.append(
            Risk(
                "plain-http",
                "plain http: anyone on the network path can inject a page on this origin",
            )
        )
    return tuple(risks)


# --- the report -----------------------------------------------------------------------------


def build_review(
    policies: Iterable[PolicyFacts], now: datetime, settings: ReviewSettings | None = None
) -> ReviewReport:
    """Everything that needs a decision, each list in a stable reading order."""
    settings = settings or ReviewSettings()
    report = ReviewReport()
    for policy in sorted(policies, key=lambda p: p.name):
        status = review_status(policy, now)
        if status.due:
            report.due.append(DueReview(policy, status))
        risks = policy_risks(policy)
        if risks:
            report.risky_policies.append((policy, risks))
        for rule in policy.rules:
            expiry = expiry_state(rule, now, settings.expiring_within_days)
            stale = policy.enabled and is_stale(rule, now, settings.stale_after_days)
            found_risks = rule_risks(rule.origin, credentials=policy.credentials)
            finding = RuleFinding(policy.name, rule, expiry, stale, found_risks)
            if expiry is not None:
                report.expiring.append(finding)
            # An expired rule matches nothing: listing it as stale too says nothing new.
            if stale and expiry != "expired":
                report.stale.append(finding)
            if found_risks:
                report.risky_rules.append(finding)
    report.due.sort(key=lambda d: (d.status.due_at, d.policy.name))
    report.expiring.sort(key=lambda f: (f.rule.expires_at or now, f.policy, f.rule.origin))
    report.stale.sort(key=lambda f: (_seen_key(f.rule), f.policy, f.rule.origin))
    return report


def _seen_key(rule: RuleFacts) -> datetime:
    reference = rule.last_seen_at or rule.created_at
    return reference if reference is not None else datetime.min.replace(tzinfo=UTC)


# --- refused origins --------------------------------------------------------------------------


def allowing_rule(rules: Sequence[RuleFacts], origin: str, now: datetime) -> str | None:
    """The rule (text) of ``rules`` that allows ``origin`` now, or None.

    The refused-origins report uses it to tell which refused origins an operator
    has allowed since they were counted.
    """
    live = []
    for rule in rules:
        if rule.expires_at is not None and rule.expires_at <= now:
            continue
        parsed = parsed_rule(rule.origin)
        if parsed is not None:
            live.append(parsed)
    match = OriginMatcher(live).match(origin)
    return match.text if match is not None else None
