"""The API blueprint: authentication first, problems for every error, what views share.

The views live in :mod:`.policy_views`, :mod:`.document_views`, :mod:`.report_views`
and :mod:`.draft_views`; each registers its routes on :data:`bp`. Any other path under
the API answers a problem too (404, or 405 with ``Allow``), never an HTML page.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import sqlalchemy as sa
from flask import Blueprint, current_app, request
from flask.wrappers import Response as FlaskResponse
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from ..db.store import BUSY_MESSAGE, PolicyStore, database_busy
from ..errors import CorsAdminError, PolicyNotFound
from ..policy.spec import NAME_RE
from ..runtime.fleet import change_note
from ..state import state
from . import auth
from .problems import Problem, http_problem, problem_of

bp = Blueprint("corsadmin_api", __name__)

#: The API's version: a change that breaks a client gets a new one (and a new path).
API_VERSION: Final = "1"
#: Where the API is mounted, under the admin prefix (``/corsadmin/api/v1``).
API_PATH: Final = f"/api/v{API_VERSION}"

#: Endpoints answered without a token: the OpenAPI description and the problems of
#: paths and methods the API does not have.
PUBLIC_ENDPOINTS: Final = frozenset({"corsadmin_api.openapi", "corsadmin_api.unknown"})

#: Seconds a client is told to wait before sending a change refused as busy again.
BUSY_RETRY_AFTER: Final = 1

#: The methods the API knows (for the ``Allow`` header of a 405).
_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")


@bp.before_request
def check_token() -> None:
    """Every endpoint but the public ones needs a token allowed this method."""
    if request.endpoint not in PUBLIC_ENDPOINTS:
        auth.require_token()


@bp.errorhandler(CorsAdminError)
def corsadmin_error(error: CorsAdminError) -> Response:
    """corsadmin's own errors (validation, not found, stale...) as problems."""
    db_session().rollback()
    return problem_of(error).get_response()


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    return http_problem(error).get_response()


@bp.errorhandler(sa.exc.OperationalError)
def database_error(error: sa.exc.OperationalError) -> Response:
    """A busy database is a 503 with ``Retry-After`` (nothing was written); any other
    database error stays a 500."""
    db_session().rollback()
    if not database_busy(error):
        raise error
    detail = BUSY_MESSAGE
    return Problem(503, detail, headers={"Retry-After": str(BUSY_RETRY_AFTER)}).get_response()


@bp.route("/", defaults={"rest": ""}, methods=_METHODS, strict_slashes=False)
@bp.route("/<path:rest>", methods=_METHODS)
def unknown(rest: str) -> Response:
    """Any path or method the API does not have: 404, or 405 naming the methods the
    path has."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != "corsadmin_api.unknown":
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise NotFound(f"the API has no {request.path!r}; see {openapi_url()}")


def openapi_url() -> str:
    return state().admin_prefix + API_PATH + "/openapi.json"


# --- what the views share ---------------------------------------------------------------


def db_session() -> Any:
    return state().db.session


def store() -> PolicyStore:
    """The policy store, acting as the request's token (``token:<name>``)."""
    return state().store(actor=auth.current_token().actor)


def checked_name(name: str) -> str:
    """A policy name from the URL; one no policy can have is not found (never sent to
    the database: it may hold a NUL)."""
    if NAME_RE.fullmatch(name) is None:
        raise PolicyNotFound(name)
    return name


def etag(version: int) -> str:
    return f'"{version}"'


_ETAG_RE: Final = re.compile(r'"([0-9]{1,18})"')


def if_match(*, required: bool) -> int | None:
    """The version ``If-Match`` names (None for ``*``, or when absent and not required):
    428 when required and absent, 400 unless it is one strong ETag or ``*``."""
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        if required:
            raise Problem(
                428,
                'this change needs If-Match: "<version>" (the ETag of the GET that read '
                "it), or If-Match: * to change whatever version is stored",
            )
        return None
    value = header.strip()
    if value == "*":
        return None
    found = _ETAG_RE.fullmatch(value)
    if found is None:
        raise Problem.field("If-Match", 'must be one ETag as the API sent it ("<version>") or *')
    return int(found.group(1))


def ordered_json(document: Any) -> FlaskResponse:
    """``document`` as JSON with its keys in their order (``jsonify`` sorts them): for
    the documents the CLI prints as they are (``draft show``, ``draft report``)."""
    body = json.dumps(document, ensure_ascii=False)
    return current_app.response_class(body, mimetype="application/json")


def enforced_message(what: str) -> str:
    """``what``, and how soon every worker checks for it (as the CLI says; who enforces
    it is an observation: ``GET /workers``)."""
    return f"{what}; {change_note(state().config.refresh_interval)}"
