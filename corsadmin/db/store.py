"""Reading and writing policies: one transaction per change, its audit event inside it.

Every change goes through :class:`PolicyStore`: it validates through
:mod:`corsadmin.policy.spec`, writes the rows, records an :class:`AuditEvent` with
the policy before and after, moves the revision, and commits, all in one
transaction; on any error it rolls back, so nothing is half-written. After the
commit it calls ``on_commit`` (the extension uses it to make the change
visible in this process at once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, assert_never

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, selectinload

from ..errors import (
    FieldError,
    OriginRuleNotFound,
    PolicyNotFound,
    StaleVersion,
    ValidationError,
)
from ..policy.document import DOCUMENT_FORMAT, canonical, describe_change, parse_document
from ..policy.fields import PLAIN_FIELDS, Kind
from ..policy.spec import (
    OriginEntry,
    PolicySpec,
    apply_changes,
    format_time,
    parse_origin_entry,
    validate_policy,
    with_origin,
    without_origin,
)
from ..runtime.notify import notify
from ..signals import policy_changed, send_safely
from .changelog import Change, record
from .loader import spec_of
from .models import AuditEvent, OriginRuleRow, Policy, State, utcnow


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
#: SQLite result codes (low byte) of a lock held by another connection: BUSY, LOCKED.
_SQLITE_BUSY_CODES: Final = frozenset({5, 6})
#: PostgreSQL SQLSTATEs of a lock not obtained in time: lock_not_available (lock_timeout,
#: NOWAIT), deadlock_detected, serialization_failure. Retrying is the cure for each.
_POSTGRES_BUSY_STATES: Final = frozenset({"55P03", "40P01", "40001"})


def database_busy(error: BaseException) -> bool:
    """Whether a database error means "another change holds the lock; try again"
    (not a missing table, not a connection failure)."""
    orig = getattr(error, "orig", None) or error
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_BUSY_CODES
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        return state in _POSTGRES_BUSY_STATES
    text = str(orig).lower()
    return any(
        words in text for words in ("database is locked", "could not obtain lock", "lock timeout")
    )


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
            policy = Policy(name=spec.name, created_by=self.actor, created_at=utcnow())
            self.session.add(policy)
            self._write(policy, spec)
            self._audit("policy.create", spec.name, None, spec, f"created policy {spec.name}")
        return spec

    def update_policy(
        self, name: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> PolicySpec:
        """Change some fields of a policy (``origins``, if given, replaces the list)."""
        with self._change():
            policy = self._locked(name, expected_version)
            before = spec_of(policy)
            after = apply_changes(before, changes)
            if canonical(after) == canonical(before):
                return before
            self._check_unique(after, policy.id)
            self._write(policy, after)
            self._audit("policy.update", after.name, before, after, describe_change(before, after))
        return after

    def set_enabled(
        self, name: str, enabled: bool, *, expected_version: int | None = None
    ) -> PolicySpec:
        return self.update_policy(name, {"enabled": enabled}, expected_version=expected_version)

    def delete_policy(self, name: str, *, expected_version: int | None = None) -> None:
        with self._change():
            policy = self._locked(name, expected_version)
            before = spec_of(policy)
            self.session.delete(policy)
            self._audit("policy.delete", name, before, None, f"deleted policy {name}")

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
        with self._change():
            entry = _typed_origin_entry(origin, note, expires)
            policy = self._locked(policy_name, expected_version)
            before = spec_of(policy)
            existing = before.origin(entry.rule.text)
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
            after = _with_origin_field_errors(before, entry)
            if existing is not None and existing == entry:
                return OriginChange(policy_name, "unchanged", existing, existing)
            change = OriginChange(
                policy_name, "allowed" if existing is None else "changed", entry, existing
            )
            self._write(policy, after)
            summary = f"allowed origin {entry.rule.text} on {policy_name}"
            if existing is not None:
                summary = f"changed origin {entry.rule.text} on {policy_name}: {change.details()}"
            self._audit("origin.add", policy_name, before, after, summary, origin=entry.rule.text)
        return change

    def remove_origin(
        self, policy_name: str, origin: str, *, expected_version: int | None = None
    ) -> None:
        """Stop allowing one origin rule (given as typed: it is normalized first)."""
        with self._change():
            policy = self._locked(policy_name, expected_version)
            before = spec_of(policy)
            text = origin
            if before.origin(text) is None:
                text = parse_origin_entry(origin).rule.text
            if before.origin(text) is None:
                raise OriginRuleNotFound(policy_name, origin)
            after = without_origin(before, text)
            self._write(policy, after)
            self._audit(
                "origin.remove",
                policy_name,
                before,
                after,
                f"removed origin {text} from {policy_name}",
                origin=text,
            )

    def import_document(self, document: Any, *, replace: bool = False) -> ImportReport:
        """Merge a policy document by name (or, with ``replace``, make the database hold it).

        The whole document is validated first; one error and nothing is written.
        A policy that would not change is left alone and records no event.
        """
        specs = parse_document(document)
        report = ImportReport()
        with self._change():
            existing = {p.name: p for p in self._fresh_policies()}
            incoming = {s.name for s in specs}
            if replace:
                for name in sorted(set(existing) - incoming):
                    policy = existing.pop(name)
                    before = spec_of(policy)
                    self.session.delete(policy)
                    self._audit("policy.delete", name, before, None, f"import removed {name}")
                    report.deleted.append(name)
                self.session.flush()
            # Free every path that moves before writing any, so swapped paths do not collide.
            updates: list[tuple[Policy, PolicySpec, PolicySpec]] = []
            for spec in specs:
                stored = existing.get(spec.name)
                if stored is None:
                    continue
                before = spec_of(stored)
                if canonical(before) == canonical(spec):
                    report.unchanged.append(spec.name)
                    continue
                updates.append((stored, before, spec))
            self._check_paths_free(specs, keep=set(existing))
            for i, (policy, _before, _spec) in enumerate(updates):
                policy.path = f"corsadmin-moving:{i}"  # not a valid pattern, so never a real one
            self.session.flush()
            for policy, before, spec in updates:
                self._write(policy, spec)
                summary = "import: " + describe_change(before, spec)
                self._audit("policy.update", spec.name, before, spec, summary)
                report.updated.append(spec.name)
            for spec in specs:
                if spec.name in existing:
                    continue
                policy = Policy(name=spec.name, created_by=self.actor, created_at=utcnow())
                self.session.add(policy)
                self._write(policy, spec)
                self._audit("policy.create", spec.name, None, spec, f"import created {spec.name}")
                report.created.append(spec.name)
        return report

    def mark_reviewed(
        self, name: str, comment: str = "", *, expected_version: int | None = None
    ) -> None:
        """Record that an operator reviewed a policy (an audit event, no policy change)."""
        with self._change():
            policy = self._locked(name, expected_version)
            policy.reviewed_at = utcnow()
            policy.reviewed_by = self.actor
            spec = spec_of(policy)
            summary = f"reviewed {name}" + (f": {comment}" if comment else "")
            self._audit("policy.review", name, spec, spec, summary, origin=None, touches=False)

    # Internals ---------------------------------------------------------------

    def _change(self) -> _Transaction:
        return _Transaction(self)

    def _locked(self, name: str, expected_version: int | None) -> Policy:
        """The policy as committed, locked for this change (PostgreSQL: its row; SQLite:
        the database, taken by the revision move before this read).

        ``populate_existing`` makes the session overwrite the copy it may hold from an
        earlier read (a view loads the policy before it saves), origin rules included, so
        the version compared and the audit "before" are the locked row's.
        """
        query = (
            sa.select(Policy)
            .options(selectinload(Policy.origin_rules))
            .where(Policy.name == name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        policy = self.session.scalar(query)
        if policy is None:
            raise PolicyNotFound(name)
        if expected_version is not None and policy.version != expected_version:
            raise StaleVersion(name, expected_version, policy.version)
        return policy

    def _fresh_policies(self) -> list[Policy]:
        """Every policy as committed (read after the revision moved, which serializes
        writers), overwriting whatever copies the session held."""
        return list(
            self.session.scalars(
                sa.select(Policy)
                .options(selectinload(Policy.origin_rules))
                .order_by(Policy.name)
                .execution_options(populate_existing=True)
            )
        )

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

    def _write(self, policy: Policy, spec: PolicySpec) -> None:
        now = utcnow()
        for plain in PLAIN_FIELDS:
            setattr(policy, plain.name, column_value(plain.kind, getattr(spec, plain.name)))
        policy.path = spec.path.text
        policy.version = (policy.version or 0) + 1
        policy.updated_at = now
        policy.updated_by = self.actor
        rows = {r.origin: r for r in policy.origin_rules}
        wanted = {e.rule.text: e for e in spec.origins}
        for text, row in rows.items():
            if text not in wanted:
                policy.origin_rules.remove(row)
        for text, entry in wanted.items():
            existing_row = rows.get(text)
            if existing_row is None:
                policy.origin_rules.append(
                    OriginRuleRow(
                        origin=text,
                        note=entry.note,
                        expires_at=entry.expires,
                        created_at=now,
                        created_by=self.actor,
                    )
                )
            else:
                existing_row.note = entry.note
                existing_row.expires_at = entry.expires

    def _audit(
        self,
        action: str,
        policy_name: str | None,
        before: PolicySpec | None,
        after: PolicySpec | None,
        summary: str,
        *,
        origin: str | None = None,
        touches: bool = True,
    ) -> None:
        """Record the audit event and the change log entries of one policy's change:
        ``origin`` when only that rule changed, ``touches=False`` when nothing a
        snapshot holds did."""
        if not touches:
            self._changes.append(Change("none"))
        elif origin is not None:
            self._changes.append(Change("origin", policy_name, origin))
        else:
            names = {s.name for s in (before, after) if s is not None}
            if policy_name is not None:
                names.add(policy_name)
            self._changes.extend(Change("policy", name) for name in sorted(names))
        self.session.add(
            AuditEvent(
                at=utcnow(),
                actor=self.actor,
                action=action,
                policy_name=policy_name,
                summary=summary,
                before=canonical(before) if before else None,
                after=canonical(after) if after else None,
                revision=self._revision,
            )
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


def _with_origin_field_errors(before: PolicySpec, entry: OriginEntry) -> PolicySpec:
    """The policy with ``entry``; a problem with the rule is reported on field ``origin``."""
    try:
        return with_origin(before, entry)
    except ValidationError as exc:
        raise ValidationError(
            FieldError("origin", e.message) if e.field.startswith("origins[") else e
            for e in exc.errors
        ) from None


class _Transaction:
    """One change: the revision moves first, then the writes and their audit events;
    commit if anything was recorded, roll back everything on any error."""

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._events = []
        self.store._changes = []
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
