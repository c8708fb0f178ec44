"""Promoting the active draft (what it proposes becomes live) and discarding it.

Both are one change of :class:`corsadmin.db.store.PolicyStore` (one transaction, the
revision moved, every worker told): the draft's row is locked first, its version
checked when the caller gives one (:class:`StaleDraft`), and every live policy it
touches locked and checked against the version the draft was saved against. A
policy changed since then refuses the whole promotion with :class:`DraftConflict`,
naming the newest audit event of that policy: nothing is written.

A promotion writes only what the draft names: the settings it changes and the
origin rules it adds, changes or removes (a policy of a million rules gets one rule
added, not a million rewritten). Each policy gets its audit event as any change
does ("draft N promoted: ..."), and the promotion one more (``draft.promote``): the
whole diff, who proposed the draft and why, and the live-traffic report at that
moment. A discard writes no live row: one ``draft.discard`` event. Either way the
draft is closed (``promoted`` or ``discarded``, by whom, when); its traffic rows are
deleted, their report kept in the event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..errors import DraftConflict, NoActiveDraft, StaleDraft
from ..policy.diff import MAX_LISTED_RULES, PolicyDiff, diff_draft
from ..policy.document import canonical
from ..policy.draft import Draft, PolicyDraft
from ..policy.origins import parse_origin_rule
from ..policy.spec import OriginEntries, OriginEntry, PolicySpec, format_time
from .audit import field_diff
from .changelog import Change
from .export import settings_spec
from .models import (
    AuditEvent,
    DraftRow,
    DraftTrafficRow,
    OriginRuleRow,
    Policy,
    utcnow,
)
from .store import BULK_CHUNK, PolicyStore, describe_documents

__all__ = [
    "MAX_PROMOTION_TRAFFIC_ORIGINS",
    "Promotion",
    "discard_draft",
    "live_policies",
    "named_rules",
    "promote_draft",
]

#: Origins per policy and outcome the promotion's audit event keeps of the
#: live-traffic report (the most counted; the rest are counted).
MAX_PROMOTION_TRAFFIC_ORIGINS: Final = 20

#: How a promotion reads the active draft (:func:`corsadmin.db.drafts.read_draft`).
DraftReader = Callable[[Session | scoped_session[Any]], Draft | None]

_DRAFTS: Final[sa.Table] = DraftRow.__table__  # type: ignore[assignment]
_TRAFFIC: Final[sa.Table] = DraftTrafficRow.__table__  # type: ignore[assignment]
_RULES: Final[sa.Table] = OriginRuleRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Promotion:
    """What promoting the draft did."""

    draft_id: int
    #: The revision the promotion made (every worker enforces it from then on).
    revision: int
    #: The policies it changed, by name.
    policies: tuple[str, ...]
    #: What changed in each, as the draft's diff said.
    diffs: tuple[PolicyDiff, ...]


def promote_draft(
    store: PolicyStore,
    read: DraftReader,
    *,
    expected_version: int | None = None,
) -> Promotion:
    """Make the active draft live in one change of ``store`` (``read``: how to read
    the active draft from a session, :func:`corsadmin.db.drafts.read_draft`)."""
    with store._change():
        draft = _locked_draft(store, read, expected_version)
        locked = {name: _locked_policy(store, name) for name in sorted(draft.policies)}
        for name, change in sorted(draft.policies.items()):
            _check_base(store, change, locked[name])
        diffs = []
        for name, change in sorted(draft.policies.items()):
            diff = _apply(store, draft.id, change, locked[name])
            if diff.changed:
                diffs.append(diff)
        after = {
            "draft": draft.id,
            "reason": draft.reason,
            "proposed_by": draft.created_by,
            "diff": [_trimmed(d) for d in diffs],
            "traffic": traffic_summary(store, draft.id),
        }
        summary = f"promoted draft {draft.id}: " + _described(diffs)
        _close(store, draft, "promoted", "draft.promote", summary, after)
    return Promotion(draft.id, store._revision, tuple(d.name for d in diffs), tuple(diffs))


def discard_draft(
    store: PolicyStore, read: DraftReader, *, expected_version: int | None = None
) -> int:
    """Drop the active draft; no live policy is touched. Its id is returned."""
    with store._change():
        draft = _locked_draft(store, read, expected_version)
        after = {
            "draft": draft.id,
            "reason": draft.reason,
            "proposed_by": draft.created_by,
            "policies": sorted(draft.policies),
            "traffic": traffic_summary(store, draft.id),
        }
        summary = f"discarded draft {draft.id}" + (f" ({draft.reason})" if draft.reason else "")
        _close(store, draft, "discarded", "draft.discard", summary, after)
    return draft.id


# The draft -----------------------------------------------------------------------


def _locked_draft(store: PolicyStore, read: DraftReader, expected_version: int | None) -> Draft:
    """The active draft, its row locked; refused when it moved past ``expected_version``."""
    row = store.session.execute(
        sa.select(_DRAFTS.c.id, _DRAFTS.c.version)
        .where(_DRAFTS.c.status == "active")
        .with_for_update()
    ).first()
    if row is None:
        raise NoActiveDraft()
    if expected_version is not None and row.version != expected_version:
        raise StaleDraft(row.id, expected_version, row.version)
    draft: Draft | None = read(store.session)
    if draft is None:  # pragma: no cover - the row was just locked
        raise NoActiveDraft()
    return draft


def _close(
    store: PolicyStore,
    draft: Draft,
    status: str,
    action: str,
    summary: str,
    after: Mapping[str, Any],
) -> None:
    """Close the draft (its traffic rows dropped) and record the event of it."""
    now, actor = utcnow(), store.actor
    values: dict[str, Any] = {
        "status": status,
        "closed_at": now,
        "closed_by": actor,
        "updated_at": now,
        "updated_by": actor,
        "version": _DRAFTS.c.version + 1,
    }
    if status == "promoted":
        values["promoted_revision"] = store._revision
    store.session.execute(sa.update(_DRAFTS).where(_DRAFTS.c.id == draft.id).values(**values))
    store.session.execute(sa.delete(_TRAFFIC).where(_TRAFFIC.c.draft_id == draft.id))
    store._record(action, None, None, after, summary, [Change("draft")])


def traffic_summary(store: PolicyStore, draft_id: int) -> dict[str, Any]:
    """The live-traffic report of a draft as its closing event keeps it: per policy,
    the requests evaluated and, per outcome, the requests and the most counted
    origins (at most :data:`MAX_PROMOTION_TRAFFIC_ORIGINS`)."""
    report: dict[str, Any] = {}
    rows = store.session.execute(
        sa.select(
            _TRAFFIC.c.policy_name,
            _TRAFFIC.c.outcome,
            _TRAFFIC.c.origin,
            _TRAFFIC.c.count.label("n"),
        )
        .where(_TRAFFIC.c.draft_id == draft_id)
        .order_by(_TRAFFIC.c.policy_name, _TRAFFIC.c.outcome, _TRAFFIC.c.count.desc())
    )
    for row in rows:
        policy = report.setdefault(row.policy_name, {"evaluated": 0})
        if row.outcome == "evaluated":
            policy["evaluated"] += int(row.n)
            continue
        outcome = policy.setdefault(row.outcome, {"requests": 0, "origins": {}})
        outcome["requests"] += int(row.n)
        if len(outcome["origins"]) < MAX_PROMOTION_TRAFFIC_ORIGINS:
            outcome["origins"][row.origin] = int(row.n)
    return report


# The live policies -----------------------------------------------------------------


def _locked_policy(store: PolicyStore, name: str) -> Policy | None:
    """The live policy's row as committed, locked (None: there is none)."""
    return store.session.scalar(
        sa.select(Policy)
        .where(Policy.name == name)
        .with_for_update(of=Policy)
        .execution_options(populate_existing=True)
    )


