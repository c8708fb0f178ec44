"""Explaining a decision: which policy, which rule, which headers, and why.

:func:`evaluate` is what the request hook calls for every response, and what
:func:`explain` calls for ``corsadmin check`` and the admin "check a request"
page, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..policy.paths import PathCandidate
from .counting import usage_origin
from .headers import HeaderPairs, cors_headers
from .snapshot import NOT_COVERED, CompiledPolicy, CorsRequest, Decision, Snapshot, decide_origin

SIMPLE_METHODS = frozenset({"GET", "HEAD", "POST"})
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language"})
SIMPLE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A decision and the exact CORS headers the response gets."""

    decision: Decision
    headers: HeaderPairs
    #: What usage counting records: the request's origin, or a bucket for a value that
    #: is no serialized origin (computed once here, not per request).
    usage_origin: str | None = None

    @property
    def vary(self) -> bool:
        return self.decision.vary_origin

    @property
    def usage_rule(self) -> str | None:
        rule = self.decision.rule
        return rule.text if rule is not None else None


NOT_COVERED_EVALUATION = Evaluation(NOT_COVERED, ())
#: Evaluations kept per policy; clients choose Origin and request headers, so bounded.
MEMO_LIMIT = 4096

MemoKey = tuple[str | None, bool, str | None, str | None, bool]


def memo_key(
    origin: str | None,
    method: str,
    request_method: str | None,
    request_headers: str | None,
    private_network: bool,
) -> MemoKey:
    """What a policy's answer depends on (the preflight fields only for OPTIONS)."""
    if method == "OPTIONS":
        return (origin, True, request_method, request_headers, private_network)
    return (origin, False, None, None, private_network)


def evaluate(snapshot: Snapshot, request: CorsRequest) -> Evaluation:
    """Decide and compute the headers: the one path every answer takes.

    Memoized per policy by :func:`memo_key`, so a repeated request costs a path
    look-up (itself memoized) and a dictionary look-up.
    """
    policy = snapshot.policy_for(request.path)
    if policy is None:
        return NOT_COVERED_EVALUATION
    key = memo_key(
        request.origin,
        request.method,
        request.request_method,
        request.request_headers,
        request.private_network,
    )
    found: Evaluation | None = policy.evaluations.get(key)
    if found is None:
        found = evaluate_policy(policy, request, key)
    return found


def evaluate_policy(policy: CompiledPolicy, request: CorsRequest, key: MemoKey) -> Evaluation:
    """Evaluate (memo miss): decide the origin, let Flask-CORS write the headers, keep it."""
    origin = request.origin
    decision = decide_origin(policy, origin)
    evaluation = Evaluation(
        decision,
        cors_headers(decision, request),
        None if origin is None else usage_origin(origin, decision.rule),
    )
    memo = policy.evaluations
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = evaluation
    return evaluation


