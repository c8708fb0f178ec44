"""The whole policy document (``corsadmin export`` and ``corsadmin import``) and
``corsadmin check``: the same store calls, the same diff, the same explanation."""

from __future__ import annotations

from typing import Any, Final

from flask import Response, jsonify, stream_with_context

from ..db.export import export_text
from ..db.loader import spec_of
from ..engine.decide import Evaluation
from ..engine.explain import explain
from ..errors import FieldError, ValidationError
from ..policy.diff import diff_document, format_diff
from ..policy.document import parse_document
from ..policy.spec import TOKEN_RE
from ..state import state
from .blueprint import bp, db_session, store
from .body import Fields, json_body

#: How an import merges the document: by name, or making the database hold exactly it.
IMPORT_MODES: Final = ("merge", "replace")


@bp.get("/document")
def export_document() -> Response:
    """The whole policy as a document, sorted by name (``corsadmin export``), streamed
    as it is read: one SELECT whose rows arrive in chunks."""
    session = db_session()
    pieces = stream_with_context(export_text(session))
    return Response(pieces, mimetype="application/json")


def read_document_request(fields: Fields) -> tuple[Any, bool]:
    """(the document, replace?) of an import or a draft import body."""
    document = fields.value("document", required=True)
    replace = fields.choice("mode", IMPORT_MODES, "merge") == "replace"
    return document, replace


def in_document(error: ValidationError, *, own: tuple[str, ...] = ()) -> ValidationError:
    """A policy document's errors, their fields named inside the request's ``document``
    (but the request's ``own`` fields)."""
    return ValidationError(
        e
        if e.field in own
        else FieldError(f"document.{e.field}" if e.field else "document", e.message)
        for e in error.errors
    )


@bp.post("/document")
def import_document() -> Response:
    """Import a policy document (``corsadmin import``): merged by name, or with
    ``"mode": "replace"`` made exactly what the database holds; with ``"dry_run":
    true`` nothing is written and the diff is returned instead."""
    data = json_body()
    fields = Fields(data, ("document", "mode", "dry_run"))
    document, replace = read_document_request(fields)
    dry_run = fields.flag("dry_run")
    fields.done()
    try:
        specs = parse_document(document)
        if not dry_run:
            report = store().import_document(document, replace=replace)
    except ValidationError as error:
        raise in_document(error) from None
    if dry_run:
        live = {p.name: spec_of(p) for p in store().policies()}
        diffs = diff_document(live, specs, replace=replace)
        return jsonify(
            dry_run=True,
            changes=[d.as_document() for d in diffs],
            lines=format_diff(diffs) or ["importing the document would change nothing"],
            message=f"dry run: nothing was written ({len(diffs)} policies would change)",
        )
    return jsonify(
        dry_run=False,
        report={
            "created": report.created,
            "updated": report.updated,
            "deleted": report.deleted,
            "unchanged": report.unchanged,
        },
        message=f"imported the document: {report}",
    )


# --- check ------------------------------------------------------------------------------


def _check_request(fields: Fields) -> tuple[str, str, str, list[str], bool]:
    origin = fields.text("origin", required=True) or ""
    path = fields.text("path", required=True) or ""
    method = fields.text("method") or "GET"
    headers = fields.texts("headers")
    private_network = fields.flag("private_network")
    fields.done()
    if not path.startswith("/"):
        raise ValidationError.single("path", "must start with '/' (the request path)")
    if TOKEN_RE.fullmatch(method) is None:
        raise ValidationError.single("method", f"{method!r} is not an HTTP method")
    for i, header in enumerate(headers):
        name = header.partition(":")[0].strip()
        if TOKEN_RE.fullmatch(name) is None or not header.isprintable():
            raise ValidationError.single(f"headers[{i}]", "must be a header NAME or 'NAME: value'")
    return origin, path, method, headers, private_network


def _evaluation(evaluation: Evaluation) -> dict[str, Any]:
    headers = [[name, value] for name, value in evaluation.headers]
    if evaluation.vary:
        headers.append(["Vary", "Origin"])
    return {
        "allowed": evaluation.decision.allowed,
        "reason": evaluation.decision.reason,
        "code": evaluation.decision.code,
        "headers": headers,
    }


@bp.post("/check")
def check() -> Response:
    """What a page on ``origin`` gets when it calls ``path`` (``corsadmin check``): the
    policy that matched and why, the origin verdict, the preflight and the headers,
    decided by the function the request hook calls, on the database's policy."""
    fields = Fields(json_body(), ("origin", "path", "method", "headers", "private_network"))
    origin, path, method, headers, private_network = _check_request(fields)
    snapshot = state().load()  # what changed since this process's snapshot is read
    explanation = explain(snapshot, origin, path, method, headers, private_network=private_network)
    policy = explanation.policy
    return jsonify(
        allowed=explanation.allowed,
        policy=policy.name if policy is not None else None,
        revision=explanation.revision,
        preflight=None
        if explanation.preflight is None
        else {
            "reasons": explanation.preflight_reasons,
            "problems": explanation.preflight_problems,
            **_evaluation(explanation.preflight),
        },
        response=_evaluation(explanation.actual),
        explanation=explanation.lines(),
    )
