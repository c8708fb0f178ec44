"""corsadmin's own migrations: where they are, and running them.

corsadmin's tables are migrated by its own Alembic scripts with their own
version table (``corsadmin_alembic_version``), so they never collide with a
host application's migrations: a host runs ``flask corsadmin db-upgrade``
beside its own ``flask db upgrade``. The standalone app (``manage.py``) points
Flask-Migrate at the same scripts, so ``python manage.py db upgrade`` works too.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..resources import migrations_directory

VERSION_TABLE = "corsadmin_alembic_version"

__all__ = [
    "VERSION_TABLE",
    "Upgraded",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
    "upgrade_and_report",
]


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config(str(migrations_directory() / "alembic.ini"))
    config.set_main_option("script_location", str(migrations_directory()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring corsadmin's tables in ``engine``'s database up to ``revision``."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


@dataclass(frozen=True, slots=True)
class Upgraded:
    """What an upgrade did: the revision before (None: no corsadmin tables yet) and after."""

    before: str | None
    after: str | None

    def message(self) -> str:
        """One line for people: created, upgraded, or nothing to do."""
        if self.before == self.after:
            return f"corsadmin's tables are already at {self.after}, nothing to do"
        if self.before is None:
            return f"created corsadmin's tables (revision {self.after})"
        return f"upgraded corsadmin's tables from {self.before} to {self.after}"


def upgrade_and_report(engine: sa.Engine, revision: str = "head") -> Upgraded:
    """:func:`upgrade`, saying which revision the tables were at before and are at now."""
    before = current_revision(engine)
    upgrade(engine, revision)
    return Upgraded(before=before, after=current_revision(engine))


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
