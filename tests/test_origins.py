"""Tests for corsadmin.origins: parsing, normalization and matching of origin rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corsadmin.policy.origins import (
    MAX_ORIGIN_LENGTH,
    MAX_REGEX_LENGTH,
    OriginMatcher,
    OriginRule,
    OriginRuleError,
    is_canonical_request_origin,
    parse_origin_rule,
)


def matcher(*rules: str) -> OriginMatcher:
    # Parsed as the loader reads stored rows: matching must hold even for a broad
    # regex stored before the write-time checks (tests/test_origin_regex.py).
    return OriginMatcher(parse_origin_rule(rule, stored=True) for rule in rules)


def matched_text(rules: tuple[str, ...], origin: str) -> str | None:
    found = matcher(*rules).match(origin)
    return None if found is None else found.text


# ----------------------------------------------------------------- normalization

NORMALIZATION = [
    # (rule as written, canonical text, kind, scheme, host, port, pattern)
    (
        "https://app.partner.example",
        "https://app.partner.example",
        "exact",
        "https",
        "app.partner.example",
        None,
        None,
    ),
    (
        "HTTPS://APP.Partner.EXAMPLE",
        "https://app.partner.example",
        "exact",
        "https",
        "app.partner.example",
        None,
        None,
    ),
    (
        "https://app.partner.example/",
        "https://app.partner.example",
        "exact",
        "https",
        "app.partner.example",
        None,
        None,
    ),
    (
        "https://app.partner.example:443",
        "https://app.partner.example",
        "exact",
        "https",
        "app.partner.example",
        None,
        None,
    ),
    (
        "http://app.partner.example:80",
        "http://app.partner.example",
        "exact",
        "http",
        "app.partner.example",
        None,
        None,
    ),
    (
        "ws://app.partner.example:80",
        "ws://app.partner.example",
        "exact",
        "ws",
        "app.partner.example",
        None,
        None,
    ),
    (
        "wss://app.partner.example:443/",
        "wss://app.partner.example",
        "exact",
        "wss",
        "app.partner.example",
        None,
        None,
    ),
    (
        "http://app.partner.example:443",
        "http://app.partner.example:443",
        "exact",
        "http",
        "app.partner.example",
        443,
        None,
    ),
    (
        "https://app.partner.example:80",
        "https://app.partner.example:80",
        "exact",
        "https",
        "app.partner.example",
        80,
        None,
    ),
    (
        "https://app.partner.example:8443",
        "https://app.partner.example:8443",
        "exact",
        "https",
        "app.partner.example",
        8443,
        None,
    ),
    (
        "https://bücher.example",
        "https://xn--bcher-kva.example",
        "exact",
        "https",
        "xn--bcher-kva.example",
        None,
        None,
    ),
    (
        "https://BÜCHER.example",
        "https://xn--bcher-kva.example",
        "exact",
        "https",
        "xn--bcher-kva.example",
        None,
        None,
    ),
    (
        "https://XN--BCHER-KVA.example",
        "https://xn--bcher-kva.example",
        "exact",
        "https",
        "xn--bcher-kva.example",
        None,
        None,
    ),
    (
        "https://\u0430pple.example",
        "https://xn--pple-43d.example",
        "exact",
        "https",
        "xn--pple-43d.example",
        None,
        None,
    ),
    ("https://faß.de", "https://xn--fa-hia.de", "exact", "https", "xn--fa-hia.de", None, None),
    (
        "https://\uff41\uff50\uff50.example",
        "https://app.example",
        "exact",
        "https",
        "app.example",
        None,
        None,
    ),
    ("https://a_b.example", "https://a_b.example", "exact", "https", "a_b.example", None, None),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "exact", "http", "127.0.0.1", 8080, None),
    ("http://0.0.0.0", "http://0.0.0.0", "exact", "http", "0.0.0.0", None, None),
    ("http://[::1]", "http://[::1]", "exact", "http", "[::1]", None, None),
    ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080", "exact", "http", "[::1]", 8080, None),
    (
        "https://[2001:DB8:0:0:1:0:0:1]",
        "https://[2001:db8::1:0:0:1]",
        "exact",
        "https",
        "[2001:db8::1:0:0:1]",
        None,
        None,
    ),
    (
        "https://[2001:db8:0:1:1:1:1:1]",
        "https://[2001:db8:0:1:1:1:1:1]",
        "exact",
        "https",
        "[2001:db8:0:1:1:1:1:1]",
        None,
        None,
    ),
    (
        "https://[::ffff:192.0.2.1]",
        "https://[::ffff:c000:201]",
        "exact",
        "https",
        "[::ffff:c000:201]",
        None,
        None,
    ),
    (
        "https://*.partner.example",
        "https://*.partner.example",
        "subdomain",
        "https",
        "partner.example",
        None,
        None,
    ),
    (
        "HTTPS://*.Partner.Example:443/",
        "https://*.partner.example",
        "subdomain",
        "https",
        "partner.example",
        None,
        None,
    ),
    (
        "https://*.partner.example:8443",
        "https://*.partner.example:8443",
        "subdomain",
        "https",
        "partner.example",
        8443,
        None,
    ),
    (
        "https://*.bücher.example",
        "https://*.xn--bcher-kva.example",
        "subdomain",
        "https",
        "xn--bcher-kva.example",
        None,
        None,
    ),
    ("http://localhost:*", "http://localhost:*", "any_port", "http", "localhost", None, None),
    ("HTTP://LocalHost:*/", "http://localhost:*", "any_port", "http", "localhost", None, None),
    ("http://[::1]:*", "http://[::1]:*", "any_port", "http", "[::1]", None, None),
    ("http://127.0.0.1:*", "http://127.0.0.1:*", "any_port", "http", "127.0.0.1", None, None),
    ("null", "null", "null", None, None, None, None),
    ("NULL", "null", "null", None, None, None, None),
    ("Null", "null", "null", None, None, None, None),
    ("*", "*", "any", None, None, None, None),
    (
        "re:^https://[a-z]{2}\\.partner\\.example$",
        "re:^https://[a-z]{2}\\.partner\\.example$",
        "regex",
        None,
        None,
        None,
        "^https://[a-z]{2}\\.partner\\.example$",
    ),
    (
        "re:https://.*\\.partner\\.example",
        "re:https://.*\\.partner\\.example",
        "regex",
        None,
        None,
        None,
        "https://.*\\.partner\\.example",
    ),
    (
        "re:https://app[.]Partner[.]example/",
        "re:https://app[.]Partner[.]example/",
        "regex",
        None,
        None,
        None,
        "https://app[.]Partner[.]example/",
    ),
]


@pytest.mark.parametrize(
    ("raw", "text", "kind", "scheme", "host", "port", "pattern"), NORMALIZATION
)
def test_normalization(
    raw: str,
    text: str,
    kind: str,
    scheme: str | None,
    host: str | None,
    port: int | None,
    pattern: str | None,
) -> None:
    rule = parse_origin_rule(raw)
    assert rule == OriginRule(
        text=text,
        kind=kind,
        scheme=scheme,
        host=host,
        port=port,
        pattern=pattern,  # type: ignore[arg-type]
    )
    assert str(rule) == text
    # Normalizing the normalized text changes nothing.
    assert parse_origin_rule(rule.text) == rule


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://App.Partner.Example", "https://app.partner.example/"),
        ("https://app.partner.example:443", "https://app.partner.example"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("http://[0::1]", "http://[::1]:80"),
        ("NULL", "null"),
    ],
)
def test_equivalent_spellings_are_one_rule(first: str, second: str) -> None:
    m = matcher(first, second)
    assert len(m.rules) == 1
    assert parse_origin_rule(first) == parse_origin_rule(second)


@pytest.mark.parametrize(
    ("text", "broad"),
    [
        ("https://app.partner.example", False),
        ("https://*.partner.example", True),
        ("http://localhost:*", True),
        ("re:https://[a-z]+\\.partner\\.example", True),
        ("null", True),
        ("*", True),
    ],
)
def test_is_broad(text: str, broad: bool) -> None:
    assert parse_origin_rule(text).is_broad is broad


def test_rule_is_frozen() -> None:
    rule = parse_origin_rule("https://app.partner.example")
    with pytest.raises(AttributeError):
        rule.text = "*"  # type: ignore[misc]


# ------------------------------------------------------------------------ errors

ERRORS = [
    # whitespace and control characters
    (" https://app.partner.example", "must not contain spaces or control characters"),
    ("https://app.partner.example ", "must not contain spaces or control characters"),
    ("https://app partner.example", "must not contain spaces or control characters"),
    ("https://app.partner.example\n", "must not contain spaces or control characters"),
    ("https://app.partner.example\t", "must not contain spaces or control characters"),
    ("https://app\x00.partner.example", "must not contain spaces or control characters"),
    ("https://app\u200b.partner.example", "must not contain spaces or control characters"),
    ("re:https://a b", "must not contain spaces or control characters"),
    (" *", "must not contain spaces or control characters"),
    ("", "must not be empty"),
    # scheme
    ("app.partner.example", "must start with a scheme, like https://"),
    ("//app.partner.example", "must start with a scheme, like https://"),
    ("://app.partner.example", "must start with a scheme, like https://"),
    ("https:app.partner.example", "must start with a scheme, like https://"),
    ("https:/app.partner.example", "must start with a scheme, like https://"),
    ("1https://app.partner.example", "scheme '1https' is not valid"),
    ("ht_tp://app.partner.example", "scheme 'ht_tp' is not valid"),
    ("ht*p://app.partner.example", "'*' is only allowed"),
    # user info, path, query, fragment
    ("https://user@app.partner.example", "user info"),
    ("https://user:pw@app.partner.example", "user info"),
    ("https://partner.example@evil.test", "user info"),
    ("https://app.partner.example/api", "a path is not allowed in an origin"),
    ("https://app.partner.example//", "a path is not allowed in an origin"),
    ("https://app.partner.example/@evil.test", "a path is not allowed in an origin"),
    ("https://app.partner.example?x=1", "a query ('?') is not allowed"),
    ("https://app.partner.example/?x=1", "a query ('?') is not allowed"),
    ("https://app.partner.example#top", "a fragment ('#') is not allowed"),
    ("https://app.partner.example/#top", "a fragment ('#') is not allowed"),
    # empty host
    ("https://", "the host is empty"),
    ("https:///", "the host is empty"),
    ("https://:8443", "the host is empty"),
    ("https://*.", "the host is empty"),
    ("https://app..partner.example", "empty label"),
    ("https://.partner.example", "empty label"),
    # percent-encoding
    ("https://app%2Epartner.example", "percent-encoding"),
    ("https://%61pp.partner.example", "percent-encoding"),
    ("https://app.partner.example:%34%34%33", "percent-encoding"),
    ("https://[fe80::1%25eth0]", "percent-encoding"),
    # ports
    ("https://app.partner.example:", "the port is empty"),
    ("https://app.partner.example:0", "from 1 to 65535"),
    ("https://app.partner.example:65536", "from 1 to 65535"),
    ("https://app.partner.example:99999999999", "from 1 to 65535"),
    ("https://app.partner.example:-1", "from 1 to 65535"),
    ("https://app.partner.example:+443", "from 1 to 65535"),
    ("https://app.partner.example:44a", "from 1 to 65535"),
    ("https://app.partner.example:\u0664\u0664\u0663", "from 1 to 65535"),
    ("https://app.partner.example:0443", "leading zeros"),
    ("https://app.partner.example:00", "leading zeros"),
    ("https://app.partner.example:1:2", "from 1 to 65535"),
    # trailing dot
    ("https://app.partner.example.", "must not end with a '.'"),
    ("https://app.partner.example.:443", "must not end with a '.'"),
    ("https://app.partner.example./", "must not end with a '.'"),
    ("https://app.partner.example\u3002", "must not end with a '.'"),
    ("https://*.partner.example.", "must not end with a '.'"),
    # misplaced '*'
    ("https://app*.partner.example", "'*' is only allowed"),
    ("https://*app.partner.example", "'*' is only allowed"),
    ("https://app.*.partner.example", "'*' is only allowed"),
    ("https://*.*.partner.example", "'*' is only allowed"),
    ("https://**.partner.example", "'*' is only allowed"),
    ("https://*", "'*' is only allowed"),
    ("https://app.partner.example:8*", "'*' is only allowed"),
    ("https://app.partner.example:**", "'*' is only allowed"),
    ("https://app.partner.example/*", "a path is not allowed"),
    ("*://app.partner.example", "'*' is only allowed"),
    # both wildcards
    ("https://*.partner.example:*", "cannot be combined"),
    # wildcard over IP addresses
    ("https://*.192.0.2.1", "not allowed over an IP address"),
    ("https://*.0.2.1", "not allowed over an IP address"),
    ("https://*.[::1]", "not allowed over an IP address"),
    # wildcard over public suffixes (ICANN and private sections)
    ("https://*.com", "'*.com' would allow every site under a public suffix"),
    ("https://*.co.uk", "'*.co.uk' would allow every site under a public suffix"),
    ("https://*.github.io", "'*.github.io' would allow every site under a public suffix"),
    ("https://*.example", "'*.example' would allow every site under a public suffix"),
    ("https://*.xn--fiqs8s", "'*.xn--fiqs8s' would allow every site under a public suffix"),
    ("https://*.中国", "'*.xn--fiqs8s' would allow every site under a public suffix"),
    ("https://*.COM", "'*.com' would allow every site under a public suffix"),
    # IPv4 forms a browser would reinterpret
    ("http://127.1", "IPv4 address"),
    ("http://0x7f.0.0.1", "IPv4 address"),
    ("http://0x7f000001", "IPv4 address"),
    ("http://2130706433", "IPv4 address"),
    ("http://127.0.0.01", "IPv4 address"),
    ("http://010.0.0.1", "IPv4 address"),
    ("http://127.0.0.1.1", "IPv4 address"),
    ("http://256.0.0.1", "from 0 to 255"),
    ("http://app.partner.1", "IPv4 address"),
    # IPv6 forms
    ("http://[::1", "closed with ']'"),
    ("http://[::1]x", "only ':port' may follow"),
    ("http://[::zz]", "not a valid IPv6 address"),
    ("http://[1.2.3.4]", "not a valid IPv6 address"),
    ("http://::1", "the host is empty"),
    ("http://1::1", "from 1 to 65535"),
    ("http://a[::1]", "only allowed around a whole IPv6 address"),
    ("http://*.a[::1]", "only allowed around a whole IPv6 address"),
    ("http://a]", "only allowed around a whole IPv6 address"),
    # host characters and IDNA
    ("https://app!.partner.example", "may only contain letters, digits"),
    ("https://app\\.partner.example", "may only contain letters, digits"),
    ("https://xn--a.example", "not valid punycode"),
    ("https://xn--.example", "not valid punycode"),
    ("https://\u0300a.example", "not a valid internationalized domain name"),
    ("https://\u05d0a.example", "not a valid internationalized domain name"),
    ("https://a\u2488.example", "not a valid internationalized domain name"),
    ("https://" + "a" * 64 + ".example", "longer than 63 characters"),
    ("https://" + "a." * 127 + "example", "longer than 253 characters"),
    # length
    ("https://" + "a" * MAX_ORIGIN_LENGTH, f"at most {MAX_ORIGIN_LENGTH} characters"),
    # regular expressions
    ("re:", "is empty"),
    ("re:" + "a" * (MAX_REGEX_LENGTH + 1), f"at most {MAX_REGEX_LENGTH} characters"),
    ("re:https://(", "does not compile"),
    ("re:a)|(b", "does not compile"),
    ("re:[a-z", "does not compile"),
    ("re:https://a\\.example**", "does not compile: bad repetition operator"),
    ("re:(a)\\1", "backreferences ('\\1', '(?P=name)', '\\k<name>') are not supported"),
    ("re:(?P<x>a)(?P=x)", "backreferences"),
    ("re:(?P<x>a)\\k<x>", "backreferences"),
    ("re:(a)?(?(1)b|c)", "conditionals ('(?(') are not supported"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(OriginRuleError) as caught:
        parse_origin_rule(text)
    error = str(caught.value)
    assert message in error
    # Phrased to follow a field name: "origins[0]: a path is not allowed ..."
    assert not error[0].isupper()
    assert isinstance(caught.value, ValueError)


def test_length_limits_are_inclusive() -> None:
    host = "a" * 60 + "." + "b" * 60 + ".example"
    assert parse_origin_rule(f"https://{host}").host == host
    longest_regex = "re:" + "a" * MAX_REGEX_LENGTH
    assert parse_origin_rule(longest_regex).pattern == "a" * MAX_REGEX_LENGTH


# ------------------------------------------------------------------ trick classes


UNESCAPED_DOTS = [
    "re:^https://app.partner.example$",
    "re:https://app\\.partner.example",
    "re:https://[a-z]+\\.partner.example",
    "re:https://.partner\\.example",
    "re:https://.1\\.partner\\.example",
    "re:https://(app|www).partner\\.example",
    "re:https://app[.]partner.example",
    "re:https://[\\].]x.example",
]


@pytest.mark.parametrize("text", UNESCAPED_DOTS)
def test_regex_unescaped_dot_is_refused(text: str) -> None:
    with pytest.raises(OriginRuleError, match=re.escape("an unescaped '.' matches any character")):
        parse_origin_rule(text)


@pytest.mark.parametrize(
    "text",
    [
        "re:https://.*\\.partner\\.example",
        "re:https://.+\\.partner\\.example",
        "re:https://[.a-z]+\\.partner\\.example",
        "re:https://[]a.]x\\.example",
        "re:https://a\\.example(:.{4})?",
    ],
)
def test_regex_dots_that_are_fine(text: str) -> None:
    assert parse_origin_rule(text).pattern == text[3:]


@pytest.mark.parametrize(
    ("text", "lets_in"),
    [
        # Not a lone dot, but what they let in is judged too (tests/test_origin_regex.py).
        ("re:https://[^.]x\\.example", "https://bx.example"),
        ("re:https://a\\.example.?", "https://a.examplea"),
        ("re:.*", "a://b"),
    ],
)
def test_regex_repeated_dots_are_judged_by_what_they_let_in(text: str, lets_in: str) -> None:
    with pytest.raises(OriginRuleError, match=f"would let in {re.escape(lets_in)}"):
        parse_origin_rule(text)


@pytest.mark.parametrize(
    ("rule", "origin", "expected"),
    [
        # Look-alike prefixes and suffixes never match an exact or subdomain rule.
        ("https://partner.example", "https://partner.example.evil.test", None),
        ("https://partner.example", "https://evilpartner.example", None),
        ("https://partner.example", "https://partner.exampleevil", None),
        ("https://partner.example", "https://partner.examp", None),
        ("https://partner.example", "https://x.partner.example", None),
        ("https://partner.example", "https://partner.example", "https://partner.example"),
        ("https://*.partner.example", "https://partner.example.evil.test", None),
        ("https://*.partner.example", "https://x.partner.example.evil.test", None),
        ("https://*.partner.example", "https://evilpartner.example", None),
        ("https://*.partner.example", "https://x.evilpartner.example", None),
        ("https://*.partner.example", "https://partner.exampleevil", None),
        ("https://*.partner.example", "https://x.partner.exampleevil", None),
        ("https://*.partner.example", "https://xpartner.example", None),
        ("https://*.partner.example", "https://partner.example", None),
        ("https://*.partner.example", "https://x.partner.example", "https://*.partner.example"),
        ("https://*.partner.example", "https://a.b.partner.example", "https://*.partner.example"),
        ("http://localhost:*", "http://localhost.evil.test", None),
        ("http://localhost:*", "http://localhost.evil.test:3000", None),
        ("http://localhost:*", "http://evillocalhost:3000", None),
        ("http://localhost:*", "http://x.localhost:3000", None),
        ("http://localhost:*", "http://localhost:3000", "http://localhost:*"),
    ],
)
def test_prefix_and_suffix_lookalikes(rule: str, origin: str, expected: str | None) -> None:
    assert matched_text((rule,), origin) == expected


@pytest.mark.parametrize(
    ("rule", "origin", "expected"),
    [
        # fullmatch: an unanchored expression cannot match a longer origin.
        ("re:https://app\\.partner\\.example", "https://app.partner.example.evil.test", None),
        ("re:https://app\\.partner\\.example", "https://evil.app.partner.example", None),
        ("re:https://app\\.partner\\.example", "https://app.partner.example:8443", None),
        ("re:app\\.partner\\.example", "https://app.partner.example", None),
        (
            "re:https://app\\.partner\\.example",
            "https://app.partner.example",
            "re:https://app\\.partner\\.example",
        ),
        ("re:https://[a-z]+\\.partner\\.example", "https://x.partner.example.evil.test", None),
        (
            "re:https://[a-z]+\\.partner\\.example",
            "https://xy.partner.example",
            "re:https://[a-z]+\\.partner\\.example",
        ),
        ("re:^https://[a-z]{2}\\.partner\\.example$", "https://abc.partner.example", None),
        (
            "re:^https://[a-z]{2}\\.partner\\.example$",
            "https://ab.partner.example",
            "re:^https://[a-z]{2}\\.partner\\.example$",
        ),
        # an alternation without a group is still matched as a whole
        ("re:https://a\\.example|https://b\\.example", "https://a.example.evil.test", None),
        (
            "re:https://a\\.example|https://b\\.example",
            "https://b.example",
            "re:https://a\\.example|https://b\\.example",
        ),
        # case-insensitive
        (
            "re:HTTPS://APP\\.PARTNER\\.EXAMPLE",
            "https://app.partner.example",
            "re:HTTPS://APP\\.PARTNER\\.EXAMPLE",
        ),
    ],
)
def test_unanchored_regex(rule: str, origin: str, expected: str | None) -> None:
    assert matched_text((rule,), origin) == expected


@pytest.mark.parametrize(
    ("rule", "origin"),
    [
        ("https://app.partner.example", "http://app.partner.example"),
        ("http://app.partner.example", "https://app.partner.example"),
        ("https://app.partner.example", "wss://app.partner.example"),
        ("https://*.partner.example", "http://x.partner.example"),
        ("http://*.partner.example", "https://x.partner.example"),
        ("http://localhost:*", "https://localhost"),
        ("http://localhost:*", "https://localhost:3000"),
        ("http://localhost:*", "ws://localhost:3000"),
        ("re:https://app\\.partner\\.example", "http://app.partner.example"),
    ],
)
def test_scheme_swaps_do_not_match(rule: str, origin: str) -> None:
    assert is_canonical_request_origin(origin)
    assert matched_text((rule,), origin) is None


@pytest.mark.parametrize(
    ("rule", "origin", "expected"),
    [
        ("https://app.partner.example", "https://app.partner.example:8443", None),
        ("https://app.partner.example", "https://app.partner.example:80", None),
        ("https://app.partner.example:8443", "https://app.partner.example", None),
        ("https://app.partner.example:8443", "https://app.partner.example:8444", None),
        (
            "https://app.partner.example:8443",
            "https://app.partner.example:8443",
            "https://app.partner.example:8443",
        ),
        ("http://app.partner.example:443", "http://app.partner.example", None),
        (
            "http://app.partner.example:443",
            "http://app.partner.example:443",
            "http://app.partner.example:443",
        ),
        ("https://*.partner.example", "https://x.partner.example:8443", None),
        ("https://*.partner.example:8443", "https://x.partner.example", None),
        (
            "https://*.partner.example:8443",
            "https://x.partner.example:8443",
            "https://*.partner.example:8443",
        ),
        ("http://localhost:*", "http://localhost", "http://localhost:*"),
        ("http://localhost:*", "http://localhost:1", "http://localhost:*"),
        ("http://localhost:*", "http://localhost:65535", "http://localhost:*"),
        ("http://localhost:*", "http://localhost:443", "http://localhost:*"),
    ],
)
def test_port_swaps(rule: str, origin: str, expected: str | None) -> None:
    assert matched_text((rule,), origin) == expected


@pytest.mark.parametrize(
    ("rules", "origin", "expected"),
    [
        (("null",), "null", "null"),
        (("null",), "NULL", None),
        (("null",), "Null", None),
        (("null",), "null/", None),
        (("null",), " null", None),
        (("null",), "https://null", None),
        (("https://app.partner.example",), "null", None),
        (("https://*.partner.example",), "null", None),
        (("http://null:*",), "null", None),
        (("re:.*",), "null", None),
        (("re:null",), "null", None),
        (("re:[a-z]+",), "null", None),
        (("*",), "null", "*"),
        (("*", "null"), "null", "null"),
    ],
)
def test_null(rules: tuple[str, ...], origin: str, expected: str | None) -> None:
    assert matched_text(rules, origin) == expected


@pytest.mark.parametrize(
    ("rule", "origin"),
    [
        ("https://app.partner.example", "HTTPS://app.partner.example"),
        ("https://app.partner.example", "Https://app.partner.example"),
        ("https://app.partner.example", "https://APP.partner.example"),
        ("https://app.partner.example", "https://app.partner.Example"),
        ("https://*.partner.example", "https://X.partner.example"),
        ("https://*.partner.example", "https://x.PARTNER.example"),
        ("http://localhost:*", "http://LOCALHOST:3000"),
        ("https://xn--bcher-kva.example", "https://XN--BCHER-KVA.example"),
        ("http://[::1]", "http://[::A:1]"),
        ("re:https://app\\.partner\\.example", "https://APP.partner.example"),
    ],
)
def test_case_variants_do_not_match(rule: str, origin: str) -> None:
    """Browsers send lower case; an upper-case Origin is not a browser's and is refused."""
    assert not is_canonical_request_origin(origin)
    assert matched_text((rule,), origin) is None
    assert matched_text((rule, "*"), origin) == "*"


