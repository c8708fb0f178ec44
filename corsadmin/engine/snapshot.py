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

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from ..limits import EVALUATION_MEMO_LIMIT, MAX_MEMO_PATH, PATH_MEMO_LIMIT
from ..policy.origins import OriginMatcher, OriginRule
from ..policy.paths import PathCandidate, PathMatcher
from ..policy.spec import OriginEntry, PolicySpec
from .memo import BoundedMemo

if TYPE_CHECKING:
    from .decide import Evaluation, MemoKey
    from .trial import Trial

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
    # Plain rules (exact, no expiry) are compiled from their texts alone (OriginEntries).
    rules = [e.rule for e in spec.origins.detailed() if e.expires is None or e.expires > now]
    matcher = OriginMatcher(rules, spec.origins.plain_texts())
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


Route = tuple[str, int] | None


def _route(spec: PolicySpec | None) -> Route:
    """What the path matcher holds of a policy: its pattern and priority when enabled
    (its name is the key); None when it is disabled or absent."""
    return (spec.path.text, spec.priority) if spec is not None and spec.enabled else None


def _routes(specs: Iterable[PolicySpec]) -> list[tuple[str, Route]]:
    """Every policy's route, by name (the matcher of one list serves the other)."""
    return [(spec.name, _route(spec)) for spec in specs]


def _next_expiry(entries: Iterable[OriginEntry], now: datetime) -> float:
    """When the first of these rules that has not expired at ``now`` expires (epoch s)."""
    return min(
        (e.expires.timestamp() for e in entries if e.expires is not None and e.expires > now),
        default=math.inf,
    )


def _same_but_origins(a: PolicySpec, b: PolicySpec) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in _NOT_ORIGINS)


_NOT_ORIGINS: Final = tuple(f.name for f in dataclasses.fields(PolicySpec) if f.name != "origins")

#: What changed in one policy's origin rules: each rule text touched, and its entry now
#: (None when it was removed).
OriginChanges = Mapping[str, "OriginEntry | None"]


