"""Origin rules: parsing, normalization and matching of request ``Origin`` values.

Pure Python: no Flask and no database. See the "Origin rules" section of the
policy document for the data contract.

A rule is one of::

    https://app.partner.example         exact
    https://*.partner.example           subdomain (one or more labels before the suffix)
    http://localhost:*                  any_port
    re:^https://[a-z]{2}\\.partner\\.example$   regex (full match, case-insensitive, RE2)
    null                                the literal ``Origin: null``
    file://                             the literal ``Origin: file://``
    *                                   any origin

:func:`parse_origin_rule` validates and normalizes one rule; :class:`OriginMatcher`
compiles the rules of one policy into lookups whose cost does not grow with the
number of rules.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

import idna
import re2
from publicsuffixlist import PublicSuffixList

from ..limits import REGEX_CHECK_CACHE_SIZE
from .origin_regex import (
    MAX_REGEX_REPEAT,
    RegexCheckError,
    RegexConstructRefused,
    RegexSyntaxUnsupported,
    check_origin_regex,
    parse_origin_regex,
    public_suffix_list,
)

__all__ = [
    "MAX_ORIGIN_LENGTH",
    "MAX_REGEX_LENGTH",
    "OriginKind",
    "OriginMatcher",
    "OriginRule",
    "OriginRuleError",
    "canonical_exact_rule",
    "is_canonical_exact_rule",
    "is_canonical_request_origin",
    "parse_origin_rule",
]

OriginKind = Literal["exact", "subdomain", "any_port", "regex", "null", "file", "any"]

MAX_REGEX_LENGTH: Final = 500
MAX_ORIGIN_LENGTH: Final = 2048

_MAX_HOST_LENGTH: Final = 253
_MAX_LABEL_LENGTH: Final = 63

_BROAD_KINDS: Final[frozenset[OriginKind]] = frozenset(
    {"any", "null", "file", "regex", "subdomain", "any_port"}
)
FILE_ORIGIN: Final = "file://"
"""The origin some Android WebViews send from file: pages; a rule of its own."""
_LOG: Final = logging.getLogger(__name__)
_BAD_STORED_PATTERNS: set[str] = set()  # logged once each
_DEFAULT_PORTS: Final[dict[str, int]] = {"http": 80, "ws": 80, "https": 443, "wss": 443}

_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_ASCII_LABEL_RE: Final = re.compile(r"[a-z0-9_\-]+")
_PORT_RE: Final = re.compile(r"[0-9]+")
# WHATWG URL: a host whose last label is a number is parsed as an IPv4 address.
_NUMERIC_LABEL_RE: Final = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_IPV4_PART_RE: Final = re.compile(r"0|[1-9][0-9]{0,2}")
_INVISIBLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Cs"})
# The shape of most request origins: a lower-case scheme, lower-case ASCII labels of
# at most 63 characters, an optional port without a leading zero. Such a value is
# checked here in one match; any other goes through the full parse.
_SIMPLE_ORIGIN_RE: Final = re.compile(
    r"([a-z][a-z0-9+.\-]*)://((?:[a-z0-9_\-]{1,63}\.)*[a-z0-9_\-]{1,63})(?::([1-9][0-9]{0,4}))?"
)

# The shape of most origin rules as typed or stored: a scheme, ASCII labels of at most 63
# characters (the first may be '*'), an optional port or ':*', an optional trailing
# '/'. Such a text is normalized here in one match (:func:`_fast_url_rule`); any other
# goes through the full parse, which gives the same rule or the error.
_SIMPLE_RULE_RE: Final = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*)://(\*\.)?((?:[A-Za-z0-9_\-]{1,63}\.)*[A-Za-z0-9_\-]{1,63})"
    r"(?::([1-9][0-9]{0,4}|\*))?/?"
)
#: Scheme texts seen, shared: one string object per scheme, not one per rule.
_SCHEMES: dict[str, str] = {}
_MAX_SCHEMES: Final = 64

_STAR_MESSAGE: Final = (
    "a '*' is only allowed as the whole leftmost label ('*.') or as the whole port (':*')"
)
_IP_WILDCARD_MESSAGE: Final = "a '*.' wildcard is not allowed over an IP address"


class OriginRuleError(ValueError):
    """An origin rule is invalid.

    The message is phrased to follow a field name, e.g.
    ``policies[2].origins[0]: a path is not allowed in an origin``.
    """


@dataclass(frozen=True, slots=True)
class OriginRule:
    """One normalized origin rule. Build it with :func:`parse_origin_rule`."""

    text: str
    """Normalized canonical form, as stored and exported."""
    kind: OriginKind
    scheme: str | None = None
    """Lower-case scheme (exact, subdomain, any_port)."""
    host: str | None = None
    """exact/any_port: the host; subdomain: the suffix after ``*.``."""
    port: int | None = None
    """exact/subdomain: an explicit non-default port, None for the scheme's default."""
    pattern: str | None = None
    """regex: the expression without ``re:``."""

    @property
    def is_broad(self) -> bool:
        """True for rules shown to reviewers as broad or risky."""
        return self.kind in _BROAD_KINDS

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------- parsing


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    """The public suffix list (ICANN and private sections), loaded once on first use
    (one instance, shared with the regex check)."""
    return public_suffix_list()


