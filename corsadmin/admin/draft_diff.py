"""The draft page's diff: each policy the draft changes, field by field and rule by rule.

Built from :func:`corsadmin.policy.diff.diff_draft` (the rules the draft names, not
every rule of the policy) and shown as tables, never as text to parse. A policy the
draft deletes lists its settings and counts its rules (they all go) without listing
them; any policy lists at most :data:`MAX_LISTED_RULES` rules and counts the rest.

Pure Python: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..engine.review import Risk, rule_risks
from ..policy.diff import PolicyDiff, RuleChange, diff_draft, diff_settings
from ..policy.draft import Draft, PolicyDraft
from ..policy.fields import FIELD, Kind
from ..policy.spec import PolicySpec

__all__ = ["MAX_LISTED_RULES", "FieldLine", "PolicyChange", "RuleLine", "draft_changes"]

#: Origin rules listed per policy on the draft page (the others are counted).
MAX_LISTED_RULES: Final = 200


@dataclass(frozen=True, slots=True)
class FieldLine:
    """One setting the draft changes: its label, and its value live and in the draft."""

    name: str
    label: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class RuleLine:
    """One origin rule the draft adds, removes or changes (note, expiry), with the
    risks of the rule it would allow."""

    change: RuleChange
    risks: tuple[Risk, ...] = ()

    @property
    def kind(self) -> str:
        return self.change.kind


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """What the draft does to one policy, as the page shows it."""

    diff: PolicyDiff
    #: The live version the draft was saved against (None: a policy it creates).
    base_version: int | None
    #: The live policy's version now (None: there is no such live policy).
    live_version: int | None
    fields: tuple[FieldLine, ...]
    rules: tuple[RuleLine, ...]
    #: Rule changes beyond those listed; for a deleted policy, every rule it has.
    more_rules: int = 0
    counts: Mapping[str, int] | None = None

    @property
    def name(self) -> str:
        return self.diff.name

    @property
    def action(self) -> str:
        return self.diff.action

    @property
    def moved(self) -> bool:
        """The live policy changed (or went) since the draft was saved: promoting it
        would be refused."""
        return self.base_version is not None and self.live_version != self.base_version


def shown(kind: Kind, value: Any) -> str:
    """A document's value of a setting as the page shows it."""
    if isinstance(value, bool) or kind is Kind.BOOL:
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "none"
    if value is None or value == "":
        return "none"
    return str(value)


def _field_lines(diff: PolicyDiff) -> tuple[FieldLine, ...]:
    lines = []
    for change in diff.fields:
        field = FIELD[change.name]
        lines.append(
            FieldLine(
                change.name,
                field.label,
                shown(field.kind, change.before),
                shown(field.kind, change.after),
            )
        )
    return tuple(lines)


def _counts(diff: PolicyDiff, deleted_rules: int) -> dict[str, int]:
    counts = {kind: len(diff.rules_of(kind)) for kind in ("added", "removed", "changed")}
    counts["removed"] += deleted_rules
    return {kind: n for kind, n in counts.items() if n}


def policy_change(
    change: PolicyDraft,
    live: PolicySpec | None,
    live_version: int | None,
    *,
    limit: int = MAX_LISTED_RULES,
) -> PolicyChange:
    """One policy of the draft against the live one (``live``: its spec, None if the
    live set has no such policy)."""
    deleted_rules = 0
    if change.action == "delete":
        # Every live rule goes: counted, not listed (a policy may hold a million).
        diff = PolicyDiff(change.name, "delete", diff_settings(live, None), ())
        deleted_rules = len(live.origins) if live is not None else 0
    elif change.action == "update" and live is None:
        diff = PolicyDiff(change.name, "update")  # the live policy went: see ``moved``
    else:
        diff = diff_draft(change, live)
    proposed = change.proposed(live)
    credentials = proposed.credentials if proposed is not None else False
    rules = tuple(
        RuleLine(
            rule,
            rule_risks(rule.origin, credentials=credentials) if rule.after is not None else (),
        )
        for rule in diff.rules[:limit]
    )
    return PolicyChange(
        diff=diff,
        base_version=change.base_version,
        live_version=live_version,
        fields=_field_lines(diff),
        rules=rules,
        more_rules=max(0, len(diff.rules) - limit) + deleted_rules,
        counts=_counts(diff, deleted_rules),
    )


def draft_changes(
    draft: Draft, live: Mapping[str, PolicySpec], versions: Mapping[str, int]
) -> list[PolicyChange]:
    """Every policy the draft changes, by name (``live``: the live specs of those
    policies; ``versions``: their live versions)."""
    return [
        policy_change(draft.policies[name], live.get(name), versions.get(name))
        for name in sorted(draft.policies)
    ]
