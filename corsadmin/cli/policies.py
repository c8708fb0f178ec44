"""``corsadmin policy ...``: list, show, add, update and remove policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, assert_never

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..db.export import settings_spec
from ..db.models import OriginRuleRow, Policy
from ..errors import PolicyNotFound, ValidationError
from ..policy.fields import CLI_FIELDS, SHOW_FIELDS, Kind, PolicyField, value_text
from ..policy.spec import PolicySpec
from .context import session, store
from .errors import user_errors

#: The origin rules ``policy show`` prints unless given ``--all`` (a policy with more
#: says how many it left out): the rest stay in the database, never read.
SHOW_ORIGINS: Final = 100

F = TypeVar("F", bound=Callable[..., Any])


@click.group("policy")
def policy_group() -> None:
    """List, show, add, update and remove policies."""


def _policy_options(func: F) -> F:
    """The options of ``policy add`` and ``policy update``: one per field that has one."""
    for field in reversed(CLI_FIELDS):
        func = _option(field)(func)
    return func


def _option(field: PolicyField) -> Callable[[F], F]:
    """The click option of a policy field (None when not given: nothing to change)."""
    assert field.cli is not None
    spelling, help_text = field.cli.spelling, field.cli.help
    match field.kind:
        case Kind.TOKENS | Kind.ORIGINS:
            return click.option(spelling, field.name, multiple=True, help=help_text)
        case Kind.INT | Kind.OPTIONAL_INT:
            return click.option(spelling, field.name, type=int, default=None, help=help_text)
        case Kind.TEXT | Kind.MULTILINE | Kind.PATH | Kind.BOOL:
            return click.option(spelling, field.name, default=None, help=help_text)
        case _:
            assert_never(field.kind)


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
    db = session()
    policies = list(db.scalars(sa.select(Policy).order_by(Policy.name)))  # rules not read
    rule = OriginRuleRow.__table__
    counts: dict[int, int] = dict(
        db.execute(sa.select(rule.c.policy_id, sa.func.count()).group_by(rule.c.policy_id)).all()
    )
    if not policies:
        click.echo("no policies yet: add one with `corsadmin policy add NAME PATH --origin ...`")
        return
    rows = [("NAME", "PATH", "ORIGINS", "FLAGS")]
    for p in policies:
        rows.append((p.name, p.path, str(counts.get(p.id, 0)), _flags(p)))
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
@click.option(
    "--all",
    "every",
    is_flag=True,
    help=f"Print every origin rule (by default the first {SHOW_ORIGINS}).",
)
@with_appcontext
@user_errors
def policy_show(name: str, every: bool) -> None:
    """Show one policy with its origin rules and who changed it."""
    db = session()
    p = db.scalar(sa.select(Policy).where(Policy.name == name))
    if p is None:
        raise PolicyNotFound(name)
    spec = settings_spec(p)
    click.echo(f"policy {p.name} (version {p.version})")
    for line in _settings_lines(spec):
        click.echo(line)
    click.echo(f"  created:           {p.created_at:%Y-%m-%d %H:%M} UTC by {p.created_by}")
    click.echo(f"  updated:           {p.updated_at:%Y-%m-%d %H:%M} UTC by {p.updated_by}")
    total = int(
        db.scalar(
            sa.select(sa.func.count())
            .select_from(OriginRuleRow)
            .where(OriginRuleRow.policy_id == p.id)
        )
        or 0
    )
    click.echo(f"  origins ({total}):")
    rules = sa.select(OriginRuleRow).where(OriginRuleRow.policy_id == p.id)
    rules = rules.order_by(OriginRuleRow.origin).execution_options(yield_per=1000)
    for r in db.scalars(rules if every else rules.limit(SHOW_ORIGINS)):
        _echo_rule(r)
    if not every and total > SHOW_ORIGINS:
        click.echo(
            f"    ... and {total - SHOW_ORIGINS} more (the first {SHOW_ORIGINS} are shown): "
            f"`corsadmin policy show {name} --all` prints every one"
        )


def _echo_rule(r: OriginRuleRow) -> None:
    extra = []
    if r.note:
        extra.append(f"note: {r.note}")
    if r.expires_at:
        extra.append(f"expires {r.expires_at:%Y-%m-%d %H:%M} UTC")
    extra.append(f"added {r.created_at:%Y-%m-%d} by {r.created_by}")
    click.echo(f"    {r.origin}  ({'; '.join(extra)})")


def _settings_lines(spec: PolicySpec) -> list[str]:
    """A policy's settings as ``policy show`` prints them, a line per field."""
    lines = []
    for field in SHOW_FIELDS:
        assert field.show is not None
        label = f"  {field.show.label + ':':<19}"
        text = value_text(field.kind, getattr(spec, field.name))
        if text:
            lines.append(label + text + field.show.unit)
        elif field.show.empty is not None:
            lines.append(label + field.show.empty)
    return lines


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
    spec = store().create_policy(data)
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
    spec = store().update_policy(name, changes)
    click.echo(f"updated policy {spec.name}")


@policy_group.command("remove")
@click.argument("name")
@with_appcontext
@user_errors
def policy_remove(name: str) -> None:
    """Remove policy NAME and its origin rules."""
    store().delete_policy(name)
    click.echo(f"removed policy {name}")