@pytest.mark.parametrize(
    ("rule", "origin"),
    [
        ("https://app.partner.example", "https://app.partner.example."),
        ("https://app.partner.example", "https://app.partner.example.:443"),
        ("https://*.partner.example", "https://x.partner.example."),
        ("http://localhost:*", "http://localhost.:3000"),
        ("re:https://app\\.partner\\.example\\.?", "https://app.partner.example."),
        ("re:.*", "https://app.partner.example."),
    ],
)
def test_trailing_dots_do_not_match(rule: str, origin: str) -> None:
    assert matched_text((rule,), origin) is None
    assert matched_text((rule, "*"), origin) == "*"


@pytest.mark.parametrize(
    ("rule", "origin"),
    [
        ("https://app.partner.example", "https://app.partner.example/"),
        ("https://app.partner.example/", "https://app.partner.example/"),
        ("https://app.partner.example", "https://app.partner.example//"),
        ("https://*.partner.example", "https://x.partner.example/"),
        ("http://localhost:*", "http://localhost:3000/"),
        ("re:https://app\\.partner\\.example/?", "https://app.partner.example/"),
    ],
)
def test_trailing_slashes_do_not_match(rule: str, origin: str) -> None:
    assert not is_canonical_request_origin(origin)
    assert matched_text((rule,), origin) is None


