"""The standalone corsadmin application's entry point (the app is ``corsadmin.standalone``).

    python manage.py run                  create or upgrade the schema, load the
                                          example policy into an empty database, print
                                          the admin URL, serve
    python manage.py db upgrade           corsadmin's migrations (Flask-Migrate)
    python manage.py corsadmin --help     the policy commands

``flask --app manage ...`` works too. The database is ``DATABASE_URL``
(SQLite in the instance folder by default; ``postgresql://...`` for PostgreSQL).

The admin UI is at /corsadmin/ with corsadmin's own operators:
``.venv/bin/python manage.py corsadmin operator add NAME`` (``--password-stdin`` for
scripts); ``run`` prints the exact command while there is no operator yet.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import FlaskGroup, ScriptInfo, routes_command, run_command, shell_command

from corsadmin.standalone import (
    EXAMPLE_ACTOR,
    EXAMPLE_POLICY,
    cors,
    create_app,
    database_url,
    db,
    first_steps,
    instance_secret_key,
    migrate,
    prepare_database,
    register_demo_api,
)

__all__ = [
    "EXAMPLE_ACTOR",
    "EXAMPLE_POLICY",
    "cli",
    "cors",
    "create_app",
    "database_url",
    "db",
    "first_steps",
    "instance_secret_key",
    "migrate",
    "prepare_database",
    "register_demo_api",
]


@click.command("run", params=run_command.params, help=run_command.help)
@click.pass_context
def run_with_schema(ctx: click.Context, /, **kwargs: Any) -> None:
    """Prepare the database, then the usual `flask run`."""
    app = ctx.ensure_object(ScriptInfo).load_app()
    for message in prepare_database(app):
        click.echo(message)
    for message in first_steps(app, str(kwargs["host"]), int(kwargs["port"])):
        click.echo(message)
    ctx.invoke(run_command, **kwargs)


cli = FlaskGroup(create_app=create_app, add_default_commands=False, help=__doc__)
cli.add_command(run_with_schema)
cli.add_command(shell_command)
cli.add_command(routes_command)


if __name__ == "__main__":
    cli()
