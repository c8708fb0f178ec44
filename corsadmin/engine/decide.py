"""The one evaluator: what corsadmin answers to a request, memoized.

:func:`decide` finds the policy that covers the path, decides the origin
(:func:`corsadmin.engine.snapshot.decide_origin`), lets Flask-CORS compute the
exact headers (:mod:`corsadmin.engine.headers`), and keeps the result in the
snapshot's bounded memo (:mod:`corsadmin.engine.memo`), keyed by the compiled
policy first: one memo per process and application, handed from snapshot to
snapshot, with one bound (``EVALUATION_MEMO_LIMIT``) whatever the number of
policies. The request hook, ``corsadmin check`` and the admin "check a request"
page all call it (the last two through :func:`corsadmin.engine.explain.explain`),
so they cannot disagree.

Pure Python: no Flask app or request object, no database.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..limits import MAX_MEMO_ORIGIN, MAX_MEMO_REQUEST_HEADERS
from .counting import usage_origin
from .headers import HeaderPairs, cors_headers
from .outcome import Outcome, outcome_of
from .snapshot import (
    NOT_COVERED,
    CompiledPolicy,
    CorsRequest,
    Decision,
    Snapshot,
    decide_origin,
    origin_decision,
)

__all__ = [
    "NOT_COVERED_EVALUATION",
    "Evaluation",
    "MemoKey",
    "decide",
    "evaluate",
]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A decision and the exact CORS headers the response gets."""

    decision: Decision
    headers: HeaderPairs
    #: What usage counting records: the request's origin, or a bucket for a value that
    #: is no serialized origin (computed once here, not per request).
    usage_origin: str | None = None
    #: The outcome code (:mod:`corsadmin.engine.outcome`): ``allowed`` or why a browser
    #: refuses it, computed once here, not per request (the metrics and refusal log read it).
    outcome: Outcome = "no-policy"

    @property
    def vary(self) -> bool:
        return self.decision.vary_origin

    @property
    def usage_rule(self) -> str | None:
        rule = self.decision.rule
        return rule.text if rule is not None else None


NOT_COVERED_EVALUATION = Evaluation(NOT_COVERED, ())

#: What an answer depends on: (the compiled policy, origin, preflight?, requested
#: method, requested headers, private network).
MemoKey = tuple[CompiledPolicy, str | None, bool, str | None, str | None, bool]


def decide(
    snapshot: Snapshot,
    path: str,
    method: str,
    origin: str | None,
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: bool = False,
) -> Evaluation:
    """The answer to a request: its policy, origin verdict and headers.

    The request's parts are separate arguments, so the request hook builds
    nothing on a memo hit: a path look-up (memoized), a key tuple and a
    dictionary look-up. ``request_method`` and ``request_headers`` are the
    ``Access-Control-Request-*`` headers (they count only for ``OPTIONS``).
    """
    policy = snapshot.policy_for(path)
    if policy is None:
        return NOT_COVERED_EVALUATION
    if method == "OPTIONS":
        key: MemoKey = (policy, origin, True, request_method, request_headers, private_network)
    else:
        key = (policy, origin, False, None, None, private_network)
    evaluations = snapshot.evaluations
    found = evaluations.get(key)
    if found is None:
        request = CorsRequest(
            path, method, origin, request_method, request_headers, private_network
        )
        found = _evaluate(policy, request)
        # Bounded in size as in count: a key holds an Origin and requested headers.
        if (origin is None or len(origin) <= MAX_MEMO_ORIGIN) and (
            key[4] is None or len(key[4]) <= MAX_MEMO_REQUEST_HEADERS
        ):
            evaluations.remember(key, found)
    return found


def evaluate(snapshot: Snapshot, request: CorsRequest) -> Evaluation:
    """:func:`decide` for a :class:`CorsRequest` (the public API's spelling)."""
    return decide(snapshot, *request)


def _evaluate(policy: CompiledPolicy, request: CorsRequest) -> Evaluation:
    """A memo miss: decide the origin (parsed once), let Flask-CORS write the headers."""
    origin = request.origin
    if origin is None:
        decision = decide_origin(policy, None)
        headers = cors_headers(decision, request)
        return Evaluation(decision, headers, None, outcome_of(decision, headers, request))
    rule, canonical = policy.origins.verdict(origin)
    decision = origin_decision(policy, origin, rule, canonical)
    headers = cors_headers(decision, request)
    return Evaluation(
        decision,
        headers,
        usage_origin(origin, decision.rule, canonical),
        outcome_of(decision, headers, request),
    )
