"""API tokens: what a script presents to the HTTP API (``Authorization: Bearer cors_...``).

A token has a name (the rule of policy names), a scope (``read``: look only;
``write``: change too), who made it and when, an optional expiry, its last use,
and, once revoked, who revoked it and when. Its secret, :data:`TOKEN_PREFIX` and
:data:`TOKEN_SECRET_BYTES` random bytes in base64url, is returned once by
:meth:`TokenStore.create` and never again: the database keeps only its SHA-256, and
the audit events (``token.create``, ``token.revoke``) neither (name, scope, expiry).

Names are unique forever: a revoked token keeps its row and its name, so
``token:<name>``, the actor the audit log names for a change made with a token,
always means one token.

:func:`authenticate` finds a token by the SHA-256 of the secret presented (an indexed
lookup: no secret is compared byte by byte, so a wrong guess learns nothing from
the time taken), refuses a malformed secret before reading anything, and notes the
token's last use at most once per :data:`TOKEN_LAST_USED_RESOLUTION` seconds.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..errors import TokenNotFound, ValidationError
from ..policy.spec import format_time, name_problem, parse_time
from .models import ApiToken, utcnow
from .store import PolicyStore

__all__ = [
    "MAX_EXPIRES_IN_DAYS",
    "READ",
    "SCOPES",
    "TOKEN_ACTOR_PREFIX",
    "TOKEN_LAST_USED_RESOLUTION",
    "TOKEN_PREFIX",
    "TOKEN_SECRET_BYTES",
    "WRITE",
    "Token",
    "TokenNotFound",
    "TokenStore",
    "authenticate",
    "secret_hash",
]

log = logging.getLogger("corsadmin")

AnySession = Session | scoped_session[Any]

#: How every secret starts (so a leaked one is recognisable, by people and by scanners).
TOKEN_PREFIX: Final = "cors_"  # noqa: S105 - a prefix, not a secret
#: Random bytes in a secret (after the prefix, base64url: 43 characters).
TOKEN_SECRET_BYTES: Final = 32
#: A token's ``last_used_at`` is written at most once per this many seconds (not on
#: every request): the last use shown may be this much behind.
TOKEN_LAST_USED_RESOLUTION: Final = 60
#: The furthest ahead ``--expires-in-days`` (CLI) may set a new token's expiry.
MAX_EXPIRES_IN_DAYS: Final = 3650
#: The actor of a change made with a token: this and the token's name.
TOKEN_ACTOR_PREFIX: Final = "token:"  # noqa: S105 - an actor prefix, not a secret

#: Look only (GET).
READ: Final = "read"
#: Look and change.
WRITE: Final = "write"
#: The scopes, the narrowest first: a scope allows what the ones before it allow.
SCOPES: Final[tuple[str, ...]] = (READ, WRITE)

#: How much of a refused scope an error message quotes.
MAX_SHOWN: Final = 80

_SECRET_LENGTH: Final = -(-TOKEN_SECRET_BYTES * 4 // 3)  # base64 without padding
_SECRET_RE: Final = re.compile(rf"{re.escape(TOKEN_PREFIX)}[A-Za-z0-9_-]{{{_SECRET_LENGTH}}}")
_TOKENS: Final[sa.Table] = ApiToken.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Token:
    """An API token as stored, without its secret (nor the secret's hash)."""

    id: int
    name: str
    scope: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, row: Any) -> Token:
        """From an :class:`ApiToken` row (ORM object or a selected row of its table)."""
        return cls(
            id=row.id,
            name=row.name,
            scope=row.scope,
            created_at=row.created_at,
            created_by=row.created_by or "",
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            revoked_by=row.revoked_by,
        )

    @property
    def actor(self) -> str:
        """Who the audit log names for a change made with this token."""
        return TOKEN_ACTOR_PREFIX + self.name

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def active(self, now: datetime | None = None) -> bool:
        """Neither revoked nor expired (at ``now``, default: now)."""
        return self.revoked_at is None and not self.expired(now)

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked`` (revoked wins)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def allows(self, scope: str) -> bool:
        """Whether this token's scope covers ``scope`` (``write`` covers ``read``)."""
        if scope not in SCOPES or self.scope not in SCOPES:
            return False
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    def to_document(self, now: datetime | None = None) -> dict[str, Any]:
        """As ``token list --format json`` prints it (times in ISO 8601, UTC)."""
        return {
            "name": self.name,
            "scope": self.scope,
            "status": self.status(now),
            "created_at": _time(self.created_at),
            "created_by": self.created_by,
            "expires_at": _time(self.expires_at),
            "last_used_at": _time(self.last_used_at),
            "revoked_at": _time(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def secret_hash(secret: str) -> str:
    """What the database keeps of a secret (never the secret): its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)


# Validation -----------------------------------------------------------------------


def check_name(name: object) -> str:
    """A token's name: the rule of policy names."""
    problem = name_problem(name)
    if problem is not None:
        raise ValidationError.single("name", problem)
    assert isinstance(name, str)
    return name


def check_scope(scope: object) -> str:
    """A token's scope: one of :data:`SCOPES`."""
    choices = " or ".join(SCOPES)
    if not isinstance(scope, str):
        raise ValidationError.single("scope", f"must be a string: {choices}")
    if scope not in SCOPES:
        raise ValidationError.single("scope", f"{scope[:MAX_SHOWN]!r} is not a scope: {choices}")
    return scope


def check_expires(expires: object, now: datetime | None = None) -> datetime | None:
    """When a new token expires (None or "": never), parsed as an origin rule's
    expiry is (a date, UTC, or an ISO 8601 time with a zone); it must lie ahead."""
    if expires is None or expires == "":
        return None
    try:
        when = parse_time(expires)
    except ValueError as exc:
        raise ValidationError.single("expires", str(exc)) from None
    if when <= (now or utcnow()):
        raise ValidationError.single("expires", "is in the past")
    return when


# Writing ----------------------------------------------------------------------------


class TokenStore:
    """Creating, listing and revoking API tokens, as ``store``'s actor.

    Each change is one transaction of ``store`` (:class:`PolicyStore`) with its audit
    event (no policy; the revision moves, but nothing a snapshot holds changes).
    """

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    @property
    def session(self) -> AnySession:
        return self.store.session

    def list(self) -> list[Token]:
        """Every token, revoked and expired ones too, by name."""
        rows = self.session.execute(sa.select(_TOKENS).order_by(_TOKENS.c.name))
        return [Token.of(row) for row in rows]

    def get(self, name: str) -> Token:
        row = self.session.execute(sa.select(_TOKENS).where(_TOKENS.c.name == name)).first()
        if row is None:
            raise TokenNotFound(name)
        return Token.of(row)

    def create(self, name: str, scope: str, *, expires: object = None) -> tuple[Token, str]:
        """A new token and its secret: the only time the secret is known. ``expires``
        (a datetime, a date or an ISO 8601 time; None: never) must lie ahead."""
        name, scope = check_name(name), check_scope(scope)
        expires_at = check_expires(expires)
        secret = new_secret()
        with self.store._change():
            taken = self.session.execute(
                sa.select(_TOKENS.c.revoked_at).where(_TOKENS.c.name == name)
            ).first()
            if taken is not None:
                raise ValidationError.single("name", _name_taken(name, taken.revoked_at))
            row = ApiToken(
                name=name,
                scope=scope,
                token_hash=secret_hash(secret),
                created_at=utcnow(),
                created_by=self.store.actor,
                expires_at=expires_at,
            )
            self.session.add(row)
            self.session.flush()
            token = Token.of(row)
            until = "never expires" if expires_at is None else f"expires {_time(expires_at)}"
            summary = f"created API token {name} ({scope}, {until})"
            self.store._audit("token.create", None, None, _doc(token), summary, touches=False)
        return token, secret

    def revoke(self, name: str) -> Token:
        """Revoke a token: it is refused from now on, in every process. A token revoked
        already is returned as it is (no new event)."""
        with self.store._change():
            row = self.session.scalar(
                sa.select(ApiToken)
                .where(ApiToken.name == name)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if row is None:
                raise TokenNotFound(name)
            if row.revoked_at is not None:
                return Token.of(row)
            before = _doc(Token.of(row))
            row.revoked_at = utcnow()
            row.revoked_by = self.store.actor
            self.session.flush()
            token = Token.of(row)
            after = {**before, "revoked_at": _time(token.revoked_at)}
            summary = f"revoked API token {name} ({token.scope})"
            self.store._audit("token.revoke", None, before, after, summary, touches=False)
        return token


def _name_taken(name: str, revoked_at: datetime | None) -> str:
    if revoked_at is None:
        return f"an API token named {name!r} exists already"
    return (
        f"an API token named {name!r} existed and was revoked; a name is never used "
        "again (the audit log names tokens by name): choose another"
    )


def _doc(token: Token) -> dict[str, Any]:
    """What the audit log keeps of a token (never its secret or the secret's hash)."""
    return {"name": token.name, "scope": token.scope, "expires": _time(token.expires_at)}


# Reading a secret -------------------------------------------------------------------


def authenticate(
    session: AnySession, secret: object, *, now: datetime | None = None
) -> Token | None:
    """The active token whose secret this is, or None (malformed, unknown, expired or
    revoked: one answer for all).

    The token's ``last_used_at`` is written when it is older than
    :data:`TOKEN_LAST_USED_RESOLUTION` seconds, and committed there and then (call
    this before the request writes anything); a failure to write it (a busy or
    read-only database) is logged and dropped, never raised.
    """
    if not isinstance(secret, str) or not _SECRET_RE.fullmatch(secret):
        return None
    row = session.execute(
        sa.select(_TOKENS).where(_TOKENS.c.token_hash == secret_hash(secret))
    ).first()
    if row is None:
        return None
    now = now or utcnow()
    token = Token.of(row)
    if not token.active(now):
        return None
    resolution = timedelta(seconds=TOKEN_LAST_USED_RESOLUTION)
    due = token.last_used_at is None or now - token.last_used_at >= resolution
    if due and _note_use(session, token.id, now, resolution):
        token = replace(token, last_used_at=now)
    return token


def _note_use(session: AnySession, token_id: int, now: datetime, resolution: timedelta) -> bool:
    """Write a token's last use in a transaction of its own; False when that failed."""
    try:
        session.execute(
            sa.update(_TOKENS)
            .where(
                _TOKENS.c.id == token_id,
                sa.or_(
                    _TOKENS.c.last_used_at.is_(None), _TOKENS.c.last_used_at <= now - resolution
                ),
            )
            .values(last_used_at=now)
        )
        session.commit()
    except sa.exc.SQLAlchemyError:
        session.rollback()
        log.warning(
            "corsadmin could not note an API token's last use; will try again later",
            exc_info=True,
        )
        return False
    return True
