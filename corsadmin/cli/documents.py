"""``corsadmin import`` and ``corsadmin export``: the whole policy as one JSON document."""

from __future__ import annotations

import json
import sys
from typing import Any, Final

import click

from ..db.export import export_text
from ..db.loader import spec_of
from ..db.store import ImportReport
from ..errors import FieldError, ValidationError
from ..policy.diff import diff_document, format_diff
from ..policy.document import check_document_text, parse_document, too_deep
from .client import ApiClient
from .context import app_or_remote, remote_api, session, store
from .errors import user_errors

#: Characters of the exported document written at a time (the document is never whole
#: in memory: it is read in chunks of ``corsadmin.db.export.EXPORT_CHUNK_ROWS`` rows).
EXPORT_WRITE_CHARS: Final = 64 * 1024


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
        raise refuse(too_deep()) from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise refuse(
            f"has a whole number of more than {sys.get_int_max_str_digits()} digits"
        ) from None
    check_document_text(document, refuse)
    return document


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="Make the database hold exactly this document.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would change, field by field and rule by rule; write nothing.",
)
@app_or_remote
@user_errors
def import_command(file: str, replace: bool, dry_run: bool) -> None:
    """Import a policy document (JSON; '-' reads standard input).

    Policies are merged by name; with --replace, policies not in the document
    are removed. The whole document is checked first: one error and nothing is
    written.
    """
    document = read_document(file)
    name = "<stdin>" if file == "-" else file
    remote = remote_api()
    if remote:
        remote_import(remote, document, name, replace=replace, dry_run=dry_run)
        return
    if dry_run:
        specs = parse_document(document)
        live = {p.name: spec_of(p) for p in store().policies()}
        diffs = diff_document(live, specs, replace=replace)
        _echo_dry_run(format_diff(diffs), len(diffs), name)
        return
    report = store().import_document(document, replace=replace)
    click.echo(f"imported {name}: {report}")


def _echo_dry_run(lines: list[str], changes: int, name: str) -> None:
    for line in lines or [f"importing {name} would change nothing"]:
        click.echo(line)
    click.echo(f"dry run: nothing was written ({changes} policies would change)")


def remote_import(
    remote: ApiClient, document: Any, name: str, *, replace: bool, dry_run: bool
) -> None:
    """``import`` through the API: the same diff lines, the same report."""
    body = {"document": document, "mode": "replace" if replace else "merge", "dry_run": dry_run}
    try:
        answer = remote.post("/document", body)
    except ValidationError as error:
        raise outside_request(error) from None
    if dry_run:
        changes = answer["changes"]
        _echo_dry_run(answer["lines"] if changes else [], len(changes), name)
        return
    report = ImportReport(**answer["report"])
    click.echo(f"imported {name}: {report}")


def outside_request(error: ValidationError, *, own: tuple[str, ...] = ()) -> ValidationError:
    """The API's errors of the request's ``document`` named as in the document itself
    (as the local command names them); the request's ``own`` fields as they are."""
    fields = []
    for e in error.errors:
        field = e.field
        if field in own:
            pass
        elif field == "document":
            field = ""
        elif field.startswith("document."):
            field = field.removeprefix("document.")
        fields.append(FieldError(field, e.message))
    return ValidationError(fields)


@click.command("export")
@app_or_remote
@user_errors
def export_command() -> None:
    """Print the whole policy as a document (JSON), sorted by name."""
    remote = remote_api()
    if remote:
        reply = remote.call("GET", "/document")
        click.echo(reply.body.decode("utf-8"))
        return
    pending: list[str] = []
    size = 0
    for piece in export_text(session()):
        pending.append(piece)
        size += len(piece)
        if size >= EXPORT_WRITE_CHARS:
            click.echo("".join(pending), nl=False)
            pending, size = [], 0
    pending.append("\n")
    click.echo("".join(pending), nl=False)
