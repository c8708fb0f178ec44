"""Flask-CORS resource patterns as corsadmin route patterns (``import-flask-cors``).

Flask-CORS matches a resource's regular expression at the *start* of the
percent-decoded request path (``re.match``, not a full match): ``r"/api/*"`` is
"``/api`` then any number of ``/``", so it covers every path that begins with
``/api`` (``/api/v1/users`` and ``/apiary`` alike). A resource given as a plain
string (no regex character: ``*\\]?$^[]()``) is compared with the whole path.

The forms translated (anything else is refused, with the reason):

- a literal path (a plain string, or a regex of literal characters ending in ``$``
  or ``\\Z``): the same path;
- a literal prefix followed by nothing, ``/*``, ``.*`` or ``/?`` (any mix of them,
  so the rest can be empty): every path starting with the prefix. Written
  ``/api/**`` when no route of the application begins like the prefix without the
  ``/`` (``/apiary``), or the exact ``/api*/**`` otherwise;
- ``.*`` alone (or ``*``): every path, ``/**``.

Only paths no route serves (404s) may then be answered differently: the
difference is stated (:attr:`PathTranslation.note`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..policy.paths import PathPatternError, parse_path_pattern

#: A regex escape of one of these characters stands for the character itself.
_ESCAPABLE: Final = frozenset("./-_~!$&'()*+,;=:@[]{}?^|\\<>#% ")
#: Tokens of a resource regex that can match the empty string (so, after the literal
#: prefix, they leave "every path starting with the prefix").
_EMPTY_TAILS: Final = ("/*", ".*", "/?")
_END_ANCHORS: Final = ("\\Z", "$")
_REGEX_CHARS: Final = frozenset("*\\]?$^[]()")


class PathTranslationError(ValueError):
    """A resource pattern corsadmin cannot express; the message says why."""


@dataclass(frozen=True, slots=True)
class PathTranslation:
    """A resource's route pattern, and what differs from Flask-CORS ("" if nothing)."""

    pattern: str
    note: str = ""


def translate_resource(resource: str | re.Pattern[str], rules: Iterable[str]) -> PathTranslation:
    """The route pattern covering the paths Flask-CORS's ``resource`` covers, checked
    against the application's URL ``rules`` (their text, as ``/items/<int:id>``)."""
    if isinstance(resource, re.Pattern):
        if resource.flags & re.IGNORECASE:
            raise PathTranslationError(
                "a case-insensitive path regex: corsadmin route patterns are case-sensitive"
            )
        text, regex = resource.pattern, True
    else:
        text, regex = resource, any(c in _REGEX_CHARS for c in resource)
    if not regex:
        return PathTranslation(_checked(_literal_path(text)))
    prefix, anchored = _split_regex(text)
    if anchored:
        return PathTranslation(_checked(_literal_path(prefix)))
    return _prefix_pattern(prefix, list(rules))


def _literal_path(text: str) -> str:
    if "<" in text or ">" in text or "*" in text:
        raise PathTranslationError(
            f"{text!r} holds '<', '>' or '*', which a corsadmin route pattern reads as a "
            "variable or a wildcard"
        )
    return text


def _checked(pattern: str) -> str:
    try:
        return parse_path_pattern(pattern).text
    except PathPatternError as exc:
        raise PathTranslationError(f"{pattern!r}: {exc}") from None


def _split_regex(text: str) -> tuple[str, bool]:
    """The literal prefix of a resource regex, and whether the regex ends there
    (anchored: the whole path is the prefix); the rest must be able to match nothing."""
    body = text.removeprefix("^")
    literal: list[str] = []
    i = 0
    while i < len(body):
        rest = body[i:]
        if rest in _END_ANCHORS:
            return "".join(literal), True
        if _only_empty_tails(rest):
            return "".join(literal), False
        char = body[i]
        if char == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPABLE:
            literal.append(body[i + 1])
            i += 2
            continue
        if char in _REGEX_CHARS or char in ".+{}|":
            raise PathTranslationError(
                f"the regex {text!r} has {char!r} at {i}: only a literal path, optionally "
                "followed by '/*', '.*' or '$', can be written as a route pattern"
            )
        literal.append(char)
        i += 1
    return "".join(literal), False


def _only_empty_tails(rest: str) -> bool:
    while rest:
        for tail in _EMPTY_TAILS:
            if rest.startswith(tail):
                rest = rest[len(tail) :]
                break
        else:
            return False
    return True


def _prefix_pattern(prefix: str, rules: list[str]) -> PathTranslation:
    """Every path starting with ``prefix``, readable when the application allows it."""
    if prefix in ("", "/"):
        return PathTranslation("/**")
    _literal_path(prefix)
    if not prefix.startswith("/"):
        raise PathTranslationError(
            f"the regex's prefix {prefix!r} does not start with '/': a path always does"
        )
    if prefix.endswith("/"):
        base = prefix.rstrip("/")
        if base and not any(_may_serve(r, base, exact=True) for r in rules):
            return PathTranslation(
                _checked(f"{base}/**"),
                f"also covers {base!r} itself, which no route serves",
            )
        return PathTranslation(_checked(f"{prefix}*/**"))
    if any(_may_serve(r, prefix, exact=False) for r in rules):
        return PathTranslation(_checked(f"{prefix}*/**"))
    return PathTranslation(
        _checked(f"{prefix}/**"),
        f"Flask-CORS also covered paths merely starting with {prefix!r} (as "
        f"{prefix + 'x'!r}); no route serves one, so they are left out",
    )


def _may_serve(rule: str, path: str, *, exact: bool) -> bool:
    """May the URL ``rule`` serve ``path`` itself (``exact``), or a path that starts
    with ``path`` and goes on with a character other than ``/``? (A variable may
    stand for anything from where it starts: yes, unless its literal head rules it out.)"""
    head, variable, _ = rule.partition("<")
    if not variable:
        if exact:
            return rule == path
        return rule.startswith(path) and len(rule) > len(path) and rule[len(path)] != "/"
    if path.startswith(head):
        return True  # the variable starts within the path
    if exact:
        return False
    return head.startswith(path) and head[len(path)] != "/"
