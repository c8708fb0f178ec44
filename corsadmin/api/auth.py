"""Who is calling: ``Authorization: Bearer cors_...``, its scope, and the throttle.

Every endpoint but the OpenAPI description asks :func:`require_token` first (the
blueprint's ``before_request``): a ``GET`` (or ``POST /check``, which changes nothing)
needs a ``read`` token, anything else a ``write`` one. No cookie is read or set, so
there is no CSRF surface.

Failed authentications (a token presented that is unknown, malformed, expired or
revoked) are counted per client address in this process, as the built-in login counts
failed passwords (:class:`corsadmin.admin.throttle.LoginThrottle`): past the allowance,
every request from that address is answered 429 with ``Retry-After`` until the window
has passed, whatever token it carries. A request without any token is refused (401)
without being counted.
"""

from __future__ import annotations

import time
from typing import Final

from flask import current_app, g, request

from ..admin.throttle import LoginThrottle
from ..db.tokens import READ, WRITE, Token, authenticate
from ..state import state
from .problems import Problem

#: Failed authentications allowed per client address within ``CORSADMIN_LOGIN_WINDOW``,
#: as a multiple of ``CORSADMIN_LOGIN_ATTEMPTS`` (the built-in login allows as many per
#: address across operator names).
ADDRESS_ALLOWANCE_FACTOR: Final = 4

#: Where this application's API throttle is kept (per process).
_THROTTLE_KEY: Final = "corsadmin_api_throttle"

#: The methods a ``read`` token may use.
READ_METHODS: Final = frozenset({"GET", "HEAD"})
#: Endpoints a ``read`` token may POST to: they change nothing (the request is a body).
READ_ONLY_POSTS: Final = frozenset({"corsadmin_api.check"})

_BEARER: Final = "bearer"
_REALM: Final = 'Bearer realm="corsadmin"'


def throttle() -> LoginThrottle:
    """This application's throttle of failed API authentications (per process)."""
    found = current_app.extensions.get(_THROTTLE_KEY)
    if not isinstance(found, LoginThrottle):
        config = state().config
        found = LoginThrottle(ADDRESS_ALLOWANCE_FACTOR * config.login_attempts, config.login_window)
        current_app.extensions[_THROTTLE_KEY] = found
    return found


def _address() -> list[str]:
    return [str(request.remote_addr)]


def _unauthenticated(detail: str, *, invalid: bool) -> Problem:
    challenge = _REALM + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


def presented_secret() -> str | None:
    """The bearer token of the request, or None when it has no Authorization header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != _BEARER or not secret.strip():
        raise _unauthenticated(
            "send the token as 'Authorization: Bearer <token>'", invalid=bool(secret.strip())
        )
    return secret.strip()


def require_token() -> Token:
    """The token of this request, allowed the request's method; else the refusal
    (401 none or invalid, 403 read-only on a write, 429 throttled)."""
    now = time.monotonic()
    wait = throttle().retry_after(_address(), now)
    if wait > 0:
        raise Problem(
            429,
            f"too many failed authentications from this address; try again in "
            f"{int(wait) + 1} seconds",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    secret = presented_secret()
    if secret is None:
        raise _unauthenticated(
            "an API token is required: 'Authorization: Bearer <token>' "
            "(create one with `corsadmin token create NAME --scope read|write`)",
            invalid=False,
        )
    token = authenticate(state().db.session, secret)
    if token is None:
        throttle().failed(_address(), now)
        raise _unauthenticated("the token is unknown, expired or revoked", invalid=True)
    reads = request.method in READ_METHODS or request.endpoint in READ_ONLY_POSTS
    needed = READ if reads else WRITE
    if not token.allows(needed):
        raise Problem(
            403,
            f"token {token.name!r} has the {token.scope!r} scope; "
            f"this request needs a {needed!r} token",
            headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{needed}"'},
        )
    g.corsadmin_api_token = token
    return token


def current_token() -> Token:
    """The token of this request (the access check let it in)."""
    token = g.get("corsadmin_api_token")
    assert isinstance(token, Token)
    return token