@pytest.mark.parametrize(
    ("rule", "origin"),
    [
        ("https://app.partner.example", "https://app%2Epartner.example"),
        ("https://app.partner.example", "https://%61pp.partner.example"),
        ("https://app.partner.example", "https://app.partner.example%2F"),
        ("https://*.partner.example", "https://x%2Epartner.example"),
        ("https://*.partner.example", "https://evil.test%2F.partner.example"),
        ("https://xn--bcher-kva.example", "https://b%C3%BCcher.example"),
        ("re:https://.*\\.partner\\.example", "https://x%2Fy.partner.example"),
        ("re:https://.*\\.partner\\.example", "https://evil.test%23.partner.example"),
    ],
)
def test_percent_encoding_does_not_match(rule: str, origin: str) -> None:
    assert not is_canonical_request_origin(origin)
    assert matched_text((rule,), origin) is None


@pytest.mark.parametrize(
    ("rule", "origin", "expected"),
    [
        (
            "https://bücher.example",
            "https://xn--bcher-kva.example",
            "https://xn--bcher-kva.example",
        ),
        (
            "https://xn--bcher-kva.example",
            "https://xn--bcher-kva.example",
            "https://xn--bcher-kva.example",
        ),
        # browsers send punycode; a raw Unicode Origin is not canonical
        ("https://bücher.example", "https://bücher.example", None),
        (
            "https://*.bücher.example",
            "https://shop.xn--bcher-kva.example",
            "https://*.xn--bcher-kva.example",
        ),
        ("https://*.bücher.example", "https://xn--bcher-kva.example", None),
        # homographs: Cyrillic U+0430 'a' is a different host
        ("https://\u0430pple.example", "https://apple.example", None),
        ("https://apple.example", "https://xn--pple-43d.example", None),
        (
            "https://\u0430pple.example",
            "https://xn--pple-43d.example",
            "https://xn--pple-43d.example",
        ),
        ("https://*.apple.example", "https://www.xn--pple-43d.example", None),
        ("https://faß.de", "https://fass.de", None),
        ("https://fass.de", "https://xn--fa-hia.de", None),
        ("https://faß.de", "https://xn--fa-hia.de", "https://xn--fa-hia.de"),
    ],
)
def test_idn(rule: str, origin: str, expected: str | None) -> None:
    assert matched_text((rule,), origin) == expected