def parse_origin_rule(text: str, *, stored: bool = False) -> OriginRule:
    """Validate and normalize one origin rule.

    Raises :class:`OriginRuleError` with a message that says what is wrong.

    ``stored=True`` reads a rule back from the database: a ``re:`` rule is then taken
    as it was stored, without the write-time checks added since it was written (RE2
    syntax, what it lets in), so that no stored row can make a snapshot fail to load.
    A stored expression RE2 cannot compile matches nothing (see :class:`OriginMatcher`).
    """
    if isinstance(text, str):
        fast = _fast_url_rule(text)
        if fast is not None:
            return fast
    return full_parse_origin_rule(text, stored=stored)


def full_parse_origin_rule(text: str, *, stored: bool = False) -> OriginRule:
    """:func:`parse_origin_rule` without its fast path for plain ASCII rules (the
    reference it is tested against)."""
    if not isinstance(text, str):
        raise OriginRuleError("must be a string")
    return _parse_full(text, stored=stored)


def canonical_exact_rule(text: str) -> OriginRule | None:
    """The exact rule of a text that is already a canonical serialized origin of the
    usual shape (``https://shop.example``, ``http://h.example:8080``), or None.

    One regular expression instead of the full parse: most rules are stored (and many
    are typed) this way, and a snapshot builds the one that matches a request from its
    text alone (:class:`OriginMatcher`). On every text it accepts, it returns what
    :func:`full_parse_origin_rule` returns (tests/test_origin_entries.py)."""
    if len(text) > MAX_ORIGIN_LENGTH:
        return None
    parts = _simple_origin_parts(text)
    if parts is None:
        return None
    rule = _NEW_RULE(OriginRule)
    _SET_TEXT(rule, text)
    _SET_KIND(rule, "exact")
    _SET_SCHEME(rule, parts[0])
    _SET_HOST(rule, parts[1])
    _SET_PORT(rule, parts[2])
    _SET_PATTERN(rule, None)
    return rule


# An exact rule of the fast path is built through its slots: a frozen dataclass's
# __init__ goes through object.__setattr__ per field, 4x slower, a million times per load.
_NEW_RULE: Final = object.__new__
_SET_TEXT: Final = OriginRule.__dict__["text"].__set__
_SET_KIND: Final = OriginRule.__dict__["kind"].__set__
_SET_SCHEME: Final = OriginRule.__dict__["scheme"].__set__
_SET_HOST: Final = OriginRule.__dict__["host"].__set__
_SET_PORT: Final = OriginRule.__dict__["port"].__set__
_SET_PATTERN: Final = OriginRule.__dict__["pattern"].__set__


def is_canonical_exact_rule(text: str) -> bool:
    """Whether :func:`canonical_exact_rule` would build a rule of ``text`` (without
    building it). Asked once per stored rule by a snapshot load: the usual shape, with
    no port and at most 256 characters, is answered by one regular expression."""
    if len(text) <= _PLAIN_MAX_LENGTH and _PLAIN_EXACT_RE.fullmatch(text) is not None:
        return True
    return len(text) <= MAX_ORIGIN_LENGTH and _simple_origin_parts(text) is not None


#: Texts no longer than this have a host of at most 253 characters (``a://`` first).
_PLAIN_MAX_LENGTH: Final = _MAX_HOST_LENGTH + 3
#: What :func:`_simple_origin_parts` accepts, for a text with no port: not a file: or
#: re: scheme, no punycode label, a last label that cannot start an IPv4 address.
_PLAIN_EXACT_RE: Final = re.compile(
    r"(?!(?:file|re)://)[a-z][a-z0-9+.\-]*://(?!.*xn--)"
    r"(?:[a-z0-9_\-]{1,63}\.)*[a-z_\-][a-z0-9_\-]{0,62}"
)


