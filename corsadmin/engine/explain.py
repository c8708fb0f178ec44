"""Explaining a decision: which policy, which rule, which headers, and why.

:func:`explain` answers "what happens when a page on this origin calls this
path" for ``corsadmin check`` and the admin "check a request" page: the
preflight a browser would send first, then the request itself, each decided by
:func:`corsadmin.engine.decide.decide` (the function the request hook calls),
so the explanation and the enforcement cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..policy.paths import PathCandidate
from .decide import NOT_COVERED_EVALUATION, Evaluation, MemoKey, decide, evaluate
from .headers import HeaderPairs
from .outcome import SIMPLE_METHODS, preflight_problems
from .snapshot import CompiledPolicy, Snapshot

__all__ = [  # Evaluation, evaluate...: moved to engine/decide.py, kept importable here
    "NOT_COVERED_EVALUATION",
    "SAFELISTED_HEADERS",
    "SIMPLE_CONTENT_TYPES",
    "SIMPLE_METHODS",
    "Evaluation",
    "Explanation",
    "MemoKey",
    "evaluate",
    "explain",
]

SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language"})
SIMPLE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)


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
        headers = self.preflight.headers
        if not any(name.lower() == "access-control-allow-origin" for name, _value in headers):
            return ["the origin is not allowed"]
        found = preflight_problems(
            headers, self.method, self.non_safelisted_headers, self.private_network
        )
        return [text for _code, text in found]

    @property
    def problems(self) -> list[str]:
        """Every reason the request fails, not the first only: the origin, and what the
        policy's preflight answer would refuse once the origin is allowed (method,
        headers, private network). Empty when the page can read the response."""
        policy = self.policy
        if policy is None or self.allowed:
            return []
        if self.actual.decision.allowed:
            return self.preflight_problems
        reason = self.actual.decision.reason.removeprefix("refused: ")
        found = ["the origin is not allowed: " + reason]
        if self.preflight is not None:
            headers = _policy_preflight(policy, self.non_safelisted_headers)
            found += [
                text
                for _code, text in preflight_problems(
                    headers, self.method, self.non_safelisted_headers, self.private_network
                )
            ]
        return found

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


def _policy_preflight(policy: CompiledPolicy, requested: Sequence[str]) -> HeaderPairs:
    """The preflight answer ``policy`` gives an origin it allows (what a refused
    origin would get once allowed): its methods, headers, credentials and private
    network flag (``*`` headers with credentials reflect what is requested)."""
    spec = policy.spec
    any_header = "*" in spec.allow_headers
    allowed = ", ".join(requested) if any_header and spec.credentials else None
    headers: list[tuple[str, str]] = [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", ", ".join(spec.methods)),
        ("Access-Control-Allow-Headers", allowed or ", ".join(spec.allow_headers)),
    ]
    if spec.credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if spec.private_network:
        headers.append(("Access-Control-Allow-Private-Network", "true"))
    return tuple(headers)


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
        preflight = decide(
            snapshot,
            path,
            "OPTIONS",
            origin,
            request_method=method,
            request_headers=", ".join(h.lower() for h in non_safelisted) or None,
            private_network=private_network,
        )
    actual = decide(snapshot, path, method, origin)
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
