"""The built-in operators: who may log in to the admin UI of the standalone app.

Passwords are stored as Werkzeug hashes (scrypt), never in clear. Adding,
removing, disabling an operator and changing a password are audit events too
(action ``operator.*``, no policy), so the audit log shows who let whom in.

Login sessions live in ``corsadmin_operator_session``: the browser's (signed)
cookie carries a random token, the row only the token's SHA-256. A session ends
when its row goes: at logout, after ``idle`` without a request, at the latest
:data:`SESSION_MAX_LIFETIME` after login, when the operator gets a new password,
is disabled or removed, and when the operator has more than
:data:`MAX_SESSIONS_PER_OPERATOR` (the oldest go).

No Flask here: each function takes a SQLAlchemy session and commits its change.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import NotFound
from werkzeug.security import check_password_hash, generate_password_hash

from ..config import MAX_SESSION_IDLE_MINUTES  # the whole lifetime, configurable idle
from ..errors import CorsAdminError, ValidationError
from .audit import add_event
from .models import Operator, OperatorSession, State, utcnow

AnySession = Session | scoped_session[Any]

log = logging.getLogger("corsadmin")

OPERATOR_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

#: Random bytes in a login session's token (the cookie carries it, base64url: 43 characters).
SESSION_TOKEN_BYTES: Final = 32
#: A session token longer than this is not one of ours (refused before hashing).
MAX_SESSION_TOKEN_LENGTH: Final = 128
#: A session ends this long after login, however busy (NIST SP 800-63B, AAL2: 12 hours).
SESSION_MAX_LIFETIME: Final = timedelta(minutes=MAX_SESSION_IDLE_MINUTES)
#: A session's ``last_seen_at`` is written at most this often (not on every request), so
#: a session may end up to this much before its idle time is fully over.
SESSION_TOUCH_INTERVAL: Final = timedelta(minutes=1)
#: Live sessions one operator may hold (browsers, devices); a new login drops the oldest.
MAX_SESSIONS_PER_OPERATOR: Final = 10

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
    """A fingerprint of the password hash kept with each login session: a new password
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
    end_operator_sessions(session, operator)
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
    if disabled:
        end_operator_sessions(session, operator)
    verb = "disabled" if disabled else "enabled"
    _audit(
        session, actor, f"operator.{verb[:-1]}", before, _doc(operator), f"{verb} operator {name}"
    )
    _commit(session)


def remove_operator(session: AnySession, name: str, *, actor: str) -> None:
    operator = get_operator(session, name)
    before = _doc(operator)
    end_operator_sessions(session, operator)  # the foreign key cascades; SQLite may not
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


class SessionEnd(Enum):
    """Why a login session that existed was refused: it is over, by the clock."""

    IDLE = "idle"
    LIFETIME = "lifetime"


@dataclass(frozen=True)
class SessionCheck:
    """The answer for one session token: the operator's name, or None (and, when the
    session ran out of time, why: the login page says so)."""

    operator: str | None
    ended: SessionEnd | None = None


