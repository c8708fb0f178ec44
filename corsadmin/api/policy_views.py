"""Policies and their origin rules: what ``corsadmin policy ...`` and ``corsadmin origin
...`` do, through the same store calls.

A policy's ``ETag`` is its version (``"3"``). Replacing, patching or deleting a policy
needs ``If-Match`` (428 without it, 412 when the policy moved on: the store's
:class:`~corsadmin.errors.StaleVersion`, checked under the policy's row lock, as the
admin UI's saves are). An origin rule's change takes ``If-Match`` too, but does not
need it: it writes that one rule and nothing else of the policy.

The origin rule an origin endpoint works on is named in the body (add, change) or in
the ``origin`` query parameter (remove), never in the path: an origin holds ``://``
and a ``re:`` rule any character, which proxies and routers rewrite in paths.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from flask import jsonify, request, url_for
from werkzeug.wrappers import Response

from ..admin import queries
from ..db.export import settings_spec
from ..db.loader import spec_of
from ..db.models import OriginRuleRow, Policy
from ..db.store import KEEP, Keep, OriginChange
from ..errors import PolicyNotFound, ValidationError
from ..limits import MAX_ORIGIN_PAGE
from ..policy.document import canonical
from ..policy.origins import MAX_ORIGIN_LENGTH
from ..policy.spec import OriginEntry, format_time, parse_origin_entry, validate_policy
from .blueprint import bp, checked_name, db_session, enforced_message, etag, if_match, store
from .body import Fields, json_body, query_int

#: The origin rules one page of ``GET /policies/<name>/origins`` holds unless ``limit``
#: says otherwise (at most :data:`~corsadmin.limits.MAX_ORIGIN_PAGE`).
ORIGIN_PAGE: Final = 100

#: The fields of an origin rule in a request body.
ORIGIN_FIELDS = ("origin", "note", "expires")


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def policy_summary(policy: Policy, origins: int) -> dict[str, Any]:
    """A policy as the list shows it (as ``corsadmin policy list``: no rule read)."""
    return {
        "name": policy.name,
        "path": policy.path,
        "version": policy.version,
        "enabled": policy.enabled,
        "credentials": policy.credentials,
        "private_network": policy.private_network,
        "priority": policy.priority,
        "origin_count": origins,
    }


def policy_response(name: str, status: int = 200) -> Response:
    """The stored policy ``name``: its document, version and who changed it when; its
    version as the ETag."""
    policy = _row(name)
    document = {
        **_about(policy, canonical(spec_of(policy))),
        "rules": [_rule(r) for r in _rules(policy)],
    }
    response = _json(document, status)
    response.headers["ETag"] = etag(policy.version)
    response.headers["Location"] = url_for(".policy", name=policy.name)
    return response


def _about(policy: Policy, document: dict[str, Any]) -> dict[str, Any]:
    """The policy's ``document``, version, and who changed it when."""
    return {
        "policy": document,
        "version": policy.version,
        "created_at": _time(policy.created_at),
        "created_by": policy.created_by,
        "updated_at": _time(policy.updated_at),
        "updated_by": policy.updated_by,
        "reviewed_at": _time(policy.reviewed_at),
        "reviewed_by": policy.reviewed_by,
    }


def _rules(policy: Policy) -> list[OriginRuleRow]:
    """The policy's origin rules in the order ``corsadmin policy show`` prints them
    (the database's order of their text)."""
    query = sa.select(OriginRuleRow).where(OriginRuleRow.policy_id == policy.id)
    return list(db_session().scalars(query.order_by(OriginRuleRow.origin)))


def _rule(rule: OriginRuleRow) -> dict[str, Any]:
    """An origin rule as stored, with who added it when (``corsadmin policy show``)."""
    return {
        "origin": rule.origin,
        "note": rule.note,
        "expires": _time(rule.expires_at),
        "created_at": _time(rule.created_at),
        "created_by": rule.created_by,
    }


def _row(name: str) -> Policy:
    """The policy's row (its rules are read only when touched)."""
    policy = queries.policy_row(db_session(), name)
    if policy is None:
        raise PolicyNotFound(name)
    return policy


def _json(document: Any, status: int = 200) -> Response:
    response = jsonify(document)
    response.status_code = status
    return response


@bp.get("/policies")
def policies() -> Response:
    """Every policy by name, with its origin rules counted (none is read)."""
    session = db_session()
    counts = queries.rule_counts(session)
    rows = queries.policy_rows(session)
    return _json({"policies": [policy_summary(p, counts.get(p.id, 0)) for p in rows]})


@bp.post("/policies")
def create_policy() -> Response:
    """Add a policy (the body: a policy as the document holds it)."""
    spec = store().create_policy(json_body())
    return policy_response(spec.name, 201)


@bp.get("/policies/<name>")
def policy(name: str) -> Response:
    """One policy, every origin rule included; its version as the ETag."""
    return policy_response(checked_name(name))


@bp.put("/policies/<name>")
def replace_policy(name: str) -> Response:
    """Replace a policy by the body (a whole policy: a field left out takes its default;
    ``name`` left out is the one in the URL, another one renames it). If-Match needed."""
    name = checked_name(name)
    data = json_body()
    expected = if_match(required=True)
    spec = validate_policy({"name": name, **data})
    after = store().update_policy(name, canonical(spec), expected_version=expected)
    return policy_response(after.name)


