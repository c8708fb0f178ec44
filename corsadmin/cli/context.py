"""What every command shares: the actor, worked out once, and the store acting as them."""

from __future__ import annotations

import click
from flask_sqlalchemy.session import Session
from sqlalchemy.orm import scoped_session

from ..db.store import PolicyStore
from ..state import state

#: Where the group's ``--actor`` (or ``CORSADMIN_ACTOR``) is kept for the commands.
ACTOR_KEY = "corsadmin.actor"


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
