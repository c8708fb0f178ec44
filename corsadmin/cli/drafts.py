"""``corsadmin draft ...``: propose a change, compare it, then promote or discard it.

The commands work on the one active draft (:mod:`corsadmin.db.drafts`): ``import``
saves a policy document into it, ``show`` and ``diff`` print it against the live
policies, ``report`` what it would do to traffic (:mod:`corsadmin.cli.draft_report`),
``promote`` makes it live and ``discard`` drops it (:mod:`corsadmin.db.promote`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from ..db.drafts import DraftStore
from ..db.promote import live_policies
from ..errors import ValidationError
from ..policy.diff import PolicyDiff, diff_draft, format_diff_documents
from ..policy.draft import Draft
from ..policy.spec import PolicySpec, format_time
from .client import ANY_VERSION
from .context import app_or_remote, format_option, remote_api, store
from .documents import outside_request, read_document
from .draft_report import draft_header, header_lines, report_command
from .errors import user_errors

__all__ = ["draft_diffs", "draft_document", "draft_group", "draft_header"]

_FORMAT = format_option("Lines for people, or JSON for scripts.")
_VERSION = click.option(
    "--version",
    "expected_version",
    type=click.IntRange(min=1),
    help="Refuse unless the draft is still at this version (as `draft show` printed it).",
)


@click.group("draft")
def draft_group() -> None:
    """Try a change first: propose it as a draft, see what it would do, promote it."""


def drafts() -> DraftStore:
    return DraftStore(store())


def live_specs(draft: Draft) -> dict[str, PolicySpec]:
    """The live policies the draft touches, as its diff needs them."""
    return live_policies(store().session, draft)


def draft_diffs(draft: Draft, live: Mapping[str, PolicySpec]) -> list[PolicyDiff]:
    """What the draft would change, policy by policy (the unchanged left out)."""
    diffs = (diff_draft(change, live.get(name)) for name, change in sorted(draft.policies.items()))
    return [d for d in diffs if d.changed]


def draft_document(draft: Draft, diffs: list[PolicyDiff]) -> dict[str, Any]:
    """The draft as `draft show --format json` prints it (and the API returns it)."""
    return {
        "draft": draft.id,
        "version": draft.version,
        "reason": draft.reason,
        "created_by": draft.created_by,
        "created_at": format_time(draft.created_at),
        "updated_by": draft.updated_by,
        "updated_at": format_time(draft.updated_at),
        "policies": {name: draft.policies[name].action for name in sorted(draft.policies)},
        "diff": [d.as_document() for d in diffs],
    }


@draft_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="Also propose deleting the policies not in it.")
@click.option("--reason", help="Why the change is proposed (kept with the draft).")
@app_or_remote
@user_errors
def import_draft_command(file: str, replace: bool, reason: str | None) -> None:
    """Propose a policy document as the draft (JSON; '-' reads standard input).

    Policies are merged by name into the active draft (made if there is none);
    nothing live changes. The whole document is checked first.
    """
    document = read_document(file)
    remote = remote_api()
    if remote:
        body = {"document": document, "mode": "replace" if replace else "merge"}
        if reason is not None:
            body["reason"] = reason
        try:
            click.echo(remote.post("/draft/import", body)["message"])
        except ValidationError as error:
            raise outside_request(error, own=("reason",)) from None
    else:
        names = drafts().import_document(document, replace=replace, reason=reason)
        draft = drafts().require_active()
        changed = ", ".join(names) if names else "nothing (it matches the live policies)"
        click.echo(f"draft {draft.id} (version {draft.version}) proposes changes to: {changed}")
    click.echo("see `corsadmin draft diff` and `corsadmin draft report`")


def _shown() -> dict[str, Any]:
    """The active draft as ``draft show --format json`` prints it, from the database or
    from the remote instance."""
    remote = remote_api()
    if remote:
        return dict(remote.get("/draft"))
    draft = drafts().require_active()
    return draft_document(draft, draft_diffs(draft, live_specs(draft)))


@draft_group.command("show")
@_FORMAT
@app_or_remote
@user_errors
def show_command(output_format: str) -> None:
    """Who proposed the active draft, when and why, and what it changes."""
    shown = _shown()
    if output_format == "json":
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for line in header_lines(shown):
        click.echo(line)
    click.echo("")
    for line in format_diff_documents(shown["diff"]) or ["no change from the live policies"]:
        click.echo(line)


@draft_group.command("diff")
@_FORMAT
@app_or_remote
@user_errors
def diff_command(output_format: str) -> None:
    """The active draft against the live policies, field by field and rule by rule."""
    diffs = _shown()["diff"]
    if output_format == "json":
        click.echo(json.dumps(diffs, indent=2, ensure_ascii=False))
        return
    for line in format_diff_documents(diffs) or ["no change from the live policies"]:
        click.echo(line)


def _if_match(expected_version: int | None) -> str:
    return ANY_VERSION if expected_version is None else f'"{expected_version}"'


@draft_group.command("promote")
@_VERSION
@app_or_remote
@user_errors
def promote_command(expected_version: int | None) -> None:
    """Make the active draft live, in one transaction with its audit event.

    Refused, with nothing written, when a live policy it changes was changed since
    the draft was saved (the message names that change).
    """
    remote = remote_api()
    if remote:
        answer = remote.call("POST", "/draft/promote", {}, if_match=_if_match(expected_version))
        click.echo(answer.json()["message"])
        return
    promotion = drafts().promote(expected_version=expected_version)
    changed = ", ".join(promotion.policies) or "nothing"
    click.echo(
        f"promoted draft {promotion.draft_id} at revision {promotion.revision}: changed {changed}"
    )


@draft_group.command("discard")
@_VERSION
@app_or_remote
@user_errors
def discard_command(expected_version: int | None) -> None:
    """Drop the active draft; the live policies stay as they are."""
    remote = remote_api()
    if remote:
        answer = remote.call("POST", "/draft/discard", {}, if_match=_if_match(expected_version))
        click.echo(answer.json()["message"])
        return
    draft_id = drafts().discard(expected_version=expected_version)
    click.echo(f"discarded draft {draft_id}; the live policies are unchanged")


draft_group.add_command(report_command)