@pytest.mark.parametrize(
    ("rule", "origin"),
    [
        ("https://evil.test", "https://partner.example@evil.test"),
        ("https://partner.example", "https://partner.example@evil.test"),
        ("https://*.partner.example", "https://x.partner.example@evil.test"),
        ("https://*.partner.example", "https://evil.test@x.partner.example"),
        ("https://app.partner.example", "https://user:pass@app.partner.example"),
        ("re:https://.*\\.partner\\.example", "https://evil.test@x.partner.example"),
        ("re:https://.*", "https://user@evil.test"),
    ],
)
def test_user_info_does_not_match(rule: str, origin: str) -> None:
    assert not is_canonical_request_origin(origin)
    assert matched_text((rule,), origin) is None


@pytest.mark.parametrize(
    ("rule", "origin", "expected"),
    [
        ("http://127.0.0.1", "http://127.0.0.1", "http://127.0.0.1"),
        ("http://127.0.0.1", "http://127.1", None),
        ("http://127.0.0.1", "http://0x7f.0.0.1", None),
        ("http://127.0.0.1", "http://2130706433", None),
        ("http://127.0.0.1", "http://127.000.000.001", None),
        ("http://127.0.0.1", "http://[::ffff:7f00:1]", None),
        ("http://127.0.0.1:*", "http://127.0.0.1:5000", "http://127.0.0.1:*"),
        ("http://127.0.0.1:*", "http://127.0.0.2:5000", None),
        ("http://[::1]", "http://[::1]", "http://[::1]"),
        ("http://[0:0:0:0:0:0:0:1]", "http://[::1]", "http://[::1]"),
        ("http://[::1]", "http://[0:0:0:0:0:0:0:1]", None),
        ("http://[::1]", "http://[::0:1]", None),
        ("http://[::1]", "http://::1", None),
        ("http://[::1]", "http://[::1]:80", None),
        ("http://[::1]:*", "http://[::1]:8080", "http://[::1]:*"),
        ("http://[::1]", "http://[::2]", None),
        ("https://[2001:db8::1]", "https://[2001:db8::1]", "https://[2001:db8::1]"),
        ("https://[2001:db8::1]", "https://[2001:DB8::1]", None),
        ("https://[::ffff:192.0.2.1]", "https://[::ffff:c000:201]", "https://[::ffff:c000:201]"),
        ("https://[::ffff:192.0.2.1]", "https://[::ffff:192.0.2.1]", None),
        ("re:http://127\\.0\\.0\\.1(:[0-9]+)?", "http://127.1", None),
        (
            "re:http://127\\.0\\.0\\.1(:[0-9]+)?",
            "http://127.0.0.1:3000",
            "re:http://127\\.0\\.0\\.1(:[0-9]+)?",
        ),
    ],
)
def test_ip_address_forms(rule: str, origin: str, expected: str | None) -> None:
    assert matched_text((rule,), origin) == expected


