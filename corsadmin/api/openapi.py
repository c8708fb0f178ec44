"""The OpenAPI 3.1 description of the API, kept in code beside it.

Served at ``<admin prefix>/api/v1/openapi.json`` (no token needed). The policy's fields
are described from :data:`corsadmin.policy.fields.FIELDS`, the problem types from
:data:`.problems.PROBLEM_TYPES`, the bounds from the constants that enforce them, so
the description follows the code; ``tests/test_api_openapi.py`` holds its paths and
methods equal to the blueprint's rules both ways, and runs schemathesis against it.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Response, jsonify

from ..admin.queries import MAX_CURSOR_LENGTH
from ..limits import MAX_ORIGIN_PAGE
from ..policy.fields import FIELDS, Kind, PolicyField
from ..policy.spec import NAME_RE
from ..state import state
from .blueprint import API_PATH, API_VERSION, bp
from .body import MAX_API_BODY_BYTES, MAX_QUERY_INT, MAX_QUERY_TEXT
from .document_views import IMPORT_MODES
from .policy_views import ORIGIN_PAGE
from .problems import PROBLEM_JSON, PROBLEM_TYPES
from .report_views import MAX_AUDIT_LIMIT

JSON: Final = "application/json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


_TEXT: Final[Schema] = {"type": "string"}
_TIME: Final[Schema] = {"type": "string", "description": "ISO 8601, UTC (2027-03-01T00:00:00Z)"}
_INT: Final[Schema] = {"type": "integer"}
_BOOL: Final[Schema] = {"type": "boolean"}
_TEXTS: Final[Schema] = {"type": "array", "items": _TEXT}


def _object(properties: dict[str, Schema], *, required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _field_schema(field: PolicyField) -> Schema:
    """A policy field's value, as the document holds it."""
    schema: Schema
    match field.kind:
        case Kind.TEXT | Kind.MULTILINE | Kind.PATH:
            schema = {"type": "string"}
        case Kind.BOOL:
            schema = {"type": "boolean"}
        case Kind.INT:
            schema = {"type": "integer"}
        case Kind.OPTIONAL_INT:
            schema = {"type": ["integer", "null"]}
        case Kind.TOKENS:
            schema = {"type": "array", "items": {"type": "string"}}
        case Kind.ORIGINS:
            schema = {"type": "array", "items": {"oneOf": [_TEXT, _ref("OriginRule")]}}
    description = field.label + (f": {field.hint}" if field.hint else "")
    return {**schema, "description": description}


def _settings_schema(properties: dict[str, Schema]) -> Schema:
    """A stored policy without its origins (``GET /policies/{name}/origins``)."""
    return {
        **_object(
            {k: v for k, v in properties.items() if k != "origins"},
            required=tuple(f.name for f in FIELDS if f.name != "origins"),
        ),
        "description": "A stored policy without its origins (they come a page at a time).",
    }


def _policy_schemas() -> dict[str, Schema]:
    """A policy in the document's form: as sent (fields left out take their default),
    as a change (any fields), as stored (every field)."""
    properties = {f.name: _field_schema(f) for f in FIELDS}
    required = tuple(f.name for f in FIELDS if f.required)
    return {
        "PolicyDocument": {
            **_object(properties, required=required),
            "additionalProperties": False,
        },
        "PolicyReplacement": {
            **_object(properties),
            "additionalProperties": False,
            "description": "A whole policy: a field left out takes its default; name left "
            "out is the one in the URL.",
        },
        "PolicyChanges": {
            **_object(properties),
            "additionalProperties": False,
            "minProperties": 1,
            "description": "The fields to change (origins replaces the whole list).",
        },
        "StoredPolicy": _object(properties, required=tuple(f.name for f in FIELDS)),
        "PolicySettings": _settings_schema(properties),
        "StoredRule": {
            **_object(
                {
                    "origin": _TEXT,
                    "note": _TEXT,
                    "expires": _nullable(_TIME),
                    "created_at": _TIME,
                    "created_by": _TEXT,
                },
                required=("origin", "note", "expires", "created_at", "created_by"),
            ),
            "additionalProperties": False,
        },
        "OriginRule": {
            **_object(
                {"origin": _TEXT, "note": _TEXT, "expires": _nullable(_TIME)},
                required=("origin",),
            ),
            "additionalProperties": False,
        },
    }


