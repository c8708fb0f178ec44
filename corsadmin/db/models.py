"""The SQL tables corsadmin keeps its policy in.

They live on a declarative base of their own (not the host application's
``db.Model``), so a host application's Alembic autogenerate does not see them
and corsadmin's migrations, with their own version table, own them alone.
Sessions from the host's Flask-SQLAlchemy ``db`` work with them as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ..limits import (
    MAX_ALERT_ERROR_LENGTH,
    MAX_ALERT_KEY_LENGTH,
    MAX_ALERT_SUMMARY_LENGTH,
    MAX_EXAMPLE_METHOD,
    MAX_EXAMPLE_PATH,
    MAX_TRIAL_EXAMPLE_METHOD,
    MAX_TRIAL_EXAMPLE_PATH,
)
from ..policy.fields import DEFAULT_REVIEW_EVERY_DAYS
from .dialects import DATETIME_PRECISION, TABLE_OPTIONS, is_mysql

#: The longest origin rule text a row holds (an origin of MAX_ORIGIN_LENGTH, or an
#: ``re:`` rule, with room to spare): the column of every table that stores one.
ORIGIN_TEXT_LENGTH: Final = 2100

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (MariaDB keeps
    them as naive UTC in DATETIME(6))."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if is_mysql(dialect):  # DATETIME holds whole seconds unless told otherwise
            return dialect.type_descriptor(mysql.DATETIME(fsp=DATETIME_PRECISION))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        if is_mysql(dialect):  # DATETIME has no zone: UTC, naive
            return value.astimezone(UTC).replace(tzinfo=None)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # MariaDB/MySQL: full UTF-8, binary collation (a table with constraints repeats it).
    __table_args__: Any = dict(TABLE_OPTIONS)


class Policy(Base):
    """One route pattern's CORS policy."""

    __tablename__ = "corsadmin_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    path: Mapped[str] = mapped_column(sa.String(1024), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    methods: Mapped[list[str]] = mapped_column(sa.JSON)
    allow_headers: Mapped[list[str]] = mapped_column(sa.JSON)
    expose_headers: Mapped[list[str]] = mapped_column(sa.JSON)
    credentials: Mapped[bool] = mapped_column(default=False)
    max_age: Mapped[int | None] = mapped_column(nullable=True)
    private_network: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    priority: Mapped[int] = mapped_column(default=0)
    review_every_days: Mapped[int] = mapped_column(default=DEFAULT_REVIEW_EVERY_DAYS)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200), default="")
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)

    origin_rules: Mapped[list[OriginRuleRow]] = relationship(
        back_populates="policy",
        cascade="all, delete-orphan",
        order_by="OriginRuleRow.origin",
        passive_deletes=True,
    )


