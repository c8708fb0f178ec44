"""``corsadmin origin add|remove``: allow or stop allowing one origin on a policy."""

from __future__ import annotations

from typing import Any, Final

import click

from ..db.store import KEEP
from ..errors import ValidationError
from ..runtime.fleet import change_note
from ..state import state
from .context import app_or_remote, remote_api, store
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
@app_or_remote
@user_errors
def origin_add(
    policy: str, origin: str, note: str | None, expires: str | None, no_expires: bool
) -> None:
    """Allow ORIGIN on POLICY (or change the note or expiry of a rule it has).

    Says whether the rule was allowed, changed, or left as it was.
    """
    if no_expires and expires is not None:
        raise ValidationError.single("expires", "give --expires or --no-expires, not both")
    remote = remote_api()
    if remote:
        body: dict[str, Any] = {"origin": origin}
        if note is not None:
            body["note"] = note
        if no_expires or expires is not None:
            body["expires"] = expires
        click.echo(_remote_message(remote.post(f"/policies/{policy}/origins", body)))
        return
    change = store().allow_origin(
        policy,
        origin,
        note=KEEP if note is None else note,
        expires=None if no_expires else KEEP if expires is None else expires,
    )
    text = change.entry.rule.text
    enforced = change_note(state().config.refresh_interval)
    if change.outcome == "allowed":
        click.echo(f"allowed {text} on {policy}; {enforced}")
    elif change.outcome == "changed":
        click.echo(f"changed {text} on {policy}: {change.details()}; {enforced}")
    else:
        click.echo(f"{text} is allowed on {policy} already; {UNCHANGED.format(change.state())}")


#: What ``origin add`` says of a rule it left as it was (with the rule's state).
UNCHANGED: Final = "left as it was ({}); --note, --expires or --no-expires change it"


def _remote_message(change: dict[str, Any]) -> str:
    """The API's message, but for a rule left as it was: named as this command's options
    (the API names its body's fields)."""
    message = str(change["message"])
    if change["outcome"] == "unchanged":
        head, _, rest = message.partition("; left as it was (")
        message = f"{head}; {UNCHANGED.format(rest.rpartition('); ')[0])}"
    return message


@origin_group.command("remove")
@click.argument("policy")
@click.argument("origin")
@app_or_remote
@user_errors
def origin_remove(policy: str, origin: str) -> None:
    """Stop allowing ORIGIN on POLICY."""
    remote = remote_api()
    if remote:
        remote.call("DELETE", f"/policies/{policy}/origins", query={"origin": origin})
    else:
        store().remove_origin(policy, origin)
    click.echo(f"removed {origin} from {policy}")
