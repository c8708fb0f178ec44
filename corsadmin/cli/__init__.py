"""The ``corsadmin`` command group: a thin layer over the same store the admin UI uses.

Mounted on the application's CLI, so ``flask corsadmin ...`` and, in the
standalone app, ``python manage.py corsadmin ...``. A user's mistake prints a
one-line ``error:`` (one line per problem) and exits with status 1.
"""

from __future__ import annotations

from typing import Any

import click

from ..policy.document import MAX_DOCUMENT_DEPTH
from .alerts import alerts_group, review_command
from .check import check_command
from .client import ApiClient, RemoteError
from .context import ACTOR_KEY, REMOTE_KEY
from .documents import export_command, import_command, read_document
from .drafts import draft_group
from .errors import fail
from .flask_cors_command import import_flask_cors_command
from .operators import operator_group
from .origins import origin_group
from .policies import policy_group
from .schema import db_upgrade_command
from .status import status_command
from .tokens import token_group

__all__ = [
    "MAX_DOCUMENT_DEPTH",
    "alerts_group",
    "check_command",
    "corsadmin_cli",
    "db_upgrade_command",
    "draft_group",
    "export_command",
    "import_command",
    "import_flask_cors_command",
    "operator_group",
    "origin_group",
    "policy_group",
    "read_document",
    "review_command",
    "status_command",
    "token_group",
]


class _Group(click.Group):
    """Usage mistakes (a missing file, a bad option value) are one-line errors, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.UsageError as exc:
            command = ctx.invoked_subcommand or ctx.info_name
            fail(f"{exc.format_message()} (see `corsadmin {command} --help`)")


@click.group("corsadmin", cls=_Group)
@click.option(
    "--actor",
    envvar="CORSADMIN_ACTOR",
    help="Who the audit log names for these changes (default: cli:<login name>). "
    "With --url the API names the token (token:<name>).",
)
@click.option(
    "--url",
    envvar="CORSADMIN_URL",
    help="Work on a remote instance through its API: the site and the admin prefix, "
    "e.g. https://app.example.com/corsadmin (no database needed).",
)
@click.option(
    "--token",
    envvar="CORSADMIN_TOKEN",
    show_default=False,
    help="The API token for --url (better: CORSADMIN_TOKEN or --token-file).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the API token for --url from this file ('-': standard input).",
)
@click.pass_context
def corsadmin_cli(
    ctx: click.Context,
    actor: str | None,
    url: str | None,
    token: str | None,
    token_file: str | None,
) -> None:
    """Manage the CORS policy kept in the database (or, with --url, a remote one's)."""
    root = ctx.find_root()
    root.meta[ACTOR_KEY] = actor
    if url:
        root.meta[REMOTE_KEY] = _client(url, token, token_file)


def _client(url: str, token: str | None, token_file: str | None) -> ApiClient:
    """The remote instance's client, with the token given (never printed)."""
    if token_file is not None:
        try:
            with click.open_file(token_file, "r", encoding="utf-8") as stream:
                token = stream.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--token-file: cannot read {token_file}: {getattr(exc, 'strerror', exc)}")
    if not token or not token.strip():
        fail("--url needs an API token: --token, --token-file or CORSADMIN_TOKEN")
    try:
        return ApiClient(url, token)
    except RemoteError as exc:
        fail(str(exc))


for _command in (
    import_command,
    export_command,
    import_flask_cors_command,
    policy_group,
    origin_group,
    check_command,
    db_upgrade_command,
    operator_group,
    draft_group,
    token_group,
    status_command,
    review_command,
    alerts_group,
):
    corsadmin_cli.add_command(_command)
