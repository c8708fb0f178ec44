"""Alembic environment for corsadmin's tables.

Works in two ways: from Flask-Migrate (``python manage.py db upgrade``), inside
an application context, and from ``corsadmin.db.schema.upgrade``, which hands a
connection over in ``config.attributes``. Either way the version table is
``corsadmin_alembic_version``, so a host application's own migrations are
never disturbed.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context

from corsadmin.db.dialects import check_supported
from corsadmin.db.models import Base
from corsadmin.db.schema import VERSION_TABLE
from corsadmin.state import state

config = context.config
if config.config_file_name is not None and not config.attributes.get("connection"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")


def _engine():
    return state().db.engine  # a Flask-Migrate run: in an application context


def _configure(**kwargs):
    context.configure(
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        include_name=lambda name, type_, parent: type_ != "table" or name.startswith("corsadmin_"),
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=str(_engine().url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        check_supported(connection.dialect)
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with _engine().connect() as connection:
        check_supported(connection.dialect)
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