#: A stored policy's version and who changed it when (beside its document).
_ABOUT: Final[Schema] = {
    "version": _INT,
    "created_at": _TIME,
    "created_by": _TEXT,
    "updated_at": _TIME,
    "updated_by": _TEXT,
    "reviewed_at": _nullable(_TIME),
    "reviewed_by": _nullable(_TEXT),
}
_RULES: Final[Schema] = {"type": "array", "items": _ref("StoredRule")}


def _resource_schemas() -> dict[str, Schema]:
    return {
        "Policy": _object(
            {"policy": _ref("StoredPolicy"), **_ABOUT, "rules": _RULES},
            required=("policy", "version", "created_at", "updated_at", "rules"),
        ),
        "OriginPage": _object(
            {
                "policy": _ref("PolicySettings"),
                **_ABOUT,
                "origin_count": _INT,
                "rules": _RULES,
                "next": {
                    **_nullable(_TEXT),
                    "description": "pass as after for the next page (null: last page)",
                },
            },
            required=("policy", "version", "origin_count", "rules", "next"),
        ),
        "PolicyList": _object(
            {
                "policies": {
                    "type": "array",
                    "items": _object(
                        {
                            "name": _TEXT,
                            "path": _TEXT,
                            "version": _INT,
                            "enabled": _BOOL,
                            "credentials": _BOOL,
                            "private_network": _BOOL,
                            "priority": _INT,
                            "origin_count": _INT,
                        },
                        required=("name", "path", "version", "origin_count"),
                    ),
                }
            },
            required=("policies",),
        ),
        **_origin_schemas(),
    }


def _origin_schemas() -> dict[str, Schema]:
    return {
        "OriginRequest": {
            **_object(
                {"origin": _TEXT, "note": _nullable(_TEXT), "expires": _nullable(_TIME)},
                required=("origin",),
            ),
            "additionalProperties": False,
            "description": "A field left out is kept as the rule has it; expires null: "
            "the rule never expires; note null or empty: no note.",
        },
        "OriginChange": _object(
            {
                "policy": _TEXT,
                "outcome": {"enum": ["allowed", "changed", "unchanged"]},
                "origin": _object(
                    {"origin": _TEXT, "note": _TEXT, "expires": _nullable(_TIME)},
                    required=("origin", "note", "expires"),
                ),
                "version": _INT,
                "message": _TEXT,
            },
            required=("policy", "outcome", "origin", "version", "message"),
        ),
    }


def _problem_schema() -> Schema:
    return _object(
        {
            "type": {"enum": sorted(PROBLEM_TYPES)},
            "title": _TEXT,
            "status": _INT,
            "detail": _TEXT,
            "errors": {
                "type": "array",
                "items": _object({"field": _TEXT, "message": _TEXT}, required=("field", "message")),
            },
        },
        required=("type", "title", "status", "detail", "errors"),
    )


def _diff_schema() -> Schema:
    before_after = _object({"before": {}, "after": {}})
    return _object(
        {
            "name": _TEXT,
            "action": {"enum": ["create", "update", "delete"]},
            "fields": {"type": "object", "additionalProperties": before_after},
            "origins": _object(
                {
                    "added": {"type": "array"},
                    "removed": {"type": "array"},
                    "changed": {"type": "array", "items": before_after},
                }
            ),
        },
        required=("name", "action", "fields", "origins"),
    )