@dataclass(frozen=True)
class Explanation:
    """What a browser would send for a request, and what corsadmin answers."""

    origin: str
    path: str
    method: str
    header_names: tuple[str, ...]
    candidates: list[PathCandidate[CompiledPolicy]]
    preflight_reasons: list[str]
    preflight: Evaluation | None
    actual: Evaluation
    revision: int
    private_network: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def policy(self) -> CompiledPolicy | None:
        return self.actual.decision.policy

    @property
    def allowed(self) -> bool:
        """Would the browser let the page read the response?"""
        if not self.actual.decision.allowed:
            return False
        return not self.preflight_reasons or self.preflight_ok

    @property
    def preflight_ok(self) -> bool:
        return not self.preflight_problems

    @property
    def preflight_problems(self) -> list[str]:
        """Why the browser would fail the preflight (empty when it passes)."""
        if self.preflight is None:
            return []
        headers = {k.lower(): v for k, v in self.preflight.headers}
        if "access-control-allow-origin" not in headers:
            return ["the origin is not allowed"]
        problems = []
        methods = {m.strip() for m in headers.get("access-control-allow-methods", "").split(",")}
        if self.method not in SIMPLE_METHODS and self.method not in methods:
            problems.append(f"the method {self.method} is not allowed")
        allowed = {
            h.strip().lower() for h in headers.get("access-control-allow-headers", "").split(",")
        }
        missing = [h for h in self.non_safelisted_headers if h.lower() not in allowed]
        if missing:
            problems.append("the header(s) " + ", ".join(missing) + " are not allowed")
        if self.private_network and headers.get("access-control-allow-private-network") != "true":
            problems.append("private network access is not allowed")
        return problems

    @property
    def non_safelisted_headers(self) -> list[str]:
        return [h.partition(":")[0].strip() for h in self.header_names if not _safelisted(h)]

    def lines(self) -> list[str]:
        """The explanation as text, one fact a line."""
        out = [f"request: {self.method} {self.path} from {self.origin} (revision {self.revision})"]
        if not self.candidates:
            out.append(
                "policy: none - no enabled policy covers this path; no CORS headers are sent"
            )
        else:
            winner = self.candidates[0]
            out.append(
                f"policy: {winner.name} (path {winner.pattern.text}, priority {winner.priority})"
            )
            for other in self.candidates[1:]:
                out.append(
                    f"  also matched: {other.name} (path {other.pattern.text}, priority "
                    f"{other.priority}) - loses to {winner.name} on "
                    + ("priority" if other.priority != winner.priority else "specificity")
                )
        if self.actual.decision.covered:
            out.append("origin: " + self.actual.decision.reason)
        if self.preflight is not None:
            out.append(
                "preflight: a browser sends one first, because " + "; ".join(self.preflight_reasons)
            )
            out.append("preflight response headers:")
            out.extend(_header_lines(self.preflight.headers, self.preflight.vary))
            if self.actual.decision.allowed and not self.preflight_ok:
                out.append("preflight refused: " + "; ".join(self.preflight_problems))
        out.append("response headers:")
        out.extend(_header_lines(self.actual.headers, self.actual.vary))
        out.extend(self.notes)
        out.append("verdict: " + ("ALLOWED" if self.allowed else "REFUSED"))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _header_lines(headers: HeaderPairs, vary: bool) -> list[str]:
    lines = [f"  {name}: {value}" for name, value in headers]
    if vary:
        lines.append("  Vary: Origin")
    return lines or ["  (none)"]


def _safelisted(header: str) -> bool:
    name, _, value = header.partition(":")
    name = name.strip().lower()
    if name in SAFELISTED_HEADERS:
        return True
    if name == "content-type" and value.strip():
        return value.split(";")[0].strip().lower() in SIMPLE_CONTENT_TYPES
    return False


def explain(
    snapshot: Snapshot,
    origin: str,
    path: str,
    method: str = "GET",
    headers: Sequence[str] = (),
    *,
    private_network: bool = False,
) -> Explanation:
    """Explain what happens when a page on ``origin`` calls ``method path``.

    ``headers`` are request header names the page sets (``Name`` or
    ``Name: value``; a value lets a ``Content-Type`` count as simple).
    """
    method = method.upper()
    names = tuple(h.strip() for h in headers if h.strip())
    non_safelisted = [h.partition(":")[0].strip() for h in names if not _safelisted(h)]
    reasons: list[str] = []
    if method not in SIMPLE_METHODS:
        reasons.append(f"{method} is not a simple method")
    if non_safelisted:
        reasons.append("it sets " + ", ".join(non_safelisted))
    if private_network:
        reasons.append("it reaches a private network")
    preflight = None
    if reasons:
        preflight = evaluate(
            snapshot,
            CorsRequest(
                path=path,
                method="OPTIONS",
                origin=origin,
                request_method=method,
                request_headers=", ".join(h.lower() for h in non_safelisted) or None,
                private_network=private_network,
            ),
        )
    actual = evaluate(snapshot, CorsRequest(path=path, method=method, origin=origin))
    return Explanation(
        origin=origin,
        path=path,
        method=method,
        header_names=names,
        candidates=snapshot.candidates(path),
        preflight_reasons=reasons,
        preflight=preflight,
        actual=actual,
        revision=snapshot.revision,
        private_network=private_network,
    )