# ---------------------------------------------------------- request origin checks


@pytest.mark.parametrize(
    "value",
    [
        "null",
        "https://app.partner.example",
        "http://localhost:3000",
        "https://xn--bcher-kva.example",
        "http://127.0.0.1",
        "http://[::1]:8080",
        "http://app.partner.example:443",
        "chrome-extension://abcdefghijklmnop",
        "https://" + "a" * 60 + ".example",
    ],
)
def test_canonical_request_origins(value: str) -> None:
    assert is_canonical_request_origin(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "*",
        "NULL",
        "Null",
        "null ",
        "HTTPS://app.partner.example",
        "https://App.partner.example",
        "https://app.partner.example/",
        "https://app.partner.example:443",
        "http://app.partner.example:80",
        "https://app.partner.example/path",
        "https://app.partner.example?q",
        "https://app.partner.example#f",
        "https://u@app.partner.example",
        "https://app%2Epartner.example",
        " https://app.partner.example",
        "https://app.partner.example\r\n",
        "https://bücher.example",
        "https://*.partner.example",
        "http://localhost:*",
        "re:.*",
        "http://127.1",
        "http://[0:0:0:0:0:0:0:1]",
        "http://localhost:03000",
        "app.partner.example",
        "https://" + "a" * MAX_ORIGIN_LENGTH,
    ],
)
def test_non_canonical_request_origins(value: str) -> None:
    assert not is_canonical_request_origin(value)
    assert OriginMatcher([parse_origin_rule("re:.*", stored=True)]).match(value) is None


