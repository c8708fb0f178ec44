"""Reading an audit event: what changed between the policy before and after.

Pure Python: no Flask, no database. Audit events keep policy documents
(:meth:`corsadmin.policy.spec.PolicySpec.to_document`, origins sorted): whole ones
from earlier releases and for a created or deleted policy, and since issue 9 only
what changed (the fields that changed, the rules added, removed or changed; see
:mod:`corsadmin.db.audit`). Both compare alike: this turns a pair of them into the
few lines an operator reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..policy.spec import POLICY_FIELDS


@dataclass(frozen=True, slots=True)
class Change:
    """One field that differs: ``before`` and ``after`` as short display text."""

    field: str
    before: str
    after: str


def display(value: Any) -> str:
    """A document value as short text: lists comma-separated, null as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(display(v) for v in value) if value else "(none)"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _origins(document: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The origin entries of a document by rule text, each as {note, expires}."""
    found: dict[str, dict[str, Any]] = {}
    if not document:
        return found
    for entry in document.get("origins") or []:
        if isinstance(entry, str):
            found[entry] = {}
        elif isinstance(entry, Mapping) and "origin" in entry:
            found[str(entry["origin"])] = {k: v for k, v in entry.items() if k != "origin"}
    return found


def _origin_text(extra: Mapping[str, Any]) -> str:
    parts = []
    if extra.get("note"):
        parts.append(f"note: {extra['note']}")
    if extra.get("expires"):
        parts.append(f"expires {extra['expires']}")
    return "; ".join(parts)


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[Change]:
    """Every field that differs, in the document's field order; origins one by one.

    A created policy shows every field's new value, a deleted one every old value.
    """
    out: list[Change] = []
    old = before or {}
    new = after or {}
    extra = sorted((set(old) | set(new)) - set(POLICY_FIELDS))
    for key in [*POLICY_FIELDS, *extra]:
        if key == "origins":
            continue
        if key not in old and key not in new:
            continue
        if before is not None and after is not None and old.get(key) == new.get(key):
            continue
        out.append(
            Change(
                key,
                display(old.get(key)) if before is not None else "",
                display(new.get(key)) if after is not None else "",
            )
        )
    old_origins, new_origins = _origins(before), _origins(after)
    for origin in sorted(set(old_origins) | set(new_origins)):
        if origin not in new_origins:
            out.append(
                Change(f"origin {origin}", _origin_text(old_origins[origin]) or "allowed", "")
            )
        elif origin not in old_origins:
            out.append(
                Change(f"origin {origin}", "", _origin_text(new_origins[origin]) or "allowed")
            )
        elif old_origins[origin] != new_origins[origin]:
            out.append(
                Change(
                    f"origin {origin}",
                    _origin_text(old_origins[origin]) or "(no note, no expiry)",
                    _origin_text(new_origins[origin]) or "(no note, no expiry)",
                )
            )
    return out


def pretty(document: Mapping[str, Any] | None) -> str:
    """A stored document as indented JSON (for the before/after panes)."""
    if document is None:
        return "(none)"
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)
