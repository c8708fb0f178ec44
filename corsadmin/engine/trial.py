"""A draft tried against the live snapshot: the snapshot the draft would make.

:func:`build_trial` applies a :class:`corsadmin.policy.draft.Draft` to the live
:class:`Snapshot` with :meth:`Snapshot.with_changes`: every policy the draft does
not touch is the live compiled policy itself (the same object), so a request
whose policy the draft leaves alone is recognised by identity and costs nothing
more; a policy whose only change is some origin rules has its matcher updated,
not compiled again. :func:`attach_trial` hangs the result on the live snapshot
(``Snapshot.trial``), where the request hook finds it; :func:`compare` says how
the draft's answer to a request differs from the live one.

Pure: no Flask, no database.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Final, Literal

from ..policy.draft import Draft
from .decide import Evaluation
from .headers import requested_header_names
from .snapshot import Snapshot

__all__ = [
    "EVALUATED",
    "HEADERS",
    "NEWLY_ALLOWED",
    "NEWLY_REFUSED",
    "OUTCOMES",
    "Outcome",
    "Trial",
    "attach_trial",
    "build_trial",
    "compare",
]

#: How the draft's answer to a request differs from the live one.
Outcome = Literal["newly-refused", "newly-allowed", "headers", "evaluated"]
#: The live answer lets the browser through, the draft's would not.
NEWLY_REFUSED: Final = "newly-refused"
#: The draft's answer lets the browser through, the live one does not.
NEWLY_ALLOWED: Final = "newly-allowed"
#: The same verdict, other headers (methods, headers, credentials, max age...).
HEADERS: Final = "headers"
#: Every request of a policy the draft changes (counted whatever the answers).
EVALUATED: Final = "evaluated"
OUTCOMES: Final = (NEWLY_REFUSED, NEWLY_ALLOWED, HEADERS, EVALUATED)

#: Methods a browser sends without asking first (no Access-Control-Allow-Methods needed).
_SIMPLE_METHODS: Final = frozenset({"GET", "HEAD", "POST"})


@dataclass(frozen=True, eq=False)
class Trial:
    """The active draft and the snapshot it would make of the live one."""

    draft: Draft
    #: The live snapshot with the draft applied (its own evaluation memo).
    snapshot: Snapshot
    #: The live snapshot it was built from, held weakly: the live snapshot holds the
    #: trial (``Snapshot.trial``), and no reference cycle keeps a snapshot alive.
    _live: weakref.ref[Snapshot] = field(repr=False)

    @property
    def live(self) -> Snapshot | None:
        """The live snapshot it was built from (None once that one is gone)."""
        return self._live()

    def attach_to(self, live: Snapshot) -> Snapshot:
        """The same draft tried against ``live`` (a snapshot recompiled after an expiry,
        or reloaded): :func:`attach_trial` with this trial's answers carried over."""
        return attach_trial(live, self.draft, previous=self)


def build_trial(live: Snapshot, draft: Draft, previous: Trial | None = None) -> Trial:
    """``draft`` applied to ``live`` (cost: the policies the draft touches).

    With ``previous`` (the trial of the snapshot ``live`` replaces), the draft's
    compiled policies that did not change are taken over with their memoized answers:
    a reload does not start the draft's memo afresh. Built at ``live``'s compile time,
    so every policy the draft leaves alone is ``live``'s own object.
    """
    specs = {spec.name: spec for spec in live.specs}
    policies, origins = draft.snapshot_changes(specs)
    memo_from = _NO_ANSWERS if previous is None else previous.snapshot
    snapshot = live.with_changes(
        live.revision, policies, origins, now=live.compiled_at, memo_from=memo_from
    )
    return Trial(draft, snapshot, weakref.ref(live))


def attach_trial(live: Snapshot, draft: Draft | None, previous: Trial | None = None) -> Snapshot:
    """Set ``live.trial`` to ``draft`` tried against it (None: no draft); returns ``live``.

    The live snapshot's ``valid_until`` becomes the earlier of its own and the draft
    snapshot's, so a rule the draft adds with an expiry stops answering on time (the
    holder recompiles the live snapshot then, and this is applied again)."""
    if draft is None:
        live.trial = None
        return live
    trial = build_trial(live, draft, previous)
    live.trial = trial
    live.valid_until = min(live.valid_until, trial.snapshot.valid_until)
    return live


#: An empty snapshot: the first trial of a draft carries over no answers.
_NO_ANSWERS: Final = Snapshot.empty()


def compare(
    live: Evaluation,
    tried: Evaluation,
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: bool = False,
) -> Outcome | None:
    """How the draft's answer (``tried``) to a request differs from the live one: None
    when the response would be the same. ``request_method`` and ``request_headers``
    are a preflight's ``Access-Control-Request-*`` headers (None: not a preflight)."""
    if live.headers == tried.headers and live.decision.vary_origin == tried.decision.vary_origin:
        return None
    before = passes(live, request_method, request_headers, private_network)
    after = passes(tried, request_method, request_headers, private_network)
    if before and not after:
        return NEWLY_REFUSED
    if after and not before:
        return NEWLY_ALLOWED
    return HEADERS


def passes(
    evaluation: Evaluation,
    request_method: str | None,
    request_headers: str | None,
    private_network: bool,
) -> bool:
    """Would a browser let the page through with this answer? The origin verdict, and
    for a preflight, the requested method, headers and private network access."""
    if not evaluation.decision.allowed:
        return False
    if request_method is None:
        return True
    headers = {name.lower(): value for name, value in evaluation.headers}
    if "access-control-allow-origin" not in headers:
        return False
    methods = {m.strip() for m in headers.get("access-control-allow-methods", "").split(",")}
    if request_method not in _SIMPLE_METHODS and request_method not in methods:
        return False
    allowed = {
        h.strip().lower() for h in headers.get("access-control-allow-headers", "").split(",")
    }
    # '*' means any header only without credentials (then it is a header name).
    any_header = "*" in allowed and headers.get("access-control-allow-credentials") != "true"
    names = requested_header_names(request_headers) if request_headers else None
    if names and not any_header and not set(names.split(", ")) <= allowed:
        return False
    return not private_network or headers.get("access-control-allow-private-network") == "true"