def _parse_full(text: str, *, stored: bool) -> OriginRule:
    """:func:`parse_origin_rule` for every text (the fast path aside)."""
    if not text:
        raise OriginRuleError("must not be empty")
    if len(text) > MAX_ORIGIN_LENGTH:
        raise OriginRuleError(f"must be at most {MAX_ORIGIN_LENGTH} characters long")
    if any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in text):
        raise OriginRuleError("must not contain spaces or control characters")
    if text == "*":
        return OriginRule(text="*", kind="any")
    if text.lower() == "null":
        return OriginRule(text="null", kind="null")
    if text[:3].lower() == "re:":
        if stored and text[3:]:
            return OriginRule(text=f"re:{text[3:]}", kind="regex", pattern=text[3:])
        return _parse_regex_rule(text[3:])
    if text.lower() in (FILE_ORIGIN, FILE_ORIGIN + "/"):
        return OriginRule(text=FILE_ORIGIN, kind="file", scheme="file")
    if text.endswith("/") and not text.endswith("://"):
        text = text[:-1]
    return _parse_url_rule(text, stored=stored)


def _scheme(text: str) -> str:
    """The lower-case scheme, one shared string per scheme (a bounded table)."""
    scheme = _SCHEMES.get(text)
    if scheme is None:
        scheme = text.lower()
        if len(_SCHEMES) < _MAX_SCHEMES:
            _SCHEMES[text] = scheme = _SCHEMES.get(scheme, scheme)
    return scheme


def _fast_url_rule(text: str) -> OriginRule | None:
    """The rule of a plain ASCII ``scheme://host[:port]`` text (``*.`` and ``:*``
    included), exactly as :func:`_parse_url_rule` builds it; None for any text the full
    parse must see (an IP address, punycode, ``re:``, ``file``, an error...)."""
    match = _SIMPLE_RULE_RE.fullmatch(text)
    if match is None or len(text) > MAX_ORIGIN_LENGTH:
        return None
    scheme_text, star, host, port_text = match.groups()
    scheme = _SCHEMES.get(scheme_text) or _scheme(scheme_text)
    if (
        scheme in ("file", "re")  # "re:..." is a regex rule; file: is refused or stored
        or len(host) > _MAX_HOST_LENGTH
        or ("-" in host and "xn--" in host.lower())  # punycode: checked by the full parse
        # A last label starting with a digit may be an IPv4 address: the full parse.
        or host[host.rfind(".") + 1].isdigit()
    ):
        return None
    same = text.islower() and text[-1] != "/"  # the text is the canonical form
    if not same:
        host = host.lower()
    if port_text == "*":
        if star:
            return None  # refused by the full parse
        return OriginRule(text if same else f"{scheme}://{host}:*", "any_port", scheme, host)
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
        if port == _DEFAULT_PORTS.get(scheme):
            port, same = None, False
    if star:
        return _subdomain_rule(scheme, host, port, is_ip=False)
    return OriginRule(
        text if same else f"{scheme}://{host}{_port_suffix(port)}", "exact", scheme, host, port
    )


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


_RE2_OPTIONS: Final = _re2_options()


