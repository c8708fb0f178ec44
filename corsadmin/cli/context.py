"""What every command shares: the actor, worked out once, the store acting as them, and
where the commands run: on this app's database, or on a remote instance's API
(``--url``, :mod:`corsadmin.cli.client`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, TypeVar

import click
from flask.cli import with_appcontext
from flask_sqlalchemy.session import Session
from sqlalchemy.orm import scoped_session

from ..db.store import PolicyStore
from ..state import state
from .client import ApiClient
from .errors import fail

F = TypeVar("F", bound=Callable[..., Any])

#: Where the group's ``--actor`` (or ``CORSADMIN_ACTOR``) is kept for the commands.
ACTOR_KEY: Final = "corsadmin.actor"
#: Where the group keeps the remote instance's client (``--url``), or None.
REMOTE_KEY: Final = "corsadmin.remote"


class RemoteOnly:
    """The root context's object when the ``corsadmin`` console script runs the group:
    there is no app, only a remote instance."""


def remote_only() -> bool:
    return isinstance(click.get_current_context().find_root().obj, RemoteOnly)


NEEDS_URL: Final = (
    "the corsadmin command works on a remote instance: give --url (or CORSADMIN_URL) "
    "and --token (or CORSADMIN_TOKEN); on this app's database use `flask corsadmin` "
    "or `python manage.py corsadmin`"
)


def current_actor() -> str:
    """Who the audit log names: ``--actor``, ``CORSADMIN_ACTOR``, else ``CORSADMIN_CLI_ACTOR``."""
    given = click.get_current_context().find_root().meta.get(ACTOR_KEY)
    return str(given or state().default_actor())


def store() -> PolicyStore:
    """The policy store of the current app, acting as :func:`current_actor`."""
    return state().store(current_actor())


def session() -> scoped_session[Session]:
    """The current app's database session."""
    return state().db.session


def remote_api() -> ApiClient | None:
    """The remote instance's client when the group was given ``--url``, else None."""
    found = click.get_current_context().find_root().meta.get(REMOTE_KEY)
    return found if isinstance(found, ApiClient) else None


def api() -> ApiClient:
    """The remote instance's client (the command checked there is one)."""
    found = remote_api()
    assert found is not None
    return found


def app_or_remote(func: F) -> F:
    """Run the command in the app's context, unless it runs on a remote instance (then
    the command itself asks :func:`remote_api`: no app is loaded)."""
    local = with_appcontext(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if remote_api() is not None:
            return func(*args, **kwargs)
        if remote_only():
            fail(NEEDS_URL)
        return local(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def local_only(func: F) -> F:
    """A command the API has no counterpart of: refused (one ``error:`` line, exit 1)
    with ``--url``, run in the app's context otherwise."""
    local = with_appcontext(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if remote_api() is not None or remote_only():
            fail(
                f"`corsadmin {ctx.command_path.split('corsadmin ', 1)[-1]}` needs the database: "
                "it does not work with --url (run it where the app runs, with "
                "`flask corsadmin` or `python manage.py corsadmin`)"
            )
        return local(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def format_option(help_text: str) -> Callable[[F], F]:
    """``--format text|json`` (the ``output_format`` argument): lines for people, or
    JSON for scripts, as ``help_text`` says."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help_text,
    )
