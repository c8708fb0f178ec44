"""``corsadmin origin add|remove``: allow or stop allowing one origin on a policy."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..db.store import KEEP
from ..errors import ValidationError
from ..state import state
from .context import store
from .errors import user_errors


@click.group("origin")
def origin_group() -> None:
    """Allow or stop allowing one origin on a policy."""


@origin_group.command("add")
@click.argument("policy")
@click.argument("origin")
@click.option(
    "--note",
    default=None,
    help="Why this origin is allowed (who asked, ticket). A rule that exists keeps its "
    "note unless this is given ('' removes it).",
)
@click.option(
    "--expires",
    default=None,
    help="When the rule stops matching (ISO 8601 or a date). A rule that exists keeps "
    "its expiry unless this or --no-expires is given.",
)
@click.option("--no-expires", is_flag=True, help="The rule never expires (removes an expiry).")
@with_appcontext
@user_errors
def origin_add(
    policy: str, origin: str, note: str | None, expires: str | None, no_expires: bool
) -> None:
    """Allow ORIGIN on POLICY (or change the note or expiry of a rule it has).

    Says whether the rule was allowed, changed, or left as it was.
    """
    if no_expires and expires is not None:
        raise ValidationError.single("expires", "give --expires or --no-expires, not both")
    change = store().allow_origin(
        policy,
        origin,
        note=KEEP if note is None else note,
        expires=None if no_expires else KEEP if expires is None else expires,
    )
    text = change.entry.rule.text
    interval = state().config.refresh_interval
    enforced = f"every worker enforces it within {interval:g}s"
    if change.outcome == "allowed":
        click.echo(f"allowed {text} on {policy}; {enforced}")
    elif change.outcome == "changed":
        click.echo(f"changed {text} on {policy}: {change.details()}; {enforced}")
    else:
        click.echo(
            f"{text} is allowed on {policy} already; left as it was ({change.state()}); "
            "--note, --expires or --no-expires change it"
        )


@origin_group.command("remove")
@click.argument("policy")
@click.argument("origin")
@with_appcontext
@user_errors
def origin_remove(policy: str, origin: str) -> None:
    """Stop allowing ORIGIN on POLICY."""
    store().remove_origin(policy, origin)
    click.echo(f"removed {origin} from {policy}")