def _re2_error(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _compile_re2(expr: str) -> re2._Regexp:
    """Compile with RE2: case-insensitive; raises ``re2.error``."""
    return re2.compile(expr, _RE2_OPTIONS)


def _parse_regex_rule(expr: str) -> OriginRule:
    verdict = _regex_verdict(expr)
    if isinstance(verdict, str):
        raise OriginRuleError(verdict)
    return verdict


@functools.lru_cache(maxsize=REGEX_CHECK_CACHE_SIZE)
def _regex_verdict(expr: str) -> OriginRule | str:
    """The rule, or the error message: the check costs up to a fraction of a second,
    and the same stored texts are parsed again (review pages, validation)."""
    try:
        return _check_regex_rule(expr)
    except OriginRuleError as exc:
        return str(exc)


def _check_regex_rule(expr: str) -> OriginRule:
    if not expr:
        raise OriginRuleError("the regular expression after 're:' is empty")
    if len(expr) > MAX_REGEX_LENGTH:
        raise OriginRuleError(
            f"the regular expression must be at most {MAX_REGEX_LENGTH} characters long"
        )
    # The checker's parser names the constructs RE2 cannot run (lookaround,
    # backreferences...) and refuses repeats RE2 refuses; then RE2 is the judge of
    # syntax; then the checker decides what the expression lets in.
    try:
        parse_origin_regex(expr)
    except RegexSyntaxUnsupported as exc:
        unsupported: str | None = str(exc)
    except RegexConstructRefused as exc:
        raise OriginRuleError(str(exc)) from None
    except RegexCheckError as exc:
        _compile_checked(expr)  # RE2's own word on a syntax error, when it has one
        raise OriginRuleError(str(exc)) from None
    else:
        unsupported = None
    _compile_checked(expr)
    if unsupported is not None:
        raise OriginRuleError(unsupported)
    try:
        check_origin_regex(expr)
    except RegexCheckError as exc:
        raise OriginRuleError(str(exc)) from None
    return OriginRule(text=f"re:{expr}", kind="regex", pattern=expr)


def _compile_checked(expr: str) -> None:
    try:
        _compile_re2(expr)
        # Each rule becomes one alternative of a combined expression; it must
        # also compile there.
        _compile_re2(f"(?:{expr})")
    except re2.error as exc:
        detail = _re2_error(exc)
        if "repetition size" in detail:
            detail += f" (RE2 refuses repeats over {MAX_REGEX_REPEAT})"
        raise OriginRuleError(f"the regular expression does not compile: {detail}") from None


def _parse_url_rule(text: str, *, stored: bool = False) -> OriginRule:
    scheme, rest = _url_scheme(text, stored=stored)
    host_text, port_text = _split_host_port(_url_authority(rest))
    if not host_text:
        raise OriginRuleError("the host is empty")
    any_port = port_text == "*"
    port = None if port_text is None or any_port else _rule_port(port_text, scheme)

    wildcard = host_text.startswith("*.")
    if wildcard:
        host_text = host_text[2:]
    if "*" in host_text:
        raise OriginRuleError(_STAR_MESSAGE)
    if wildcard and any_port:
        raise OriginRuleError("a '*.' host wildcard cannot be combined with a ':*' port wildcard")
    if not host_text:
        raise OriginRuleError("the host is empty")

    host, is_ip = _normalize_host(host_text, wildcard=wildcard)
    if wildcard:
        return _subdomain_rule(scheme, host, port, is_ip=is_ip)
    if any_port:
        return OriginRule(text=f"{scheme}://{host}:*", kind="any_port", scheme=scheme, host=host)
    return OriginRule(
        text=f"{scheme}://{host}{_port_suffix(port)}",
        kind="exact",
        scheme=scheme,
        host=host,
        port=port,
    )


def _url_scheme(text: str, *, stored: bool) -> tuple[str, str]:
    """The lower-case scheme of a URL-like rule and what follows its ``://``."""
    scheme_text, sep, rest = text.partition("://")
    if not sep or not scheme_text:
        raise OriginRuleError("must start with a scheme, like https://")
    if "%" in text:
        raise OriginRuleError("percent-encoding ('%') is not allowed in an origin")
    if "*" in scheme_text:
        raise OriginRuleError(_STAR_MESSAGE)
    if not _SCHEME_RE.fullmatch(scheme_text):
        raise OriginRuleError(f"the scheme {scheme_text!r} is not valid")
    scheme = _scheme(scheme_text)
    if scheme == "file" and not stored:  # stored before file:// had a kind of its own
        raise OriginRuleError(
            "a file: page sends the origin 'file://' (no host, no path): write 'file://'"
        )
    return scheme, rest


def _url_authority(rest: str) -> str:
    """The authority after the scheme; refuses user info, a path, a query, a fragment."""
    end = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position != -1:
            end = min(end, position)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        raise OriginRuleError("user info ('name@') is not allowed in an origin")
    if tail:
        after_slash = tail[1:2] if tail[0] == "/" else tail[0]
        if after_slash == "?" or tail[0] == "?":
            raise OriginRuleError("a query ('?') is not allowed in an origin")
        if after_slash == "#" or tail[0] == "#":
            raise OriginRuleError("a fragment ('#') is not allowed in an origin")
        raise OriginRuleError("a path is not allowed in an origin")
    if not authority:
        raise OriginRuleError("the host is empty")
    return authority


def _rule_port(port_text: str, scheme: str) -> int | None:
    """An explicit port, or None when it is the scheme's default."""
    port = _parse_port(port_text)
    return None if port == _DEFAULT_PORTS.get(scheme) else port


def _subdomain_rule(scheme: str, host: str, port: int | None, *, is_ip: bool) -> OriginRule:
    """The ``*.host`` rule; refuses an IP address and a public suffix."""
    if is_ip:
        raise OriginRuleError(_IP_WILDCARD_MESSAGE)
    # 'localhost' is not on the list, so the list's default rule calls it a public
    # suffix; but every name under it is this machine (RFC 6761), as tenant
    # subdomains in development often are: '*.localhost' is allowed.
    if host != "localhost" and _public_suffix_list().is_public(host):
        raise OriginRuleError(f"'*.{host}' would allow every site under a public suffix ('{host}')")
    return OriginRule(
        text=f"{scheme}://*.{host}{_port_suffix(port)}",
        kind="subdomain",
        scheme=scheme,
        host=host,
        port=port,
    )


def _port_suffix(port: int | None) -> str:
    return "" if port is None else f":{port}"


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith(("[", "*.[")):
        close = authority.find("]")
        if close == -1:
            raise OriginRuleError("an IPv6 address must be closed with ']'")
        host, after = authority[: close + 1], authority[close + 1 :]
        if not after:
            return host, None
        if not after.startswith(":"):
            raise OriginRuleError("only ':port' may follow an IPv6 address")
        return host, after[1:]
    if "[" in authority or "]" in authority:
        raise OriginRuleError(
            "'[' and ']' are only allowed around a whole IPv6 address, like [::1]"
        )
    host, sep, port = authority.partition(":")
    return host, (port if sep else None)


def _parse_port(port_text: str) -> int:
    if "*" in port_text:
        raise OriginRuleError(_STAR_MESSAGE)
    if not port_text:
        raise OriginRuleError("the port is empty")
    if not _PORT_RE.fullmatch(port_text):
        raise OriginRuleError("the port must be a number from 1 to 65535")
    if len(port_text) > 1 and port_text[0] == "0":
        raise OriginRuleError("the port must not have leading zeros")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise OriginRuleError("the port must be a number from 1 to 65535")
    return port


def _normalize_host(host: str, *, wildcard: bool) -> tuple[str, bool]:
    """Return the canonical host and whether it is an IP address."""
    if host.startswith("["):
        return _normalize_ipv6(host[1:-1]), True
    if host.endswith("."):
        raise OriginRuleError("the host must not end with a '.'")

    if host.isascii():
        host = host.lower()
    else:
        try:
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except UnicodeError as exc:
            raise OriginRuleError(
                f"the host {host!r} is not a valid internationalized domain name: {exc}"
            ) from None
        if host.endswith("."):
            raise OriginRuleError("the host must not end with a '.'")

    labels = host.split(".")
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        if wildcard:
            raise OriginRuleError(_IP_WILDCARD_MESSAGE)
        return _normalize_ipv4(labels), True
    ascii_labels = [_ascii_label(label) for label in labels]
    result = ".".join(ascii_labels)
    if len(result) > _MAX_HOST_LENGTH:
        raise OriginRuleError(f"the host is longer than {_MAX_HOST_LENGTH} characters")
    return result, False


def _ascii_label(label: str) -> str:
    if not label:
        raise OriginRuleError("the host has an empty label ('..')")
    if label.isascii():
        if not _ASCII_LABEL_RE.fullmatch(label):
            raise OriginRuleError(
                f"the host label {label!r} may only contain letters, digits, '-' and '_'"
            )
        if label.startswith("xn--"):
            _check_punycode_label(label)
    else:
        try:
            label = idna.encode(label, uts46=True, transitional=False).decode("ascii")
        except UnicodeError as exc:
            raise OriginRuleError(
                f"the host label {label!r} is not a valid internationalized domain name: {exc}"
            ) from None
    if len(label) > _MAX_LABEL_LENGTH:
        raise OriginRuleError(f"a host label is longer than {_MAX_LABEL_LENGTH} characters")
    return label


def _check_punycode_label(label: str) -> None:
    try:
        decoded = idna.decode(label)
        again = idna.encode(decoded, uts46=True, transitional=False).decode("ascii")
    except UnicodeError as exc:
        raise OriginRuleError(f"the host label {label!r} is not valid punycode: {exc}") from None
    if again != label:
        raise OriginRuleError(f"the host label {label!r} is not valid punycode")


def _normalize_ipv4(labels: list[str]) -> str:
    if len(labels) != 4 or not all(_IPV4_PART_RE.fullmatch(part) for part in labels):
        raise OriginRuleError(
            "an IPv4 address must be four decimal numbers from 0 to 255 without leading "
            "zeros, like 192.0.2.1"
        )
    if any(int(part) > 255 for part in labels):
        raise OriginRuleError("each part of an IPv4 address must be from 0 to 255")
    return ".".join(labels)


def _normalize_ipv6(inner: str) -> str:
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise OriginRuleError(f"{inner!r} is not a valid IPv6 address") from None
    return f"[{_serialize_ipv6(address.packed)}]"


def _serialize_ipv6(packed: bytes) -> str:
    """Serialize like the WHATWG URL standard (RFC 5952): lower-case hex, longest zero run
    of two or more pieces compressed, never an embedded IPv4 dotted quad."""
    pieces = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2)]
    best_start, best_length = -1, 1
    run_start, run_length = -1, 0
    for index, piece in enumerate(pieces):
        if piece == 0:
            if run_length == 0:
                run_start = index
            run_length += 1
            if run_length > best_length:
                best_start, best_length = run_start, run_length
        else:
            run_length = 0
    if best_start == -1:
        return ":".join(f"{piece:x}" for piece in pieces)
    head = ":".join(f"{piece:x}" for piece in pieces[:best_start])
    tail = ":".join(f"{piece:x}" for piece in pieces[best_start + best_length :])
    return f"{head}::{tail}"


