"""A draft tried against the live snapshot: the snapshot the draft would make.

:func:`build_trial` applies a :class:`corsadmin.policy.draft.Draft` to the live
:class:`Snapshot` with :meth:`Snapshot.with_changes`: every policy the draft does
not touch is the live compiled policy itself (the same object), so a request
whose policy the draft leaves alone is recognised by identity and costs nothing
more; a policy whose only change is some origin rules has its matcher updated,
not compiled again.

Pure: no Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..policy.draft import Draft
from .snapshot import Snapshot

__all__ = ["Trial", "build_trial"]


@dataclass(frozen=True, eq=False)
class Trial:
    """The active draft and the snapshot it would make of the live one."""

    draft: Draft
    #: The live snapshot with the draft applied (its own evaluation memo).
    snapshot: Snapshot
    #: The live snapshot it was built from.
    live: Snapshot


def build_trial(live: Snapshot, draft: Draft) -> Trial:
    """``draft`` applied to ``live`` (cost: the policies the draft touches)."""
    specs = {spec.name: spec for spec in live.specs}
    policies, origins = draft.snapshot_changes(specs)
    return Trial(draft, live.with_changes(live.revision, policies, origins), live)
