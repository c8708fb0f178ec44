"""The active draft: ``corsadmin draft show|import|report|promote|discard``, through the
same :class:`~corsadmin.db.drafts.DraftStore` calls.

The draft's ``ETag`` is its version; promoting or discarding it needs ``If-Match``
(428 without it, 412 when it was saved into since: the store's
:class:`~corsadmin.errors.StaleDraft`).
"""

from __future__ import annotations

from flask import Response, jsonify

from ..cli.drafts import draft_diffs, draft_document
from ..db.drafts import DraftStore
from ..db.impact import draft_report
from ..db.promote import live_policies
from ..errors import ValidationError
from ..policy.document import parse_document
from ..state import state
from .blueprint import bp, db_session, etag, if_match, ordered_json, store
from .body import Fields, json_body
from .document_views import in_document, read_document_request


def drafts() -> DraftStore:
    return DraftStore(store())


def _with_etag(response: Response, version: int) -> Response:
    response.headers["ETag"] = etag(version)
    return response


@bp.get("/draft")
def draft() -> Response:
    """Who proposed the active draft, when and why, and what it changes, field by field
    and rule by rule (``corsadmin draft show --format json``); 404 when there is none."""
    found = drafts().require_active()
    diffs = draft_diffs(found, live_policies(db_session(), found))
    return _with_etag(ordered_json(draft_document(found, diffs)), found.version)


@bp.post("/draft/import")
def import_draft() -> Response:
    """Propose a policy document as the draft (``corsadmin draft import``): merged by
    name into the active draft (made if there is none); nothing live changes."""
    fields = Fields(json_body(), ("document", "mode", "reason"))
    document, replace = read_document_request(fields)
    reason = fields.text("reason")
    fields.done()
    try:
        parse_document(document)  # the document's errors first, all of them
        names = drafts().import_document(document, replace=replace, reason=reason)
    except ValidationError as error:
        raise in_document(error, own=("reason",)) from None
    found = drafts().require_active()
    changed = ", ".join(names) if names else "nothing (it matches the live policies)"
    response = jsonify(
        draft=found.id,
        version=found.version,
        policies=names,
        message=f"draft {found.id} (version {found.version}) proposes changes to: {changed}",
    )
    return _with_etag(response, found.version)


@bp.get("/draft/report")
def report() -> Response:
    """What the active draft would do to real traffic (``corsadmin draft report
    --format json``): from history and from live traffic."""
    with state().db.engine.connect() as connection:
        found = draft_report(connection)
    return _with_etag(ordered_json(found.as_document()), found.draft.version)


@bp.post("/draft/promote")
def promote() -> Response:
    """Make the active draft live in one transaction (``corsadmin draft promote``);
    refused (409) when a live policy it changes changed since it was saved. If-Match:
    the draft's version."""
    expected = if_match(required=True)
    promotion = drafts().promote(expected_version=expected)
    changed = ", ".join(promotion.policies) or "nothing"
    return jsonify(
        draft=promotion.draft_id,
        revision=promotion.revision,
        policies=list(promotion.policies),
        changes=[d.as_document() for d in promotion.diffs],
        message=f"promoted draft {promotion.draft_id} at revision {promotion.revision}: "
        f"changed {changed}",
    )


@bp.post("/draft/discard")
def discard() -> Response:
    """Drop the active draft; the live policies stay as they are. If-Match: the draft's
    version."""
    expected = if_match(required=True)
    draft_id = drafts().discard(expected_version=expected)
    return jsonify(
        draft=draft_id, message=f"discarded draft {draft_id}; the live policies are unchanged"
    )
