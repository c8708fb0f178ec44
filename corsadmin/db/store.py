"""Reading and writing policies: one transaction per change, its audit event inside it.

Every change goes through :class:`PolicyStore`: it validates through
:mod:`corsadmin.policy.spec`, writes the rows, records an :class:`AuditEvent` of
what changed (:mod:`corsadmin.db.audit`), moves the revision, and commits, all in
one transaction; on any error it rolls back, so nothing is half-written. After the
commit it calls ``on_commit`` (the extension uses it to make the change
visible in this process at once).

A write costs what it changes, not the size of the policy: one origin rule's add,
change or remove locks the policy row (``SELECT ... FOR UPDATE``; on SQLite the
revision move has taken the database lock), reads that rule alone by the unique
index on (policy, origin), checks it against the policy's settings
(:func:`corsadmin.policy.spec.origin_conflict`) and writes that row. A change of
settings reads no rule (but ``*``, the one a setting can forbid); a new list of
rules (``update_policy`` with ``origins``, ``import``) is compared with the stored
rows by text and only the difference is written, in bulk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, TypeVar, assert_never

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, selectinload

from ..errors import (
    FieldError,
    OriginRuleNotFound,
    PolicyNotFound,
    StaleVersion,
    ValidationError,
)
from ..policy.document import DOCUMENT_FORMAT, canonical, parse_document, shown_value
from ..policy.fields import PLAIN_FIELDS, Kind
from ..policy.origins import OriginRule, parse_origin_rule
from ..policy.spec import (
    EMPTY_ORIGINS,
    OriginEntries,
    OriginEntry,
    PolicySpec,
    apply_changes,
    format_time,
    origin_conflict,
    parse_origin_entry,
    validate_policy,
)
from ..runtime.notify import notify
from ..signals import policy_changed, send_safely
from .audit import RuleDocument, add_event, field_diff, rule_document, rule_text, sorted_rules
from .changelog import Change, record
from .dialects import end_read_only_snapshot, is_busy
from .export import settings_spec
from .loader import spec_of
from .models import AuditEvent, OriginRuleRow, Policy, State, utcnow

_T = TypeVar("_T")


@dataclass
class ImportReport:
    """What an import changed, policy names per kind of change."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def __str__(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.deleted)} deleted, {len(self.unchanged)} unchanged"
        )