# ------------------------------------------------------------------ request origins


def _parse_request_origin(value: str) -> OriginRule | None:
    """The exact rule for a canonical serialized request origin, or None."""
    if len(value) > MAX_ORIGIN_LENGTH or "://" not in value:
        return None
    try:
        rule = parse_origin_rule(value)
    except OriginRuleError:
        return None
    if rule.kind != "exact" or rule.text != value:
        return None
    return rule


RequestOrigin = tuple[str, str, int | None]
"""A canonical request origin's scheme, host and explicit port (None: the default)."""


def _request_origin_parts(value: str) -> RequestOrigin | None:
    """The scheme, host and port of a canonical serialized request origin (not ``null``
    or ``file://``), or None: one regular expression for the usual shape, the full
    parse (:func:`parse_origin_rule`) for anything else. Both agree on every value."""
    simple = _simple_origin_parts(value)
    if simple is not None:
        return simple
    rule = _parse_request_origin(value)
    if rule is None:
        return None
    return _field(rule, rule.scheme), _field(rule, rule.host), rule.port


def _simple_origin_parts(value: str) -> RequestOrigin | None:
    """The scheme, host and port of a canonical origin of the usual shape (one regular
    expression), or None: then only the full parse can say."""
    simple = _SIMPLE_ORIGIN_RE.fullmatch(value)
    if simple is None:
        return None
    scheme, host, port_text = simple.groups()
    if (
        scheme in ("file", "re")  # "re:..." is a regex rule, file:// a rule of its own
        or "xn--" in host  # punycode labels are checked by the full parse
        or len(host) > _MAX_HOST_LENGTH
        # A last label starting with a digit may be an IPv4 address: the full parse.
        or host[host.rfind(".") + 1].isdigit()
    ):
        return None
    if port_text is None:
        return scheme, host, None
    port = int(port_text)
    if port <= 65535 and port != _DEFAULT_PORTS.get(scheme):
        return scheme, host, port
    return None