def test_trailing_dot_request_origin_only_matches_star() -> None:
    origin = "https://app.partner.example."
    everything_but_star = matcher(
        "https://app.partner.example",
        "https://*.partner.example",
        "https://app.partner.example:*",
        "re:.*",
        "null",
    )
    assert everything_but_star.match(origin) is None
    with_star = OriginMatcher([*everything_but_star.rules, parse_origin_rule("*")])
    assert with_star.match(origin) == parse_origin_rule("*")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "HTTPS://APP.PARTNER.EXAMPLE/",
        "null",
        "NULL",
        "https://user@evil.test",
        "x" * (MAX_ORIGIN_LENGTH + 10),
        "https://app.partner.example\x00",
    ],
)
def test_star_matches_every_value(value: str) -> None:
    m = matcher("*", "https://app.partner.example")
    assert m.allows_any
    found = m.match(value)
    assert found is not None
    assert found.kind == "any"


def test_over_long_origin_never_matches_without_star() -> None:
    host = "a." * 1100 + "partner.example"
    origin = f"https://{host}"
    assert len(origin) > MAX_ORIGIN_LENGTH
    assert matcher("https://*.partner.example", "re:.*").match(origin) is None


# ----------------------------------------------------------- specificity and API


@pytest.mark.parametrize(
    ("rules", "origin", "expected"),
    [
        (
            ("*", "re:.*", "https://*.partner.example", "https://app.partner.example"),
            "https://app.partner.example",
            "https://app.partner.example",
        ),
        (
            ("*", "re:.*", "https://*.partner.example", "https://app.partner.example:*"),
            "https://app.partner.example",
            "https://app.partner.example:*",
        ),
        (
            ("*", "re:.*", "https://*.partner.example"),
            "https://app.partner.example",
            "https://*.partner.example",
        ),
        (
            ("https://*.partner.example", "https://*.app.partner.example"),
            "https://x.app.partner.example",
            "https://*.app.partner.example",
        ),
        (
            ("https://*.partner.example", "https://*.app.partner.example"),
            "https://x.partner.example",
            "https://*.partner.example",
        ),
        (("*", "re:https://b.*", "re:https://a.*"), "https://ab.example", "re:https://a.*"),
        (("*", "re:https://b.*", "re:https://a.*"), "https://bb.example", "re:https://b.*"),
        (("re:https://.*", "*"), "https://other.example", "re:https://.*"),
        (("*", "null", "re:.*"), "null", "null"),
        (("*",), "https://other.example", "*"),
        (("re:https://b.*", "https://app.partner.example"), "https://other.example", None),
    ],
)
def test_most_specific_rule_is_reported(
    rules: tuple[str, ...], origin: str, expected: str | None
) -> None:
    assert matched_text(rules, origin) == expected
    # The rule order never matters.
    assert matched_text(tuple(reversed(rules)), origin) == expected


