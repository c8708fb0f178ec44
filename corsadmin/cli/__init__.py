"""The ``corsadmin`` command group: a thin layer over the same store the admin UI uses.

Mounted on the application's CLI, so ``flask corsadmin ...`` and, in the
standalone app, ``python manage.py corsadmin ...``. A user's mistake prints a
one-line ``error:`` (one line per problem) and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

import click
from flask import current_app
from flask.cli import with_appcontext

from .operators import operator_group
from .errors import fail, user_errors
from ..errors import ValidationError
from ..engine.explain import explain
from ..db.models import Policy
from ..db.store import KEEP, PolicyStore, load_snapshot

F = TypeVar("F", bound=Callable[..., Any])


def _state() -> Any:
    from ..extension import CorsAdmin

    return CorsAdmin.state(current_app)


def _store() -> PolicyStore:
    state = _state()
    ctx = click.get_current_context()
    actor = ctx.find_root().meta.get("corsadmin.actor") or state.extension.default_actor()
    return PolicyStore(state.db.session, actor=actor, on_commit=state.holder.reload)


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
    help="Who the audit log names for these changes (default: cli:<login name>).",
)
@click.pass_context
def corsadmin_cli(ctx: click.Context, actor: str | None) -> None:
    """Manage the CORS policy kept in the database."""
    ctx.find_root().meta["corsadmin.actor"] = actor


# Documents --------------------------------------------------------------------------

#: How deep ``[`` and ``{`` may nest in a document read from a file (a policy document
#: needs 4: the document, its policies, a policy, an origin object).
MAX_DOCUMENT_DEPTH: Final = 32


def read_document(file: str) -> Any:
    """The JSON document in ``file`` ('-': standard input), or a one-line
    ValidationError naming the file: unreadable, not UTF-8, not JSON, nested too
    deeply, a number too long to read, a lone surrogate escape."""
    name = "<stdin>" if file == "-" else file

    def refuse(message: str) -> ValidationError:
        return ValidationError.single(name, message)

    try:
        with click.open_file(file, "rb") as stream:
            raw = stream.read()
    except OSError as exc:
        raise refuse(f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise refuse(
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise refuse(_too_deep()) from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise refuse(
            f"has a whole number of more than {sys.get_int_max_str_digits()} digits"
        ) from None
    _check_document_text(document, refuse)
    return document


def _too_deep() -> str:
    return f"is nested too deeply (more than {MAX_DOCUMENT_DEPTH} levels of [ and {{)"


def _check_document_text(document: Any, refuse: Callable[[str], ValidationError]) -> None:
    """Refuse a document nested deeper than MAX_DOCUMENT_DEPTH, or holding a string that
    is not text (a lone surrogate escape such as \\ud800): no database stores it."""
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DOCUMENT_DEPTH:
                raise refuse(_too_deep())
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, f"{where}.{key}" if where else key, refuse)
                    place = f"{where}.{key}" if where else key
                else:
                    place = f"{where}[{key}]"
                stack.append((item, place, depth + 1))
        elif isinstance(value, str):
            _check_text(value, where, refuse)


def _check_text(text: str, where: str, refuse: Callable[[str], ValidationError]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise refuse(
            f"{where or 'the document'} holds a lone surrogate escape (\\u{code:04x}), "
            "which is not text"
        ) from None


@corsadmin_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="Make the database hold exactly this document.")
@with_appcontext
@user_errors
def import_command(file: str, replace: bool) -> None:
    """Import a policy document (JSON; '-' reads standard input).

    Policies are merged by name; with --replace, policies not in the document
    are removed. The whole document is checked first: one error and nothing is
    written.
    """
    document = read_document(file)
    report = _store().import_document(document, replace=replace)
    name = "<stdin>" if file == "-" else file
    click.echo(f"imported {name}: {report}")


@corsadmin_cli.command("export")
@with_appcontext
@user_errors
def export_command() -> None:
    """Print the whole policy as a document (JSON), sorted by name."""
    document = _store().export_document()
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


# Policies ------------------------------------------------------------------------------


@corsadmin_cli.group("policy")
def policy_group() -> None:
    """List, show, add, update and remove policies."""


def _policy_options(func: F) -> F:
    options = [
        click.option("--origin", "origins", multiple=True, help="An origin rule (repeatable)."),
        click.option("--method", "methods", multiple=True, help="An HTTP method (repeatable)."),
        click.option(
            "--allow-header",
            "allow_headers",
            multiple=True,
            help="A request header a page may send, or '*' (repeatable).",
        ),
        click.option(
            "--expose-header",
            "expose_headers",
            multiple=True,
            help="A response header a page may read (repeatable).",
        ),
        click.option("--credentials/--no-credentials", default=None, help="Allow credentials."),
        click.option("--max-age", type=int, default=None, help="Preflight cache seconds."),
        click.option(
            "--private-network/--no-private-network",
            default=None,
            help="Answer private network access preflights.",
        ),
        click.option("--enable/--disable", "enabled", default=None, help="Enable the policy."),
        click.option("--priority", type=int, default=None, help="Higher wins before specificity."),
        click.option("--description", default=None, help="Free text for operators."),
        click.option("--review-every-days", type=int, default=None, help="Review interval."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _changes(**given: Any) -> dict[str, Any]:
    """Only the options the operator gave."""
    changes: dict[str, Any] = {}
    for key, value in given.items():
        if value is None or (isinstance(value, tuple) and not value):
            continue
        changes[key] = list(value) if isinstance(value, tuple) else value
    return changes


@policy_group.command("list")
@with_appcontext
@user_errors
def policy_list() -> None:
    """List every policy: name, path, origins, flags."""
    policies = _store().policies()
    if not policies:
        click.echo("no policies yet: add one with `corsadmin policy add NAME PATH --origin ...`")
        return
    rows = [("NAME", "PATH", "ORIGINS", "FLAGS")]
    for p in policies:
        rows.append((p.name, p.path, str(len(p.origin_rules)), _flags(p)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )


def _flags(p: Policy) -> str:
    flags = []
    if not p.enabled:
        flags.append("disabled")
    if p.credentials:
        flags.append("credentials")
    if p.private_network:
        flags.append("private-network")
    if p.priority:
        flags.append(f"priority={p.priority}")
    return ",".join(flags) or "-"


@policy_group.command("show")
@click.argument("name")
@with_appcontext
@user_errors
def policy_show(name: str) -> None:
    """Show one policy with its origin rules and who changed it."""
    store = _store()
    p = store.policy(name)
    spec = store.spec(name)
    click.echo(f"policy {p.name} (version {p.version})")
    click.echo(f"  path:              {p.path}")
    if p.description:
        click.echo(f"  description:       {p.description}")
    click.echo(f"  enabled:           {str(p.enabled).lower()}")
    click.echo(f"  priority:          {p.priority}")
    click.echo(f"  methods:           {', '.join(spec.methods)}")
    click.echo(f"  allow headers:     {', '.join(spec.allow_headers)}")
    click.echo(f"  expose headers:    {', '.join(spec.expose_headers) or '-'}")
    click.echo(f"  credentials:       {str(p.credentials).lower()}")
    click.echo(f"  max age:           {'-' if p.max_age is None else p.max_age}")
    click.echo(f"  private network:   {str(p.private_network).lower()}")
    click.echo(f"  review every:      {p.review_every_days} days")
    click.echo(f"  created:           {p.created_at:%Y-%m-%d %H:%M} UTC by {p.created_by}")
    click.echo(f"  updated:           {p.updated_at:%Y-%m-%d %H:%M} UTC by {p.updated_by}")
    click.echo(f"  origins ({len(p.origin_rules)}):")
    for r in p.origin_rules:
        extra = []
        if r.note:
            extra.append(f"note: {r.note}")
        if r.expires_at:
            extra.append(f"expires {r.expires_at:%Y-%m-%d %H:%M} UTC")
        extra.append(f"added {r.created_at:%Y-%m-%d} by {r.created_by}")
        click.echo(f"    {r.origin}  ({'; '.join(extra)})")


@policy_group.command("add")
@click.argument("name")
@click.argument("path")
@_policy_options
@with_appcontext
@user_errors
def policy_add(name: str, path: str, **options: Any) -> None:
    """Add a policy NAME covering the route pattern PATH."""
    data = {"name": name, "path": path, "origins": list(options.pop("origins"))}
    data.update(_changes(**options))
    spec = _store().create_policy(data)
    click.echo(f"added policy {spec.name} for {spec.path.text} with {len(spec.origins)} origin(s)")


@policy_group.command("update")
@click.argument("name")
@click.option("--path", default=None, help="A new route pattern.")
@_policy_options
@with_appcontext
@user_errors
def policy_update(name: str, **options: Any) -> None:
    """Change the given settings of policy NAME (--origin replaces the whole list)."""
    changes = _changes(**options)
    if not changes:
        raise ValidationError.single("", "nothing to change: give at least one option")
    spec = _store().update_policy(name, changes)
    click.echo(f"updated policy {spec.name}")


@policy_group.command("remove")
@click.argument("name")
@with_appcontext
@user_errors
def policy_remove(name: str) -> None:
    """Remove policy NAME and its origin rules."""
    _store().delete_policy(name)
    click.echo(f"removed policy {name}")


# Origins ------------------------------------------------------------------------------------


@corsadmin_cli.group("origin")
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
    change = _store().allow_origin(
        policy,
        origin,
        note=KEEP if note is None else note,
        expires=None if no_expires else KEEP if expires is None else expires,
    )
    text = change.entry.rule.text
    interval = current_app.config["CORSADMIN_REFRESH_INTERVAL"]
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
    _store().remove_origin(policy, origin)
    click.echo(f"removed {origin} from {policy}")


# Checking -------------------------------------------------------------------------------------


@corsadmin_cli.command("check")
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
@with_appcontext
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
    snapshot = load_snapshot(_state().db.engine)
    explanation = explain(snapshot, origin, path, method, headers, private_network=private_network)
    click.echo(str(explanation))
    sys.exit(0 if explanation.allowed else 2)


# Schema -----------------------------------------------------------------------------------------


@corsadmin_cli.command("db-upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
@user_errors
def db_upgrade_command(revision: str) -> None:
    """Create or upgrade corsadmin's tables (its own Alembic version table)."""
    from ..db.schema import upgrade

    upgrade(_state().db.engine, revision)
    click.echo(f"corsadmin schema is at {revision}")


corsadmin_cli.add_command(operator_group)
