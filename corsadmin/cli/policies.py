"""``corsadmin policy ...``: list, show, add, update and remove policies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar, assert_never

import click
import sqlalchemy as sa

from ..db.export import settings_spec
from ..db.models import OriginRuleRow, Policy
from ..errors import PolicyNotFound, ValidationError
from ..limits import MAX_ORIGIN_PAGE
from ..policy.fields import (
    ANY_HEADER_WARNING,
    CLI_FIELDS,
    SHOW_FIELDS,
    Kind,
    PolicyField,
    default_text,
    reflects_any_header,
    value_text,
)
from ..policy.spec import PolicySpec, validate_policy
from .client import ANY_VERSION, ApiClient
from .context import app_or_remote, remote_api, session, store
from .errors import user_errors

#: The origin rules ``policy show`` prints unless given ``--all`` (a policy with more
#: says how many it left out): the rest stay in the database, never read.
SHOW_ORIGINS: Final = 100

F = TypeVar("F", bound=Callable[..., Any])


@click.group("policy")
def policy_group() -> None:
    """List, show, add, update and remove policies."""


def _policy_options(func: F) -> F:
    """The options of ``policy update``: one per field that has one (not given: unchanged)."""
    for field in reversed(CLI_FIELDS):
        func = _option(field)(func)
    return func


def _new_policy_options(func: F) -> F:
    """The options of ``policy add``: ``policy update``'s, each help saying the default
    a new policy takes (derived from the field's declared default)."""
    for field in reversed(CLI_FIELDS):
        func = _option(field, with_default=True)(func)
    return func


def _option(field: PolicyField, with_default: bool = False) -> Callable[[F], F]:
    """The click option of a policy field (None when not given: nothing to change)."""
    assert field.cli is not None
    spelling, help_text = field.cli.spelling, field.cli.help
    default = default_text(field) if with_default else None
    if default is not None:
        help_text = f"{help_text} Default: {default}."
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
@app_or_remote
@user_errors
def policy_list() -> None:
    """List every policy: name, path, origins, flags."""
    remote = remote_api()
    summaries = remote.get("/policies")["policies"] if remote else _local_summaries()
    if not summaries:
        click.echo("no policies yet: add one with `corsadmin policy add NAME PATH --origin ...`")
        return
    rows = [("NAME", "PATH", "ORIGINS", "FLAGS")]
    for p in summaries:
        rows.append((p["name"], p["path"], str(p["origin_count"]), _flags(p)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )


def _local_summaries() -> list[dict[str, Any]]:
    """Every policy as the API's list shows it (its rules counted, none read)."""
    db = session()
    policies = list(db.scalars(sa.select(Policy).order_by(Policy.name)))  # rules not read
    rule = OriginRuleRow.__table__
    counts: dict[int, int] = dict(
        db.execute(sa.select(rule.c.policy_id, sa.func.count()).group_by(rule.c.policy_id)).all()
    )
    return [
        {
            "name": p.name,
            "path": p.path,
            "origin_count": counts.get(p.id, 0),
            "enabled": p.enabled,
            "credentials": p.credentials,
            "private_network": p.private_network,
            "priority": p.priority,
        }
        for p in policies
    ]


def _flags(p: dict[str, Any]) -> str:
    flags = []
    if not p["enabled"]:
        flags.append("disabled")
    if p["credentials"]:
        flags.append("credentials")
    if p["private_network"]:
        flags.append("private-network")
    if p["priority"]:
        flags.append(f"priority={p['priority']}")
    return ",".join(flags) or "-"


@dataclass(frozen=True)
class Shown:
    """What ``policy show`` prints of a policy, read locally or from the API."""

    name: str
    version: int
    spec: PolicySpec
    created: str
    updated: str
    total: int
    rules: list[str]


def _when(value: datetime | str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%Y-%m-%d %H:%M}"


def _rule_line(origin: str, note: str, expires: Any, created_at: Any, created_by: str) -> str:
    extra = []
    if note:
        extra.append(f"note: {note}")
    if expires:
        extra.append(f"expires {_when(expires)} UTC")
    extra.append(f"added {_when(created_at)[:10]} by {created_by}")
    return f"    {origin}  ({'; '.join(extra)})"


@policy_group.command("show")
@click.argument("name")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help=f"Print every origin rule (by default the first {SHOW_ORIGINS}).",
)
@app_or_remote
@user_errors
def policy_show(name: str, every: bool) -> None:
    """Show one policy with its origin rules and who changed it."""
    remote = remote_api()
    shown = _remote_shown(remote, name, every) if remote else _local_shown(name, every)
    click.echo(f"policy {shown.name} (version {shown.version})")
    for line in _settings_lines(shown.spec):
        click.echo(line)
    click.echo(f"  created:           {shown.created}")
    click.echo(f"  updated:           {shown.updated}")
    click.echo(f"  origins ({shown.total}):")
    for line in shown.rules:
        click.echo(line)
    if not every and shown.total > SHOW_ORIGINS:
        click.echo(
            f"    ... and {shown.total - SHOW_ORIGINS} more (the first {SHOW_ORIGINS} are "
            f"shown): `corsadmin policy show {name} --all` prints every one"
        )


def _local_shown(name: str, every: bool) -> Shown:
    """The policy from the database: its rules counted, at most SHOW_ORIGINS read
    unless ``every``."""
    db = session()
    p = db.scalar(sa.select(Policy).where(Policy.name == name))
    if p is None:
        raise PolicyNotFound(name)
    count = sa.select(sa.func.count()).select_from(OriginRuleRow)
    total = int(db.scalar(count.where(OriginRuleRow.policy_id == p.id)) or 0)
    rules = sa.select(OriginRuleRow).where(OriginRuleRow.policy_id == p.id)
    rules = rules.order_by(OriginRuleRow.origin).execution_options(yield_per=1000)
    lines = [
        _rule_line(r.origin, r.note, r.expires_at, r.created_at, r.created_by)
        for r in db.scalars(rules if every else rules.limit(SHOW_ORIGINS))
    ]
    return Shown(
        name=p.name,
        version=p.version,
        spec=settings_spec(p),
        created=f"{_when(p.created_at)} UTC by {p.created_by}",
        updated=f"{_when(p.updated_at)} UTC by {p.updated_by}",
        total=total,
        rules=lines,
    )


def _remote_shown(remote: ApiClient, name: str, every: bool) -> Shown:
    """The policy as the API's pages of origin rules give it: the first SHOW_ORIGINS
    rules, or every rule page after page (``every``); never more than that is fetched."""
    found = remote.get(f"/policies/{name}/origins", query={"limit": str(SHOW_ORIGINS)})
    rules = list(found["rules"])
    page = found
    while every and page["next"] is not None:
        query = {"limit": str(MAX_ORIGIN_PAGE), "after": page["next"]}
        page = remote.get(f"/policies/{name}/origins", query=query)
        rules += page["rules"]
    settings = validate_policy({**found["policy"], "origins": []})
    return Shown(
        name=found["policy"]["name"],
        version=found["version"],
        spec=settings,
        created=f"{_when(found['created_at'])} UTC by {found['created_by']}",
        updated=f"{_when(found['updated_at'])} UTC by {found['updated_by']}",
        total=found["origin_count"],
        rules=[
            _rule_line(r["origin"], r["note"], r["expires"], r["created_at"], r["created_by"])
            for r in rules
        ],
    )


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
@_new_policy_options
@app_or_remote
@user_errors
def policy_add(name: str, path: str, **options: Any) -> None:
    """Add a policy NAME covering the route pattern PATH (an option not given takes
    the default its help names)."""
    data = {"name": name, "path": path, "origins": list(options.pop("origins"))}
    data.update(_changes(**options))
    remote = remote_api()
    if remote:
        stored = remote.post("/policies", data)["policy"]
        added = (stored["name"], stored["path"], len(stored["origins"]))
        _warn_any_header(stored["name"], stored["credentials"], stored["allow_headers"])
    else:
        spec = store().create_policy(data)
        added = (spec.name, spec.path.text, len(spec.origins))
        _warn_any_header(spec.name, spec.credentials, spec.allow_headers)
    click.echo(f"added policy {added[0]} for {added[1]} with {added[2]} origin(s)")


def _warn_any_header(name: str, credentials: bool, allow_headers: Any) -> None:
    """A warning line on stderr for credentials with ``*`` headers (allowed, but wide)."""
    if reflects_any_header(credentials, allow_headers):
        click.echo(ANY_HEADER_WARNING.format(name=name), err=True)


@policy_group.command("update")
@click.argument("name")
@click.option("--path", default=None, help="A new route pattern.")
@_policy_options
@app_or_remote
@user_errors
def policy_update(name: str, **options: Any) -> None:
    """Change the given settings of policy NAME (--origin replaces the whole list)."""
    changes = _changes(**options)
    if not changes:
        raise ValidationError.single("", "nothing to change: give at least one option")
    remote = remote_api()
    if remote:  # as the local command: whatever version is stored
        after = remote.call("PATCH", f"/policies/{name}", changes, if_match=ANY_VERSION).json()
        stored = after["policy"]
        updated, credentials, headers = (
            stored["name"],
            stored["credentials"],
            stored["allow_headers"],
        )
    else:
        spec = store().update_policy(name, changes)
        updated, credentials, headers = spec.name, spec.credentials, spec.allow_headers
    if changes.keys() & {"credentials", "allow_headers"}:  # said when either is changed
        _warn_any_header(updated, credentials, headers)
    click.echo(f"updated policy {updated}")


@policy_group.command("remove")
@click.argument("name")
@app_or_remote
@user_errors
def policy_remove(name: str) -> None:
    """Remove policy NAME and its origin rules."""
    remote = remote_api()
    if remote:
        remote.call("DELETE", f"/policies/{name}", if_match=ANY_VERSION)
    else:
        store().delete_policy(name)
    click.echo(f"removed policy {name}")
