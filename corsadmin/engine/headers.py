"""The bridge to Flask-CORS: a decision in, the response headers out.

Flask-CORS 6 has no public way to compute its origins per request: its
``CORS`` extension reads ``origins`` once, at ``init_app``, and matches each
request against that fixed list one pattern at a time
(``flask_cors.extension.make_after_request_function`` and
``flask_cors.core.get_cors_origins``). Rebuilding a ``CORS`` object per change
would mean registering a new ``after_request`` hook each time.

So corsadmin decides the origin itself (in :mod:`corsadmin.engine.snapshot`, in time
that does not grow with the number of origins) and then calls Flask-CORS's
header writer, ``flask_cors.core.get_cors_headers``, with options made for
that one decision: ``origins`` holding exactly the allowed origin (as an
escaped, compiled expression, so Flask-CORS's "probably a regex" guess cannot
misread an IPv6 origin's brackets), or ``'*'`` with ``send_wildcard`` for an
any-origin policy. Flask-CORS then writes ``Access-Control-Allow-Origin``,
``-Allow-Credentials``, ``-Expose-Headers``, ``-Allow-Private-Network`` and, for
a preflight, ``-Allow-Methods``, ``-Allow-Headers`` and ``-Max-Age``, exactly as
it would for a static configuration.

Two options are fixed on purpose: ``always_send`` is off (Flask-CORS would
otherwise list every allowed origin on a request without ``Origin``), and
``vary_header`` is off because corsadmin adds ``Vary: Origin`` itself, on the
refused responses too, where Flask-CORS adds none.

The headers Flask-CORS computed are memoized with the whole answer (in
:func:`corsadmin.engine.decide.decide`), so a repeated decision costs a dictionary
lookup; a new one costs one Flask-CORS call at most (:func:`cors_headers`).
"""

from __future__ import annotations

import re
from typing import Any, cast

from flask_cors.core import DEFAULT_OPTIONS, get_cors_headers, probably_regex, serialize_options
from werkzeug.datastructures import Headers

from .snapshot import CompiledPolicy, CorsRequest, Decision

HeaderPairs = tuple[tuple[str, str], ...]

#: Every response header Flask-CORS may write; on a covered path corsadmin owns them.
CORS_RESPONSE_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Allow-Private-Network",
)

_OPTIONS_KEY = "flask_cors_options"  # in CompiledPolicy.memo
_ALLOW_ORIGIN = CORS_RESPONSE_HEADERS[0]
_FORBIDDEN = re.compile(r"[\r\n\x00]")
# RFC 9110 token: what a header name is made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def requested_header_names(value: str) -> str | None:
    """``Access-Control-Request-Headers`` as the Fetch standard reads it, or None if empty.

    A list of header names separated by commas, with optional spaces and tabs around
    each: empty items (``x-a,,x-b``, a leading or trailing comma) are no names,
    names compare case-insensitively (lower-cased here, as browsers send them) and
    a name listed twice is one name. Flask-CORS splits on commas and echoes every
    item it allows, so without this an allow-any policy answered
    ``Access-Control-Allow-Headers: , x-a, x-b``.

    A list with an item that is not a header name at all (a browser never sends
    one) is malformed as a whole: None, so nothing of it is echoed back.

    Only called when an answer is computed (the answers are memoized per policy,
    at most ``EVALUATION_MEMO_LIMIT`` of them), so nothing here needs a cache of its own.
    """
    names: dict[str, None] = {}
    for part in value.split(","):
        item = part.strip(" \t")
        if not item:
            continue
        if _TOKEN.fullmatch(item) is None:
            return None
        names[item.lower()] = None
    return ", ".join(names) if names else None


def _literal(name: str) -> str | re.Pattern[str]:
    """A header name Flask-CORS will compare literally, whatever characters it holds."""
    if name != "*" and probably_regex(name):
        return re.compile(re.escape(name) + r"\Z", re.IGNORECASE)
    return name


def flask_cors_options(policy: CompiledPolicy) -> dict[str, Any]:
    """The policy's settings as Flask-CORS keyword options (``origins`` set per decision).

    Raw options, as one would pass to ``CORS(...)``: Flask-CORS's own
    ``serialize_options`` normalizes them (its internal type differs between 6.x
    releases, so corsadmin never builds or edits the normalized form itself).
    """
    cached = policy.memo.get(_OPTIONS_KEY)
    if cached is not None:
        return dict(cached)
    spec = policy.spec
    options = dict(DEFAULT_OPTIONS)
    options.update(
        origins="*",
        methods=list(spec.methods),
        allow_headers=[_literal(h) for h in spec.allow_headers],
        expose_headers=list(spec.expose_headers) or None,
        supports_credentials=spec.credentials,
        # As a string: Flask-CORS drops falsy values, and "Max-Age: 0" means "do not cache".
        max_age=None if spec.max_age is None else str(spec.max_age),
        send_wildcard=True,
        always_send=policy.any_origin,
        vary_header=False,
        allow_private_network=spec.private_network,
        automatic_options=False,
        intercept_exceptions=False,
    )
    policy.memo[_OPTIONS_KEY] = options
    return dict(options)


