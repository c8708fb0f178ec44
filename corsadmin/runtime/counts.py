"""Writing per-process counts into a table where every process adds its own up.

Shared by usage counting (:mod:`corsadmin.runtime.usage`) and the draft's traffic
(:mod:`corsadmin.runtime.trial`): an upsert that adds the counts and widens the
first and last seen; a batch write in which a row the database refuses for its
values is dropped while the others are written; and the fold that keeps a
partition's most counted rows and hands back the others (deleted) to be summed
into a bucket row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import sqlalchemy as sa

from ..db.dialects import is_row_value_error, limited, upsert

T = TypeVar("T")

#: Rows per INSERT statement.
WRITE_CHUNK: Final = 500
#: Rows folded or deleted per flush at most (the rest at the next flush).
MAX_MAINTENANCE_ROWS: Final = 10_000


def is_row_error(error: BaseException) -> bool:
    """Did a write fail because of the values of a row (not the database being
    unreachable, locked or missing a table)?"""
    if isinstance(error, ValueError):  # a value the driver cannot send (UnicodeEncodeError)
        return True
    if not isinstance(error, sa.exc.DBAPIError):  # a value SQLAlchemy could not bind
        return isinstance(error, sa.exc.StatementError) and isinstance(error.orig, ValueError)
    if error.connection_invalidated:
        return False
    if isinstance(error, sa.exc.IntegrityError | sa.exc.DataError):
        return True
    return is_row_value_error(error)


def example(value: str, limit: int) -> str:
    """A client's value (a path, a method) as an example: cut to ``limit``, storable in
    any database."""
    value = value[:limit].encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "\ufffd")


def upsert_counts(
    connection: sa.Connection,
    table: sa.Table,
    keys: Sequence[str],
    rows: Sequence[dict[str, object]],
    replace: Sequence[str] = (),
) -> None:
    """Insert count rows (columns ``count``, ``first_seen``, ``last_seen``); where a row
    of the same ``keys`` exists, add the count up, keep the earlier first and the later
    last seen, and take the new value of the ``replace`` columns (the others are kept)."""
    if not rows:
        return

    def updates(new: Any) -> dict[str, Any]:
        return {
            "count": table.c.count + new.count,
            **{name: new[name] for name in replace},
            "first_seen": sa.case(
                (new.first_seen < table.c.first_seen, new.first_seen),
                else_=table.c.first_seen,
            ),
            "last_seen": sa.case(
                (new.last_seen > table.c.last_seen, new.last_seen),
                else_=table.c.last_seen,
            ),
        }

    statement = upsert(connection.dialect, table, keys, updates)
    for start in range(0, len(rows), WRITE_CHUNK):  # one statement, compiled once
        connection.execute(statement, rows[start : start + WRITE_CHUNK])


Writer = Callable[[sa.Connection, Sequence[T]], None]


def write_dropping_bad_rows(
    engine: sa.Engine,
    items: Sequence[T],
    write: Writer[T],
    finish: Callable[[sa.Connection], object] | None = None,
) -> list[T]:
    """``write(connection, items)`` in one transaction; when it fails because of a
    row's values, again a chunk at a time and a failing chunk item by item (each in a
    savepoint). ``finish`` runs at the end of the transaction either way. Returns the
    items the database refused even alone (not written). An error that is not about a
    row's values (the database went away) is raised."""
    try:
        with engine.begin() as connection:
            write(connection, items)
            if finish is not None:
                finish(connection)
        return []
    except Exception as error:
        if not is_row_error(error):
            raise
    with engine.begin() as connection:
        failed = write_in_savepoints(connection, items, write)
        if finish is not None:
            finish(connection)
    return failed


def write_in_savepoints(connection: sa.Connection, items: Sequence[T], write: Writer[T]) -> list[T]:
    """Write the items a chunk at a time, a failing chunk item by item, each in a
    savepoint; return the items the database refused (not written)."""
    failed: list[T] = []
    for start in range(0, len(items), WRITE_CHUNK):
        chunk = items[start : start + WRITE_CHUNK]
        try:
            with connection.begin_nested():
                write(connection, chunk)
            continue
        except Exception as error:
            if not is_row_error(error):
                raise
        for item in chunk:
            try:
                with connection.begin_nested():
                    write(connection, [item])
            except Exception as error:
                if not is_row_error(error):
                    raise
                failed.append(item)
    return failed


def delete_beyond(
    connection: sa.Connection,
    table: sa.Table,
    partition: Sequence[sa.ColumnElement[Any]],
    where: sa.ColumnElement[bool],
    keep: int,
    returning: Sequence[sa.ColumnElement[Any]],
) -> Sequence[sa.Row[Any]]:
    """Per ``partition`` of the rows matching ``where``, keep the ``keep`` most counted
    (then the most recently seen) and delete the others (at most MAX_MAINTENANCE_ROWS
    per call), returning the ``returning`` columns of the rows deleted.

    Only rows this transaction deleted are returned, so two processes folding at once
    count nothing twice."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=list(partition),
            order_by=(table.c.count.desc(), table.c.last_seen.desc(), table.c.id),
        )
        .label("rank")
    )
    ranked = sa.select(table.c.id, rank).where(where).subquery()
    beyond = sa.select(ranked.c.id).where(ranked.c.rank > keep).limit(MAX_MAINTENANCE_ROWS)
    return connection.execute(
        sa.delete(table).where(table.c.id.in_(limited(beyond))).returning(*returning)
    ).all()
