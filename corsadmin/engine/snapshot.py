"""The compiled policy set, and the one function that decides.

A :class:`Snapshot` is an immutable, compiled view of every enabled policy at
one revision. It answers "which policy covers this path" through a segment trie
and "is this origin allowed, and by which rule" through hash lookups, so the
cost of a decision does not grow with the number of origin rules.

Pure Python: no Flask, no database. The request hook, ``corsadmin check`` and
the admin "check a request" page all decide through
:func:`corsadmin.engine.decide.decide`, which looks the policy up here and
memoizes its answers in the snapshot's :attr:`Snapshot.evaluations`: one bounded
memo per process and application, handed from each snapshot to the next.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..limits import EVALUATION_MEMO_LIMIT, MAX_MEMO_PATH, PATH_MEMO_LIMIT
from ..policy.origins import OriginMatcher, OriginRule
from ..policy.paths import PathCandidate, PathMatcher
from ..policy.spec import PolicySpec
from .memo import BoundedMemo

if TYPE_CHECKING:
    from .decide import Evaluation, MemoKey

__all__ = [
    "MAX_MEMO_PATH",
    "NOT_COVERED",
    "PATH_MEMO_LIMIT",
    "CompiledPolicy",
    "CorsRequest",
    "Decision",
    "ReasonCode",
    "Snapshot",
    "decide_origin",
    "origin_decision",
]


class CorsRequest(NamedTuple):
    """What of a request matters to CORS (a tuple: cheap to build per request)."""

    path: str
    method: str = "GET"
    origin: str | None = None
    request_method: str | None = None  # Access-Control-Request-Method
    request_headers: str | None = None  # Access-Control-Request-Headers
    private_network: bool = False  # Access-Control-Request-Private-Network: true


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """One enabled policy, ready to answer. Hashes by identity: it is the first part of
    the key of its memoized answers (:attr:`Snapshot.evaluations`), so an answer of a
    policy that changed (a new object) can never answer for the new one."""

    spec: PolicySpec
    origins: OriginMatcher
    any_origin: bool  # a '*' rule without credentials: answer '*' to everyone
    #: Values derived from the spec once (the Flask-CORS options: engine/headers.py).
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name


#: Why a decision came out as it did, for machines (signals, metrics, logs):
#: ``rule`` and ``any-origin`` allow; ``no-origin`` (not a CORS request),
#: ``malformed-origin`` (no serialized origin) and ``no-rule`` refuse;
#: ``not-covered``: no policy covers the path, corsadmin leaves the response alone.
ReasonCode = Literal[
    "rule", "any-origin", "no-origin", "malformed-origin", "no-rule", "not-covered"
]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request: the policy, the origin verdict and why."""

    policy: CompiledPolicy | None
    allowed: bool
    reason: str
    rule: OriginRule | None = None
    allow_origin: str | None = None  # the Access-Control-Allow-Origin value: '*' or the origin
    vary_origin: bool = False  # the response depends on the Origin header
    code: ReasonCode = "not-covered"  # the reason, for machines

    @property
    def covered(self) -> bool:
        return self.policy is not None


NOT_COVERED = Decision(None, False, "no enabled policy covers this path")


def _compile_policy(spec: PolicySpec, now: datetime) -> CompiledPolicy:
    rules = [e.rule for e in spec.origins if not e.is_expired(now)]
    matcher = OriginMatcher(rules)
    return CompiledPolicy(spec, matcher, matcher.allows_any and not spec.credentials)


def _carried_over(
    memo: BoundedMemo[MemoKey, Evaluation] | None, in_force: Iterable[CompiledPolicy]
) -> BoundedMemo[MemoKey, Evaluation]:
    """A new snapshot's evaluation memo: the previous one's answers of the policies it
    took over (the others are dropped, so no replaced policy stays pinned in memory)."""
    carried: BoundedMemo[MemoKey, Evaluation] = BoundedMemo(EVALUATION_MEMO_LIMIT)
    if memo:
        kept = set(in_force)
        # dict.copy() is one C call: requests may go on adding to ``memo`` meanwhile.
        carried.update({k: v for k, v in memo.copy().items() if k[0] in kept})
    return carried


