"""``corsadmin import-flask-cors``: an application's Flask-CORS configuration as a policy
document (written out, or imported with ``--apply``).

The reading is :mod:`.flask_cors_reader`, the translation :mod:`.flask_cors_translate`.
Standard output carries the document only; notes (differences that never widen what
is allowed) and the options corsadmin cannot express go to standard error. Any of
the latter is an error (exit 1, nothing written) unless ``--skip-unsupported``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import click
from flask import Flask, current_app
from flask.cli import NoAppException, locate_app, prepare_import

from ..db.loader import spec_of
from ..errors import ValidationError
from ..policy.diff import diff_document, format_diff
from ..policy.document import parse_document
from .client import ApiClient
from .context import app_or_remote, remote_api, store
from .documents import outside_request, remote_import
from .errors import fail, user_errors
from .flask_cors_reader import read_flask_cors
from .flask_cors_translate import Translation, translate

#: How the import lines name the document: ``imported from Flask-CORS: ...``.
SOURCE_NAME: Final = "from Flask-CORS"


def load_app(app_path: str | None) -> Flask:
    """The application named as flask's ``--app`` names it (``module:app``,
    ``module:create_app()``, a file ``app.py``), or the one this command runs in."""
    if not app_path:
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    path, _, name = app_path.partition(":")
    try:
        app = locate_app(prepare_import(path), name or None)
    except NoAppException as exc:
        fail(f"--app {app_path}: {exc}")
    assert app is not None  # raise_if_not_found
    return app


@click.command("import-flask-cors")
@click.option(
    "--app",
    "app_path",
    metavar="IMPORT",
    help="The application using Flask-CORS, as flask's --app: module:app or "
    "module:create_app() (default: the application this command runs in).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the document to this file (default: standard output, unless --apply).",
)
@click.option(
    "--skip-unsupported",
    is_flag=True,
    help="Write what can be expressed, never more than Flask-CORS allowed: a resource "
    "or view whose path (or any origin with credentials) cannot be expressed is left "
    "out; an origin, a header regex or an option that cannot be is left off.",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Import the document into the database (merged by name), printing what changes first.",
)
@click.option("--dry-run", is_flag=True, help="With --apply: print what would change only.")
@app_or_remote
@user_errors
def import_flask_cors_command(
    app_path: str | None, output: str | None, skip_unsupported: bool, apply: bool, dry_run: bool
) -> None:
    """Write the policy equivalent to an application's Flask-CORS configuration.

    Reads the resources and options of CORS(app) (with the app's CORS settings) and
    the @cross_origin views, and writes the policy document, or imports it with
    --apply. What corsadmin cannot express is listed on standard error, each with
    the place (resource or view), the option and the reason; then nothing is
    written and the exit status is 1, unless --skip-unsupported.
    """
    if dry_run and not apply:
        fail("--dry-run goes with --apply (without --apply nothing is written anyway)")
    remote = remote_api()
    if remote is not None and not app_path:
        fail("with --url, name the application using Flask-CORS: --app module:app")
    app = load_app(app_path)
    config = read_flask_cors(app)
    if not config.sources and not config.unreadable:
        fail(
            f"no Flask-CORS configuration in the application {app.name!r}: no CORS(app) "
            "and no @cross_origin view (is --app the application that uses Flask-CORS?)"
        )
    translation = translate(config)
    _report(translation, skip_unsupported)
    document = translation.document
    if output is not None or not apply:
        with click.open_file(output or "-", "w", encoding="utf-8") as stream:
            stream.write(json.dumps(document, indent=2) + "\n")
    if apply and remote is not None:
        _apply_remote(remote, document, dry_run=dry_run)
    elif apply:
        _apply(document, dry_run=dry_run)


def _report(translation: Translation, skip_unsupported: bool) -> None:
    if translation.unsupported and not skip_unsupported:
        fail(
            "\n".join(f"cannot express {u}" for u in translation.unsupported)
            + "\nnothing was written: fix these in the application, or pass "
            "--skip-unsupported"
        )
    for note in translation.notes:
        click.echo(f"note: {note}", err=True)
    for item in translation.unsupported:
        click.echo(f"skipped: {item}", err=True)
    click.echo(f"{len(translation.policies)} policies from Flask-CORS", err=True)


def _apply(document: dict[str, Any], *, dry_run: bool) -> None:
    specs = parse_document(document)
    live = {p.name: spec_of(p) for p in store().policies()}
    diffs = diff_document(live, specs)
    for line in format_diff(diffs) or [f"importing {SOURCE_NAME} would change nothing"]:
        click.echo(line)
    if dry_run:
        click.echo(f"dry run: nothing was written ({len(diffs)} policies would change)")
        return
    report = store().import_document(document)
    click.echo(f"imported {SOURCE_NAME}: {report}")


def _apply_remote(remote: ApiClient, document: dict[str, Any], *, dry_run: bool) -> None:
    """``--apply`` through the API (``--url``): what changes, then the import (the same
    lines as the local command)."""
    if not dry_run:
        body = {"document": document, "mode": "merge", "dry_run": True}
        try:
            answer = remote.post("/document", body)
        except ValidationError as error:
            raise outside_request(error) from None
        nothing = [f"importing {SOURCE_NAME} would change nothing"]
        for line in answer["lines"] if answer["changes"] else nothing:
            click.echo(line)
    remote_import(remote, document, SOURCE_NAME, replace=False, dry_run=dry_run)
