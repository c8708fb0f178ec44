"""Drafts in the database: reading the active draft, and saving changes into it.

One draft is active at a time (:class:`corsadmin.policy.draft.Draft`). Every change
to it is a change like any other (:class:`corsadmin.db.store.PolicyStore`'s
transaction): one transaction, the revision moved (so every worker re-reads the
draft and tries it on its traffic), a change log entry of kind ``draft``, and an
audit event (``draft.save``) naming what was proposed. The live policies are never
written here: only the ``corsadmin_draft*`` tables.

The draft holds only the difference from the live policies: a rule proposed as it
is live is dropped from the draft, and a policy the draft no longer changes too.
A policy's entry remembers the live version it was saved against (``base_version``,
moved on each save to it), which promotion checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..errors import (
    FieldError,
    NoActiveDraft,
    OriginRuleNotFound,
    PolicyNotFound,
    StaleVersion,
    ValidationError,
)
from ..policy.document import canonical, parse_document
from ..policy.draft import MAX_DRAFT_REASON_LENGTH, Draft, DraftAction, PolicyDraft
from ..policy.origins import parse_origin_rule
from ..policy.spec import (
    EMPTY_ORIGINS,
    OriginEntries,
    OriginEntry,
    PolicySpec,
    apply_changes,
    origin_conflict,
    parse_origin_entry,
    validate_policy,
)
from .changelog import Change
from .export import settings_spec
from .models import DraftOriginRow, DraftPolicyRow, DraftRow, OriginRuleRow, Policy, utcnow
from .promote import Promotion, discard_draft, promote_draft
from .store import KEEP, POLICY_CHUNK, Keep, PolicyStore, _chunks, _typed_origin_entry

__all__ = ["ACTIVE", "DraftStore", "Promotion", "read_draft"]

#: The status of the draft being tried (the others: ``promoted``, ``discarded``).
ACTIVE: Final = "active"

_DRAFTS: Final[sa.Table] = DraftRow.__table__  # type: ignore[assignment]
_POLICIES: Final[sa.Table] = DraftPolicyRow.__table__  # type: ignore[assignment]
_ORIGINS: Final[sa.Table] = DraftOriginRow.__table__  # type: ignore[assignment]
_RULES: Final[sa.Table] = OriginRuleRow.__table__  # type: ignore[assignment]


# Reading -----------------------------------------------------------------------


def read_draft(connection: sa.Connection | Session | scoped_session[Any]) -> Draft | None:
    """The active draft with everything it proposes, or None."""
    row = connection.execute(
        sa.select(_DRAFTS).where(_DRAFTS.c.status == ACTIVE).order_by(_DRAFTS.c.id).limit(1)
    ).first()
    if row is None:
        return None
    origins: dict[str, dict[str, OriginEntry | None]] = {}
    for o in connection.execute(
        sa.select(
            _ORIGINS.c.policy_name,
            _ORIGINS.c.origin,
            _ORIGINS.c.removed,
            _ORIGINS.c.note,
            _ORIGINS.c.expires_at,
        )
        .where(_ORIGINS.c.draft_id == row.id)
        .order_by(_ORIGINS.c.policy_name, _ORIGINS.c.origin)
    ):
        entry = None
        if not o.removed:
            rule = parse_origin_rule(o.origin, stored=True)
            entry = OriginEntry(rule, o.note or "", o.expires_at)
        origins.setdefault(o.policy_name, {})[o.origin] = entry
    policies = {}
    for p in connection.execute(
        sa.select(_POLICIES).where(_POLICIES.c.draft_id == row.id).order_by(_POLICIES.c.policy_name)
    ):
        settings = None if p.settings is None else _settings_of(p.settings)
        policies[p.policy_name] = PolicyDraft(
            p.policy_name, p.action, p.base_version, settings, origins.get(p.policy_name, {})
        )
    return Draft(
        id=row.id,
        reason=row.reason or "",
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        version=row.version,
        policies=policies,
    )


def _settings_of(document: Mapping[str, Any]) -> PolicySpec:
    """Stored proposed settings (a policy document without origins) as a spec."""
    return validate_policy({**document, "origins": []})


def _settings_document(spec: PolicySpec) -> dict[str, Any]:
    """A policy's settings as a document without ``origins`` (how a draft stores them)."""
    document = canonical(dataclasses.replace(spec, origins=EMPTY_ORIGINS))
    document.pop("origins")
    return document


