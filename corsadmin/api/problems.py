"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal of the API is one JSON object: ``type`` (a stable URN naming the kind of
problem, listed in :data:`PROBLEM_TYPES`), ``title`` (the kind in words), ``status``,
``detail`` (the one message, as the CLI prints it) and ``errors`` (one
``{"field", "message"}`` per problem, the field named as the CLI and the document
name it: ``origin``, ``policies[2].origins[0]``...).

:class:`Problem` is a Werkzeug HTTP exception, so a view raises it and the
blueprint's error handler writes it; corsadmin's own errors
(:mod:`corsadmin.errors`) are turned into problems by :func:`problem_of`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..errors import (
    CorsAdminError,
    DraftConflict,
    FieldError,
    NoActiveDraft,
    OriginRuleNotFound,
    PolicyNotFound,
    StaleDraft,
    StaleVersion,
    ValidationError,
)

PROBLEM_JSON: Final = "application/problem+json"

#: Every ``type`` a problem of the API may have, with its title.
PROBLEM_TYPES: Final[Mapping[str, str]] = {
    "urn:corsadmin:problem:validation": "The request breaks a rule; nothing was changed",
    "urn:corsadmin:problem:malformed": "The request body is not what this endpoint reads",
    "urn:corsadmin:problem:too-large": "The request body is too large",
    "urn:corsadmin:problem:unsupported-media-type": "The request body is not JSON",
    "urn:corsadmin:problem:unauthenticated": "A valid API token is required",
    "urn:corsadmin:problem:insufficient-scope": "This token may not do that",
    "urn:corsadmin:problem:throttled": "Too many failed authentications",
    "urn:corsadmin:problem:not-found": "Not found",
    "urn:corsadmin:problem:method-not-allowed": "Method not allowed",
    "urn:corsadmin:problem:precondition-required": "If-Match is required",
    "urn:corsadmin:problem:stale": "Changed since you read it; nothing was changed",
    "urn:corsadmin:problem:conflict": "Refused: it conflicts with a change made since",
    "urn:corsadmin:problem:busy": "The database is busy; nothing was changed",
    "urn:corsadmin:problem:error": "The request was refused",
}

#: The problem type of each status when nothing more specific applies.
_BY_STATUS: Final[Mapping[int, str]] = {
    400: "urn:corsadmin:problem:malformed",
    401: "urn:corsadmin:problem:unauthenticated",
    403: "urn:corsadmin:problem:insufficient-scope",
    404: "urn:corsadmin:problem:not-found",
    405: "urn:corsadmin:problem:method-not-allowed",
    409: "urn:corsadmin:problem:conflict",
    412: "urn:corsadmin:problem:stale",
    413: "urn:corsadmin:problem:too-large",
    415: "urn:corsadmin:problem:unsupported-media-type",
    428: "urn:corsadmin:problem:precondition-required",
    429: "urn:corsadmin:problem:throttled",
    503: "urn:corsadmin:problem:busy",
}


def problem_type(status: int) -> str:
    return _BY_STATUS.get(status, "urn:corsadmin:problem:error")


class Problem(HTTPException):
    """A refusal of the API, written as problem details by the blueprint."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str | None = None,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = status
        self.type = type_ or problem_type(status)
        assert self.type in PROBLEM_TYPES, self.type
        self.errors = tuple(errors)
        self.extra_headers = dict(headers or {})
        super().__init__(description=detail)

    @classmethod
    def field(cls, field: str, message: str, *, status: int = 400) -> Problem:
        """A problem with one field of the request (not of the policy)."""
        return cls(
            status,
            str(FieldError(field, message)),
            type_="urn:corsadmin:problem:malformed",
            errors=[FieldError(field, message)],
        )

    def document(self) -> dict[str, Any]:
        status = self.code or 500
        return {
            "type": self.type,
            "title": PROBLEM_TYPES[self.type],
            "status": status,
            "detail": self.description or PROBLEM_TYPES[self.type],
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        body = json.dumps(self.document(), ensure_ascii=False)
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:  # a message quoting a lone surrogate a client sent
            body = json.dumps(self.document())
        response = Response(body, status=self.code, mimetype=PROBLEM_JSON)
        for name, value in self.extra_headers.items():
            response.headers[name] = value
        return response


def problem_of(error: CorsAdminError) -> Problem:
    """corsadmin's error as the API answers it, with the message the CLI prints."""
    if isinstance(error, ValidationError):
        return Problem(
            400, str(error), type_="urn:corsadmin:problem:validation", errors=error.errors
        )
    if isinstance(error, StaleVersion | StaleDraft):
        return Problem(412, str(error), type_="urn:corsadmin:problem:stale")
    if isinstance(error, DraftConflict):
        return Problem(409, str(error), type_="urn:corsadmin:problem:conflict")
    if isinstance(error, PolicyNotFound | OriginRuleNotFound | NoActiveDraft):
        return Problem(404, str(error), type_="urn:corsadmin:problem:not-found")
    code = error.code if isinstance(error, HTTPException) and error.code else 400
    return Problem(code, str(error))


def http_problem(error: HTTPException) -> Problem:
    """Any other HTTP error (a 404 of Werkzeug's, a 405) as a problem."""
    if isinstance(error, Problem):
        return error
    status = error.code or 500
    headers = {}
    if status == 405:
        allowed = error.get_headers().__iter__()
        headers = {name: value for name, value in allowed if name == "Allow"}
    return Problem(status, error.description or "", headers=headers)