def cors_headers(decision: Decision, request: CorsRequest) -> HeaderPairs:
    """The Access-Control-* headers Flask-CORS writes for this decision.

    Not memoized here: :func:`corsadmin.engine.decide.decide` memoizes whole
    evaluations. What a memo miss costs is kept small: Flask-CORS computes the
    headers for a stand-in origin (:data:`STAND_IN_ORIGIN`), with options made
    once per policy, and the request's origin takes its place in
    ``Access-Control-Allow-Origin`` (the one header that echoes it); for a request
    that is not a preflight the result depends on nothing else of the request, so
    it is made once per policy.
    """
    policy = decision.policy
    allow_origin = decision.allow_origin
    if policy is None or allow_origin is None:
        return ()
    origin = request.origin
    if not origin:  # Flask-CORS sends nothing then, or '*' for an any-origin policy
        return _computed(_serialized(policy, allow_origin), request, origin)
    star = allow_origin == "*"
    if request.method == "OPTIONS":
        template = _computed(_serialized(policy, star), request, STAND_IN_ORIGIN)
    else:
        key = f"headers:{star}:{request.private_network}"
        cached: HeaderPairs | None = policy.memo.get(key)
        if cached is None:
            cached = _computed(_serialized(policy, star), request, STAND_IN_ORIGIN)
            policy.memo[key] = cached
        template = cached
    return template if star else _echoing(template, origin)


#: Stands for the request's origin while Flask-CORS computes an answer (a name that
#: cannot exist: ``.invalid``, RFC 2606); :func:`_echoing` puts the origin in its place.
STAND_IN_ORIGIN = "https://origin.corsadmin.invalid"


def _serialized(policy: CompiledPolicy, allowed: str | bool) -> Any:
    """Flask-CORS's normalized options for the policy: allowing ``allowed`` (an origin),
    or '*' (True) or the stand-in origin (False), the last two made once per policy."""
    if isinstance(allowed, str):
        options = flask_cors_options(policy)
        if allowed != "*":
            options["origins"] = [re.compile(re.escape(allowed) + r"\Z")]
        return serialize_options(options)
    key = f"serialized:{allowed}"
    cached = policy.memo.get(key)
    if cached is None:
        options = flask_cors_options(policy)
        if not allowed:
            options["origins"] = [re.compile(re.escape(STAND_IN_ORIGIN) + r"\Z")]
        cached = policy.memo[key] = serialize_options(options)
    return cached


def _computed(options: Any, request: CorsRequest, origin: str | None) -> HeaderPairs:
    """Flask-CORS's headers for ``request``, its ``Origin`` being ``origin``."""
    request_headers: dict[str, str] = {}
    if origin is not None:
        request_headers["Origin"] = origin
    if request.request_method is not None:
        request_headers["Access-Control-Request-Method"] = request.request_method
    if request.request_headers is not None:
        names = requested_header_names(request.request_headers)
        if names is not None:
            request_headers["Access-Control-Request-Headers"] = names
    if request.private_network:
        request_headers["Access-Control-Request-Private-Network"] = "true"
    # A plain dict: Flask-CORS only calls .get() and `in` on it, and unlike Werkzeug's
    # Headers it accepts any value a client sent (what it holds is filtered below).
    written = get_cors_headers(options, cast(Headers, request_headers), request.method)
    # Some values echo the request (the origin, the requested headers). The hook appends
    # these pairs without Werkzeug's per-request check, so refuse anything a header value
    # may not hold here, once, when the answer is computed.
    return tuple(
        (str(k), str(v)) for k, v in written.items(multi=True) if _FORBIDDEN.search(str(v)) is None
    )


def _echoing(template: HeaderPairs, origin: str) -> HeaderPairs:
    """``template`` with the request's origin in place of the stand-in (dropped, as
    :func:`_computed` drops any value, if it holds what a header value may not)."""
    if _FORBIDDEN.search(origin) is not None:
        return tuple(pair for pair in template if pair[1] != STAND_IN_ORIGIN)
    if template and template[0] == (_ALLOW_ORIGIN, STAND_IN_ORIGIN):  # Flask-CORS's order
        return ((_ALLOW_ORIGIN, origin), *template[1:])
    return tuple(
        (name, origin) if value == STAND_IN_ORIGIN and name == _ALLOW_ORIGIN else (name, value)
        for name, value in template
    )