def _document_schemas() -> dict[str, Schema]:
    return {
        "Document": {
            **_object(
                {"corsadmin": {"const": 1}, "policies": {"type": "array", "items": {}}},
                required=("corsadmin", "policies"),
            ),
            "description": "A policy document (docs/policy-document.md): each of its "
            "policies is a PolicyDocument.",
        },
        "ImportRequest": {
            **_object(
                {
                    "document": _ref("Document"),
                    "mode": {"enum": list(IMPORT_MODES), "default": "merge"},
                    "dry_run": {"type": "boolean", "default": False},
                },
                required=("document",),
            ),
            "additionalProperties": False,
        },
        "ImportResult": _object(
            {
                "dry_run": _BOOL,
                "report": _object(
                    {k: _TEXTS for k in ("created", "updated", "deleted", "unchanged")}
                ),
                "changes": {"type": "array", "items": _ref("PolicyDiff")},
                "lines": _TEXTS,
                "message": _TEXT,
            },
            required=("dry_run", "message"),
        ),
        "PolicyDiff": _diff_schema(),
    }


def _check_schemas() -> dict[str, Schema]:
    evaluation = _object(
        {
            "allowed": _BOOL,
            "reason": _TEXT,
            "code": _TEXT,
            "headers": {"type": "array", "items": {"type": "array", "items": _TEXT}},
        },
        required=("allowed", "reason", "code", "headers"),
    )
    preflight = {
        **evaluation,
        "properties": {**evaluation["properties"], "reasons": _TEXTS, "problems": _TEXTS},
    }
    return {
        "CheckRequest": {
            **_object(
                {
                    "origin": _TEXT,
                    "path": {"type": "string", "pattern": "^/"},
                    "method": {"type": "string", "default": "GET"},
                    "headers": {**_TEXTS, "description": "NAME or 'NAME: value'"},
                    "private_network": {"type": "boolean", "default": False},
                },
                required=("origin", "path"),
            ),
            "additionalProperties": False,
        },
        "CheckResult": _object(
            {
                "allowed": _BOOL,
                "policy": _nullable(_TEXT),
                "revision": _INT,
                "preflight": _nullable(preflight),
                "response": evaluation,
                "explanation": {**_TEXTS, "description": "as `corsadmin check` prints it"},
            },
            required=("allowed", "policy", "revision", "preflight", "response", "explanation"),
        ),
    }


def _report_schemas() -> dict[str, Schema]:
    risks = {"type": "array", "items": _object({"code": _TEXT, "message": _TEXT})}
    finding = _object(
        {
            "policy": _TEXT,
            "origin": _TEXT,
            "note": _TEXT,
            "expires_at": _nullable(_TIME),
            "last_seen_at": _nullable(_TIME),
            "expiry": _nullable({"enum": ["expired", "expiring"]}),
            "stale": _BOOL,
            "risks": risks,
        },
        required=("policy", "origin", "stale", "risks"),
    )
    findings = {"type": "array", "items": finding}
    due = _object(
        {"policy": _TEXT, "due_at": _TIME, "days_left": _INT}, required=("policy", "due_at")
    )
    return {
        "Review": _object(
            {
                "settings": _object({"stale_after_days": _INT, "expiring_within_days": _INT}),
                "limit": _INT,
                "totals": _object({k: _INT for k in ("due", "expiring", "stale", "risky")}),
                "due": {"type": "array", "items": due},
                "expiring": findings,
                "stale": findings,
                "risky_rules": findings,
                "risky_policies": {
                    "type": "array",
                    "items": _object({"policy": _TEXT, "path": _TEXT, "risks": risks}),
                },
            },
            required=("totals", "due", "expiring", "stale", "risky_rules", "risky_policies"),
        ),
        **_refused_and_audit_schemas(),
    }


