"""``corsadmin check ORIGIN PATH``: what a page on ORIGIN gets when it calls PATH."""

from __future__ import annotations

import sys

import click

from ..db.loader import load_snapshot
from ..engine.explain import explain
from ..errors import ValidationError
from ..state import state
from .context import app_or_remote, remote_api
from .errors import user_errors


@click.command("check")
@click.argument("origin")
@click.argument("path")
@click.option("--method", default="GET", show_default=True, help="The method the page uses.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    help="A request header the page sets: NAME or 'NAME: value' (repeatable).",
)
@click.option("--private-network", is_flag=True, help="The page reaches a private network.")
@app_or_remote
@user_errors
def check_command(
    origin: str, path: str, method: str, headers: tuple[str, ...], private_network: bool
) -> None:
    """Explain what a page on ORIGIN gets when it calls PATH.

    Which policy matched and why, whether the origin is allowed and by which
    rule, and the exact headers sent. Exit status 0 when the browser would
    allow it, 2 when it would refuse it.
    """
    if not path.startswith("/"):
        raise ValidationError.single("path", "must start with '/' (the request path)")
    remote = remote_api()
    if remote:
        body = {
            "origin": origin,
            "path": path,
            "method": method,
            "headers": list(headers),
            "private_network": private_network,
        }
        answer = remote.post("/check", body)
        click.echo("\n".join(answer["explanation"]))
        sys.exit(0 if answer["allowed"] else 2)
    snapshot = load_snapshot(state().db.engine)
    explanation = explain(snapshot, origin, path, method, headers, private_network=private_network)
    click.echo(str(explanation))
    sys.exit(0 if explanation.allowed else 2)