class Keep(Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"


#: "Leave this as it is": what ``note`` and ``expires`` of :meth:`PolicyStore.add_origin`
#: mean when they are not given, so adding a rule that exists never erases its note or
#: expiry (``expires=None`` or ``""`` is "never expires"; ``note=""`` is "no note").
KEEP: Final = Keep.KEEP

#: The longest actor name: the audit and policy columns hold 200 characters.
MAX_ACTOR_LENGTH: Final = 200

OriginOutcome = Literal["allowed", "changed", "unchanged"]


@dataclass(frozen=True)
class OriginChange:
    """What :meth:`PolicyStore.allow_origin` or :meth:`PolicyStore.change_origin` did."""

    policy: str
    #: ``allowed`` (a new rule), ``changed`` (its note or expiry), ``unchanged``.
    outcome: OriginOutcome
    #: The rule as stored now.
    entry: OriginEntry
    #: The rule before the call (None when it was not there).
    before: OriginEntry | None = None

    def details(self) -> str:
        """What changed: ``note 'a' -> 'b'; expires never -> 2031-01-01T00:00:00Z``."""
        old = self.before or OriginEntry(self.entry.rule)
        parts = []
        if old.note != self.entry.note:
            parts.append(f"note {old.note!r} -> {self.entry.note!r}")
        if old.expires != self.entry.expires:
            parts.append(f"expires {_when(old.expires)} -> {_when(self.entry.expires)}")
        return "; ".join(parts)

    def state(self) -> str:
        """The rule's note and expiry as they are now: ``note 'a', expires ...``."""
        note = f"note {self.entry.note!r}" if self.entry.note else "no note"
        return f"{note}, expires {_when(self.entry.expires)}"


def _when(value: datetime | None) -> str:
    return "never" if value is None else format_time(value)


#: What an operator is told when a change waited too long for another one's lock.
BUSY_MESSAGE: Final = (
    "the database is busy (another change is being written); nothing was changed, try again"
)


def database_busy(error: BaseException) -> bool:
    """Whether a database error means "another change holds the lock; try again"
    (not a missing table, not a connection failure): :func:`.dialects.is_busy`."""
    return is_busy(error)


def check_actor(actor: object) -> str:
    """The actor of a change, refused unless every backend can store it."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError.single("actor", "is required (who makes the change)")
    if len(actor) > MAX_ACTOR_LENGTH:
        raise ValidationError.single(
            "actor", f"is longer than {MAX_ACTOR_LENGTH} characters ({len(actor)})"
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in actor):
        raise ValidationError.single(
            "actor", "must not contain control characters (NUL, tab, newline)"
        )
    if any(0xD800 <= ord(c) <= 0xDFFF for c in actor):
        raise ValidationError.single("actor", "is not valid text (a lone surrogate)")
    return actor


def column_value(kind: Kind, value: Any) -> Any:
    """A spec's value of a plain field of this kind as its column holds it."""
    match kind:
        case Kind.TOKENS:
            return list(value)
        case Kind.TEXT | Kind.MULTILINE | Kind.BOOL | Kind.INT | Kind.OPTIONAL_INT:
            return value
        case Kind.PATH | Kind.ORIGINS:
            raise ValueError(f"a {kind.value} is not stored as one column")
        case _:
            assert_never(kind)


class PolicyStore:
    """Every read and write of policies, for one session and one actor."""

    def __init__(
        self,
        session: Session | scoped_session[Any],
        *,
        actor: str,
        on_commit: Callable[[], object] | None = None,
        sender: object = None,
    ) -> None:
        self.actor = check_actor(actor)
        self.session = session
        self.on_commit = on_commit
        self.sender = sender  # of corsadmin.signals.policy_changed (the Flask app)
        self._events: list[tuple[str, str | None]] = []  # (action, policy) of this change
        self._changes: list[Change] = []  # the change log entries of this change
        self._revision = 0

    # Reading -----------------------------------------------------------------

    def revision(self) -> int:
        return int(self.session.scalar(sa.select(State.revision).where(State.id == 1)) or 0)

    def policies(self) -> list[Policy]:
        return list(
            self.session.scalars(
                sa.select(Policy).options(selectinload(Policy.origin_rules)).order_by(Policy.name)
            )
        )

    def policy(self, name: str) -> Policy:
        found = self.session.scalar(
            sa.select(Policy).options(selectinload(Policy.origin_rules)).where(Policy.name == name)
        )
        if found is None:
            raise PolicyNotFound(name)
        return found

    def spec(self, name: str) -> PolicySpec:
        return spec_of(self.policy(name))

    def export_document(self) -> dict[str, Any]:
        """The whole policy as a document: every policy, every field, sorted by name."""
        return {
            "corsadmin": DOCUMENT_FORMAT,
            "policies": [canonical(spec_of(p)) for p in self.policies()],
        }

    def audit_events(
        self, *, policy: str | None = None, actor: str | None = None, limit: int = 200
    ) -> list[AuditEvent]:
        query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if policy:
            query = query.where(AuditEvent.policy_name == policy)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        return list(self.session.scalars(query))

    # Writing -----------------------------------------------------------------

    def create_policy(self, data: Mapping[str, Any]) -> PolicySpec:
        """Add a policy from document fields."""
        with self._change():
            spec = validate_policy(data)
            self._check_unique(spec, None)
            self._create(spec, f"created policy {spec.name}")
        return spec

    def update_policy(
        self, name: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> PolicySpec:
        """Change some fields of a policy (``origins``, if given, replaces the list).

        Without ``origins`` among the changes no rule is read: the spec returned holds
        the policy's settings and no origins (``origins`` is empty). With it, the new
        list is written by difference (rules added, removed, changed) in bulk, and the
        spec returned is the whole policy.
        """
        with self._change():
            policy = self._locked(name, expected_version)
            if "origins" not in changes:
                return self._update_settings(policy, changes)
            stored = self._stored_rules(policy.id)
            old = {**canonical(settings_spec(policy)), "origins": _documents(stored)}
            after = apply_changes(settings_spec(policy), changes)
            new = canonical(after)
            if new == old:
                return after
            self._check_unique(after, policy.id)
            self._write_settings(policy, after)
            self._write_rules(policy.id, stored, after.origins)
            before_doc, after_doc = field_diff(old, new)
            summary = describe_documents(after.name, old, new)
            self._audit("policy.update", after.name, before_doc, after_doc, summary, renamed=name)
        return after

    def set_enabled(
        self, name: str, enabled: bool, *, expected_version: int | None = None
    ) -> PolicySpec:
        """Turn a policy on or off (no rule is read: the spec returned has no origins)."""
        return self.update_policy(name, {"enabled": enabled}, expected_version=expected_version)

    def delete_policy(self, name: str, *, expected_version: int | None = None) -> None:
        with self._change():
            policy = self._locked(name, expected_version)
            self._delete(policy, f"deleted policy {name}")

    def add_origin(
        self,
        policy_name: str,
        origin: str,
        *,
        note: str | Keep = KEEP,
        expires: object = KEEP,
        expected_version: int | None = None,
    ) -> OriginEntry:
        """Allow one more origin on a policy; the rule as stored is returned.

        If the policy has the rule already, what is not given is kept: its note and
        expiry change only when ``note`` or ``expires`` are given (``expires=None``
        makes it permanent). :meth:`allow_origin` says which of these happened.
        """
        return self.allow_origin(
            policy_name, origin, note=note, expires=expires, expected_version=expected_version
        ).entry

    def allow_origin(
        self,
        policy_name: str,
        origin: str,
        *,
        note: str | Keep = KEEP,
        expires: object = KEEP,
        expected_version: int | None = None,
        new_only: bool = False,
    ) -> OriginChange:
        """:meth:`add_origin`, saying whether the rule was allowed, changed or left as it
        was. With ``new_only``, a rule the policy has already is refused instead."""
        return self._put_origin(
            policy_name,
            origin,
            note,
            expires,
            expected_version,
            must_exist=False,
            new_only=new_only,
        )

    def change_origin(
        self,
        policy_name: str,
        origin: str,
        *,
        note: str | Keep = KEEP,
        expires: object = KEEP,
        expected_version: int | None = None,
    ) -> OriginChange:
        """Change the note or expiry of a rule the policy has (given as stored or as
        typed); a rule it does not have is refused (:class:`OriginRuleNotFound`)."""
        return self._put_origin(
            policy_name, origin, note, expires, expected_version, must_exist=True
        )

    def _put_origin(
        self,
        policy_name: str,
        origin: str,
        note: str | Keep,
        expires: object,
        expected_version: int | None,
        *,
        must_exist: bool,
        new_only: bool = False,
    ) -> OriginChange:
        """Write one rule: the policy row is locked and that rule alone read and written."""
        with self._change():
            entry = _typed_origin_entry(origin, note, expires)
            policy = self._locked(policy_name, expected_version)
            existing = self._stored_entry(policy.id, entry.rule)
            if existing is None and must_exist:
                raise OriginRuleNotFound(policy_name, origin)
            if existing is not None and new_only:
                raise ValidationError.single(
                    "origin",
                    f"{entry.rule.text} is allowed on {policy_name} already; "
                    "change its note or expiry instead of adding it again",
                )
            if existing is not None:
                entry = OriginEntry(
                    existing.rule,
                    existing.note if isinstance(note, Keep) else entry.note,
                    existing.expires if isinstance(expires, Keep) else entry.expires,
                )
            problem = origin_conflict(entry, credentials=policy.credentials)
            if problem is not None:
                raise ValidationError.single("origin", problem)
            if existing is not None and existing == entry:
                return OriginChange(policy_name, "unchanged", existing, existing)
            change = OriginChange(
                policy_name, "allowed" if existing is None else "changed", entry, existing
            )
            self._write_rule(policy, entry, new=existing is None)
            summary = f"allowed origin {entry.rule.text} on {policy_name}"
            if existing is not None:
                summary = f"changed origin {entry.rule.text} on {policy_name}: {change.details()}"
            self._audit_rule("origin.add", policy_name, existing, entry, summary)
        return change

    def remove_origin(
        self, policy_name: str, origin: str, *, expected_version: int | None = None
    ) -> None:
        """Stop allowing one origin rule (given as stored, or as typed: normalized then)."""
        with self._change():
            policy = self._locked(policy_name, expected_version)
            found = self._stored_row(policy.id, origin)
            if found is None:
                found = self._stored_row(policy.id, parse_origin_entry(origin).rule.text)
            if found is None:
                raise OriginRuleNotFound(policy_name, origin)
            text = found.origin
            self.session.execute(
                sa.delete(_RULES).where(_RULES.c.policy_id == policy.id, _RULES.c.origin == text)
            )
            self._touch(policy)
            self._audit(
                "origin.remove",
                policy_name,
                {"origins": [rule_document(text, found.note, found.expires_at)]},
                {"origins": []},
                f"removed origin {text} from {policy_name}",
                origin=text,
            )

    def import_document(self, document: Any, *, replace: bool = False) -> ImportReport:
        """Merge a policy document by name (or, with ``replace``, make the database hold it).

        The whole document is validated first; one error and nothing is written.
        A policy that would not change is left alone and records no event. Rules are
        compared with the stored ones by text and written in bulk (only the difference).
        """
        specs = parse_document(document)
        report = ImportReport()
        with self._change():
            existing = {p.name: p for p in self._fresh_policies()}
            incoming = {s.name for s in specs}
            if replace:
                for name in sorted(set(existing) - incoming):
                    self._delete(existing.pop(name), f"import removed {name}")
                    report.deleted.append(name)
                self.session.flush()
            # Free every path that moves before writing any, so swapped paths do not collide.
            updates = self._import_updates(specs, existing, report)
            self._check_paths_free(specs, keep=set(existing))
            for i, (policy, *_rest) in enumerate(updates):
                policy.path = f"corsadmin-moving:{i}"  # not a valid pattern, so never a real one
            self.session.flush()
            for policy, stored, old, spec in updates:
                self._write_settings(policy, spec)
                self._write_rules(policy.id, stored, spec.origins)
                new = canonical(spec)
                before_doc, after_doc = field_diff(old, new)
                summary = "import: " + describe_documents(spec.name, old, new)
                self._audit("policy.update", spec.name, before_doc, after_doc, summary)
                report.updated.append(spec.name)
            created = [spec for spec in specs if spec.name not in existing]
            self._create_many(created, [f"import created {spec.name}" for spec in created])
            report.created.extend(spec.name for spec in created)
        return report

    def _import_updates(
        self, specs: Sequence[PolicySpec], existing: Mapping[str, Policy], report: ImportReport
    ) -> list[tuple[Policy, _StoredRules, dict[str, Any], PolicySpec]]:
        """The stored policies an import changes: each with its stored rules, its
        stored document and the new spec (the unchanged ones go to ``report``)."""
        updates = []
        pairs = [(existing[spec.name], spec) for spec in specs if spec.name in existing]
        for chunk in _chunks(pairs, POLICY_CHUNK):
            stored_by_id = self._stored_rules_of([policy.id for policy, _spec in chunk])
            for policy, spec in chunk:
                stored = stored_by_id.get(policy.id, {})
                old = {**canonical(settings_spec(policy)), "origins": _documents(stored)}
                if old == canonical(spec):
                    report.unchanged.append(spec.name)
                    continue
                updates.append((policy, stored, old, spec))
        return updates

    def mark_reviewed(
        self, name: str, comment: str = "", *, expected_version: int | None = None
    ) -> None:
        """Record that an operator reviewed a policy (an audit event, no policy change;
        no rule is read)."""
        with self._change():
            policy = self._locked(name, expected_version)
            before = {"reviewed_at": _time(policy.reviewed_at), "reviewed_by": policy.reviewed_by}
            policy.reviewed_at = utcnow()
            policy.reviewed_by = self.actor
            after = {"reviewed_at": _time(policy.reviewed_at), "reviewed_by": self.actor}
            summary = f"reviewed {name}" + (f": {comment}" if comment else "")
            self._audit("policy.review", name, before, after, summary, touches=False)

    # Internals ---------------------------------------------------------------

    def _change(self) -> _Transaction:
        return _Transaction(self)

    def _locked(self, name: str, expected_version: int | None) -> Policy:
        """The policy row as committed, locked for this change (PostgreSQL: ``SELECT ...
        FOR UPDATE`` of its row; SQLite: the database, taken by the revision move before
        this read). No origin rule is read.

        ``populate_existing`` makes the session overwrite the copy it may hold from an
        earlier read (a view loads the policy before it saves), so the version compared
        is the locked row's; the rules the session may hold are expired, so whatever
        reads them after this change's writes reads them from the database.
        """
        query = (
            sa.select(Policy)
            .where(Policy.name == name)
            .with_for_update(of=Policy)
            .execution_options(populate_existing=True)
        )
        policy = self.session.scalar(query)
        if policy is None:
            raise PolicyNotFound(name)
        self.session.expire(policy, ["origin_rules"])
        if expected_version is not None and policy.version != expected_version:
            raise StaleVersion(name, expected_version, policy.version)
        return policy

    def _fresh_policies(self) -> list[Policy]:
        """Every policy row as committed (read after the revision moved, which serializes
        writers), overwriting whatever copies the session held; no rule is read."""
        policies = list(
            self.session.scalars(
                sa.select(Policy).order_by(Policy.name).execution_options(populate_existing=True)
            )
        )
        for policy in policies:
            self.session.expire(policy, ["origin_rules"])
        return policies

    def _stored_row(self, policy_id: int, text: str) -> Any:
        """One stored rule (origin, note, expires_at) by its text, or None: one indexed read."""
        return self.session.execute(
            sa.select(_RULES.c.origin, _RULES.c.note, _RULES.c.expires_at).where(
                _RULES.c.policy_id == policy_id, _RULES.c.origin == text
            )
        ).first()

    def _stored_entry(self, policy_id: int, rule: OriginRule) -> OriginEntry | None:
        """The stored entry of ``rule`` (already parsed: the stored text is its text)."""
        row = self._stored_row(policy_id, rule.text)
        return None if row is None else OriginEntry(rule, row.note or "", row.expires_at)

    def _stored_rules(self, policy_id: int) -> _StoredRules:
        """Every stored rule of a policy, by text: (note, expires). Nothing is parsed."""
        return self._stored_rules_of([policy_id]).get(policy_id, {})

    def _stored_rules_of(self, policy_ids: Sequence[int]) -> dict[int, _StoredRules]:
        """:meth:`_stored_rules` of several policies in one read (a policy without any
        rule is absent)."""
        found: dict[int, _StoredRules] = {}
        if not policy_ids:
            return found
        query = sa.select(_RULES.c.policy_id, _RULES.c.origin, _RULES.c.note, _RULES.c.expires_at)
        for row in self.session.execute(query.where(_RULES.c.policy_id.in_(policy_ids))):
            found.setdefault(row.policy_id, {})[row.origin] = (row.note or "", row.expires_at)
        return found

    def _create(self, spec: PolicySpec, summary: str) -> None:
        self._create_many([spec], [summary])

    def _create_many(self, specs: Sequence[PolicySpec], summaries: Sequence[str]) -> None:
        """Create policies together, a chunk at a time: one flush inserts their rows (the
        ORM batches the INSERTs and reads the ids back), then their rules in bulk, and
        their audit events: a few statements per chunk, not three per policy."""
        for chunk in _chunks(list(zip(specs, summaries, strict=True)), POLICY_CHUNK):
            policies = []
            for spec, _summary in chunk:
                policy = Policy(name=spec.name, created_by=self.actor, created_at=utcnow())
                self.session.add(policy)
                self._write_settings(policy, spec)
                policies.append(policy)
            self.session.flush()  # the policies' ids, for their rules
            rows = [
                row
                for policy, (spec, _summary) in zip(policies, chunk, strict=True)
                for row in self._new_rule_rows(policy.id, {}, _by_text(spec.origins))
            ]
            for batch in _chunks(rows, BULK_CHUNK):
                self.session.execute(sa.insert(_RULES), batch)
            for spec, summary in chunk:
                self._audit("policy.create", spec.name, None, canonical(spec), summary)

    def _delete(self, policy: Policy, summary: str) -> None:
        """Delete a policy and its rules; its audit event keeps the whole document, built
        from the stored rows (no rule is parsed)."""
        stored = self._stored_rules(policy.id)
        before = {**canonical(settings_spec(policy)), "origins": _documents(stored)}
        self.session.execute(sa.delete(_RULES).where(_RULES.c.policy_id == policy.id))
        self.session.delete(policy)
        self._audit("policy.delete", policy.name, before, None, summary)

    def _check_unique(self, spec: PolicySpec, own_id: int | None) -> None:
        errors: list[FieldError] = []
        by_name = self.session.scalar(sa.select(Policy.id).where(Policy.name == spec.name))
        if by_name is not None and by_name != own_id:
            errors.append(FieldError("name", f"a policy named {spec.name!r} exists already"))
        by_path = self.session.execute(
            sa.select(Policy.id, Policy.name).where(Policy.path == spec.path.text)
        ).first()
        if by_path is not None and by_path.id != own_id:
            errors.append(
                FieldError("path", f"policy {by_path.name!r} already covers {spec.path.text!r}")
            )
        if errors:
            raise ValidationError(errors)

    def _check_paths_free(self, specs: Sequence[PolicySpec], keep: set[str]) -> None:
        """Import: a new path must not be held by a stored policy the document leaves alone."""
        incoming = {s.name for s in specs}
        held = {
            row.path: row.name
            for row in self.session.execute(sa.select(Policy.path, Policy.name))
            if row.name not in incoming
        }
        errors = []
        for i, spec in enumerate(specs):
            holder = held.get(spec.path.text)
            if holder is not None:
                errors.append(
                    FieldError(
                        f"policies[{i}].path",
                        f"policy {holder!r} (not in this document) already covers "
                        f"{spec.path.text!r}; use --replace or rename",
                    )
                )
        if errors:
            raise ValidationError(errors)

    def _update_settings(self, policy: Policy, changes: Mapping[str, Any]) -> PolicySpec:
        """:meth:`update_policy` of fields other than ``origins``: no rule is read but
        ``*`` (the one rule a setting can forbid: with credentials), so the checks and
        their messages are :func:`validate_policy`'s."""
        name = policy.name
        current = settings_spec(policy)
        star = self._stored_entry(policy.id, parse_origin_rule("*"))
        with_star = dataclasses.replace(
            current, origins=OriginEntries.of(() if star is None else (star,))
        )
        after = dataclasses.replace(apply_changes(with_star, changes), origins=EMPTY_ORIGINS)
        old, new = canonical(current), canonical(after)
        if new == old:
            return current
        self._check_unique(after, policy.id)
        self._write_settings(policy, after)
        before_doc, after_doc = field_diff(old, new)
        summary = describe_documents(after.name, old, new)
        self._audit(
            "policy.update", after.name, before_doc, after_doc, summary, renamed=name, rules=False
        )
        return after

    def _touch(self, policy: Policy) -> None:
        """A new version of the policy, by this actor, now."""
        policy.version = (policy.version or 0) + 1
        policy.updated_at = utcnow()
        policy.updated_by = self.actor

    def _write_settings(self, policy: Policy, spec: PolicySpec) -> None:
        for plain in PLAIN_FIELDS:
            setattr(policy, plain.name, column_value(plain.kind, getattr(spec, plain.name)))
        policy.path = spec.path.text
        self._touch(policy)

    def _write_rule(self, policy: Policy, entry: OriginEntry, *, new: bool) -> None:
        """Insert or update one rule row (the collection is never loaded)."""
        if new:
            self.session.execute(
                sa.insert(_RULES).values(
                    policy_id=policy.id,
                    origin=entry.rule.text,
                    note=entry.note,
                    expires_at=entry.expires,
                    created_at=utcnow(),
                    created_by=self.actor,
                )
            )
        else:
            self.session.execute(
                sa.update(_RULES)
                .where(_RULES.c.policy_id == policy.id, _RULES.c.origin == entry.rule.text)
                .values(note=entry.note, expires_at=entry.expires)
            )
        self._touch(policy)

    def _write_rules(self, policy_id: int, stored: _StoredRules, wanted: OriginEntries) -> None:
        """Make a policy's rule rows ``wanted``, given the ``stored`` ones: set-based
        deletes, executemany inserts and updates of the difference only (the rules are
        compared as the rows hold them: no entry is built per rule)."""
        by_text = _by_text(wanted)
        gone = [text for text in stored if text not in by_text]
        for chunk in _chunks(gone, BULK_CHUNK):
            self.session.execute(
                sa.delete(_RULES).where(_RULES.c.policy_id == policy_id, _RULES.c.origin.in_(chunk))
            )
        added = self._new_rule_rows(policy_id, stored, by_text)
        changed = [
            {"b_origin": text, "b_note": note, "b_expires": expires}
            for text, (note, expires) in by_text.items()
            if text in stored and stored[text] != (note, expires)
        ]
        for rows in _chunks(added, BULK_CHUNK):
            self.session.execute(sa.insert(_RULES), rows)
        for batch in _chunks(changed, BULK_CHUNK):
            self.session.execute(
                sa.update(_RULES)
                .where(_RULES.c.policy_id == policy_id, _RULES.c.origin == sa.bindparam("b_origin"))
                .values(note=sa.bindparam("b_note"), expires_at=sa.bindparam("b_expires")),
                batch,
            )

    def _new_rule_rows(
        self, policy_id: int, stored: _StoredRules, by_text: _StoredRules
    ) -> list[dict[str, Any]]:
        """The rows to insert for the wanted rules (``by_text``, as :func:`_by_text`
        gives them) that are not ``stored``."""
        now = utcnow()
        return [
            {
                "policy_id": policy_id,
                "origin": text,
                "note": note,
                "expires_at": expires,
                "created_at": now,
                "created_by": self.actor,
            }
            for text, (note, expires) in by_text.items()
            if text not in stored
        ]

    def _audit_rule(
        self,
        action: str,
        policy_name: str,
        before: OriginEntry | None,
        after: OriginEntry,
        summary: str,
    ) -> None:
        """The audit event of one rule's change: that rule before and after, nothing else."""
        self._audit(
            action,
            policy_name,
            {"origins": [] if before is None else [before.to_document()]},
            {"origins": [after.to_document()]},
            summary,
            origin=after.rule.text,
        )

    def _audit(
        self,
        action: str,
        policy_name: str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        summary: str,
        *,
        origin: str | None = None,
        touches: bool = True,
        renamed: str | None = None,
        rules: bool = True,
    ) -> None:
        """Record the audit event (what changed: :mod:`corsadmin.db.audit`) and the change
        log entries of one policy's change: ``origin`` when only that rule changed,
        ``touches=False`` when nothing a snapshot holds did; ``renamed``, the policy's
        name before the change (both names are re-read); ``rules=False`` when no origin
        rule changed (the policy's row alone is re-read, unless it was renamed)."""
        if not touches:
            changes = [Change("none")]
        elif origin is not None:
            changes = [Change("origin", policy_name, origin)]
        elif not rules and renamed in (None, policy_name):
            changes = [Change("settings", policy_name)]
        else:
            names = {n for n in (policy_name, renamed) if n is not None}
            changes = [Change("policy", name) for name in sorted(names)]
        self._record(action, policy_name, before, after, summary, changes)

    def _record(
        self,
        action: str,
        policy_name: str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        summary: str,
        changes: Iterable[Change],
    ) -> None:
        """The one way a change is recorded, inside its transaction: its change log
        entries (what a reload re-reads), its audit event, and the ``policy_changed``
        pair sent after the commit. Every writer (this store, drafts, promotion) calls it."""
        self._changes.extend(changes)
        add_event(
            self.session,
            actor=self.actor,
            action=action,
            policy_name=policy_name,
            summary=summary,
            before=before,
            after=after,
            revision=self._revision,
        )
        self._events.append((action, policy_name))

    def _bump_revision(self) -> int:
        """Move the revision. Done first in every change: on PostgreSQL the row lock
        serializes writers, and on SQLite the first write takes the database lock."""
        now = utcnow()
        moved = self.session.execute(
            sa.update(State)
            .where(State.id == 1)
            .values(revision=State.revision + 1, changed_at=now)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            self.session.add(State(id=1, revision=1, changed_at=now))
            self.session.flush()
        revision = int(self.session.scalar(sa.select(State.revision).where(State.id == 1)) or 0)
        notify(self.session.connection(), revision)  # wakes the other workers at commit
        return revision


def _typed_origin_entry(origin: str, note: str | Keep, expires: object) -> OriginEntry:
    """An origin rule as typed by an operator, validated; an expiry given must lie ahead."""
    entry = parse_origin_entry(
        origin,
        note="" if isinstance(note, Keep) else note,
        expires=None if isinstance(expires, Keep) else expires,
    )
    if not isinstance(expires, Keep) and entry.expires is not None and entry.expires <= utcnow():
        raise ValidationError.single("expires", "is in the past")
    return entry


#: Rows per statement of a bulk write (executemany batches, ``IN`` lists of deletes).
BULK_CHUNK: Final = 10_000
#: Policies an import reads the stored rules of, or creates, together (the ``IN`` list
#: of their ids; one flush of their rows).
POLICY_CHUNK: Final = 1000
#: The most rule texts a change's summary names per kind (added, removed); more are counted.
MAX_SUMMARY_ORIGINS: Final = 20

_RULES: Final[sa.Table] = OriginRuleRow.__table__  # type: ignore[assignment]

#: A policy's stored rules by text: (note, expires).
_StoredRules = dict[str, tuple[str, datetime | None]]


def _by_text(wanted: OriginEntries) -> _StoredRules:
    """The rules as the rows hold them, by text: (note, expires)."""
    return {text: (note, expires) for text, note, expires in wanted.fields()}


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _documents(stored: _StoredRules) -> list[RuleDocument]:
    """Stored rules as a canonical document lists them (text order)."""
    return sorted_rules(
        rule_document(text, note, expires) for text, (note, expires) in stored.items()
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def describe_documents(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """A short human summary of what changed between two canonical documents of a
    policy (as :func:`corsadmin.policy.document.describe_change`, rules named up to
    :data:`MAX_SUMMARY_ORIGINS` per kind)."""
    parts: list[str] = []
    for key in new:
        if key == "origins":
            old_o = {rule_text(o) for o in old["origins"]}
            new_o = {rule_text(o) for o in new["origins"]}
            added, removed = sorted(new_o - old_o), sorted(old_o - new_o)
            if added:
                parts.append("allowed " + _names(added))
            if removed:
                parts.append("removed " + _names(removed))
            if not added and not removed and old["origins"] != new["origins"]:
                parts.append("changed origin notes or expiry")
        elif old.get(key) != new[key]:
            parts.append(f"{key}: {shown_value(old.get(key))} -> {shown_value(new[key])}")
    return f"updated {name}: " + ("; ".join(parts) if parts else "no change")


def _names(texts: list[str]) -> str:
    shown = ", ".join(texts[:MAX_SUMMARY_ORIGINS])
    more = len(texts) - MAX_SUMMARY_ORIGINS
    return shown if more <= 0 else f"{shown} and {more} more"


class _Transaction:
    """One change: the revision moves first, then the writes and their audit events;
    commit if anything was recorded, roll back everything on any error."""

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._events = []
        self.store._changes = []
        end_read_only_snapshot(self.store.session)
        self.store._revision = self.store._bump_revision()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        session = self.store.session
        events = self.store._events
        self.store._events = []
        if exc_type is not None:
            session.rollback()
            return
        try:
            if events:
                record(session.connection(), self.store._revision, self.store._changes)
                session.commit()
            else:
                session.rollback()  # no change: the revision stays where it was
        except BaseException:
            session.rollback()
            raise
        if not events:
            return
        if self.store.on_commit is not None:
            self.store.on_commit()
        send_safely(
            policy_changed,
            self.store.sender,
            actor=self.store.actor,
            revision=self.store._revision,
            changes=tuple(events),
        )