class Snapshot:
    """Every enabled policy at one revision, compiled."""

    __slots__ = (
        "__weakref__",  # a Trial refers to the live snapshot it was built from weakly
        "_by_path",
        "_compiled",
        "_expiry",
        "_paths",
        "committed_at",
        "compiled_at",
        "evaluations",
        "loaded",
        "revision",
        "specs",
        "trial",
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
        that did not change is taken over as it was, memoized answers included (or,
        when a rule of it expired since, with that rule taken out of its compiled
        rules): a change to one policy recompiles one policy, not ten thousand rules. The
        answers of the policies no longer in force are dropped with ``previous``."""
        now = now or datetime.now(UTC)
        specs = tuple(sorted(specs, key=lambda s: s.name))
        compiled: dict[str, CompiledPolicy] = {}
        expiry: dict[str, float] = {}
        for spec in specs:
            if not spec.enabled:
                continue
            current = previous._current(spec.name, now) if previous is not None else None
            if current is not None and current[0].spec == spec:
                compiled[spec.name], expiry[spec.name] = current
            else:
                compiled[spec.name] = _compile_policy(spec, now)
                expiry[spec.name] = _next_expiry(spec.origins.detailed(), now)
        memo = previous.evaluations if previous is not None else None
        paths = None
        if previous is not None and _routes(previous.specs) == _routes(specs):
            paths = previous._paths  # the same patterns: the same matcher
        self._set(revision, specs, compiled, expiry, now, loaded, memo, paths)

    def _set(
        self,
        revision: int,
        specs: tuple[PolicySpec, ...],
        compiled: dict[str, CompiledPolicy],
        expiry: dict[str, float],
        now: datetime,
        loaded: bool,
        memo: BoundedMemo[MemoKey, Evaluation] | None,
        paths: PathMatcher[str] | None = None,
    ) -> None:
        """Install the compiled policies; ``paths``, when given, is a matcher of the very
        same routes (names, patterns, priorities of the enabled policies), taken over:
        building one costs a trie insert per policy."""
        self.revision = revision
        self.loaded = loaded
        self.specs = specs
        self.compiled_at = now
        #: When the change that made ``revision`` committed (epoch seconds, the writer's
        #: clock), or 0.0 when not known: set by the loader (``corsadmin.db.loader``);
        #: the fleet view and the metrics measure the time to enforcement from it.
        self.committed_at = 0.0
        #: The compiled enabled policies by name, and when a rule of each expires.
        self._compiled = compiled
        self._expiry = expiry
        #: The enabled policies' route patterns, each leading to the policy's name (not its
        #: compiled policy): a change that leaves every route alone keeps the matcher.
        self._paths: PathMatcher[str] = paths or PathMatcher(
            [PathCandidate(s.path, s.priority, s.name, s.name) for s in specs if s.enabled]
        )
        self._by_path: BoundedMemo[str, CompiledPolicy | None] = BoundedMemo(PATH_MEMO_LIMIT)
        #: Every policy's answers (:func:`corsadmin.engine.decide.decide`), keyed by the
        #: compiled policy first: one bound for the process, whatever the number of policies.
        self.evaluations: BoundedMemo[MemoKey, Evaluation] = _carried_over(memo, compiled.values())
        #: When an origin rule expires, the snapshot must be compiled again (epoch seconds).
        self.valid_until: float = min(expiry.values(), default=math.inf)
        #: The active draft tried against this snapshot, or None: the request hook's one
        #: check when no draft is active (:func:`corsadmin.engine.trial.attach_trial`).
        self.trial: Trial | None = None

    def _current(self, name: str, now: datetime) -> tuple[CompiledPolicy, float] | None:
        """This snapshot's compiled policy ``name`` and when a rule of it expires next,
        the rules expired by ``now`` taken out (the others are not compiled again)."""
        old = self._compiled.get(name)
        if old is None:
            return None
        when = self._expiry[name]
        if now.timestamp() < when:
            return old, when
        spec = old.spec
        expired = [e.rule.text for e in spec.origins.detailed() if e.is_expired(now)]
        matcher = old.origins.updated((), expired)
        compiled = CompiledPolicy(spec, matcher, matcher.allows_any and not spec.credentials)
        return compiled, _next_expiry(spec.origins.detailed(), now)

    def with_changes(
        self,
        revision: int,
        policies: Mapping[str, PolicySpec | None],
        origins: Mapping[str, tuple[PolicySpec, OriginChanges]] | None = None,
        *,
        now: datetime | None = None,
        memo_from: Snapshot | None = None,
    ) -> Snapshot:
        """This snapshot at a later ``revision``: ``policies`` replaced (None: deleted)
        and compiled again; for ``origins``, policies whose only change is some origin
        rules, the compiled rules are updated in place of a compile. The cost grows with
        the number of policies and of rules changed, not with the rules left alone
        (except a memory copy of the lookups of a changed policy's matcher); the path
        matcher is taken over when no changed policy's route (pattern, priority,
        enabled) changed, and built again (a trie insert per policy) when one did.
        ``memo_from`` (default: this snapshot): whose memoized answers are carried over,
        and whose compiled policy of a changed policy's very spec is taken over (a
        draft's snapshot keeps its answers across reloads: ``build_trial``)."""
        now = now or datetime.now(UTC)
        origins = origins or {}
        source = self if memo_from is None else memo_from
        by_name = {s.name: s for s in self.specs}
        moment = now.timestamp()
        expiry = {name: when for name, when in self._expiry.items() if moment < when}
        compiled = {name: self._compiled[name] for name in expiry}  # no rule of it expired
        changed = [*policies, *origins]
        routes_before = [_route(by_name.get(name)) for name in changed]
        for name in changed:
            compiled.pop(name, None)
            expiry.pop(name, None)
            by_name.pop(name, None)
        by_name.update((spec.name, spec) for spec, _changes in origins.values())
        by_name.update((spec.name, spec) for spec in policies.values() if spec is not None)
        if source is not self:
            for name in changed:
                if name in by_name:
                    _take_over(source, by_name[name], now, compiled, expiry)
        self._compile_missing(by_name.values(), origins, compiled, expiry, now)
        snapshot = Snapshot.__new__(Snapshot)
        specs = tuple(sorted(by_name.values(), key=lambda s: s.name))
        routes_after = [_route(by_name.get(name)) for name in changed]
        paths = self._paths if routes_after == routes_before else None  # no route changed
        snapshot._set(
            revision, specs, compiled, expiry, now, self.loaded, source.evaluations, paths
        )
        return snapshot

    def _compile_missing(
        self,
        specs: Iterable[PolicySpec],
        origins: Mapping[str, tuple[PolicySpec, OriginChanges]],
        compiled: dict[str, CompiledPolicy],
        expiry: dict[str, float],
        now: datetime,
    ) -> None:
        """Fill ``compiled`` and ``expiry`` for every enabled policy of ``specs`` not in
        them yet (changed, or a rule of it expired): by updating this snapshot's compiled
        rules where only ``origins`` changed, else taking it over or compiling it."""
        for name, (spec, changes) in origins.items():
            current = None if name in compiled else self._current(name, now)
            if spec.enabled and current is not None and _same_but_origins(current[0].spec, spec):
                compiled[name], expiry[name] = _updated(*current, spec, changes, now)
        for spec in specs:
            if spec.enabled and spec.name not in compiled:
                current = self._current(spec.name, now)
                if current is not None and current[0].spec is spec:
                    compiled[spec.name], expiry[spec.name] = current
                else:
                    compiled[spec.name] = _compile_policy(spec, now)
                    expiry[spec.name] = _next_expiry(spec.origins.detailed(), now)

    @classmethod
    def empty(cls) -> Snapshot:
        """Allows nothing: what a process enforces before any snapshot could load."""
        return cls(-1, (), loaded=False)

    def recompiled(self, now: datetime | None = None) -> Snapshot:
        """The same policies, those with an origin rule expired since compiled again (and
        the draft tried against them, if any, applied to them again)."""
        snapshot = Snapshot(self.revision, self.specs, now=now, loaded=self.loaded, previous=self)
        snapshot.committed_at = self.committed_at
        if self.trial is not None:
            self.trial.attach_to(snapshot)
        return snapshot

    def __len__(self) -> int:
        return len(self._paths)

    def policy_for(self, path: str) -> CompiledPolicy | None:
        """The policy covering ``path`` (memoized: a dictionary look-up when seen before)."""
        by_path = self._by_path
        if path in by_path:
            return by_path[path]
        candidate = self._paths.match(path)
        policy = self._compiled.get(candidate.value) if candidate is not None else None
        if len(path) <= MAX_MEMO_PATH:  # bounded in count and size: clients choose paths
            by_path.remember(path, policy)
        return policy

    def policy_named(self, name: str) -> CompiledPolicy | None:
        """The compiled enabled policy of this name, or None."""
        return self._compiled.get(name)

    def candidates(self, path: str) -> list[PathCandidate[CompiledPolicy]]:
        """Every enabled policy whose pattern matches ``path``, the winner first."""
        return [
            PathCandidate(c.pattern, c.priority, c.name, self._compiled[c.value])
            for c in self._paths.candidates(path)
        ]

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


def _take_over(
    source: Snapshot,
    spec: PolicySpec,
    now: datetime,
    compiled: dict[str, CompiledPolicy],
    expiry: dict[str, float],
) -> bool:
    """Take ``source``'s compiled policy of ``spec``'s name over when it was compiled
    from an equal spec (its rules expired by ``now`` taken out); True if taken."""
    if not spec.enabled:
        return False
    current = source._current(spec.name, now)
    if current is None or not (current[0].spec is spec or current[0].spec == spec):
        return False
    compiled[spec.name], expiry[spec.name] = current
    return True


def _updated(
    old: CompiledPolicy, old_expiry: float, spec: PolicySpec, changes: OriginChanges, now: datetime
) -> tuple[CompiledPolicy, float]:
    """``old`` with some origin rules changed (``spec`` is the policy now), and when its
    first rule expires."""
    added = [e for e in changes.values() if e is not None and not e.is_expired(now)]
    matcher = old.origins.updated([e.rule for e in added], changes)
    expiry = min(old_expiry, _next_expiry(added, now))
    if any(
        e.expires is not None and e.expires.timestamp() == expiry
        for e in _entries(old.spec, changes)
    ):
        # The next rule to expire changed: look again.
        expiry = _next_expiry(spec.origins.detailed(), now)
    return CompiledPolicy(spec, matcher, matcher.allows_any and not spec.credentials), expiry


def _entries(spec: PolicySpec, texts: Iterable[str]) -> list[OriginEntry]:
    """The entries of ``spec`` (origins sorted by text, as loaded) with these texts."""
    return [e for e in map(spec.origins.find, texts) if e is not None]


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
