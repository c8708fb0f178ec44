"""What a change would do to the live policies, field by field and rule by rule.

:func:`diff_policy` compares a live policy with a proposed one (a document being
imported, a draft); :func:`diff_draft` does it for a draft's policy from the rules
the draft names (not every rule of the policy); :func:`format_diff` writes the
lines ``corsadmin draft diff`` and ``corsadmin import --dry-run`` print, and
:meth:`PolicyDiff.as_document` the JSON form (``--format json``, the audit event of
a promotion). Values are written as JSON, never as Python reprs.

Pure: no Flask, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from .draft import PolicyDraft
from .fields import FIELDS, Kind
from .spec import OriginEntry, PolicySpec

__all__ = [
    "MAX_LISTED_RULES",
    "DiffAction",
    "FieldChange",
    "PolicyDiff",
    "RuleChange",
    "diff_document",
    "diff_draft",
    "diff_policy",
    "format_diff",
    "format_diff_documents",
]

#: The most rule lines :func:`format_diff` prints per policy; more are counted.
MAX_LISTED_RULES: Final = 200

DiffAction = Literal["create", "update", "delete"]

_SETTINGS: Final = tuple(f for f in FIELDS if f.kind is not Kind.ORIGINS)


@dataclass(frozen=True)
class FieldChange:
    """One setting: its document value before and after (None where absent)."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class RuleChange:
    """One origin rule: its entry before and after (None where absent)."""

    origin: str
    before: OriginEntry | None
    after: OriginEntry | None

    @property
    def kind(self) -> Literal["added", "removed", "changed"]:
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "changed"


@dataclass(frozen=True)
class PolicyDiff:
    """What would change in one policy."""

    name: str
    action: DiffAction
    fields: tuple[FieldChange, ...] = ()
    rules: tuple[RuleChange, ...] = ()

    @property
    def changed(self) -> bool:
        return self.action != "update" or bool(self.fields or self.rules)

    def rules_of(self, kind: Literal["added", "removed", "changed"]) -> list[RuleChange]:
        return [r for r in self.rules if r.kind == kind]

    def as_document(self) -> dict[str, Any]:
        """As JSON: ``{"name", "action", "fields": {name: {"before", "after"}},
        "origins": {"added": [...], "removed": [...], "changed": [{"before", "after"}]}}``."""
        return {
            "name": self.name,
            "action": self.action,
            "fields": {f.name: {"before": f.before, "after": f.after} for f in self.fields},
            "origins": {
                "added": [_rule(r.after) for r in self.rules_of("added")],
                "removed": [_rule(r.before) for r in self.rules_of("removed")],
                "changed": [
                    {"before": _rule(r.before), "after": _rule(r.after)}
                    for r in self.rules_of("changed")
                ],
            },
        }


def _rule(entry: OriginEntry | None) -> Any:
    return None if entry is None else entry.to_document()


def _settings(spec: PolicySpec) -> dict[str, Any]:
    """The settings as the document holds them (the origins are not built)."""
    return {f.name: _value(f.kind, getattr(spec, f.name)) for f in _SETTINGS}


def _value(kind: Kind, value: Any) -> Any:
    if kind is Kind.PATH:
        return value.text
    if kind is Kind.TOKENS:
        return list(value)
    return value


def diff_settings(live: PolicySpec | None, proposed: PolicySpec | None) -> tuple[FieldChange, ...]:
    """The settings that differ, in the document's order (every one for a new or
    deleted policy)."""
    old = _settings(live) if live is not None else {}
    new = _settings(proposed) if proposed is not None else {}
    return tuple(
        FieldChange(f.name, old.get(f.name), new.get(f.name))
        for f in _SETTINGS
        if f.name not in old or f.name not in new or old[f.name] != new[f.name]
    )


def diff_policy(live: PolicySpec | None, proposed: PolicySpec | None) -> PolicyDiff:
    """``live`` against ``proposed`` (None: absent), every rule compared by text."""
    either = proposed if proposed is not None else live
    name = either.name if either is not None else ""
    action: DiffAction = "create" if live is None else "delete" if proposed is None else "update"
    old = {text: (note, expires) for text, note, expires in live.origins.fields()} if live else {}
    new = (
        {text: (note, expires) for text, note, expires in proposed.origins.fields()}
        if proposed
        else {}
    )
    rules = []
    for text in sorted(old.keys() | new.keys()):
        if old.get(text) != new.get(text):
            before = live.origins.find(text) if live is not None and text in old else None
            after = proposed.origins.find(text) if proposed is not None and text in new else None
            rules.append(RuleChange(text, before, after))
    return PolicyDiff(name, action, diff_settings(live, proposed), tuple(rules))