def test_rules_are_deduplicated_and_sorted() -> None:
    m = matcher(
        "https://b.example",
        "NULL",
        "https://B.example/",
        "https://a.example:443",
        "null",
        "re:x",
    )
    assert [rule.text for rule in m.rules] == [
        "https://a.example",
        "https://b.example",
        "null",
        "re:x",
    ]
    assert isinstance(m.rules, tuple)
    assert not m.allows_any
    assert matcher("*").allows_any


def test_empty_matcher_matches_nothing() -> None:
    m = OriginMatcher([])
    assert m.rules == ()
    assert not m.allows_any
    assert m.match("https://app.partner.example") is None
    assert m.match("null") is None


def test_match_returns_the_rule_object() -> None:
    rule = parse_origin_rule("https://*.partner.example")
    m = OriginMatcher([rule])
    assert m.match("https://x.partner.example") is rule


def test_many_regex_rules_are_combined_correctly() -> None:
    rules = [f"re:https://[a-z]+\\.r{i}\\.example" for i in range(200)]
    m = matcher(*rules)
    assert m.match("https://abc.r7.example") == parse_origin_rule(rules[7])
    assert m.match("https://x.r199.example") == parse_origin_rule(rules[199])
    assert m.match("https://x.r200.example") is None
    # Each expression is grouped: "a|b" in one rule cannot swallow its neighbours.
    m2 = matcher("re:https://a\\.example|https://b\\.example", "re:https://c\\.example")
    assert m2.match("https://a.example") is not None
    assert m2.match("https://b.example") is not None
    assert m2.match("https://c.example") is not None
    assert m2.match("https://a.example.c") is None


def test_large_matcher_answers_correctly() -> None:
    exact = [f"https://site{i}.example" for i in range(10_000)]
    subdomain = [f"https://*.tenant{j}.partner.example" for j in range(1_000)]
    m = matcher(*exact, *subdomain)
    assert len(m.rules) == 11_000
    assert m.match("https://site0.example") == parse_origin_rule("https://site0.example")
    assert m.match("https://site9999.example") == parse_origin_rule("https://site9999.example")
    assert m.match("https://site10000.example") is None
    assert m.match("http://site5.example") is None
    assert m.match("https://x.site5.example") is None
    found = m.match("https://a.b.tenant999.partner.example")
    assert found is not None
    assert found.text == "https://*.tenant999.partner.example"
    assert m.match("https://x.tenant0.partner.example") is not None
    assert m.match("https://tenant999.partner.example") is None
    assert m.match("https://x.tenant1000.partner.example") is None
    assert m.match("https://x.tenant9.partner.example.evil.test") is None
    assert m.match("https://x.eviltenant9.partner.example") is None


def test_matching_is_consistent() -> None:
    # Not memoized per matcher (the evaluations are, once per process:
    # tests/test_memory_bounds.py); repeated lookups give the same rule.
    m = matcher("https://*.partner.example")
    for i in range(5_000):
        assert m.match(f"https://x{i}.partner.example") is not None
        assert m.match(f"https://x{i}.evil.test") is None
    first = m.match("https://x1.partner.example")
    assert m.match("https://x1.partner.example") is first


def test_matchers_do_not_share_cache() -> None:
    origin = "https://app.partner.example"
    assert matcher("https://app.partner.example").match(origin) is not None
    assert matcher("https://other.example").match(origin) is None


# -------------------------------------------------------------------- properties

_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
# Latin letters with diacritics and Cyrillic look-alikes of Latin letters.
_UNICODE_ALPHABET = "abcxyz0123\u00fc\u00e9\u00df\u00e7\u0430\u0435\u043e\u0440"
_UNICODE_LABEL = st.text(alphabet=_UNICODE_ALPHABET, min_size=1, max_size=10)
_SCHEME = st.sampled_from(["http", "https", "ws", "wss", "HTTP", "Https", "chrome-extension"])
_PORT = st.one_of(st.none(), st.integers(min_value=1, max_value=65535), st.sampled_from([80, 443]))


