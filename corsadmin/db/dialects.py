"""What differs between the databases corsadmin runs on, in one place.

SQLite, PostgreSQL and MariaDB (MySQL's dialect) are supported. Everything a module
would otherwise write per dialect lives here: the table options MariaDB needs, the
upsert and the insert-if-new, the errors that mean "busy, try again", "a row's values"
and "no such table", and the isolation level of a consistent read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session

from ..errors import UnsupportedDatabase

#: The names SQLAlchemy gives MySQL's dialect: ``mysql+pymysql://`` says "mysql" (also
#: on a MariaDB server), ``mariadb+pymysql://`` says "mariadb".
MYSQL_DIALECTS: Final = frozenset({"mysql", "mariadb"})
#: The dialects corsadmin supports (and tests: SQLite, PostgreSQL, MariaDB).
SUPPORTED_DIALECTS: Final = frozenset({"sqlite", "postgresql"}) | MYSQL_DIALECTS
#: The oldest MariaDB corsadmin runs on: unique keys longer than InnoDB's 3,072 bytes
#: (hashed, 10.4), DELETE ... RETURNING (10.0.5); 10.4 is out of support, so 10.5.
MIN_MARIADB: Final = (10, 5)

#: Every corsadmin table on MariaDB/MySQL: full UTF-8 (4-byte characters too) and a
#: binary collation, whatever the database's defaults (usually case-insensitive
#: ``utf8mb4_general_ci``): names, paths and origin rules compare and sort by code
#: point, case-sensitive, as on SQLite and PostgreSQL. (A key never ends in a space:
#: validation strips them, so the collation's PAD SPACE comparison never matters.)
#: SQLAlchemy reads the options with either dialect name's prefix.
TABLE_OPTIONS: Final[Mapping[str, str]] = {
    f"{dialect}_{option}": value
    for dialect in sorted(MYSQL_DIALECTS)
    for option, value in (("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}

#: Fractional digits of a MariaDB/MySQL DATETIME (its default is whole seconds).
DATETIME_PRECISION: Final = 6

#: MariaDB/MySQL error numbers that mean another transaction holds the lock: lock wait
#: timeout, deadlock. Retrying is the cure for each.
_MYSQL_BUSY_ERRORS: Final = frozenset({1205, 1213})
#: PostgreSQL: lock_not_available (NOWAIT), deadlock_detected, serialization_failure.
_POSTGRES_BUSY_STATES: Final = frozenset({"55P03", "40P01", "40001"})
#: SQLite's SQLITE_BUSY and SQLITE_LOCKED (primary result codes).
_SQLITE_BUSY_CODES: Final = frozenset({5, 6})
#: MariaDB/MySQL errors caused by one row's values: data too long, incorrect string
#: value (a character the column cannot hold), out of range, truncated, duplicate key,
#: bad null, too long a key.
_MYSQL_ROW_ERRORS: Final = frozenset({1406, 1366, 1264, 1265, 1292, 1062, 1048, 1071})
#: SQLSTATE classes of errors caused by one row's values: data exception, integrity
#: violation, program limit exceeded (index row size).
_ROW_ERROR_SQLSTATE_CLASSES: Final = frozenset({"22", "23", "54"})
#: MariaDB/MySQL: table doesn't exist.
_MYSQL_NO_SUCH_TABLE: Final = 1146
#: MariaDB/MySQL: duplicate entry for a unique key.
_MYSQL_DUPLICATE_KEY: Final = 1062


def is_mysql(dialect: sa.Dialect) -> bool:
    """Is ``dialect`` MySQL's (a MariaDB or MySQL server)?"""
    return dialect.name in MYSQL_DIALECTS


def check_supported(dialect: sa.Dialect) -> None:
    """Refuse, before any table is created, a database corsadmin is not written for
    (after the first connection: the server's kind and version are known then)."""
    supported = "it runs on SQLite, PostgreSQL and MariaDB 10.5 or newer"
    if dialect.name not in SUPPORTED_DIALECTS:
        raise UnsupportedDatabase(f"corsadmin does not support {dialect.name}: {supported}")
    if not is_mysql(dialect):
        return
    version = tuple(dialect.server_version_info or ())
    if not getattr(dialect, "is_mariadb", False):
        raise UnsupportedDatabase(
            "corsadmin does not support MySQL (its unique keys are limited to 3,072 bytes, "
            f"and it has no DELETE ... RETURNING): {supported}"
        )
    if version[:2] < MIN_MARIADB:
        shown = ".".join(str(part) for part in version[:3])
        raise UnsupportedDatabase(f"corsadmin does not support MariaDB {shown}: {supported}")


def _insert(dialect: sa.Dialect, table: sa.Table) -> Any:
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    if is_mysql(dialect):
        return mysql.insert(table)
    return sqlite.insert(table)


