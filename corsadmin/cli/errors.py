"""One-line errors for the command line: a user's mistake is ``error: ...``, exit 1.

Shared by every ``corsadmin`` command (policies, origins, operators), as in
Flask-Migrate's CLI: never a traceback for something the user can fix.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import sqlalchemy as sa

from ..db.store import BUSY_MESSAGE, database_busy
from ..errors import CorsAdminError, ValidationError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    """Print each line as ``error: ...`` on standard error and exit with status 1."""
    # A lone surrogate (an undecodable byte typed in an argument) cannot be printed as is.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    for line in message.splitlines() or [""]:
        click.echo(f"error: {line}", err=True)
    sys.exit(1)


def user_errors(func: F) -> F:
    """Turn corsadmin's errors and database trouble into one-line messages, exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            fail("\n".join(str(e) for e in exc.errors))
        except CorsAdminError as exc:
            fail(str(exc))
        except sa.exc.OperationalError as exc:
            if database_busy(exc):
                fail(BUSY_MESSAGE)
            first = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            fail(
                f"the database is not ready ({first}); run `db upgrade` "
                "(or `flask corsadmin db-upgrade`) first"
            )
        except sa.exc.ProgrammingError as exc:
            first = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
            fail(f"the database is not ready ({first}); run `db upgrade` first")
        except UnicodeEncodeError as exc:  # a lone surrogate (an undecodable argument byte)
            fail(
                f"{exc.object[exc.start : exc.end]!r} is not UTF-8 text "
                "(an invalid byte in an argument?); nothing was changed"
            )

    return wrapper  # type: ignore[return-value]
