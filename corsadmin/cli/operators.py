"""``corsadmin operator ...``: who may log in to the admin UI (built-in login).

For the standalone app (``python manage.py corsadmin operator add NAME``) or a
host application with ``CORSADMIN_BUILTIN_LOGIN``. Passwords are asked twice on
a terminal, or read from the first line of standard input with
``--password-stdin`` (scripts, tests); never from the command line, where they
would end up in the shell history and the process list.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..db import operators
from ..errors import ValidationError
from .context import current_actor, local_only, session
from .errors import user_errors

F = TypeVar("F", bound=Callable[..., Any])


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
        if not password:
            raise ValidationError.single("password", "standard input was empty")
        return password
    if not sys.stdin.isatty():
        raise ValidationError.single(
            "password", "no terminal to ask on: give it with --password-stdin"
        )
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(password)


password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)


@click.group("operator")
def operator_group() -> None:
    """Manage who may log in to the admin UI (built-in login)."""


@operator_group.command("add")
@click.argument("name")
@password_stdin
@local_only
@user_errors
def operator_add(name: str, password_stdin: bool) -> None:
    """Add operator NAME (asks for the password, or reads it with --password-stdin)."""
    operators.check_name(name)
    password = _read_password(password_stdin)
    operators.add_operator(session(), name, password, actor=current_actor())
    click.echo(f"added operator {name}")


@operator_group.command("list")
@local_only
@user_errors
def operator_list() -> None:
    """List the operators: name, created, last login, disabled."""
    found = operators.list_operators(session())
    if not found:
        click.echo("no operators yet: add one with `corsadmin operator add NAME`")
        return
    rows = [("NAME", "CREATED", "LAST LOGIN", "STATUS")]
    for o in found:
        rows.append(
            (
                o.name,
                f"{o.created_at:%Y-%m-%d} by {o.created_by}",
                f"{o.last_login_at:%Y-%m-%d %H:%M} UTC" if o.last_login_at else "never",
                "disabled" if o.disabled else "enabled",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:3])) + "  " + row[3])


@operator_group.command("passwd")
@click.argument("name")
@password_stdin
@local_only
@user_errors
def operator_passwd(name: str, password_stdin: bool) -> None:
    """Give operator NAME a new password (ends the operator's open sessions)."""
    operators.get_operator(session(), name)
    password = _read_password(password_stdin)
    operators.set_password(session(), name, password, actor=current_actor())
    click.echo(f"changed the password of {name}")


@operator_group.command("disable")
@click.argument("name")
@local_only
@user_errors
def operator_disable(name: str) -> None:
    """Stop operator NAME from logging in (open sessions end at once)."""
    operators.set_disabled(session(), name, True, actor=current_actor())
    click.echo(f"disabled operator {name}")


@operator_group.command("enable")
@click.argument("name")
@local_only
@user_errors
def operator_enable(name: str) -> None:
    """Let a disabled operator NAME log in again."""
    operators.set_disabled(session(), name, False, actor=current_actor())
    click.echo(f"enabled operator {name}")


@operator_group.command("remove")
@click.argument("name")
@local_only
@user_errors
def operator_remove(name: str) -> None:
    """Remove operator NAME (open sessions end at once)."""
    operators.remove_operator(session(), name, actor=current_actor())
    click.echo(f"removed operator {name}")