# Writing -----------------------------------------------------------------------


class DraftStore:
    """Saving changes into the active draft (made on the first save), as one actor.

    Each method is one transaction of ``store`` (a :class:`PolicyStore`), with its
    audit event; ``reason`` (why the change is proposed) is kept by the draft when
    given. :meth:`promote` and :meth:`discard` close it (:mod:`corsadmin.db.promote`).
    """

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    @property
    def session(self) -> Session | scoped_session[Any]:
        return self.store.session

    def active(self) -> Draft | None:
        return read_draft(self.session)

    def require_active(self) -> Draft:
        draft = self.active()
        if draft is None:
            raise NoActiveDraft()
        return draft

    # Promoting and discarding ---------------------------------------------------

    def promote(self, *, expected_version: int | None = None) -> Promotion:
        """Make the active draft live, in one transaction (:mod:`corsadmin.db.promote`):
        refused with :class:`~corsadmin.errors.DraftConflict` when a live policy it
        changes changed since it was drafted, :class:`~corsadmin.errors.StaleDraft` when
        the draft moved past ``expected_version``."""
        return promote_draft(self.store, read_draft, expected_version=expected_version)

    def discard(self, *, expected_version: int | None = None) -> int:
        """Drop the active draft, leaving the live policies as they are; its id."""
        return discard_draft(self.store, read_draft, expected_version=expected_version)

    # Whole policies ------------------------------------------------------------

    def create_policy(self, data: Mapping[str, Any], *, reason: str | None = None) -> PolicySpec:
        """Propose a new policy (document fields, origins included)."""
        with self.store._change():
            spec = validate_policy(data)
            draft = self._draft(reason)
            if self._live(spec.name) is not None:
                raise ValidationError.single("name", f"a policy named {spec.name!r} exists already")
            self._put_policy(draft, spec.name, "create", None, spec, _all_rules(spec))
            self._check_paths(draft)
            self._event(draft, spec.name, f"proposed a new policy {spec.name}")
        return spec

    def update_policy(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> PolicySpec:
        """Propose a change of some fields of a live policy (``origins``, if given,
        replaces its list), on top of what the draft proposes for it already. The
        policy as proposed is returned."""
        with self.store._change():
            draft = self._draft(reason)
            if "name" in changes and changes["name"] != name:
                raise ValidationError.single(
                    "name", "a draft cannot rename a policy; rename it directly"
                )
            live = self._live(name)
            proposed_now = self._proposed(draft, name, live)
            if live is not None and expected_version not in (None, live.version):
                raise StaleVersion(name, expected_version, live.version)
            if proposed_now is None:
                raise PolicyNotFound(name)
            after = apply_changes(proposed_now, changes)
            if live is None:  # a policy the draft creates
                self._put_policy(draft, name, "create", None, after, _all_rules(after))
            else:
                self._put_update(draft, live, after, origins="origins" in changes)
            self._check_paths(draft)
            self._event(draft, name, f"proposed a change to {name}")
        return after

    def delete_policy(
        self, name: str, *, expected_version: int | None = None, reason: str | None = None
    ) -> None:
        """Propose deleting a live policy (or drop a policy the draft creates)."""
        with self.store._change():
            draft = self._draft(reason)
            live = self._live(name)
            if live is None:
                if name not in self._entries(draft):
                    raise PolicyNotFound(name)
                self._drop_policy(draft, name)
            else:
                if expected_version is not None and live.version != expected_version:
                    raise StaleVersion(name, expected_version, live.version)
                self._put_policy(draft, name, "delete", live.version, None, {})
            self._event(draft, name, f"proposed deleting {name}")

    def import_document(
        self, document: Any, *, replace: bool = False, reason: str | None = None
    ) -> list[str]:
        """Propose what importing ``document`` would do (merged by name; with
        ``replace``, deleting the live policies it leaves out): each policy it names
        is proposed exactly as the document has it, replacing what the draft proposed
        for it. The names of the policies the draft now changes are returned."""
        specs = parse_document(document)
        with self.store._change():
            draft = self._draft(reason)
            live_rows = {p.name: p for p in self.session.scalars(sa.select(Policy))}
            names = {s.name for s in specs}
            for chunk in _chunks(specs, POLICY_CHUNK):
                self._put_imported(draft, chunk, live_rows)
            if replace:
                gone = [live_rows[name] for name in sorted(set(live_rows) - names)]
                for policies in _chunks(gone, POLICY_CHUNK):
                    self._put_entries(draft, [_deleted(live) for live in policies], [])
            self._check_paths(draft)
            self._event(draft, None, f"proposed importing a document of {len(specs)} policies")
        return sorted(self._entries(draft))

    def set_reason(self, reason: str) -> None:
        """Say why the draft is proposed."""
        with self.store._change():
            draft = self._draft(reason)
            self._event(draft, None, "changed the draft's reason")

    # Origin rules ----------------------------------------------------------------

    def add_origin(
        self,
        policy_name: str,
        origin: str,
        *,
        note: str | Keep = KEEP,
        expires: object = KEEP,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> OriginEntry:
        """Propose allowing one more origin (or, for one the policy has, a new note or
        expiry: what is not given is kept). The rule as proposed is returned."""
        return self._put_origin(
            policy_name, origin, note, expires, reason, expected_version, must_exist=False
        )

    def change_origin(
        self,
        policy_name: str,
        origin: str,
        *,
        note: str | Keep = KEEP,
        expires: object = KEEP,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> OriginEntry:
        """Propose a new note or expiry for a rule the policy has (as proposed)."""
        return self._put_origin(
            policy_name, origin, note, expires, reason, expected_version, must_exist=True
        )

    def remove_origin(
        self,
        policy_name: str,
        origin: str,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        """Propose no longer allowing one origin rule (given as stored or as typed)."""
        with self.store._change():
            draft = self._draft(reason)
            live = self._live(policy_name)
            _check_version(policy_name, live, expected_version)
            proposed = self._proposed(draft, policy_name, live)
            if proposed is None:
                raise PolicyNotFound(policy_name)
            text = origin
            if self._proposed_entry(draft, policy_name, live, text) is None:
                text = parse_origin_entry(origin).rule.text  # as typed: normalized
                if self._proposed_entry(draft, policy_name, live, text) is None:
                    raise OriginRuleNotFound(policy_name, origin)
            self._put_rule(draft, policy_name, live, text, None)
            self._event(draft, policy_name, f"proposed removing origin {text} from {policy_name}")

    def _put_origin(
        self,
        policy_name: str,
        origin: str,
        note: str | Keep,
        expires: object,
        reason: str | None,
        expected_version: int | None,
        *,
        must_exist: bool,
    ) -> OriginEntry:
        with self.store._change():
            entry = _typed_origin_entry(origin, note, expires)
            draft = self._draft(reason)
            live = self._live(policy_name)
            _check_version(policy_name, live, expected_version)
            proposed = self._proposed(draft, policy_name, live)
            if proposed is None:
                raise PolicyNotFound(policy_name)
            text = entry.rule.text
            existing = self._proposed_entry(draft, policy_name, live, text)
            if existing is None and must_exist:
                raise OriginRuleNotFound(policy_name, origin)
            if existing is not None:
                entry = OriginEntry(
                    existing.rule,
                    existing.note if isinstance(note, Keep) else entry.note,
                    existing.expires if isinstance(expires, Keep) else entry.expires,
                )
            problem = origin_conflict(entry, credentials=proposed.credentials)
            if problem is not None:
                raise ValidationError.single("origin", problem)
            self._put_rule(draft, policy_name, live, text, entry)
            self._event(draft, policy_name, f"proposed allowing origin {text} on {policy_name}")
        return entry

    # Internals -------------------------------------------------------------------

    def _draft(self, reason: str | None) -> int:
        """The active draft's id (made now if there is none), its version moved."""
        if reason is not None:
            reason = reason.strip()
            if len(reason) > MAX_DRAFT_REASON_LENGTH:
                raise ValidationError.single(
                    "reason", f"is longer than {MAX_DRAFT_REASON_LENGTH} characters"
                )
        now, actor = utcnow(), self.store.actor
        found = self.session.execute(
            sa.select(_DRAFTS.c.id).where(_DRAFTS.c.status == ACTIVE).with_for_update()
        ).first()
        if found is None:
            values = {
                "status": ACTIVE,
                "reason": reason or "",
                "created_at": now,
                "created_by": actor,
                "updated_at": now,
                "updated_by": actor,
                "version": 1,
            }
            result = self.session.execute(sa.insert(_DRAFTS).values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
        changes: dict[str, Any] = {
            "updated_at": now,
            "updated_by": actor,
            "version": _DRAFTS.c.version + 1,
        }
        if reason:
            changes["reason"] = reason
        self.session.execute(sa.update(_DRAFTS).where(_DRAFTS.c.id == found.id).values(**changes))
        return int(found.id)

    def _live(self, name: str) -> Policy | None:
        """The live policy's row (its settings; no rule is read), as committed."""
        return self.session.scalar(
            sa.select(Policy).where(Policy.name == name).execution_options(populate_existing=True)
        )

    def _entries(self, draft: int) -> dict[str, Any]:
        return {
            row.policy_name: row
            for row in self.session.execute(
                sa.select(_POLICIES).where(_POLICIES.c.draft_id == draft)
            )
        }

    def _entry(self, draft: int, name: str) -> Any:
        return self.session.execute(
            sa.select(_POLICIES).where(
                _POLICIES.c.draft_id == draft, _POLICIES.c.policy_name == name
            )
        ).first()

    def _proposed(self, draft: int, name: str, live: Policy | None) -> PolicySpec | None:
        """The policy's settings as the draft proposes them (no rule but ``*`` read:
        enough to check a setting or a rule against them), or None if the draft
        deletes it or it is nowhere."""
        entry = self._entry(draft, name)
        if entry is not None and entry.action == "delete":
            return None
        if entry is not None and entry.settings is not None:
            base = _settings_of(entry.settings)
        elif live is not None:
            base = settings_spec(live)
        else:
            return None
        star = self._proposed_entry(draft, name, live, "*")
        return dataclasses.replace(base, origins=OriginEntries.of(() if star is None else (star,)))

    def _proposed_entry(
        self, draft: int, name: str, live: Policy | None, text: str
    ) -> OriginEntry | None:
        """One rule as the draft would have it (its row in the draft, else the live rule)."""
        row = self.session.execute(
            sa.select(_ORIGINS.c.removed, _ORIGINS.c.note, _ORIGINS.c.expires_at).where(
                _ORIGINS.c.draft_id == draft,
                _ORIGINS.c.policy_name == name,
                _ORIGINS.c.origin == text,
            )
        ).first()
        if row is not None:
            if row.removed:
                return None
            return OriginEntry(parse_origin_rule(text, stored=True), row.note or "", row.expires_at)
        return None if live is None else _live_entry(self.session, live.id, text)

    def _put_policy(
        self,
        draft: int,
        name: str,
        action: DraftAction,
        base_version: int | None,
        settings: PolicySpec | None,
        rules: Mapping[str, OriginEntry | None],
    ) -> None:
        """Make the draft's entry for ``name`` exactly this (its rule rows replaced)."""
        self._drop_policy(draft, name)
        self.session.execute(
            sa.insert(_POLICIES).values(
                draft_id=draft,
                policy_name=name,
                action=action,
                base_version=base_version,
                settings=None if settings is None else _settings_document(settings),
            )
        )
        _insert_rules(self.session, draft, name, rules)

    def _put_imported(
        self, draft: int, specs: Sequence[PolicySpec], live_rows: Mapping[str, Policy]
    ) -> None:
        """:meth:`import_document`'s proposals for ``specs``, together: each policy as
        the document has it (a live one by difference with its live rules; one that
        would change nothing is not proposed, as :meth:`_prune` would drop it). The
        live rules of them all are read in one query, and their entries and rule rows
        written in bulk: a few statements for the chunk, not several per policy."""
        live_ids = [live_rows[s.name].id for s in specs if s.name in live_rows]
        stored_by_id = self.store._stored_rules_of(live_ids)
        entries: list[dict[str, Any]] = []
        rules: list[dict[str, Any]] = []
        for spec in specs:
            live = live_rows.get(spec.name)
            if live is None:
                entries.append(_entry_row(spec.name, "create", None, spec))
                rules += _rule_rows(draft, spec.name, _all_rules(spec))
                continue
            settings = None if _same_settings(settings_spec(live), spec) else spec
            changed = _rule_difference(stored_by_id.get(live.id, {}), spec)
            if settings is not None or changed:
                entries.append(_entry_row(spec.name, "update", live.version, settings))
                rules += _rule_rows(draft, spec.name, changed)
        self._put_entries(draft, entries, rules, names=[spec.name for spec in specs])

    def _put_entries(
        self,
        draft: int,
        entries: list[dict[str, Any]],
        rules: list[dict[str, Any]],
        *,
        names: Sequence[str] | None = None,
    ) -> None:
        """Replace the draft's entries of ``names`` (by default, the entries' own) by
        ``entries`` and their ``rules``, in bulk."""
        dropped = [e["policy_name"] for e in entries] if names is None else list(names)
        for table in (_ORIGINS, _POLICIES):
            self.session.execute(
                sa.delete(table).where(table.c.draft_id == draft, table.c.policy_name.in_(dropped))
            )
        if entries:
            self.session.execute(sa.insert(_POLICIES), [{**e, "draft_id": draft} for e in entries])
        for batch in _chunks(rules, _CHUNK):
            self.session.execute(sa.insert(_ORIGINS), batch)

    def _put_update(self, draft: int, live: Policy, after: PolicySpec, *, origins: bool) -> None:
        """Propose ``after`` for a live policy: its settings when they differ, and (with
        ``origins``) its rules by difference with the live ones."""
        settings = None if _same_settings(settings_spec(live), after) else after
        entry = self._entry(draft, live.name)
        if origins:
            rules = _rule_difference(self.store._stored_rules(live.id), after)
            self._put_policy(draft, live.name, "update", live.version, settings, rules)
        elif entry is None or entry.action != "update":
            self._put_policy(draft, live.name, "update", live.version, settings, {})
        else:
            self.session.execute(
                sa.update(_POLICIES)
                .where(_POLICIES.c.id == entry.id)
                .values(
                    base_version=live.version,
                    settings=None if settings is None else _settings_document(settings),
                )
            )
        self._prune(draft, live.name)

    def _put_rule(
        self, draft: int, name: str, live: Policy | None, text: str, entry: OriginEntry | None
    ) -> None:
        """Propose one rule as ``entry`` (None: removed); dropped from the draft when
        that is how the live policy has it."""
        self.session.execute(
            sa.delete(_ORIGINS).where(
                _ORIGINS.c.draft_id == draft,
                _ORIGINS.c.policy_name == name,
                _ORIGINS.c.origin == text,
            )
        )
        row = self._entry(draft, name)
        live_entry = None if live is None else _live_entry(self.session, live.id, text)
        creating = row is not None and row.action == "create"
        if creating or live_entry != entry:
            if not creating or entry is not None:
                _insert_rules(self.session, draft, name, {text: entry})
            if row is None:
                assert live is not None
                self.session.execute(
                    sa.insert(_POLICIES).values(
                        draft_id=draft,
                        policy_name=name,
                        action="update",
                        base_version=live.version,
                        settings=None,
                    )
                )
            elif live is not None:
                self.session.execute(
                    sa.update(_POLICIES)
                    .where(_POLICIES.c.id == row.id)
                    .values(base_version=live.version)
                )
        self._prune(draft, name)

    def _prune(self, draft: int, name: str) -> None:
        """Drop the policy's entry when it no longer changes anything."""
        row = self._entry(draft, name)
        if row is None or row.action != "update" or row.settings is not None:
            return
        has_rules = self.session.execute(
            sa.select(_ORIGINS.c.id)
            .where(_ORIGINS.c.draft_id == draft, _ORIGINS.c.policy_name == name)
            .limit(1)
        ).first()
        if has_rules is None:
            self._drop_policy(draft, name)

    def _drop_policy(self, draft: int, name: str) -> None:
        for table in (_ORIGINS, _POLICIES):
            self.session.execute(
                sa.delete(table).where(table.c.draft_id == draft, table.c.policy_name == name)
            )

    def _check_paths(self, draft: int) -> None:
        """Every path is held by one policy once the draft is applied."""
        live = self.session.execute(sa.select(Policy.name, Policy.path))
        paths = {row.name: row.path for row in live}
        for row in self._entries(draft).values():
            if row.action == "delete":
                paths.pop(row.policy_name, None)
            elif row.settings is not None:
                paths[row.policy_name] = row.settings["path"]
        holders: dict[str, str] = {}
        errors = []
        for name in sorted(paths):
            path = paths[name]
            if path in holders:
                errors.append(
                    FieldError("path", f"policy {holders[path]!r} already covers {path!r}")
                )
            holders.setdefault(path, name)
        if errors:
            raise ValidationError(errors)

    def _event(self, draft: int, policy: str | None, summary: str) -> None:
        """The audit event and change log entry of a save into the draft."""
        self.store._record(
            "draft.save", policy, None, {"draft": draft}, f"draft {draft}: {summary}",
            [Change("draft")],
        )  # fmt: skip


def _check_version(name: str, live: Policy | None, expected_version: int | None) -> None:
    """A change proposed on what the caller saw of the live policy at ``expected_version``
    is refused when the live policy moved on since (the draft would hide that change)."""
    if live is not None and expected_version is not None and live.version != expected_version:
        raise StaleVersion(name, expected_version, live.version)


def _same_settings(a: PolicySpec, b: PolicySpec) -> bool:
    return _settings_document(a) == _settings_document(b)


def _all_rules(spec: PolicySpec) -> dict[str, OriginEntry | None]:
    return {entry.rule.text: entry for entry in spec.origins}


def _insert_rules(
    session: Session | scoped_session[Any],
    draft: int,
    name: str,
    rules: Mapping[str, OriginEntry | None],
) -> None:
    for batch in _chunks(_rule_rows(draft, name, rules), _CHUNK):
        session.execute(sa.insert(_ORIGINS), batch)


def _rule_rows(
    draft: int, name: str, rules: Mapping[str, OriginEntry | None]
) -> list[dict[str, Any]]:
    """The draft's rule rows of a policy: each rule as proposed (None: removed)."""
    return [
        {
            "draft_id": draft,
            "policy_name": name,
            "origin": text,
            "removed": entry is None,
            "note": "" if entry is None else entry.note,
            "expires_at": None if entry is None else entry.expires,
        }
        for text, entry in rules.items()
    ]


def _rule_difference(
    stored: Mapping[str, tuple[str, datetime | None]], after: PolicySpec
) -> dict[str, OriginEntry | None]:
    """The rules that make a live policy's ``stored`` rules ``after``'s: each one added
    or changed as ``after`` has it, each one gone as None."""
    wanted = {text: (note, expires) for text, note, expires in after.origins.fields()}
    rules: dict[str, OriginEntry | None] = {t: None for t in stored if t not in wanted}
    for text, fields in wanted.items():
        if stored.get(text) != fields:
            rules[text] = after.origins.find(text)
    return rules


def _entry_row(
    name: str, action: DraftAction, base_version: int | None, settings: PolicySpec | None
) -> dict[str, Any]:
    """A draft entry's row (without its draft id)."""
    return {
        "policy_name": name,
        "action": action,
        "base_version": base_version,
        "settings": None if settings is None else _settings_document(settings),
    }


def _deleted(live: Policy) -> dict[str, Any]:
    return _entry_row(live.name, "delete", live.version, None)


_CHUNK: Final = 10_000


def _live_entry(
    session: Session | scoped_session[Any], policy_id: int, text: str
) -> OriginEntry | None:
    row = session.execute(
        sa.select(_RULES.c.note, _RULES.c.expires_at).where(
            _RULES.c.policy_id == policy_id, _RULES.c.origin == text
        )
    ).first()
    if row is None:
        return None
    return OriginEntry(parse_origin_rule(text, stored=True), row.note or "", row.expires_at)
