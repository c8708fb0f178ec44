"""``corsadmin token create|list|revoke``: the bearer tokens of the HTTP API.

``create`` prints the secret alone on standard output (so ``TOKEN=$(flask corsadmin
token create ci --scope write)`` works) and, on standard error, what was created and
that the secret is never shown again: corsadmin keeps only its SHA-256.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click

from ..db.models import utcnow
from ..db.tokens import MAX_EXPIRES_IN_DAYS, SCOPES, Token, TokenStore
from ..errors import ValidationError
from .context import format_option, local_only, store
from .errors import user_errors

#: What ``create`` says after the secret (on standard error).
NOT_SHOWN_AGAIN = (
    "warning: the secret above is shown only now: corsadmin keeps only its hash. "
    "Store it where the client reads it (a CI secret, a vault); if it is lost, "
    "revoke the token and create another."
)


def tokens() -> TokenStore:
    return TokenStore(store())


@click.group("token")
def token_group() -> None:
    """Create, list and revoke the HTTP API's bearer tokens."""


@token_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    required=True,
    metavar="|".join(SCOPES),
    help="read: look only; write: change the policy too.",
)
@click.option("--expires", default=None, help="When it stops working: a date (UTC) or ISO 8601.")
@click.option(
    "--expires-in-days",
    type=click.IntRange(1, MAX_EXPIRES_IN_DAYS),
    default=None,
    help="When it stops working: this many days from now.",
)
@local_only
@user_errors
def token_create(name: str, scope: str, expires: str | None, expires_in_days: int | None) -> None:
    """Create API token NAME and print its secret (once: it is not shown again)."""
    if expires is not None and expires_in_days is not None:
        raise ValidationError.single("expires", "give --expires or --expires-in-days, not both")
    when: object = expires
    if expires_in_days is not None:
        when = utcnow() + timedelta(days=expires_in_days)
    token, secret = tokens().create(name, scope, expires=when)
    click.echo(secret)
    until = "never expires" if token.expires_at is None else f"expires {_when(token.expires_at)}"
    click.echo(f"created API token {token.name} ({token.scope}, {until})", err=True)
    click.echo(NOT_SHOWN_AGAIN, err=True)


@token_group.command("list")
@format_option("A table, or JSON (times in ISO 8601, UTC).")
@local_only
@user_errors
def token_list(output_format: str) -> None:
    """List the API tokens: scope, status, created, expires, last used, revoked."""
    found = tokens().list()
    now = utcnow()
    if output_format == "json":
        click.echo(json.dumps([t.to_document(now) for t in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no API tokens yet: create one with `corsadmin token create NAME --scope read`")
        return
    for line in format_tokens(found, now):
        click.echo(line)


def format_tokens(found: list[Token], now: datetime) -> list[str]:
    """The token list as a table, one token a line."""
    rows = [("NAME", "SCOPE", "STATUS", "CREATED", "EXPIRES", "LAST USED", "REVOKED")]
    for t in found:
        revoked = "-" if t.revoked_at is None else f"{_when(t.revoked_at)} by {t.revoked_by}"
        rows.append(
            (
                t.name,
                t.scope,
                t.status(now),
                f"{_when(t.created_at)} by {t.created_by}",
                "never" if t.expires_at is None else _when(t.expires_at),
                "never" if t.last_used_at is None else _when(t.last_used_at),
                revoked,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


@token_group.command("revoke")
@click.argument("name")
@local_only
@user_errors
def token_revoke(name: str) -> None:
    """Revoke API token NAME: every request with it is refused from now on."""
    before = tokens().get(name)
    if before.revoked_at is not None:
        click.echo(
            f"API token {name} was revoked already "
            f"({_when(before.revoked_at)} by {before.revoked_by})"
        )
        return
    tokens().revoke(name)
    click.echo(f"revoked API token {name}: requests with it are refused from now on")


def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"
