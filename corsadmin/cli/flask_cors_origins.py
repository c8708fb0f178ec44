"""Flask-CORS ``origins`` as corsadmin origin rules (``import-flask-cors``).

Flask-CORS keeps each origin as a literal (compared case-insensitively with the
whole ``Origin``) or as a compiled regular expression matched at the *start* of
the ``Origin`` (``re.match``, case-insensitive). corsadmin's ``re:`` rules match
the whole origin, so a regex that is not anchored at its end is narrower in
corsadmin: Flask-CORS's ``https://.*\\.example\\.com`` also let in
``https://a.example.com.attacker.example``. That narrowing is stated, never hidden.

The common regex forms become plain rules: ``https?://`` (both schemes), a host
``.*\\.example\\.com`` (``*.example.com``), a port ``:\\d+`` (``:*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from ..policy.origins import OriginRuleError, parse_origin_rule

#: Host prefixes of a regex that stand for "one or more labels" (corsadmin's ``*.``).
_ANY_LABELS: Final = (".*\\.", ".+\\.")
#: Port suffixes that stand for "any port" (corsadmin's ``:*``).
_ANY_PORT: Final = (":\\d+", ":[0-9]+", ":\\d*", ":[0-9]*")
_SCHEMES: Final = (
    ("https?://", ("http", "https")),
    ("https://", ("https",)),
    ("http://", ("http",)),
)
_METACHARS: Final = frozenset(".^$*+?{}[]\\|()")


@dataclass
class OriginTranslation:
    """The rules, the origins refused (text, reason) and the differences stated."""

    rules: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def translate_origins(origins: list[str | re.Pattern[str]]) -> OriginTranslation:
    """Flask-CORS's resolved ``origins`` (no catch-all ``.*``) as origin rules."""
    out = OriginTranslation()
    for origin in origins:
        if isinstance(origin, re.Pattern):
            _add_regex(out, origin.pattern)
        else:
            _add_rule(out, origin, origin)
    out.rules = list(dict.fromkeys(out.rules))
    return out


def _add_rule(out: OriginTranslation, rule: str, given: str) -> None:
    try:
        out.rules.append(parse_origin_rule(rule).text)
    except OriginRuleError as exc:
        out.refused.append((given, str(exc)))


def _add_regex(out: OriginTranslation, pattern: str) -> None:
    body = pattern.removeprefix("^")
    anchored = (body.endswith("$") and not body.endswith("\\$")) or body.endswith("\\Z")
    if anchored:
        body = body.removesuffix("$").removesuffix("\\Z")
    if not anchored:
        out.notes.append(
            f"origin regex {pattern!r}: Flask-CORS matched it at the start of the Origin "
            "only (origins that merely begin like it were let in too); corsadmin matches "
            "the whole origin"
        )
    plain = _plain_rules(body)
    if plain is not None:
        for rule in plain:
            _add_rule(out, rule, pattern)
        return
    _add_rule(out, f"re:^{body}$", pattern)


def _plain_rules(body: str) -> list[str] | None:
    """The plain rules (exact, ``*.``, ``:*``) a regex stands for, or None."""
    found = next(((p, s) for p, s in _SCHEMES if body.startswith(p)), None)
    if found is None:
        return None
    prefix, schemes = found
    rest = body[len(prefix) :]
    wildcard = ""
    for labels in _ANY_LABELS:
        if rest.startswith(labels):
            wildcard, rest = "*.", rest[len(labels) :]
            break
    port = ""
    for any_port in _ANY_PORT:
        if rest.endswith(any_port):
            port, rest = ":*", rest[: -len(any_port)]
            break
    host = _unescaped(rest)
    if host is None or (wildcard and port):
        return None
    return [f"{scheme}://{wildcard}{host}{port}" for scheme in schemes]


def _unescaped(text: str) -> str | None:
    """``text`` as the literal it matches, or None if it holds a regex construct."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and not text[i + 1].isalnum():
            out.append(text[i + 1])
            i += 2
            continue
        if char in _METACHARS:
            return None
        out.append(char)
        i += 1
    return "".join(out)
