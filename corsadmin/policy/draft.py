"""A draft: a proposed change to the policy set, held as data until it is promoted.

A :class:`Draft` names the policies it changes; for each, a :class:`PolicyDraft`
says what it proposes: a new policy, a deleted one, or an update (settings
replaced, origin rules added, changed or removed by text). It holds only what
changes, so a draft that adds one origin to a policy of a million rules is one
rule, and applying it (:meth:`PolicyDraft.proposed`) copies the live rules once.

A draft is made against the live policies as they were (``base_version``, the
policy's version then); promoting it is refused when one of them changed since.

Pure: no Flask, no database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from .spec import EMPTY_ORIGINS, OriginEntry, PolicySpec

__all__ = [
    "MAX_DRAFT_REASON_LENGTH",
    "Draft",
    "DraftAction",
    "PolicyDraft",
    "SnapshotChanges",
]

#: The longest reason a draft may give (why it is proposed).
MAX_DRAFT_REASON_LENGTH: Final = 2000

#: ``create`` a policy the live set does not have, ``update`` one it has, ``delete`` one.
DraftAction = Literal["create", "update", "delete"]

#: What :meth:`Draft.snapshot_changes` returns: the arguments of
#: ``Snapshot.with_changes`` (policies replaced or, None, deleted; policies whose
#: only change is some origin rules, with those rules).
SnapshotChanges = tuple[
    dict[str, "PolicySpec | None"], dict[str, tuple[PolicySpec, Mapping[str, "OriginEntry | None"]]]
]


@dataclass(frozen=True)
class PolicyDraft:
    """What a draft proposes for one policy (named as the live set names it)."""

    name: str
    action: DraftAction
    #: The live policy's version when the draft was made (None for a new policy).
    base_version: int | None = None
    #: The proposed settings, when they change (always for ``create``); their
    #: ``origins`` are not used. None: the live policy's settings.
    settings: PolicySpec | None = None
    #: Origin rules by text: the proposed entry (added, or note or expiry changed), or
    #: None (removed). For ``create``: every rule of the new policy.
    origins: Mapping[str, OriginEntry | None] = field(default_factory=dict)

    def proposed(self, live: PolicySpec | None) -> PolicySpec | None:
        """The policy as the draft would make it from ``live`` (None: deleted, or an
        update of a policy that is no longer there)."""
        if self.action == "delete":
            return None
        if self.action == "create" or live is None:
            if self.settings is None:
                return None
            base = dataclasses.replace(self.settings, origins=EMPTY_ORIGINS)
        elif self.settings is None:
            base = live
        else:
            base = dataclasses.replace(self.settings, origins=live.origins)
        if not self.origins:
            return base
        return dataclasses.replace(base, origins=base.origins.with_changes(self.origins))

    @property
    def changes_settings(self) -> bool:
        return self.action != "update" or self.settings is not None


@dataclass(frozen=True)
class Draft:
    """The active draft: who proposed it, when and why, and what it changes."""

    id: int
    reason: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    #: Moves on every change to the draft (saving into it, importing into it).
    version: int
    #: What it proposes, by policy name.
    policies: Mapping[str, PolicyDraft] = field(default_factory=dict)

    def proposed(self, live: Mapping[str, PolicySpec]) -> dict[str, PolicySpec | None]:
        """Every policy the draft touches, as it would be (None: not there)."""
        return {name: change.proposed(live.get(name)) for name, change in self.policies.items()}

    def snapshot_changes(self, live: Mapping[str, PolicySpec]) -> SnapshotChanges:
        """How to build the draft's snapshot from the live one: whole policies to
        replace (new, deleted, settings changed) and policies whose only change is
        some origin rules (their compiled rules are updated, not compiled again)."""
        policies: dict[str, PolicySpec | None] = {}
        origins: dict[str, tuple[PolicySpec, Mapping[str, OriginEntry | None]]] = {}
        for name, change in self.policies.items():
            current = live.get(name)
            proposed = change.proposed(current)
            if current is not None and proposed is not None and not change.changes_settings:
                origins[name] = (proposed, change.origins)
            else:
                policies[name] = proposed
        return policies, origins