class OriginRuleRow(Base):
    """One origin rule of a policy, with who added it and when."""

    __tablename__ = "corsadmin_origin_rule"
    __table_args__ = (
        sa.UniqueConstraint("policy_id", "origin", name="uq_corsadmin_origin_rule"),
        dict(TABLE_OPTIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        sa.ForeignKey("corsadmin_policy.id", ondelete="CASCADE"), index=True
    )
    origin: Mapped[str] = mapped_column(sa.String(ORIGIN_TEXT_LENGTH))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    policy: Mapped[Policy] = relationship(back_populates="origin_rules")


class AuditEvent(Base):
    """One change: who, when, what, with the policy before and after."""

    __tablename__ = "corsadmin_audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(40))
    policy_name: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    revision: Mapped[int] = mapped_column(sa.BigInteger)


class State(Base):
    """One row: the revision, which moves on every change. Workers poll it."""

    __tablename__ = "corsadmin_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChangeLogEntry(Base):
    """What one revision changed, written in the same transaction as the change, so a
    process at an older revision reloads only that (:mod:`corsadmin.db.changelog`).

    ``kind`` is ``policy`` (re-read the policy named ``policy_name``, which may be
    gone), ``origin`` (re-read the one rule ``origin`` of that policy), ``none`` (the
    revision changed nothing a snapshot holds) or ``all`` (reload everything). Every
    revision written by this release has at least one entry; old revisions are pruned.
    """

    __tablename__ = "corsadmin_change"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    policy_name: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    origin: Mapped[str | None] = mapped_column(sa.String(ORIGIN_TEXT_LENGTH), nullable=True)


class OriginUsage(Base):
    """How often an origin called a policy's paths, allowed or refused.

    Counted in memory per process and added up here in batches (one write per
    process per ``CORSADMIN_USAGE_FLUSH_INTERVAL``), never per request.
    """

    __tablename__ = "corsadmin_origin_usage"
    __table_args__ = (
        sa.UniqueConstraint("policy_name", "origin", name="uq_corsadmin_origin_usage"),
        dict(TABLE_OPTIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_name: Mapped[str] = mapped_column(sa.String(64), index=True)
    origin: Mapped[str] = mapped_column(sa.String(ORIGIN_TEXT_LENGTH))
    rule: Mapped[str | None] = mapped_column(sa.String(ORIGIN_TEXT_LENGTH), nullable=True)
    allowed: Mapped[bool] = mapped_column(default=False)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: The path and method of the latest refused call counted (cut to the bounds;
    #: empty for allowed rows and rows from before migration 0008).
    example_path: Mapped[str] = mapped_column(
        sa.String(MAX_EXAMPLE_PATH), default="", server_default=""
    )
    example_method: Mapped[str] = mapped_column(
        sa.String(MAX_EXAMPLE_METHOD), default="", server_default=""
    )
    #: An operator hid this refused origin from the report ("noise") at this time; it
    #: shows again once it is refused after it (``last_seen > dismissed_at``).
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dismissed_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)


class DraftRow(Base):
    """A proposed change to the policy set (:mod:`corsadmin.policy.draft`): who
    proposed it, when and why. At most one is ``active``; a promoted or discarded
    one stays, closed, with its rows, for the record."""

    __tablename__ = "corsadmin_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``active``, ``promoted`` or ``discarded``.
    status: Mapped[str] = mapped_column(sa.String(16), default="active", index=True)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200), default="")
    #: Moves on every change to the draft (optimistic versioning of its forms).
    version: Mapped[int] = mapped_column(default=1)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    #: The revision its promotion made (None: not promoted).
    promoted_revision: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class DraftPolicyRow(Base):
    """What a draft proposes for one policy: ``create``, ``update`` or ``delete``; the
    live version it was made against; the proposed settings (a policy document
    without ``origins``) when they change. Its origin rules are
    :class:`DraftOriginRow` rows."""

    __tablename__ = "corsadmin_draft_policy"
    __table_args__ = (
        sa.UniqueConstraint("draft_id", "policy_name", name="uq_corsadmin_draft_policy"),
        dict(TABLE_OPTIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(
        sa.ForeignKey("corsadmin_draft.id", ondelete="CASCADE"), index=True
    )
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(16))
    base_version: Mapped[int | None] = mapped_column(nullable=True)
    settings: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class DraftOriginRow(Base):
    """One origin rule a draft adds, changes (note, expiry) or removes (``removed``)."""

    __tablename__ = "corsadmin_draft_origin"
    __table_args__ = (
        sa.UniqueConstraint("draft_id", "policy_name", "origin", name="uq_corsadmin_draft_origin"),
        dict(TABLE_OPTIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(
        sa.ForeignKey("corsadmin_draft.id", ondelete="CASCADE"), index=True
    )
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    origin: Mapped[str] = mapped_column(sa.String(ORIGIN_TEXT_LENGTH))
    removed: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DraftTrafficRow(Base):
    """Live traffic the active draft would answer differently (report-only), added up
    from every worker's counts: per policy and ``outcome`` (``newly-refused``,
    ``newly-allowed``, ``headers``: same verdict, other headers; ``evaluated``: every
    request of a policy the draft changes, ``origin`` empty), the origin (or a bucket),
    how often, when, and the first example's path and method. Bounded per draft like
    usage."""

    __tablename__ = "corsadmin_draft_traffic"
    __table_args__ = (
        sa.UniqueConstraint(
            "draft_id", "policy_name", "outcome", "origin", name="uq_corsadmin_draft_traffic"
        ),
        dict(TABLE_OPTIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(
        sa.ForeignKey("corsadmin_draft.id", ondelete="CASCADE"), index=True
    )
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(24))
    origin: Mapped[str] = mapped_column(sa.String(ORIGIN_TEXT_LENGTH))
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    example_path: Mapped[str] = mapped_column(sa.String(MAX_TRIAL_EXAMPLE_PATH), default="")
    example_method: Mapped[str] = mapped_column(sa.String(MAX_TRIAL_EXAMPLE_METHOD), default="")


class Operator(Base):
    """Someone who may use the admin UI of the standalone app (built-in login)."""

    __tablename__ = "corsadmin_operator"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled: Mapped[bool] = mapped_column(default=False)


class OperatorSession(Base):
    """One login session of the built-in login: the browser's cookie carries a random
    token, this row only its SHA-256. Logout deletes the row, so a copied cookie is dead."""

    __tablename__ = "corsadmin_operator_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("corsadmin_operator.id", ondelete="CASCADE"), index=True
    )
    #: A fingerprint of the password hash at login: a new password ends the session.
    password_key: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token of the HTTP API (:mod:`corsadmin.db.tokens`): its name, scope and
    life. The secret is shown once at creation; this row keeps only its SHA-256. A
    revoked token keeps its row (and its name) for the record."""

    __tablename__ = "corsadmin_api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: ``read`` or ``write``.
    scope: Mapped[str] = mapped_column(sa.String(8))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)


class WorkerRow(Base):
    """One process enforcing the policy, as it last reported (the fleet view:
    :mod:`corsadmin.db.fleet`): what it enforces, since when, when it last checked
    the revision and whether its LISTEN connection is up. Each process writes its row
    at most once per refresh interval; rows of processes that stopped reporting are
    deleted once expired."""

    __tablename__ = "corsadmin_worker"

    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision: Mapped[int] = mapped_column(sa.BigInteger, default=-1)
    #: When this process installed ``revision``, and when that revision committed.
    loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The last successful revision check (stale while the database cannot be read).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Is its LISTEN connection up (None: the database has no notifications; it polls).
    listening: Mapped[bool | None] = mapped_column(nullable=True)
    #: The refresh interval it runs with (seconds): how stale "stale" is.
    interval: Mapped[float] = mapped_column(sa.Float, default=1.0)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AlertRow(Base):
    """One alert event in the outbox (:mod:`corsadmin.db.alerts`): what was detected,
    under a UNIQUE ``key`` (so an event detected again, by any process, is not queued
    again), and how its webhook delivery went. ``status`` is ``pending``, ``delivered``
    or ``failed`` (after the last attempt); a delivering process holds the row until
    ``claimed_until``. Delivered and failed rows are deleted after a while."""

    __tablename__ = "corsadmin_alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(MAX_ALERT_KEY_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    policy_name: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    summary: Mapped[str] = mapped_column(sa.String(MAX_ALERT_SUMMARY_LENGTH), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(MAX_ALERT_ERROR_LENGTH), nullable=True)


class RefusalHourRow(Base):
    """Refused requests of one policy in one clock hour (UTC), added up from every
    process's usage flushes: what the refusal-spike alert compares. Pruned after
    :data:`corsadmin.db.alerts.REFUSAL_HOURS_KEPT`."""

    __tablename__ = "corsadmin_refusal_hour"
    __table_args__ = (
        sa.UniqueConstraint("policy_name", "hour", name="uq_corsadmin_refusal_hour"),
        dict(TABLE_OPTIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    hour: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    refused: Mapped[int] = mapped_column(sa.BigInteger, default=0)


def ensure_state_row(engine: sa.Engine) -> None:
    """Insert the revision row (revision 0) if the tables were created without it."""
    with engine.begin() as connection:
        if connection.execute(sa.select(State.id).where(State.id == 1)).first() is None:
            connection.execute(sa.insert(State).values(id=1, revision=0))
