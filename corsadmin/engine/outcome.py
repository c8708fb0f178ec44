"""The outcome of a CORS request, for machines: allowed, or why the browser refuses it.

One code from a fixed set (:data:`OUTCOMES`), computed once per memoized answer
(:func:`corsadmin.engine.decide.decide` stores it on the
:class:`~corsadmin.engine.decide.Evaluation`), never per request. The metrics
(``corsadmin_decisions_total``) and the DEBUG refusal log use it; the admin "check
a request" page and ``corsadmin check`` share :func:`preflight_problems` with it, so
what they explain and what is counted cannot disagree.

The preflight rules are the Fetch standard's CORS-preflight check: the requested
method passes if it is CORS-safelisted (``GET``, ``HEAD``, ``POST``) or listed in
``Access-Control-Allow-Methods`` (or ``*`` there, without credentials); each
requested header must be listed in ``Access-Control-Allow-Headers`` (or ``*``
without credentials, which never covers ``Authorization``); private network access
needs ``Access-Control-Allow-Private-Network: true``.

Pure Python: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Literal, get_args

from .headers import HeaderPairs, requested_header_names
from .snapshot import CorsRequest, Decision

__all__ = [
    "OUTCOMES",
    "SIMPLE_METHODS",
    "Outcome",
    "PreflightProblem",
    "outcome_of",
    "preflight_problems",
]

#: Why a CORS request came out as it did: ``allowed``, or the first reason a browser
#: refuses it. ``no-policy``: no policy covers the path (corsadmin sends no headers).
Outcome = Literal[
    "allowed",
    "origin-not-allowed",
    "method-not-allowed",
    "header-not-allowed",
    "private-network-not-allowed",
    "not-a-serialized-origin",
    "no-policy",
]

#: Every outcome code, in the order above: the fixed set of the metrics' label values.
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

#: The CORS-safelisted methods: a preflight never needs them listed.
SIMPLE_METHODS: Final = frozenset({"GET", "HEAD", "POST"})

#: A reason a preflight fails: its outcome code, and the sentence explaining it.
PreflightProblem = tuple[Outcome, str]

_ANY_BUT_AUTHORIZATION: Final = "authorization"  # '*' in Allow-Headers never covers it


def _listed(value: str | None, lower: bool) -> set[str]:
    if not value:
        return set()
    items = (item.strip() for item in value.split(","))
    return {item.lower() if lower else item for item in items if item}


def preflight_problems(
    headers: HeaderPairs, method: str, header_names: Iterable[str], private_network: bool
) -> list[PreflightProblem]:
    """Why a browser fails a preflight answered with ``headers`` (empty when it passes),
    for the requested ``method``, the requested non-safelisted ``header_names`` and
    private network access. The origin itself is not checked here."""
    found = {name.lower(): value for name, value in headers}
    credentials = found.get("access-control-allow-credentials") == "true"
    problems: list[PreflightProblem] = []
    methods = _listed(found.get("access-control-allow-methods"), lower=False)
    any_method = "*" in methods and not credentials
    if method not in SIMPLE_METHODS and method not in methods and not any_method:
        problems.append(("method-not-allowed", f"the method {method} is not allowed"))
    allowed = _listed(found.get("access-control-allow-headers"), lower=True)
    any_header = "*" in allowed and not credentials
    missing = [
        name
        for name in header_names
        if name.lower() not in allowed
        and not (any_header and name.lower() != _ANY_BUT_AUTHORIZATION)
    ]
    if missing:
        text = "the header(s) " + ", ".join(missing) + " are not allowed"
        problems.append(("header-not-allowed", text))
    if private_network and found.get("access-control-allow-private-network") != "true":
        problems.append(("private-network-not-allowed", "private network access is not allowed"))
    return problems


def outcome_of(decision: Decision, headers: HeaderPairs, request: CorsRequest) -> Outcome:
    """The outcome of ``request`` answered with ``decision`` and ``headers`` (once per
    memoized answer). A request without ``Origin`` is no CORS request: its code is
    ``origin-not-allowed`` unless no policy covers it, and nothing counts it."""
    if decision.policy is None:
        return "no-policy"
    if decision.code == "malformed-origin":
        return "not-a-serialized-origin"
    if not decision.allowed or not any(
        name == "Access-Control-Allow-Origin" for name, _value in headers
    ):
        return "origin-not-allowed"
    if request.method != "OPTIONS" or request.request_method is None:
        return "allowed"
    names = _requested_names(request.request_headers)
    if names is None:
        return "header-not-allowed"  # a list no browser sends: nothing of it is allowed
    problems = preflight_problems(
        headers, request.request_method.upper(), names, request.private_network
    )
    return problems[0][0] if problems else "allowed"


def _requested_names(value: str | None) -> Sequence[str] | None:
    """The names in ``Access-Control-Request-Headers`` (None: malformed)."""
    if value is None or not value.strip(" \t,"):
        return ()
    joined = requested_header_names(value)
    return None if joined is None else joined.split(", ")