def is_canonical_request_origin(value: str) -> bool:
    """True for ``null``, ``file://`` or a value that a browser could send as a serialized origin
    (it re-serializes to itself: lower-case scheme and host, punycode, no default
    port, no trailing slash, no path)."""
    if not isinstance(value, str):
        return False
    return value in ("null", FILE_ORIGIN) or (
        len(value) <= MAX_ORIGIN_LENGTH and _request_origin_parts(value) is not None
    )


# ------------------------------------------------------------------------- matching


def _field(rule: OriginRule, value: str | None) -> str:
    if value is None:
        raise ValueError(f"{rule!r} was not built by parse_origin_rule")
    return value


def _compile_stored(pattern: str) -> re2._Regexp | None:
    """A stored pattern compiled with RE2, or None (logged once) when RE2 cannot."""
    try:
        return _compile_re2(pattern)
    except re2.error as exc:
        if pattern not in _BAD_STORED_PATTERNS:
            _BAD_STORED_PATTERNS.add(pattern)
            _LOG.warning(
                "corsadmin: the stored origin rule 're:%s' does not compile in RE2 (%s); "
                "it matches nothing: replace it",
                pattern,
                _re2_error(exc),
            )
        return None


def _combined(regex_rules: list[tuple[OriginRule, re2._Regexp]]) -> re2._Regexp | None:
    """One RE2 alternation of every rule, to refuse most origins in one pass; None when
    there is at most one rule or RE2's memory budget refuses it (rules are then tried
    one by one, never with Python's ``re``)."""
    if len(regex_rules) < 2:
        return None
    try:
        return _compile_re2("|".join(f"(?:{rule.pattern})" for rule, _ in regex_rules))
    except re2.error:
        return None


