"""What one backend stores, every backend stores alike; what one cannot, the validation
refuses on all of them with the same message (issue 14).

Each test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture). MariaDB's
test databases are created case-insensitive (``utf8mb4_general_ci``, the usual
default): corsadmin's own tables declare a binary collation, so names, paths and rules
still compare and sort by code point, case-sensitive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from corsadmin import PolicyStore, ValidationError
from corsadmin.db.dialects import DATETIME_PRECISION, check_supported
from corsadmin.errors import UnsupportedDatabase
from corsadmin.policy.spec import MAX_DESCRIPTION_LENGTH, MAX_NOTE_LENGTH

UNICORN = "\U0001f984"  # 4 bytes in UTF-8
FRAKTUR_U = "\U0001d518"


def engine_of(store: PolicyStore) -> sa.Engine:
    bind = store.session.get_bind()
    assert isinstance(bind, sa.Engine)
    return bind


def origins_of(store: PolicyStore, name: str) -> list[str]:
    """The policy's rules as exported (code point order)."""
    document = store.export_document()
    policy = next(p for p in document["policies"] if p["name"] == name)
    return [o if isinstance(o, str) else o["origin"] for o in policy["origins"]]


def test_paths_that_differ_in_case_are_two_policies(store: PolicyStore) -> None:
    store.create_policy({"name": "upper", "path": "/API/**", "origins": ["https://a.example"]})
    store.create_policy({"name": "lower", "path": "/api/**", "origins": ["https://b.example"]})
    document = store.export_document()
    assert [(p["name"], p["path"]) for p in document["policies"]] == [
        ("lower", "/api/**"),
        ("upper", "/API/**"),
    ]
    with pytest.raises(ValidationError) as raised:
        store.create_policy({"name": "again", "path": "/API/**", "origins": []})
    assert [(e.field, e.message) for e in raised.value.errors] == [
        ("path", "policy 'upper' already covers '/API/**'")
    ]


def test_rules_that_differ_in_case_are_two_rules_in_code_point_order(
    store: PolicyStore,
) -> None:
    upper, lower = r"re:^https://A\.partner\.example$", r"re:^https://a\.partner\.example$"
    store.create_policy({"name": "api", "path": "/api/**", "origins": [lower]})
    store.add_origin("api", upper)
    store.add_origin("api", "https://b.example")
    assert origins_of(store, "api") == sorted([upper, lower, "https://b.example"])
    store.remove_origin("api", upper)
    assert origins_of(store, "api") == sorted([lower, "https://b.example"])


def test_four_byte_characters_at_the_length_bounds_are_kept_exactly(
    store: PolicyStore,
) -> None:
    description = (UNICORN + FRAKTUR_U) * (MAX_DESCRIPTION_LENGTH // 2)
    note = UNICORN * MAX_NOTE_LENGTH
    store.create_policy(
        {
            "name": "api",
            "path": "/api/**",
            "description": description,
            "origins": [{"origin": "https://a.example", "note": note}],
        }
    )
    store.session.rollback()  # read back from the database, not the session's copies
    spec = store.spec("api")
    assert spec.description == description
    (entry,) = [e for e in spec.origins if e.rule.text == "https://a.example"]
    assert entry.note == note


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("description", "x" * (MAX_DESCRIPTION_LENGTH + 1), "is longer than 2000 characters"),
        (
            "description",
            UNICORN * (MAX_DESCRIPTION_LENGTH + 1),
            "is longer than 2000 characters",
        ),
        (
            "description",
            "nul\x00here",
            "must not contain NUL (U+0000): PostgreSQL cannot store it",
        ),
        ("path", "/api/** ", "must not end with a space"),
    ],
    ids=["too-long", "too-long-in-4-byte-characters", "nul", "trailing-space"],
)
def test_what_a_backend_cannot_store_is_refused_alike(
    store: PolicyStore, field: str, value: str, message: str
) -> None:
    data: dict[str, Any] = {"name": "api", "path": "/api/**", "origins": []}
    data[field] = value
    with pytest.raises(ValidationError) as raised:
        store.create_policy(data)
    assert [(e.field, e.message) for e in raised.value.errors] == [(field, message)]
    assert store.export_document()["policies"] == []