class Snapshot:
    """Every enabled policy at one revision, compiled."""

    __slots__ = (
        "_by_path",
        "_compiled",
        "_paths",
        "compiled_at",
        "evaluations",
        "loaded",
        "revision",
        "specs",
        "valid_until",
    )

    def __init__(
        self,
        revision: int,
        specs: Iterable[PolicySpec],
        *,
        now: datetime | None = None,
        loaded: bool = True,
        previous: Snapshot | None = None,
    ) -> None:
        """Compile ``specs``. With ``previous`` (the snapshot in force), every policy
        that did not change is taken over as it was, memoized answers included: a
        change to one policy recompiles one policy, not ten thousand rules, and the
        answers of the policies no longer in force are dropped with ``previous``."""
        now = now or datetime.now(UTC)
        self.revision = revision
        self.loaded = loaded
        self.specs: tuple[PolicySpec, ...] = tuple(sorted(specs, key=lambda s: s.name))
        self.compiled_at = now
        reusable: dict[PolicySpec, CompiledPolicy] = {}
        if previous is not None and now.timestamp() < previous.valid_until:
            reusable = previous._compiled  # no rule of it has expired since
        self._compiled: dict[PolicySpec, CompiledPolicy] = {}
        entries: list[PathCandidate[CompiledPolicy]] = []
        next_expiry = math.inf
        for spec in self.specs:
            if not spec.enabled:
                continue
            for entry in spec.origins:
                if entry.expires is not None and entry.expires > now:
                    next_expiry = min(next_expiry, entry.expires.timestamp())
            compiled = reusable.get(spec) or _compile_policy(spec, now)
            self._compiled[spec] = compiled
            entries.append(PathCandidate(spec.path, spec.priority, spec.name, compiled))
        self._paths: PathMatcher[CompiledPolicy] = PathMatcher(entries)
        self._by_path: BoundedMemo[str, CompiledPolicy | None] = BoundedMemo(PATH_MEMO_LIMIT)
        #: Every policy's answers (:func:`corsadmin.engine.decide.decide`), keyed by the
        #: compiled policy first: one bound for the process, whatever the number of policies.
        self.evaluations: BoundedMemo[MemoKey, Evaluation] = _carried_over(
            previous.evaluations if reusable and previous is not None else None,
            self._compiled.values(),
        )
        #: When an origin rule expires, the snapshot must be compiled again (epoch seconds).
        self.valid_until: float = next_expiry

    @classmethod
    def empty(cls) -> Snapshot:
        """Allows nothing: what a process enforces before any snapshot could load."""
        return cls(-1, (), loaded=False)

    def recompiled(self, now: datetime | None = None) -> Snapshot:
        """The same policies compiled again (after an origin rule expired)."""
        return Snapshot(self.revision, self.specs, now=now, loaded=self.loaded)

    def __len__(self) -> int:
        return len(self._paths)

    def policy_for(self, path: str) -> CompiledPolicy | None:
        """The policy covering ``path`` (memoized: a dictionary look-up when seen before)."""
        by_path = self._by_path
        if path in by_path:
            return by_path[path]
        candidate = self._paths.match(path)
        policy = candidate.value if candidate is not None else None
        if len(path) <= MAX_MEMO_PATH:  # bounded in count and size: clients choose paths
            by_path.remember(path, policy)
        return policy

    def candidates(self, path: str) -> list[PathCandidate[CompiledPolicy]]:
        """Every enabled policy whose pattern matches ``path``, the winner first."""
        return self._paths.candidates(path)

    def decide(self, request: CorsRequest) -> Decision:
        """Deprecated: the origin verdict only. Use :func:`corsadmin.evaluate` (the
        decision and the headers, memoized), which the request hook uses."""
        warnings.warn(
            "Snapshot.decide is deprecated and will be removed in the next release: use "
            "corsadmin.evaluate(snapshot, request).decision",
            DeprecationWarning,
            stacklevel=2,
        )
        policy = self.policy_for(request.path)
        return NOT_COVERED if policy is None else decide_origin(policy, request.origin)


def decide_origin(policy: CompiledPolicy, origin: str | None) -> Decision:
    """The origin verdict of one policy."""
    if origin is None:
        return origin_decision(policy, None, None, False)
    rule, canonical = policy.origins.verdict(origin)
    return origin_decision(policy, origin, rule, canonical)


def origin_decision(
    policy: CompiledPolicy, origin: str | None, rule: OriginRule | None, canonical: bool
) -> Decision:
    """The origin verdict of one policy, from what its matcher found for ``origin``
    (:meth:`OriginMatcher.verdict`: the rule, and whether it is a serialized origin)."""
    if policy.any_origin:
        return Decision(
            policy,
            True,
            f"policy {policy.name!r} allows any origin ('*'), so the answer is '*'",
            rule=rule if origin else None,
            allow_origin="*",
            code="any-origin",
        )
    if origin is None:
        return Decision(
            policy,
            False,
            "the request has no Origin header: it is not a CORS request",
            vary_origin=True,
            code="no-origin",
        )
    if rule is not None:
        return Decision(
            policy,
            True,
            f"origin allowed by rule {rule.text!r} ({rule.kind}) of policy {policy.name!r}",
            rule=rule,
            allow_origin=origin,
            vary_origin=True,
            code="rule",
        )
    code: ReasonCode = "no-rule"
    if not canonical:
        code = "malformed-origin"
        reason = (
            "refused: the Origin header is not a serialized origin as a browser sends it "
            "(lower-case scheme and host, no default port, no path or trailing slash)"
        )
    else:
        reason = f"refused: no origin rule of policy {policy.name!r} matches {origin!r}"
    return Decision(policy, False, reason, vary_origin=True, code=code)