def _rule_text(rule: OriginRule) -> str:
    return rule.text


def _built(text: str) -> OriginRule:
    """The rule of an exact text a matcher holds as text alone."""
    rule = canonical_exact_rule(text)
    if rule is None:
        raise ValueError(f"{text!r} is not a canonical exact origin")
    return rule


class OriginMatcher:
    """The compiled origin rules of one policy. Lookup cost does not grow with the
    number of rules.

    Ordinary exact rules may be given as their canonical texts alone (``exact_texts``):
    they are kept as keys, and the :class:`OriginRule` of one is built when it matches
    (a million rules cost a million dictionary keys, not a million objects)."""

    __slots__ = (
        "_any",
        "_any_port",
        "_exact",
        "_file",
        "_null",
        "_regex",
        "_regex_rules",
        "_subdomain",
    )

    def __init__(self, rules: Iterable[OriginRule], exact_texts: Iterable[str] = ()) -> None:
        #: Exact rules by text; None: a rule given as its text (built when it matches).
        self._exact: dict[str, OriginRule | None] = dict.fromkeys(exact_texts)
        self._any_port: dict[tuple[str, str], OriginRule] = {}
        self._subdomain: dict[tuple[str, int | None, str], OriginRule] = {}
        self._null: OriginRule | None = None
        self._file: OriginRule | None = None
        self._any: OriginRule | None = None
        regex_rules: list[tuple[OriginRule, re2._Regexp]] = []
        seen: set[str] = set()
        for rule in sorted(rules, key=_rule_text):
            if rule.text in seen or rule.text in self._exact:
                continue  # the first of one text wins
            seen.add(rule.text)
            if rule.kind == "exact" and rule.scheme == "file":
                continue  # stored before file:// had a kind of its own: matches nothing
            if rule.kind == "regex":
                compiled = _compile_stored(_field(rule, rule.pattern))
                if compiled is not None:
                    regex_rules.append((rule, compiled))
            else:
                self._index(rule)
        self._regex_rules: tuple[tuple[OriginRule, re2._Regexp], ...] = tuple(regex_rules)
        self._regex: re2._Regexp | None = _combined(regex_rules)

    def updated(self, added: Iterable[OriginRule], removed: Iterable[str]) -> OriginMatcher:
        """A matcher of these rules without those whose text is in ``removed`` and with
        ``added`` (which replace rules of the same text). The other rules are neither
        parsed nor compiled again: the lookups of the kinds that change are copied
        (linear in the number of rules, a memory copy), the others shared.

        ``dict.copy`` (not ``dict(...)``): it stays a memory copy after keys were
        removed, where ``dict(...)`` inserts every key again (10x slower at 10**6)."""
        adding = {rule.text: rule for rule in added}
        gone = set(removed) | set(adding)
        dropped = [rule for rule in map(self._held, gone) if rule is not None]
        kinds = {rule.kind for rule in dropped} | {rule.kind for rule in adding.values()}
        new = OriginMatcher.__new__(OriginMatcher)
        new._exact = self._exact.copy() if "exact" in kinds else self._exact
        new._any_port = self._any_port.copy() if "any_port" in kinds else self._any_port
        new._subdomain = self._subdomain.copy() if "subdomain" in kinds else self._subdomain
        new._null, new._file, new._any = self._null, self._file, self._any
        for rule in dropped:
            new._unindex(rule)
        for rule in adding.values():
            new._index(rule)
        new._regex_rules, new._regex = self._regex_rules, self._regex
        if "regex" in kinds:
            kept = [(r, c) for r, c in self._regex_rules if r.text not in gone]
            for rule in adding.values():
                compiled = (
                    _compile_stored(_field(rule, rule.pattern)) if rule.kind == "regex" else None
                )
                if compiled is not None:
                    kept.append((rule, compiled))
            kept.sort(key=lambda pair: pair[0].text)
            new._regex_rules = tuple(kept)
            new._regex = _combined(kept)
        return new

    def _held(self, text: str) -> OriginRule | None:
        """The rule of this text that this matcher holds, or None."""
        if text in self._exact:
            return self._exact[text] or canonical_exact_rule(text)
        for rule in self._rules_but_exact():
            if rule.text == text:
                return rule
        return None

    def _rules_but_exact(self) -> Iterator[OriginRule]:
        yield from self._any_port.values()
        yield from self._subdomain.values()
        yield from (rule for rule, _compiled in self._regex_rules)
        yield from (r for r in (self._null, self._file, self._any) if r is not None)

    def _index(self, rule: OriginRule) -> None:
        """Put a rule that is not a regex into its lookup (see :meth:`updated`)."""
        if rule.kind == "exact":
            self._exact[rule.text] = rule
        elif rule.kind == "any_port":
            self._any_port[(_field(rule, rule.scheme), _field(rule, rule.host))] = rule
        elif rule.kind == "subdomain":
            self._subdomain[(_field(rule, rule.scheme), rule.port, _field(rule, rule.host))] = rule
        elif rule.kind == "null":
            self._null = rule
        elif rule.kind == "file":
            self._file = rule
        elif rule.kind == "any":
            self._any = rule

    def _unindex(self, rule: OriginRule) -> None:
        """Take a rule that is not a regex out of its lookup (see :meth:`updated`)."""
        if rule.kind == "exact":
            self._exact.pop(rule.text, None)
        elif rule.kind == "any_port":
            self._any_port.pop((_field(rule, rule.scheme), _field(rule, rule.host)), None)
        elif rule.kind == "subdomain":
            self._subdomain.pop(
                (_field(rule, rule.scheme), rule.port, _field(rule, rule.host)), None
            )
        elif rule.kind == "null":
            self._null = None
        elif rule.kind == "file":
            self._file = None
        elif rule.kind == "any":
            self._any = None

    @property
    def rules(self) -> tuple[OriginRule, ...]:
        """The rules, deduplicated by text and sorted by text (built on each call)."""
        exact = (rule or _built(text) for text, rule in self._exact.items())
        return tuple(sorted([*exact, *self._rules_but_exact()], key=_rule_text))

    @property
    def allows_any(self) -> bool:
        """A ``*`` rule is present."""
        return self._any is not None

    def match(self, origin: str) -> OriginRule | None:
        """The most specific rule that allows this request ``Origin`` header value, or None.

        Only canonical serialized origins (and ``null``) are matched; any other value
        is allowed only by a ``*`` rule. Not memoized here: the evaluations are
        (:mod:`corsadmin.engine.decide`, one bound per process).
        """
        return self.verdict(origin)[0]

    def verdict(self, origin: str) -> tuple[OriginRule | None, bool]:
        """:meth:`match`, and whether ``origin`` is a serialized origin as a browser sends
        it (:func:`is_canonical_request_origin`), from one parse of the value."""
        if not isinstance(origin, str):
            return None, False
        if origin == "null":
            return self._null or self._any, True
        if origin == FILE_ORIGIN:
            return self._file or self._any, True
        if origin in self._exact:  # an exact rule's text is a canonical origin
            return self._exact[origin] or _built(origin), True
        parts = _request_origin_parts(origin) if len(origin) <= MAX_ORIGIN_LENGTH else None
        if parts is None:
            return self._any, False
        return self._match_parts(origin, parts), True

    def _match_parts(self, origin: str, parts: RequestOrigin) -> OriginRule | None:
        """The rule for a canonical request origin (its parts parsed), exact rules aside."""
        scheme, host, port = parts
        found = self._any_port.get((scheme, host))
        if found is not None:
            return found
        if self._subdomain and not host.startswith("["):
            # Walk the label suffixes from the longest proper suffix to the shortest.
            dot = host.find(".")
            while dot != -1:
                found = self._subdomain.get((scheme, port, host[dot + 1 :]))
                if found is not None:
                    return found
                dot = host.find(".", dot + 1)
        # Only canonical serialized origins reach a regex: the write-time check of what
        # a pattern lets in (corsadmin.origin_regex) relies on it.
        if self._regex_rules and (self._regex is None or self._regex.fullmatch(origin)):
            for rule, compiled in self._regex_rules:
                if compiled.fullmatch(origin):
                    return rule
        return self._any

    def __repr__(self) -> str:
        return f"OriginMatcher({[rule.text for rule in self.rules]!r})"
