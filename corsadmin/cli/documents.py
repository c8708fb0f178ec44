"""``corsadmin import`` and ``corsadmin export``: the whole policy as one JSON document."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Final

import click
from flask.cli import with_appcontext

from ..db.export import export_text
from ..db.loader import spec_of
from ..errors import ValidationError
from ..policy.diff import diff_document, format_diff
from ..policy.document import parse_document
from .context import session, store
from .errors import user_errors

#: Characters of the exported document written at a time (the document is never whole
#: in memory: it is read in chunks of ``corsadmin.db.export.EXPORT_CHUNK_ROWS`` rows).
EXPORT_WRITE_CHARS: Final = 64 * 1024

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


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="Make the database hold exactly this document.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would change, field by field and rule by rule; write nothing.",
)
@with_appcontext
@user_errors
def import_command(file: str, replace: bool, dry_run: bool) -> None:
    """Import a policy document (JSON; '-' reads standard input).

    Policies are merged by name; with --replace, policies not in the document
    are removed. The whole document is checked first: one error and nothing is
    written.
    """
    document = read_document(file)
    name = "<stdin>" if file == "-" else file
    if dry_run:
        specs = parse_document(document)
        live = {p.name: spec_of(p) for p in store().policies()}
        diffs = diff_document(live, specs, replace=replace)
        for line in format_diff(diffs) or [f"importing {name} would change nothing"]:
            click.echo(line)
        click.echo(f"dry run: nothing was written ({len(diffs)} policies would change)")
        return
    report = store().import_document(document, replace=replace)
    click.echo(f"imported {name}: {report}")


@click.command("export")
@with_appcontext
@user_errors
def export_command() -> None:
    """Print the whole policy as a document (JSON), sorted by name."""
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
