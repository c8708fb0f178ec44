"""``corsadmin db-upgrade``: create or upgrade corsadmin's tables."""

from __future__ import annotations

import click

from ..db.schema import upgrade_and_report
from ..state import state
from .context import local_only
from .errors import user_errors


@click.command("db-upgrade")
@click.option("--revision", default="head", show_default=True)
@local_only
@user_errors
def db_upgrade_command(revision: str) -> None:
    """Create or upgrade corsadmin's tables (its own Alembic version table), and say
    which: created, upgraded from one revision to another, or already there."""
    click.echo(upgrade_and_report(state().db.engine, revision).message())