def _refused_and_audit_schemas() -> dict[str, Schema]:
    refused = _object(
        {
            "policy": _TEXT,
            "origin": _TEXT,
            "count": _INT,
            "first_seen": _TIME,
            "last_seen": _TIME,
            "example_path": _TEXT,
            "example_method": _TEXT,
            "kind": {"enum": ["origin", "other", "junk", "stored junk"]},
            "policy_exists": _BOOL,
            "now_allowed_by": _nullable(_TEXT),
        },
        required=("policy", "origin", "count", "kind"),
    )
    event = _object(
        {
            "id": _INT,
            "at": _TIME,
            "actor": _TEXT,
            "action": _TEXT,
            "policy": _nullable(_TEXT),
            "summary": _TEXT,
            "revision": _INT,
            "before": {},
            "after": {},
        },
        required=("id", "at", "actor", "action", "policy", "summary"),
    )
    return {
        "Refused": _object(
            {"limit": _INT, "refused": {"type": "array", "items": refused}},
            required=("refused",),
        ),
        "Audit": _object(
            {
                "events": {"type": "array", "items": event},
                "next": {
                    **_nullable(_INT),
                    "description": "pass as before for the next page (null: last page)",
                },
            },
            required=("events", "next"),
        ),
    }


def _draft_schemas() -> dict[str, Schema]:
    return {
        "Draft": _object(
            {
                "draft": _INT,
                "version": _INT,
                "reason": _nullable(_TEXT),
                "created_by": _TEXT,
                "created_at": _TIME,
                "updated_by": _TEXT,
                "updated_at": _TIME,
                "policies": {
                    "type": "object",
                    "additionalProperties": {"enum": ["create", "update", "delete"]},
                },
                "diff": {"type": "array", "items": _ref("PolicyDiff")},
            },
            required=("draft", "version", "diff"),
        ),
        "DraftImportRequest": {
            **_object(
                {
                    "document": _ref("Document"),
                    "mode": {"enum": list(IMPORT_MODES), "default": "merge"},
                    "reason": _TEXT,
                },
                required=("document",),
            ),
            "additionalProperties": False,
        },
        "DraftSaved": _object(
            {"draft": _INT, "version": _INT, "policies": _TEXTS, "message": _TEXT},
            required=("draft", "version", "policies", "message"),
        ),
        "DraftReport": _object(
            {"draft": {"type": "object"}, "history": {"type": "object"}, "traffic": {}},
            required=("draft", "history", "traffic"),
        ),
        "Promotion": _object(
            {
                "draft": _INT,
                "revision": _INT,
                "policies": _TEXTS,
                "changes": {"type": "array", "items": _ref("PolicyDiff")},
                "message": _TEXT,
            },
            required=("draft", "revision", "policies", "message"),
        ),
        "Discarded": _object({"draft": _INT, "message": _TEXT}, required=("draft", "message")),
    }


def schemas() -> dict[str, Schema]:
    return {
        "Problem": _problem_schema(),
        **_policy_schemas(),
        **_resource_schemas(),
        **_document_schemas(),
        **_check_schemas(),
        **_report_schemas(),
        **_draft_schemas(),
        "Workers": _workers_schema(),
    }


def _workers_schema() -> Schema:
    """The fleet view (``GET /workers``)."""
    when = _nullable({**_TIME, "description": "ISO 8601, UTC, to the millisecond"})
    number = {"type": "number"}
    worker = _object(
        {
            "host": _TEXT,
            "pid": _INT,
            "status": {"enum": ["current", "lagging", "stale"]},
            "revision": _INT,
            "started_at": when,
            "loaded_at": when,
            "committed_at": when,
            "propagation": _nullable(number),
            "checked_at": when,
            "listening": _nullable(_BOOL),
            "interval": number,
            "reported_at": when,
        },
        required=("host", "pid", "status", "revision"),
    )
    summary = _object(
        {
            "revision": _INT,
            "enforcing": _INT,
            "workers": _INT,
            "seconds": _nullable(number),
            "complete": _BOOL,
            "text": _TEXT,
        },
        required=("revision", "enforcing", "workers", "text"),
    )
    return _object(
        {
            "revision": _INT,
            "committed_at": when,
            "now": when,
            "reachable": _BOOL,
            "error": _nullable(_TEXT),
            "all_current": _BOOL,
            "truncated": _BOOL,
            "counts": _object({k: _INT for k in ("current", "lagging", "stale")}),
            "summary": summary,
            "workers": {"type": "array", "items": worker},
        },
        required=("revision", "reachable", "all_current", "summary", "workers"),
    )