@st.composite
def written_rules(draw: st.DrawFn) -> str:
    """Origin rules as an operator might write them, valid or not."""
    scheme = draw(_SCHEME)
    labels = draw(st.lists(st.one_of(_LABEL, _UNICODE_LABEL), min_size=1, max_size=4))
    labels.append(draw(st.sampled_from(["example", "test", "com", "co.uk", "github.io"])))
    host = ".".join(labels)
    if draw(st.booleans()):
        host = host.upper()
    wildcard = draw(st.booleans())
    if wildcard:
        host = "*." + host
    port = draw(_PORT)
    port_text = "" if port is None else f":{port}"
    if not wildcard and draw(st.integers(0, 5)) == 0:
        port_text = ":*"
    slash = "/" if draw(st.booleans()) else ""
    return f"{scheme}://{host}{port_text}{slash}"


@st.composite
def canonical_origins(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https"]))
    labels = draw(st.lists(_LABEL, min_size=1, max_size=4))
    host = ".".join([*labels, "example"])
    port = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=65535)))
    origin = f"{scheme}://{host}" if port is None else f"{scheme}://{host}:{port}"
    return parse_origin_rule(origin).text


_PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


@_PROPERTY_SETTINGS
@given(written_rules())
def test_normalization_is_idempotent(raw: str) -> None:
    try:
        rule = parse_origin_rule(raw)
    except OriginRuleError:
        assume(False)
        raise
    again = parse_origin_rule(rule.text)
    assert again == rule
    assert again.text == rule.text
    assert rule.text == rule.text.lower()
    assert rule.text.isascii()
    assert not rule.text.endswith("/")


@_PROPERTY_SETTINGS
@given(written_rules())
def test_exact_rules_match_their_own_text(raw: str) -> None:
    try:
        rule = parse_origin_rule(raw)
    except OriginRuleError:
        assume(False)
        raise
    assume(rule.kind == "exact")
    assert is_canonical_request_origin(rule.text)
    assert OriginMatcher([rule]).match(rule.text) is rule


_MUTATIONS = [
    "upper_scheme",
    "upper_host",
    "trailing_slash",
    "default_port",
    "trailing_dot",
    "percent",
    "user_info",
    "path",
    "query",
    "fragment",
    "leading_space",
    "trailing_space",
    "trailing_newline",
    "leading_zero_port",
    "unicode",
]


def _mutate(origin: str, mutation: str) -> str:
    rule = parse_origin_rule(origin)
    assert rule.scheme is not None
    assert rule.host is not None
    scheme, host = rule.scheme, rule.host
    port = "" if rule.port is None else f":{rule.port}"
    default_port = ":80" if scheme == "http" else ":443"
    variants = {
        "upper_scheme": f"{scheme.upper()}://{host}{port}",
        "upper_host": f"{scheme}://{host.upper()}{port}",
        "trailing_slash": f"{origin}/",
        "default_port": f"{scheme}://{host}{port or default_port}"
        if not port
        else f"{scheme}://{host}:0{port[1:]}",
        "trailing_dot": f"{scheme}://{host}.{port}",
        "percent": f"{scheme}://%{ord(host[0]):02X}{host[1:]}{port}",
        "user_info": f"{scheme}://user@{host}{port}",
        "path": f"{origin}/x",
        "query": f"{origin}?x",
        "fragment": f"{origin}#x",
        "leading_space": f" {origin}",
        "trailing_space": f"{origin} ",
        "trailing_newline": f"{origin}\n",
        "leading_zero_port": f"{scheme}://{host}:0{port[1:] or default_port[1:]}",
        "unicode": f"{scheme}://ü{host}{port}",
    }
    return variants[mutation]


@_PROPERTY_SETTINGS
@given(canonical_origins(), st.sampled_from(_MUTATIONS))
def test_non_canonical_variant_of_allowed_origin_never_matches(origin: str, mutation: str) -> None:
    rule = parse_origin_rule(origin)
    assert rule.host is not None
    parent = rule.host.split(".", 1)[1]
    allowing = [rule.text, f"{rule.scheme}://{rule.host}:*"]
    if parent != "example":
        port = "" if rule.port is None else f":{rule.port}"
        allowing.append(f"{rule.scheme}://*.{parent}{port}")
    m = matcher(*allowing, "re:.*", "null")
    assert m.match(origin) is not None
    variant = _mutate(origin, mutation)
    assert variant != origin
    assert not is_canonical_request_origin(variant)
    assert m.match(variant) is None


@_PROPERTY_SETTINGS
@given(st.text(max_size=80))
def test_arbitrary_text_never_crashes(value: str) -> None:
    try:
        rule = parse_origin_rule(value)
    except OriginRuleError as exc:
        message = str(exc)
        rule = None
    else:
        message = ""
        assert parse_origin_rule(rule.text) == rule
    assert (rule is None) == bool(message)
    canonical = is_canonical_request_origin(value)
    found = matcher("re:.*").match(value)
    assert (found is not None) == (canonical and value != "null")


def test_subdomains_of_localhost_may_be_wildcarded() -> None:
    """Every name under localhost is this machine (RFC 6761); '*.example' still is not."""
    rule = parse_origin_rule("http://*.localhost:3000")
    assert rule.kind == "subdomain"
    matcher = OriginMatcher([rule])
    assert matcher.match("http://tenant1.localhost:3000") == rule
    assert matcher.match("http://localhost:3000") is None
    assert matcher.match("http://tenant1.localhost:3001") is None
    with pytest.raises(OriginRuleError, match="public suffix"):
        parse_origin_rule("http://*.example")