def token_hash(token: str) -> str:
    """What the database keeps of a session token (never the token)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(
    session: AnySession,
    operator: Operator,
    *,
    idle: timedelta,
    replacing: str | None = None,
    now: datetime | None = None,
) -> str:
    """A new login session for ``operator``: its token (for the cookie only).

    Ends the session ``replacing`` (the browser's previous one), deletes every
    expired session, and the operator's oldest beyond :data:`MAX_SESSIONS_PER_OPERATOR`.
    """
    now = now or utcnow()
    if replacing is not None:
        session.execute(
            sa.delete(OperatorSession).where(OperatorSession.token_hash == token_hash(replacing))
        )
    purge_expired_sessions(session, idle=idle, now=now)
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    session.add(
        OperatorSession(
            token_hash=token_hash(token),
            operator_id=operator.id,
            password_key=session_key(operator),
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    keep = list(
        session.scalars(
            sa.select(OperatorSession.id)
            .where(OperatorSession.operator_id == operator.id)
            .order_by(OperatorSession.created_at.desc(), OperatorSession.id.desc())
            .limit(MAX_SESSIONS_PER_OPERATOR)
        )
    )
    session.execute(
        sa.delete(OperatorSession)
        .where(OperatorSession.operator_id == operator.id, OperatorSession.id.not_in(keep))
        .execution_options(synchronize_session=False)
    )
    _commit(session)
    return token


def check_session(
    session: AnySession, token: str, *, idle: timedelta, now: datetime | None = None
) -> SessionCheck:
    """The operator of a live session with this token, still enabled with the same
    password. A session found but over (idle, lifetime, disabled, new password) is
    deleted. ``last_seen_at`` is written at most once per :data:`SESSION_TOUCH_INTERVAL`
    (or half the idle time, if shorter)."""
    if not token or len(token) > MAX_SESSION_TOKEN_LENGTH:
        return SessionCheck(None)
    now = now or utcnow()
    found = session.execute(
        sa.select(OperatorSession, Operator)
        .join(Operator, Operator.id == OperatorSession.operator_id)
        .where(OperatorSession.token_hash == token_hash(token))
    ).first()
    if found is None:
        return SessionCheck(None)
    row, operator = found
    ended: SessionEnd | None = None
    if now - row.last_seen_at >= idle:
        ended = SessionEnd.IDLE
    elif now - row.created_at >= SESSION_MAX_LIFETIME:
        ended = SessionEnd.LIFETIME
    if ended is not None or operator.disabled or row.password_key != session_key(operator):
        session.execute(sa.delete(OperatorSession).where(OperatorSession.id == row.id))
        _commit_if_possible(session, "delete an ended login session")
        return SessionCheck(None, ended)
    if now - row.last_seen_at >= min(SESSION_TOUCH_INTERVAL, idle / 2):
        session.execute(
            sa.update(OperatorSession)
            .where(OperatorSession.id == row.id)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        _commit_if_possible(session, "note a login session's last use")
    return SessionCheck(operator.name)


def end_session(session: AnySession, token: str) -> None:
    """Logout: the session with this token ends (its copies too)."""
    session.execute(
        sa.delete(OperatorSession).where(OperatorSession.token_hash == token_hash(token))
    )
    _commit(session)


def end_operator_sessions(session: AnySession, operator: Operator) -> None:
    """Every session of ``operator`` ends (in the caller's transaction)."""
    session.execute(
        sa.delete(OperatorSession)
        .where(OperatorSession.operator_id == operator.id)
        .execution_options(synchronize_session=False)
    )


def purge_expired_sessions(
    session: AnySession, *, idle: timedelta, now: datetime | None = None
) -> None:
    """Delete every session past its idle time or lifetime (in the caller's transaction)."""
    now = now or utcnow()
    session.execute(
        sa.delete(OperatorSession)
        .where(
            sa.or_(
                OperatorSession.last_seen_at <= now - idle,
                OperatorSession.created_at <= now - SESSION_MAX_LIFETIME,
            )
        )
        .execution_options(synchronize_session=False)
    )


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
    """An operator's change: no policy, at the current revision (it moves none)."""
    revision = session.scalar(sa.select(State.revision).where(State.id == 1)) or 0
    add_event(
        session,
        actor=actor,
        action=action,
        policy_name=None,
        summary=summary,
        before=before,
        after=after,
        revision=int(revision),
    )


def _commit(session: AnySession) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _commit_if_possible(session: AnySession, what: str) -> None:
    """Commit a write the request does not depend on; a failure (a busy or read-only
    database) is logged and the write dropped: the request's answer stands."""
    try:
        session.commit()
    except sa.exc.OperationalError:
        session.rollback()
        log.warning(
            "corsadmin could not %s; will try again on a later request", what, exc_info=True
        )