# --- operations --------------------------------------------------------------------------

_STATUS_TEXT: Final = {
    200: "OK",
    201: "Created",
    204: "Done (no content)",
    400: "Refused: the problem names each field",
    401: "No valid token (none, unknown, expired or revoked)",
    403: "The token's scope does not allow this (a read token on a write)",
    404: "Not found",
    409: "Refused: a change made since conflicts with this one",
    412: "If-Match names a version that is no longer the stored one; nothing was changed",
    413: f"The body is larger than {MAX_API_BODY_BYTES} bytes",
    415: "The body is not JSON",
    428: "If-Match is required",
    429: "Too many failed authentications from this address (see Retry-After)",
    503: "The database is busy; nothing was changed (see Retry-After)",
}

_ETAG_HEADER: Final[Schema] = {
    "ETag": {"description": 'The version, "<n>": send it back as If-Match', "schema": _TEXT}
}


def _problem(status: int) -> Schema:
    return {
        "description": _STATUS_TEXT[status],
        "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
    }


def _ok(schema: str | None, status: int = 200, *, etag: bool = False) -> dict[int, Schema]:
    response: Schema = {"description": _STATUS_TEXT[status]}
    if schema is not None:
        response["content"] = {JSON: {"schema": _ref(schema)}}
    if etag:
        response["headers"] = _ETAG_HEADER
    return {status: response}


_READ_ERRORS: Final = (401, 429)
_WRITE_ERRORS: Final = (400, 401, 403, 413, 415, 429, 503)


_EXAMPLE_POLICY: Final = {"name": "partner", "path": "/api/**", "origins": ["https://a.example"]}
_EXAMPLE_DOCUMENT: Final = {"corsadmin": 1, "policies": [_EXAMPLE_POLICY]}

#: An example of each request body (documentation, and the first requests schemathesis
#: sends).
BODY_EXAMPLES: Final[dict[str, Any]] = {
    "PolicyDocument": {
        "name": "preview-42",
        "path": "/preview/**",
        "origins": ["https://pr-42.preview.example"],
        "methods": ["GET", "POST"],
    },
    "PolicyReplacement": {**_EXAMPLE_POLICY, "credentials": True},
    "PolicyChanges": {"max_age": 600},
    "OriginRequest": {"origin": "https://b.example", "note": "ticket 42", "expires": None},
    "ImportRequest": {"document": _EXAMPLE_DOCUMENT, "mode": "merge", "dry_run": True},
    "CheckRequest": {
        "origin": "https://a.example",
        "path": "/api/items",
        "method": "PUT",
        "headers": ["Content-Type: application/json"],
    },
    "DraftImportRequest": {"document": _EXAMPLE_DOCUMENT, "reason": "partner moves"},
}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[int, Schema],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    parameters: tuple[Schema, ...] = (),
) -> Schema:
    every = {**responses, **{status: _problem(status) for status in errors}}
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {str(status): every[status] for status in sorted(every)},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": _ref(body), "example": BODY_EXAMPLES[body]}},
        }
    if parameters:
        operation["parameters"] = list(parameters)
    return operation


_NAME: Final[Schema] = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The policy's name",
    "schema": {"type": "string", "pattern": f"^{NAME_RE.pattern}$"},
    "example": "partner",
}


def _if_match(required: bool, what: str = "policy") -> Schema:
    return {
        "name": "If-Match",
        "in": "header",
        "required": required,
        "description": f'The {what}\'s ETag as read ("<version>"), or * for any version'
        + ("" if required else "; when given, a stale version is refused (412)"),
        "schema": {"type": "string"},
        "example": "*",
    }