def upsert(
    dialect: sa.Dialect,
    table: sa.Table,
    keys: Sequence[str],
    updates: Callable[[Any], Mapping[str, Any]],
) -> sa.Executable:
    """An INSERT that, where a row of the same unique ``keys`` exists, updates it with
    ``updates(new)`` instead (``new``: the columns of the row that was to be inserted).
    ON CONFLICT DO UPDATE on SQLite and PostgreSQL, ON DUPLICATE KEY UPDATE on MariaDB
    (whose updates see the existing row's values: none refers to another's result)."""
    statement = _insert(dialect, table)
    if is_mysql(dialect):
        return statement.on_duplicate_key_update(dict(updates(statement.inserted)))  # type: ignore[no-any-return]
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(keys), set_=dict(updates(statement.excluded))
    )


def insert_if_new(
    connection: sa.Connection, table: sa.Table, key: str, row: Mapping[str, Any]
) -> bool:
    """Insert ``row`` unless a row with its unique ``key`` exists (maybe inserted by
    another process a moment ago); whether it was inserted."""
    dialect = connection.dialect
    if is_mysql(dialect):  # no ON CONFLICT DO NOTHING; INSERT IGNORE would hide bad values
        try:
            with connection.begin_nested():
                connection.execute(sa.insert(table), dict(row))
            return True
        except sa.exc.IntegrityError as error:
            if _mysql_errno(error) == _MYSQL_DUPLICATE_KEY:
                return False
            raise
    statement = (
        _insert(dialect, table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    )
    return bool(connection.execute(statement, dict(row)).all())


def _mysql_errno(error: BaseException) -> int | None:
    """The MariaDB/MySQL error number of a driver's error (PyMySQL, mysqlclient), else
    None (their SQLSTATE is often the catch-all HY000: the number tells)."""
    orig = getattr(error, "orig", None) or error
    if not type(orig).__module__.startswith(("pymysql", "MySQLdb")):
        return None
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_busy(error: BaseException) -> bool:
    """Whether a database error means "another change holds the lock; try again"
    (not a missing table, not a connection failure)."""
    orig = getattr(error, "orig", None) or error
    errno = _mysql_errno(orig)
    if errno is not None:
        return errno in _MYSQL_BUSY_ERRORS
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


def is_row_value_error(error: sa.exc.DBAPIError) -> bool:
    """Did the database refuse a write because of a row's values (by SQLSTATE class,
    or MariaDB's error number)?"""
    errno = _mysql_errno(error)
    if errno is not None:
        return errno in _MYSQL_ROW_ERRORS
    sqlstate = getattr(error.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _ROW_ERROR_SQLSTATE_CLASSES


def is_no_such_table(error: sa.exc.DBAPIError) -> bool:
    """Did a read fail because its table does not exist?"""
    if getattr(error.orig, "sqlstate", None) == "42P01":  # PostgreSQL
        return True
    if _mysql_errno(error) == _MYSQL_NO_SUCH_TABLE:
        return True
    return "no such table" in str(error.orig)  # SQLite


def consistent_read(connection: sa.Connection) -> sa.Connection:
    """``connection`` set to read one consistent state of the database across several
    statements (the snapshot loader's): REPEATABLE READ on PostgreSQL and MariaDB,
    whatever the server's default; SQLite's transaction already is."""
    if connection.dialect.name == "postgresql" or is_mysql(connection.dialect):
        return connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def limited(select: sa.Select[Any]) -> sa.Select[Any]:
    """A ``select`` of ids with a LIMIT, wrapped as a derived table to use in the
    ``IN (...)`` of a DELETE or UPDATE of the same table: MariaDB/MySQL refuse a LIMIT in
    an IN subquery, and a subquery on the table being changed; every backend takes a
    derived table (which is materialized first)."""
    inner = select.subquery()
    return sa.select(*inner.c)


def end_read_only_snapshot(session: Session | scoped_session[Any]) -> None:
    """Before a change that must read what is committed: on MariaDB/MySQL, whose default
    REPEATABLE READ keeps a transaction on the snapshot of its first read, a session
    still in a transaction that has only read (nothing new, changed or deleted) is
    committed, so the change's own transaction reads after its first lock (as every
    statement does under PostgreSQL's READ COMMITTED). Elsewhere nothing happens."""
    own = session() if isinstance(session, scoped_session) else session
    if not is_mysql(own.get_bind().dialect) or not own.in_transaction():
        return
    if not (own.new or own.dirty or own.deleted):
        own.commit()


def code_point_order(dialect: sa.Dialect, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """``column`` to order by in code point order, as Python sorts: PostgreSQL's default
    collation may follow a locale; SQLite compares UTF-8 bytes and corsadmin's
    MariaDB tables are binary (:data:`TABLE_OPTIONS`), both the same order."""
    return sa.collate(column, "C") if dialect.name == "postgresql" else column
