"""corsadmin's own migrations: where they are, and running them.

corsadmin's tables are migrated by its own Alembic scripts with their own
version table (``corsadmin_alembic_version``), so they never collide with a
host application's migrations: a host runs ``flask corsadmin db-upgrade``
beside its own ``flask db upgrade``. The standalone app (``manage.py``) points
Flask-Migrate at the same scripts, so ``python manage.py db upgrade`` works too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..resources import migrations_directory

VERSION_TABLE = "corsadmin_alembic_version"

__all__ = [
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
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


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