def _query(
    name: str, schema: Schema, description: str, *, required: bool = False, example: Any = None
) -> Schema:
    parameter = {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }
    if example is not None:
        parameter["example"] = example
    return parameter


_CHANGE: Final = (*_WRITE_ERRORS, 404, 412, 428)


def _policy_paths() -> dict[str, Schema]:
    optional_match = _if_match(False)
    return {
        "/policies": {
            "get": _operation("listPolicies", "Every policy", _ok("PolicyList"), _READ_ERRORS),
            "post": _operation(
                "createPolicy",
                "Add a policy",
                _ok("Policy", 201, etag=True),
                _WRITE_ERRORS,
                body="PolicyDocument",
            ),
        },
        "/policies/{name}": {
            "parameters": [_NAME],
            "get": _operation(
                "getPolicy", "One policy", _ok("Policy", etag=True), (*_READ_ERRORS, 404)
            ),
            "put": _operation(
                "replacePolicy",
                "Replace a policy",
                _ok("Policy", etag=True),
                _CHANGE,
                body="PolicyReplacement",
                parameters=(_if_match(True),),
            ),
            "patch": _operation(
                "updatePolicy",
                "Change some fields of a policy",
                _ok("Policy", etag=True),
                _CHANGE,
                body="PolicyChanges",
                parameters=(_if_match(True),),
            ),
            "delete": _operation(
                "deletePolicy",
                "Remove a policy and its origin rules",
                _ok(None, 204),
                _CHANGE,
                parameters=(_if_match(True),),
            ),
        },
        "/policies/{name}/origins": _origin_operations(optional_match),
    }


#: ``GET /policies/{name}/origins``'s page: its size and where it starts.
_ORIGIN_PAGE_PARAMETERS: Final = (
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ORIGIN_PAGE},
        f"Origin rules per page (default {ORIGIN_PAGE})",
    ),
    _query(
        "after",
        {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
        "The next value of the previous page",
    ),
)


def _origin_operations(optional_match: Schema) -> Schema:
    origin = _query(
        "origin",
        {"type": "string", "minLength": 1},
        "The rule to remove, as stored or as typed (in the query: an origin holds '://')",
        required=True,
        example="https://a.example",
    )
    return {
        "parameters": [_NAME],
        "get": _operation(
            "listOrigins",
            "A page of a policy's origin rules, with its settings",
            _ok("OriginPage", etag=True),
            (400, *_READ_ERRORS, 404),
            parameters=_ORIGIN_PAGE_PARAMETERS,
        ),
        "post": _operation(
            "addOrigin",
            "Allow an origin on a policy (or change a rule's note or expiry)",
            {**_ok("OriginChange", 201, etag=True), **_ok("OriginChange", etag=True)},
            (*_WRITE_ERRORS, 404, 412),
            body="OriginRequest",
            parameters=(optional_match,),
        ),
        "patch": _operation(
            "changeOrigin",
            "Change the note or expiry of an origin rule",
            _ok("OriginChange", etag=True),
            (*_WRITE_ERRORS, 404, 412),
            body="OriginRequest",
            parameters=(optional_match,),
        ),
        "delete": _operation(
            "removeOrigin",
            "Stop allowing an origin rule",
            _ok(None, 204),
            (*_WRITE_ERRORS, 404, 412),
            parameters=(origin, optional_match),
        ),
    }


def _document_paths() -> dict[str, Schema]:
    return {
        "/document": {
            "get": _operation(
                "exportDocument", "The whole policy document", _ok("Document"), _READ_ERRORS
            ),
            "post": _operation(
                "importDocument",
                "Import a policy document (merge or replace; dry_run returns the diff)",
                _ok("ImportResult"),
                _WRITE_ERRORS,
                body="ImportRequest",
            ),
        },
        "/check": {
            "post": _operation(
                "checkRequest",
                "Explain what a page on an origin gets when it calls a path (a read token "
                "may ask: nothing is changed)",
                _ok("CheckResult"),
                (400, 401, 413, 415, 429),
                body="CheckRequest",
            )
        },
    }


