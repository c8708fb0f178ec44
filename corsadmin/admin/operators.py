"""The built-in operators: who may log in to the admin UI of the standalone app.

Passwords are stored as Werkzeug hashes (scrypt), never in clear. Adding,
removing, disabling an operator and changing a password are audit events too
(action ``operator.*``, no policy), so the audit log shows who let whom in.

No Flask here: each function takes a SQLAlchemy session and commits its change.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import NotFound
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import CorsAdminError, ValidationError
from ..models import AuditEvent, Operator, State, utcnow

AnySession = Session | scoped_session[Any]

OPERATOR_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

# Checked when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("corsadmin: no such operator")


class OperatorNotFound(CorsAdminError, NotFound):
    """No operator has that name."""

    def __init__(self, name: str) -> None:
        self.operator = name
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return f"no operator named {self.operator!r}"


def check_name(name: str) -> str:
    if not OPERATOR_NAME_RE.fullmatch(name or ""):
        raise ValidationError.single(
            "name",
            f"{name!r} is not a valid operator name: letters, digits, '.', '_', '@', '+' "
            "and '-', starting with a letter or digit, at most 64 characters",
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError.single(
            "password", f"is shorter than {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError.single("password", f"is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def session_key(operator: Operator) -> str:
    """A fingerprint of the password hash kept in the login session: a new password
    (or a removed and re-added operator) ends every session of the old one."""
    return hashlib.sha256(operator.password_hash.encode()).hexdigest()[:32]


def list_operators(session: AnySession) -> list[Operator]:
    return list(session.scalars(sa.select(Operator).order_by(Operator.name)))


def get_operator(session: AnySession, name: str) -> Operator:
    found = session.scalar(sa.select(Operator).where(Operator.name == name))
    if found is None:
        raise OperatorNotFound(name)
    return found


def add_operator(session: AnySession, name: str, password: str, *, actor: str) -> Operator:
    """Create an operator who may log in with ``password``."""
    check_name(name)
    check_password(password)
    if session.scalar(sa.select(Operator.id).where(Operator.name == name)) is not None:
        raise ValidationError.single("name", f"an operator named {name!r} exists already")
    operator = Operator(
        name=name,
        password_hash=generate_password_hash(password),
        created_at=utcnow(),
        created_by=actor,
        disabled=False,
    )
    session.add(operator)
    _audit(session, actor, "operator.add", None, _doc(operator), f"added operator {name}")
    _commit(session)
    return operator


def set_password(session: AnySession, name: str, password: str, *, actor: str) -> None:
    """Give an operator a new password (ends the operator's open sessions)."""
    check_password(password)
    operator = get_operator(session, name)
    operator.password_hash = generate_password_hash(password)
    doc = _doc(operator)
    _audit(session, actor, "operator.passwd", doc, doc, f"changed the password of {name}")
    _commit(session)


def set_disabled(session: AnySession, name: str, disabled: bool, *, actor: str) -> None:
    """Disable an operator (cannot log in, open sessions end) or enable again."""
    operator = get_operator(session, name)
    if operator.disabled == disabled:
        return
    before = _doc(operator)
    operator.disabled = disabled
    verb = "disabled" if disabled else "enabled"
    _audit(
        session, actor, f"operator.{verb[:-1]}", before, _doc(operator), f"{verb} operator {name}"
    )
    _commit(session)


def remove_operator(session: AnySession, name: str, *, actor: str) -> None:
    operator = get_operator(session, name)
    before = _doc(operator)
    session.delete(operator)
    _audit(session, actor, "operator.remove", before, None, f"removed operator {name}")
    _commit(session)


def authenticate(session: AnySession, name: str, password: str) -> Operator | None:
    """The enabled operator with this name and password, or None (same cost either way)."""
    operator = session.scalar(sa.select(Operator).where(Operator.name == name))
    if operator is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(operator.password_hash, password) or operator.disabled:
        return None
    return operator


def record_login(session: AnySession, operator: Operator, when: datetime | None = None) -> None:
    operator.last_login_at = when or utcnow()
    _commit(session)


def session_operator(session: AnySession, name: str, key: str) -> str | None:
    """The operator a login session names, if still enabled with the same password."""
    operator = session.scalar(sa.select(Operator).where(Operator.name == name))
    if operator is None or operator.disabled or session_key(operator) != key:
        return None
    return operator.name


def _doc(operator: Operator) -> dict[str, Any]:
    """What the audit log keeps of an operator (never the password hash)."""
    return {"name": operator.name, "disabled": bool(operator.disabled)}


def _audit(
    session: AnySession,
    actor: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    summary: str,
) -> None:
    revision = session.scalar(sa.select(State.revision).where(State.id == 1)) or 0
    session.add(
        AuditEvent(
            at=utcnow(),
            actor=actor,
            action=action,
            policy_name=None,
            summary=summary,
            before=before,
            after=after,
            revision=int(revision),
        )
    )


def _commit(session: AnySession) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