def test_times_keep_their_microseconds(store: PolicyStore) -> None:
    expires = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=123456)
    store.create_policy({"name": "api", "path": "/api/**", "origins": []})
    store.add_origin("api", "https://a.example", expires=expires.isoformat())
    store.session.rollback()
    (entry,) = store.spec("api").origins
    assert entry.expires == expires


# MariaDB only: SQLite's and PostgreSQL's text is UTF-8 and compared by code point already.
@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_mariadb_tables_are_full_utf8_binary_and_keep_microseconds(
    store: PolicyStore,
) -> None:
    engine = engine_of(store)
    assert engine.dialect.name == "mysql"
    with engine.connect() as connection:
        database = connection.scalar(sa.text("SELECT DATABASE()"))
        assert connection.scalar(sa.text("SELECT @@collation_database")) == "utf8mb4_general_ci"
        tables = connection.execute(
            sa.text(
                "SELECT table_name, table_collation FROM information_schema.tables "
                "WHERE table_schema = :db AND table_name LIKE 'corsadmin\\_%' "
                "AND table_name <> 'corsadmin_alembic_version'"
            ),
            {"db": database},
        ).all()
        columns = connection.execute(
            sa.text(
                "SELECT table_name, column_name, data_type, character_set_name, "
                "collation_name, datetime_precision FROM information_schema.columns "
                "WHERE table_schema = :db AND table_name LIKE 'corsadmin\\_%' "
                "AND table_name <> 'corsadmin_alembic_version'"
            ),
            {"db": database},
        ).all()
    assert len(tables) >= 16
    assert {collation for _name, collation in tables} == {"utf8mb4_bin"}
    text = [c for c in columns if c.data_type in ("varchar", "text", "longtext")]
    assert len(text) > 40
    assert {(c.character_set_name, c.collation_name) for c in text} == {("utf8mb4", "utf8mb4_bin")}
    times = [c for c in columns if c.data_type == "datetime"]
    assert len(times) > 20
    assert {c.datetime_precision for c in times} == {DATETIME_PRECISION}


def server_dialect(name: str, version: tuple[int, ...], mariadb: bool = False) -> sa.Dialect:
    """SQLAlchemy's own dialect object as it stands after connecting to such a server."""
    dialect: sa.Dialect = sa.dialects.registry.load(name)()
    dialect.server_version_info = version
    if mariadb:
        dialect.is_mariadb = True  # type: ignore[attr-defined]
    return dialect


@pytest.mark.parametrize(
    ("name", "version", "mariadb", "refused"),
    [
        ("mysql", (8, 0, 36), False, "corsadmin does not support MySQL (its unique keys"),
        ("mysql", (10, 4, 34), True, "corsadmin does not support MariaDB 10.4.34:"),
        ("mssql", (16, 0), False, "corsadmin does not support mssql:"),
        ("mysql", (10, 5, 0), True, None),
        ("mysql", (11, 4, 2), True, None),
        ("postgresql", (15, 8), False, None),
        ("sqlite", (3, 40, 1), False, None),
    ],
)
def test_an_unsupported_database_is_refused_before_any_table_is_made(
    name: str, version: tuple[int, ...], mariadb: bool, refused: str | None
) -> None:
    dialect = server_dialect(name, version, mariadb)
    if refused is None:
        check_supported(dialect)
        return
    with pytest.raises(UnsupportedDatabase) as raised:
        check_supported(dialect)
    assert str(raised.value).startswith(refused)
    assert str(raised.value).endswith("it runs on SQLite, PostgreSQL and MariaDB 10.5 or newer")