def _report_paths() -> dict[str, Schema]:
    text = {"type": "string", "maxLength": MAX_QUERY_TEXT}
    audit_parameters = (
        _query("policy", text, "Only the events of this policy"),
        _query("actor", text, "Only the events of this actor (token:<name>, cli:...)"),
        _query("action", text, "Only the events of this action (policy.update, ...)"),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_LIMIT},
            "Events per page",
        ),
        _query(
            "before",
            {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_INT},
            "The next value of the previous page",
        ),
    )
    return {
        "/review": {
            "get": _operation("review", "What needs a decision", _ok("Review"), _READ_ERRORS)
        },
        "/refused": {
            "get": _operation(
                "refusedOrigins",
                "Refused origins, the most recently seen first",
                _ok("Refused"),
                (400, *_READ_ERRORS),
                parameters=(_query("policy", text, "Only the origins refused on this policy"),),
            )
        },
        "/audit": {
            "get": _operation(
                "auditLog",
                "The audit log, newest first",
                _ok("Audit"),
                (400, *_READ_ERRORS),
                parameters=audit_parameters,
            )
        },
        "/workers": {
            "get": _operation(
                "workers",
                "Every live process enforcing the policy, lagging and stale ones flagged",
                _ok("Workers"),
                _READ_ERRORS,
            )
        },
    }


def _draft_paths() -> dict[str, Schema]:
    draft_match = _if_match(True, "draft")
    return {
        "/draft": {
            "get": _operation(
                "getDraft", "The active draft", _ok("Draft", etag=True), (*_READ_ERRORS, 404)
            )
        },
        "/draft/import": {
            "post": _operation(
                "importDraft",
                "Propose a policy document as the draft",
                _ok("DraftSaved", etag=True),
                _WRITE_ERRORS,
                body="DraftImportRequest",
            )
        },
        "/draft/report": {
            "get": _operation(
                "draftReport",
                "What the active draft would do to real traffic",
                _ok("DraftReport", etag=True),
                (*_READ_ERRORS, 404),
            )
        },
        "/draft/promote": {
            "post": _operation(
                "promoteDraft",
                "Make the active draft live",
                _ok("Promotion"),
                (400, 401, 403, 404, 409, 412, 428, 429, 503),
                parameters=(draft_match,),
            )
        },
        "/draft/discard": {
            "post": _operation(
                "discardDraft",
                "Drop the active draft",
                _ok("Discarded"),
                (400, 401, 403, 404, 412, 428, 429, 503),
                parameters=(draft_match,),
            )
        },
    }


def _openapi_path() -> dict[str, Schema]:
    operation = _operation(
        "openapi", "This description (no token needed)", {200: {"description": "OK"}}, ()
    )
    operation["responses"]["200"]["content"] = {JSON: {"schema": {"type": "object"}}}
    operation["security"] = []
    return {"/openapi.json": {"get": operation}}


def openapi_document(server: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API mounted at ``server`` (a path)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "corsadmin API",
            "version": API_VERSION,
            "description": "CORS policy as data: policies, origin rules, the policy "
            "document, check, review, refused origins, the audit log and drafts. "
            "Authorization: Bearer <token> (corsadmin token create NAME --scope "
            "read|write): a read token may GET (and check), a write token anything. "
            "Errors are RFC 9457 problem details. A policy's ETag is its version: "
            "changing it needs If-Match.",
        },
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "paths": {
            **_policy_paths(),
            **_document_paths(),
            **_report_paths(),
            **_draft_paths(),
            **_openapi_path(),
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """This API's OpenAPI 3.1 description (public: no token needed)."""
    return jsonify(openapi_document(state().admin_prefix + API_PATH))