def _check_base(store: PolicyStore, change: PolicyDraft, live: Policy | None) -> None:
    """Refuse the promotion when the live policy is not the one the draft was saved
    against: created, deleted or changed since."""
    if change.action == "create":
        if live is not None:
            raise DraftConflict(change.name, _newest_event(store, change.name))
        return
    if live is None or live.version != change.base_version:
        raise DraftConflict(change.name, _newest_event(store, change.name))


def _newest_event(store: PolicyStore, name: str) -> str:
    """The newest audit event of a policy, as a conflict message names it."""
    event = store.session.scalar(
        sa.select(AuditEvent)
        .where(AuditEvent.policy_name == name, AuditEvent.action.not_like("draft.%"))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if event is None:
        return "a change with no audit event"
    return f'{event.action} by {event.actor} at {format_time(event.at)}: "{event.summary}"'


def _apply(
    store: PolicyStore, draft_id: int, change: PolicyDraft, live: Policy | None
) -> PolicyDiff:
    """Write what the draft proposes for one policy, with its audit event."""
    prefix = f"draft {draft_id} promoted: "
    if change.action == "delete":
        assert live is not None  # checked by _check_base
        diff = diff_draft(change, named_rules(store.session, live, None))
        store._delete(live, f"{prefix}deleted policy {change.name}")
        return diff
    if live is None:
        spec = change.proposed(None)
        assert spec is not None  # a created policy has its settings
        store._check_unique(spec, None)
        store._create(spec, f"{prefix}created policy {change.name}")
        return diff_draft(change, None)
    return _apply_update(store, prefix, change, live)


def _apply_update(store: PolicyStore, prefix: str, change: PolicyDraft, live: Policy) -> PolicyDiff:
    """Settings replaced when the draft changes them; the named rules written alone."""
    before = named_rules(store.session, live, change.origins)
    diff = diff_draft(change, before)
    if not diff.changed:
        return diff
    after = change.proposed(before)
    assert after is not None
    if change.settings is not None:
        store._check_unique(after, live.id)
        store._write_settings(live, after)
    _write_named_rules(store, live, change.origins, before)
    store._touch(live)
    old, new = canonical(before), canonical(after)
    before_doc, after_doc = field_diff(old, new)
    if change.settings is not None:
        changes = [Change("policy", change.name)]
    else:
        changes = [Change("origin", change.name, text) for text in change.origins]
    summary = prefix + describe_documents(change.name, old, new)
    store._record("policy.update", change.name, before_doc, after_doc, summary, changes)
    return diff


def live_policies(session: Session | scoped_session[Any], draft: Draft) -> dict[str, PolicySpec]:
    """The live policies the draft touches, as :func:`~corsadmin.policy.diff.diff_draft`
    needs them: settings and the rules the draft names (a policy it deletes: every
    rule). No other policy or rule is read."""
    rows = session.scalars(sa.select(Policy).where(Policy.name.in_(sorted(draft.policies))))
    live = {}
    for row in rows:
        change = draft.policies[row.name]
        live[row.name] = named_rules(
            session, row, None if change.action == "delete" else change.origins
        )
    return live


def named_rules(
    session: Session | scoped_session[Any],
    live: Policy,
    texts: Mapping[str, OriginEntry | None] | None,
) -> PolicySpec:
    """The live policy's settings with its rules named in ``texts`` (None: all of them),
    read by text in bulk (no other rule is read)."""
    query = sa.select(_RULES.c.origin, _RULES.c.note, _RULES.c.expires_at).where(
        _RULES.c.policy_id == live.id
    )
    rows: list[Any] = []
    if texts is None:
        rows = list(session.execute(query))
    else:
        names = sorted(texts)
        for start in range(0, len(names), BULK_CHUNK):
            chunk = names[start : start + BULK_CHUNK]
            rows.extend(session.execute(query.where(_RULES.c.origin.in_(chunk))))
    entries = [
        OriginEntry(parse_origin_rule(row.origin, stored=True), row.note or "", row.expires_at)
        for row in rows
    ]
    return dataclasses.replace(settings_spec(live), origins=OriginEntries.of(entries))


def _write_named_rules(
    store: PolicyStore,
    live: Policy,
    wanted: Mapping[str, OriginEntry | None],
    before: PolicySpec,
) -> None:
    """The rule rows the draft names made as it proposes: deleted, inserted, updated."""
    gone = [t for t, e in wanted.items() if e is None and before.origins.find(t) is not None]
    for start in range(0, len(gone), BULK_CHUNK):
        store.session.execute(
            sa.delete(_RULES).where(
                _RULES.c.policy_id == live.id,
                _RULES.c.origin.in_(gone[start : start + BULK_CHUNK]),
            )
        )
    now = utcnow()
    for text, entry in sorted(wanted.items()):
        if entry is None:
            continue
        old = before.origins.find(text)
        if old is None:
            store.session.execute(
                sa.insert(_RULES).values(
                    policy_id=live.id,
                    origin=text,
                    note=entry.note,
                    expires_at=entry.expires,
                    created_at=now,
                    created_by=store.actor,
                )
            )
        elif old != entry:
            store.session.execute(
                sa.update(_RULES)
                .where(_RULES.c.policy_id == live.id, _RULES.c.origin == text)
                .values(note=entry.note, expires_at=entry.expires)
            )


# The event ---------------------------------------------------------------------------


def _trimmed(diff: PolicyDiff) -> dict[str, Any]:
    """A diff as the promotion's event keeps it: at most :data:`MAX_LISTED_RULES` rules
    of each kind, the others counted."""
    document = diff.as_document()
    origins = document["origins"]
    for kind in ("added", "removed", "changed"):
        listed = origins[kind]
        if len(listed) > MAX_LISTED_RULES:
            origins[kind] = listed[:MAX_LISTED_RULES]
            origins[f"{kind}_not_listed"] = len(listed) - MAX_LISTED_RULES
    return document


def _described(diffs: list[PolicyDiff]) -> str:
    if not diffs:
        return "no change"
    parts = []
    for diff in diffs:
        verb = {"create": "created", "delete": "deleted", "update": "changed"}[diff.action]
        parts.append(f"{verb} {diff.name}")
    return ", ".join(parts)
