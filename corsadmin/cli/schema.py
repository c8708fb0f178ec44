"""``corsadmin db-upgrade``: create or upgrade corsadmin's tables."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..db.schema import upgrade
from ..state import state
from .errors import user_errors


@click.command("db-upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
@user_errors
def db_upgrade_command(revision: str) -> None:
    """Create or upgrade corsadmin's tables (its own Alembic version table)."""
    upgrade(state().db.engine, revision)
    click.echo(f"corsadmin schema is at {revision}")