def diff_draft(change: PolicyDraft, live: PolicySpec | None) -> PolicyDiff:
    """What one policy of a draft would change, from the rules the draft names (a
    deleted policy: every rule it has)."""
    proposed = change.proposed(live)
    if live is None or proposed is None:
        return diff_policy(live, proposed)
    rules = []
    for text in sorted(change.origins):
        before, after = live.origins.find(text), change.origins[text]
        if before != after:
            rules.append(RuleChange(text, before, after))
    return PolicyDiff(change.name, "update", diff_settings(live, proposed), tuple(rules))


def diff_document(
    live: Mapping[str, PolicySpec], specs: Sequence[PolicySpec], *, replace: bool = False
) -> list[PolicyDiff]:
    """What importing ``specs`` would change (merged by name; with ``replace``, the
    live policies the document leaves out are deleted), the unchanged left out."""
    incoming = {s.name for s in specs}
    diffs = [diff_policy(live.get(s.name), s) for s in specs]
    if replace:
        diffs += [diff_policy(live[name], None) for name in sorted(set(live) - incoming)]
    return sorted((d for d in diffs if d.changed), key=lambda d: d.name)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _entry_text(entry: Any) -> str:
    """An origin rule as its document holds it (text, or origin, note, expires)."""
    if isinstance(entry, str):
        return entry
    details = []
    if entry.get("note"):
        details.append(f"note {_json(entry['note'])}")
    if entry.get("expires") is not None:
        details.append(f"expires {entry['expires']}")
    return str(entry["origin"]) + (f" ({', '.join(details)})" if details else "")


def _origin_text(entry: Any) -> str:
    return entry if isinstance(entry, str) else str(entry["origin"])


def _rule_lines(origins: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule text, line) of every rule change of a diff document."""
    lines = [(_origin_text(e), f"    + origin {_entry_text(e)}") for e in origins["added"]]
    lines += [(_origin_text(e), f"    - origin {_origin_text(e)}") for e in origins["removed"]]
    lines += [
        (
            _origin_text(c["before"]),
            f"    ~ origin {_entry_text(c['before'])} -> {_entry_text(c['after'])}",
        )
        for c in origins["changed"]
    ]
    return sorted(lines, key=lambda pair: pair[0])


def format_diff(diffs: Iterable[PolicyDiff], *, limit: int = MAX_LISTED_RULES) -> list[str]:
    """The diff as lines: ``+ policy NAME`` (new), ``- policy NAME`` (deleted),
    ``~ policy NAME`` (changed), then its settings and rules indented; at most
    ``limit`` rule lines per policy."""
    return format_diff_documents((d.as_document() for d in diffs if d.changed), limit=limit)


def format_diff_documents(
    diffs: Iterable[Mapping[str, Any]], *, limit: int = MAX_LISTED_RULES
) -> list[str]:
    """:func:`format_diff` of the diffs' documents (:meth:`PolicyDiff.as_document`, as
    the API returns them)."""
    lines: list[str] = []
    for diff in diffs:
        action, fields = diff["action"], diff["fields"]
        rules = _rule_lines(diff["origins"])
        if action == "update" and not fields and not rules:
            continue
        mark = {"create": "+", "delete": "-", "update": "~"}[action]
        counts = _counts(diff["origins"])
        lines.append(f"{mark} policy {diff['name']}" + (f" ({counts})" if counts else ""))
        if action != "delete":
            for name, change in fields.items():
                if action == "create":
                    lines.append(f"    {name}: {_json(change['after'])}")
                else:
                    lines.append(
                        f"    {name}: {_json(change['before'])} -> {_json(change['after'])}"
                    )
        lines += [line for _, line in rules[:limit]]
        if len(rules) > limit:
            lines.append(f"    ... and {len(rules) - limit} more origin rules")
    return lines


def _counts(origins: Mapping[str, Any]) -> str:
    parts = []
    for kind in ("added", "removed", "changed"):
        n = len(origins[kind])
        if n:
            parts.append(f"{n} {'rule' if n == 1 else 'rules'} {kind}")
    return ", ".join(parts)