@bp.patch("/policies/<name>")
def patch_policy(name: str) -> Response:
    """Change the fields the body gives (``origins`` replaces the whole list), as
    ``corsadmin policy update``. If-Match needed."""
    name = checked_name(name)
    changes = json_body()
    expected = if_match(required=True)
    if not changes:
        raise ValidationError.single("", "nothing to change: give at least one field")
    after = store().update_policy(name, changes, expected_version=expected)
    return policy_response(after.name)


@bp.delete("/policies/<name>")
def delete_policy(name: str) -> Response:
    """Remove a policy and its origin rules. If-Match needed."""
    name = checked_name(name)
    expected = if_match(required=True)
    store().delete_policy(name, expected_version=expected)
    return Response(status=204)


# --- origin rules -----------------------------------------------------------------------


def _rule_change(data: dict[str, Any], *, adding: bool) -> tuple[str, str | Keep, object]:
    """(origin, note, expires) of a body: a field left out is kept as the rule has it;
    ``"expires": null`` makes it permanent, ``"note": null`` or ``""`` removes the note."""
    fields = Fields(data, ORIGIN_FIELDS)
    origin = fields.text("origin", required=True)
    note: str | Keep = KEEP
    if "note" in data:
        note = fields.text("note") or ""
    expires: object = KEEP
    if "expires" in data:
        expires = fields.text("expires")
    fields.done()
    assert origin is not None
    if not adding and isinstance(note, Keep) and isinstance(expires, Keep):
        raise ValidationError.single("", "nothing to change: give note or expires")
    return origin, note, expires


def _origin_response(change: OriginChange, status: int) -> Response:
    entry: OriginEntry = change.entry
    text, policy = entry.rule.text, change.policy
    if change.outcome == "allowed":
        message = enforced_message(f"allowed {text} on {policy}")
    elif change.outcome == "changed":
        message = enforced_message(f"changed {text} on {policy}: {change.details()}")
    else:
        message = (
            f"{text} is allowed on {policy} already; left as it was ({change.state()}); "
            "note or expires change it"
        )
    version = _row(policy).version
    document = {
        "policy": policy,
        "outcome": change.outcome,
        "origin": {"origin": text, "note": entry.note, "expires": _time(entry.expires)},
        "version": version,
        "message": message,
    }
    response = _json(document, status)
    response.headers["ETag"] = etag(version)
    return response


@bp.get("/policies/<name>/origins")
def origin_page(name: str) -> Response:
    """A page of the policy's origin rules, in the order ``GET /policies/<name>`` lists
    them all: at most ``limit`` after the rule ``after`` (the previous page's ``next``),
    with the policy's settings (its document without ``origins``), version and rule
    count. The cost of a page does not grow with the policy (keyset paging)."""
    policy = _row(checked_name(name))
    limit = query_int("limit", default=ORIGIN_PAGE, minimum=1, maximum=MAX_ORIGIN_PAGE)
    assert limit is not None
    after = request.args.get("after") or None
    if after is not None and (len(after) > queries.MAX_CURSOR_LENGTH or not after.isprintable()):
        raise ValidationError.single(
            "after",
            f"must be an origin rule as stored (printable, at most "
            f"{queries.MAX_CURSOR_LENGTH} characters): the previous page's next",
        )
    page = queries.origin_rule_page(db_session(), policy, after=after, size=limit)
    settings = canonical(settings_spec(policy))
    del settings["origins"]
    document = {
        **_about(policy, settings),
        "origin_count": page.total,
        "rules": [_rule(r) for r in page.rows],
        "next": page.next_after,
    }
    response = _json(document)
    response.headers["ETag"] = etag(policy.version)
    return response


@bp.post("/policies/<name>/origins")
def add_origin(name: str) -> Response:
    """Allow an origin on a policy, or change the note or expiry of a rule it has (as
    ``corsadmin origin add``): 201 when the rule is new, else 200 saying what happened."""
    name = checked_name(name)
    origin, note, expires = _rule_change(json_body(), adding=True)
    change = store().allow_origin(
        name, origin, note=note, expires=expires, expected_version=if_match(required=False)
    )
    return _origin_response(change, 201 if change.outcome == "allowed" else 200)


@bp.patch("/policies/<name>/origins")
def change_origin(name: str) -> Response:
    """Change the note or expiry of a rule the policy has (404 for one it has not)."""
    name = checked_name(name)
    origin, note, expires = _rule_change(json_body(), adding=False)
    change = store().change_origin(
        name, origin, note=note, expires=expires, expected_version=if_match(required=False)
    )
    return _origin_response(change, 200)


@bp.delete("/policies/<name>/origins")
def remove_origin(name: str) -> Response:
    """Stop allowing the origin rule named by the ``origin`` query parameter (as stored,
    or as typed), as ``corsadmin origin remove``."""
    name = checked_name(name)
    origin = request.args.get("origin", "")
    if not origin:
        raise ValidationError.single("origin", "is required (the query parameter)")
    if len(origin) > MAX_ORIGIN_LENGTH or not origin.isprintable():
        # Not a rule as stored: as typed, then (the reason it cannot be one, if so).
        origin = parse_origin_entry(origin).rule.text
    store().remove_origin(name, origin, expected_version=if_match(required=False))
    return Response(status=204)
