"""Audit events: the one place that builds an :class:`AuditEvent` row.

An event records what changed, not the whole policy twice:

- creating a policy keeps its whole document in ``after`` (``before`` is null),
  deleting one keeps it in ``before`` (``after`` is null): the whole policy is
  what changed, and it is what an operator needs to put it back;
- an origin rule added, changed or removed keeps that rule only:
  ``{"origins": [rule]}`` before and after (``{"origins": []}`` on the side where
  it is absent);
- a policy update keeps only the fields that changed, and of ``origins`` only the
  rules added, removed or changed (:func:`field_diff`);
- an operator's change keeps the operator's few fields (never the password).

Events written before this release hold the whole policy before and after; both
forms read the same way (:func:`corsadmin.admin.audit.changes` compares the fields
present), so old and new events display alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, scoped_session

from ..policy.spec import format_time
from .models import AuditEvent, utcnow

#: A rule as a policy document holds it: its text, or {origin, note, expires}.
RuleDocument = str | dict[str, Any]


def add_event(
    session: Session | scoped_session[Any],
    *,
    actor: str,
    action: str,
    policy_name: str | None,
    summary: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    revision: int,
) -> AuditEvent:
    """Add one audit event to ``session`` (it commits with the change it records)."""
    event = AuditEvent(
        at=utcnow(),
        actor=actor,
        action=action,
        policy_name=policy_name,
        summary=summary,
        before=None if before is None else dict(before),
        after=None if after is None else dict(after),
        revision=revision,
    )
    session.add(event)
    return event


def rule_document(origin: str, note: str | None, expires: datetime | None) -> RuleDocument:
    """A stored rule as the policy document writes it (as ``OriginEntry.to_document``)."""
    if not note and expires is None:
        return origin
    entry: dict[str, Any] = {"origin": origin}
    if note:
        entry["note"] = note
    if expires is not None:
        entry["expires"] = format_time(expires)
    return entry


def rule_text(entry: RuleDocument) -> str:
    return entry if isinstance(entry, str) else str(entry["origin"])


def sorted_rules(entries: Iterable[RuleDocument]) -> list[RuleDocument]:
    """Rules in text order (the order of a canonical document)."""
    return sorted(entries, key=rule_text)


def field_diff(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields of two policy documents that differ, as (before, after) documents;
    of ``origins`` only the rules removed or changed (before) and added or changed
    (after), in text order."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in new:
        if key == "origins":
            removed, added = origins_diff(old.get("origins") or [], new["origins"])
            if removed or added:
                before["origins"], after["origins"] = removed, added
        elif old.get(key) != new[key]:
            before[key], after[key] = old.get(key), new[key]
    return before, after


def origins_diff(
    old: Iterable[RuleDocument], new: Iterable[RuleDocument]
) -> tuple[list[RuleDocument], list[RuleDocument]]:
    """The rules of ``old`` not in ``new`` as they were, and of ``new`` not in ``old``
    as they are (a rule whose note or expiry changed is in both)."""
    old_by = {rule_text(e): e for e in old}
    new_by = {rule_text(e): e for e in new}
    removed = [e for t, e in old_by.items() if new_by.get(t) != e]
    added = [e for t, e in new_by.items() if old_by.get(t) != e]
    return sorted_rules(removed), sorted_rules(added)
