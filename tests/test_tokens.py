"""API tokens (corsadmin.db.tokens): created with their secret shown once, only the
secret's hash stored, listed, revoked; authenticate() refuses what it must and notes
the last use at most once per TOKEN_LAST_USED_RESOLUTION. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from corsadmin import PolicyStore, TokenNotFound, ValidationError
from corsadmin.db.models import ApiToken, AuditEvent, ChangeLogEntry, utcnow
from corsadmin.db.tokens import (
    READ,
    TOKEN_LAST_USED_RESOLUTION,
    TOKEN_PREFIX,
    WRITE,
    Token,
    TokenStore,
    authenticate,
    secret_hash,
)


@pytest.fixture
def tokens(store: PolicyStore) -> TokenStore:
    return TokenStore(store)


def stored_rows(store: PolicyStore) -> list[dict[str, object]]:
    return [
        dict(row._mapping)
        for row in store.session.execute(sa.select(ApiToken.__table__)).all()  # type: ignore[arg-type]
    ]


def token_events(store: PolicyStore) -> list[AuditEvent]:
    return [e for e in store.audit_events() if e.action.startswith("token.")]


# --- create ---------------------------------------------------------------------------------


def test_create_returns_the_secret_once_and_stores_only_its_hash(
    store: PolicyStore, tokens: TokenStore
) -> None:
    revision = store.revision()
    token, secret = tokens.create("deploy-bot", WRITE)
    assert secret.startswith(TOKEN_PREFIX)
    assert len(secret) == len(TOKEN_PREFIX) + 43
    assert (token.name, token.scope, token.created_by) == ("deploy-bot", "write", "tester")
    assert token.expires_at is None
    assert token.last_used_at is None
    assert token.revoked_at is None
    assert token.active()
    assert token.actor == "token:deploy-bot"
    (row,) = stored_rows(store)
    assert row["token_hash"] == secret_hash(secret)
    assert secret not in json.dumps(row, default=str)
    assert store.revision() == revision + 1  # one transaction, its change log says "none"
    assert store.session.scalars(
        sa.select(ChangeLogEntry.kind).where(ChangeLogEntry.revision == store.revision())
    ).all() == ["none"]
    # Two tokens never share a secret.
    assert tokens.create("other", READ)[1] != secret


def test_audit_events_hold_neither_the_secret_nor_its_hash(
    store: PolicyStore, tokens: TokenStore
) -> None:
    _, secret = tokens.create("ci", READ, expires="2999-01-01")
    tokens.revoke("ci")
    revoked, created = token_events(store)
    assert (created.action, created.actor, created.policy_name) == ("token.create", "tester", None)
    assert created.summary == "created API token ci (read, expires 2999-01-01T00:00:00Z)"
    assert created.before is None
    assert created.after == {"name": "ci", "scope": "read", "expires": "2999-01-01T00:00:00Z"}
    assert revoked.action == "token.revoke"
    assert revoked.summary == "revoked API token ci (read)"
    assert revoked.after is not None
    assert revoked.after["revoked_at"]
    for event in (created, revoked):
        text = json.dumps([event.summary, event.before, event.after])
        assert secret not in text
        assert secret_hash(secret) not in text


@pytest.mark.parametrize(
    ("name", "scope", "expires", "field", "message"),
    [
        ("", "read", None, "name", "is required"),
        ("Deploy Bot", "read", None, "name", "'Deploy Bot' is not a valid name: lower-case"),
        ("x" * 65, "read", None, "name", "is not a valid name"),
        ("ci", "admin", None, "scope", "'admin' is not a scope: read or write"),
        ("ci", "", None, "scope", "'' is not a scope: read or write"),
        ("ci", None, None, "scope", "must be a string: read or write"),
        ("ci", "w" * 200, None, "scope", f"{'w' * 80!r} is not a scope"),
        ("ci", "read", "2001-01-01", "expires", "is in the past"),
        ("ci", "read", "soon", "expires", "'soon' is not an ISO 8601 time"),
        ("ci", "read", "2999-01-01T00:00:00", "expires", "has no time zone"),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(
    store: PolicyStore,
    tokens: TokenStore,
    name: str,
    scope: str | None,
    expires: str | None,
    field: str,
    message: str,
) -> None:
    revision = store.revision()
    with pytest.raises(ValidationError) as caught:
        tokens.create(name, scope, expires=expires)
    (error,) = caught.value.errors
    assert error.field == field
    assert message in error.message
    assert stored_rows(store) == []
    assert store.revision() == revision
    assert token_events(store) == []


def test_expires_takes_a_datetime_or_a_time_with_a_zone(tokens: TokenStore) -> None:
    when = utcnow() + timedelta(days=30)
    assert tokens.create("a", READ, expires=when)[0].expires_at == when
    token = tokens.create("b", READ, expires="2999-06-01T12:00:00+02:00")[0]
    assert token.expires_at is not None
    assert token.expires_at.isoformat() == "2999-06-01T10:00:00+00:00"
    with pytest.raises(ValidationError, match="expires: is in the past"):
        tokens.create("c", READ, expires=utcnow() - timedelta(seconds=1))


def test_names_are_unique_forever(store: PolicyStore, tokens: TokenStore) -> None:
    tokens.create("ci", READ)
    with pytest.raises(ValidationError, match="name: an API token named 'ci' exists already"):
        tokens.create("ci", WRITE)
    tokens.revoke("ci")
    with pytest.raises(ValidationError, match="was revoked; a name is never used again"):
        tokens.create("ci", WRITE)
    assert [t.name for t in tokens.list()] == ["ci"]


# --- list and revoke -----------------------------------------------------------------------


def test_list_holds_every_token_by_name_with_its_status(tokens: TokenStore) -> None:
    tokens.create("zeta", WRITE)
    tokens.create("alpha", READ, expires=utcnow() + timedelta(days=1))
    tokens.create("mid", READ)
    tokens.revoke("mid")
    listed = tokens.list()
    assert [t.name for t in listed] == ["alpha", "mid", "zeta"]
    assert [t.status() for t in listed] == ["active", "revoked", "active"]
    later = utcnow() + timedelta(days=2)
    assert [t.status(later) for t in listed] == ["expired", "revoked", "active"]
    document = listed[1].to_document()
    assert document["revoked_by"] == "tester"
    assert set(document) == {
        "name",
        "scope",
        "status",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    }


def test_revoke_records_who_and_when_and_twice_is_no_new_event(
    store: PolicyStore, tokens: TokenStore
) -> None:
    _, secret = tokens.create("ci", WRITE)
    revoked = tokens.revoke("ci")
    assert revoked.revoked_by == "tester"
    assert revoked.revoked_at is not None
    assert authenticate(store.session, secret) is None
    revision = store.revision()
    again = tokens.revoke("ci")
    assert again.revoked_at == revoked.revoked_at
    assert store.revision() == revision
    assert [e.action for e in token_events(store)] == ["token.revoke", "token.create"]


def test_revoking_an_unknown_token_is_not_found(store: PolicyStore, tokens: TokenStore) -> None:
    revision = store.revision()
    with pytest.raises(TokenNotFound, match="no API token named 'nope'") as caught:
        tokens.revoke("nope")
    assert caught.value.code == 404
    assert store.revision() == revision
    with pytest.raises(TokenNotFound):
        tokens.get("nope")


# --- authenticate --------------------------------------------------------------------------


def test_authenticate_returns_the_active_token(store: PolicyStore, tokens: TokenStore) -> None:
    created, secret = tokens.create("ci", WRITE)
    found = authenticate(store.session, secret)
    assert found is not None
    assert (found.id, found.name, found.scope) == (created.id, "ci", "write")
    assert found.last_used_at is not None


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "cors_",
        "Bearer cors_" + "a" * 43,
        "cors_" + "a" * 42,
        "cors_" + "a" * 44,
        "cors_" + "a" * 42 + "!",
        "cors_" + "a" * 42 + "é",
        "cors_" + "a" * 42 + "\ud800",
        "xors_" + "a" * 43,
        "cors_" + "a" * 10_000,
        None,
        42,
    ],
)
def test_malformed_secrets_are_refused_without_a_query(
    store: PolicyStore, tokens: TokenStore, secret: object
) -> None:
    tokens.create("ci", WRITE)
    statements: list[str] = []
    engine = store.session.get_bind()

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        assert authenticate(store.session, secret) is None
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert statements == []


def test_unknown_secret_is_refused(store: PolicyStore, tokens: TokenStore) -> None:
    _, secret = tokens.create("ci", WRITE)
    other = TOKEN_PREFIX + ("A" if secret[-1] != "A" else "B") * 43
    assert authenticate(store.session, other) is None
    assert authenticate(store.session, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


def test_expired_token_is_refused(store: PolicyStore, tokens: TokenStore) -> None:
    _, secret = tokens.create("ci", READ, expires=utcnow() + timedelta(minutes=5))
    assert authenticate(store.session, secret) is not None
    assert authenticate(store.session, secret, now=utcnow() + timedelta(minutes=5)) is None
    assert authenticate(store.session, secret, now=utcnow() + timedelta(days=1)) is None


def test_scopes_read_and_write(store: PolicyStore, tokens: TokenStore) -> None:
    reader = authenticate(store.session, tokens.create("reader", READ)[1])
    writer = authenticate(store.session, tokens.create("writer", WRITE)[1])
    assert reader is not None
    assert writer is not None
    assert reader.allows(READ)
    assert not reader.allows(WRITE)
    assert writer.allows(READ)
    assert writer.allows(WRITE)
    assert not writer.allows("admin")


def test_last_use_is_written_at_most_once_per_resolution(
    store: PolicyStore, tokens: TokenStore
) -> None:
    _, secret = tokens.create("ci", READ)
    start = utcnow()
    resolution = timedelta(seconds=TOKEN_LAST_USED_RESOLUTION)

    def stored_last_use() -> object:
        store.session.rollback()
        return store.session.scalar(sa.select(ApiToken.last_used_at))

    first = authenticate(store.session, secret, now=start)
    assert first is not None
    assert first.last_used_at == start
    assert stored_last_use() == start
    almost = start + resolution - timedelta(seconds=1)
    again = authenticate(store.session, secret, now=almost)
    assert again is not None
    assert again.last_used_at == start
    assert stored_last_use() == start
    later = start + resolution
    assert authenticate(store.session, secret, now=later) is not None
    assert stored_last_use() == later
    # Not audited, and the revision stays: a use is not a change.
    assert [e.action for e in token_events(store)] == ["token.create"]


def test_a_failed_write_of_the_last_use_does_not_refuse_the_token(
    store: PolicyStore, tokens: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    _, secret = tokens.create("ci", READ)
    engine = store.session.get_bind()

    def refuse_updates(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE CORSADMIN_API_TOKEN"):
            raise sa.exc.OperationalError(statement, {}, Exception("database is read-only"))

    sa.event.listen(engine, "before_cursor_execute", refuse_updates)
    try:
        found = authenticate(store.session, secret)
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse_updates)
    assert found is not None
    assert found.name == "ci"
    assert found.last_used_at is None
    assert "could not note an API token's last use" in caplog.text
    assert store.session.scalar(sa.select(ApiToken.last_used_at)) is None


def test_token_of_a_row_and_its_document() -> None:
    now = utcnow()
    token = Token(1, "ci", READ, now, "me", None, None, None, None)
    assert token.to_document(now)["status"] == "active"
    assert token.to_document()["expires_at"] is None
