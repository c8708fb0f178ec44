"""The request hook: every response of a covered path gets its CORS headers here.

The request's walk (docs/architecture.md): :func:`add_cors_headers` asks
:func:`corsadmin.engine.decide.decide` for the answer (memoized: the one
evaluator), writes the headers Flask-CORS computed, counts a CORS request for the
metrics and logs a refused one at DEBUG (:func:`observe`), and tells the
:data:`corsadmin.signals.decision_made` subscribers (usage counting is one).
:func:`install` registers it on an app with the preflight override. Kept short
and allocation-free on a memo hit: this is the hot path (``benchmarks/bench.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from flask import Flask, request
from werkzeug.wrappers import Response as BaseResponse

from ..engine.decide import Evaluation, decide
from ..engine.headers import CORS_RESPONSE_HEADERS, HeaderPairs
from ..signals import Receivers, decision_made, report_receiver_failure
from .metrics import MetricsRecorder
from .refresh import SnapshotHolder
from .refusals import log_refusal, refusal_log
from .trial import TrialRecorder, try_draft


class HookState(Protocol):
    """What the hook needs of the per-app state (``corsadmin.state.CorsAdminState``)."""

    app: Flask
    holder: SnapshotHolder
    admin_prefix: str
    answer_preflights: bool
    decisions: Receivers  # of decision_made, for this app
    trial_recorder: TrialRecorder  # counts what the active draft would answer otherwise
    secure_admin_response: Callable[[BaseResponse], object] | None
    metrics: MetricsRecorder | None  # None: CORSADMIN_METRICS is off

    def report_hook_failure(self, what: str) -> None: ...


def install(app: Flask, state: HookState) -> None:
    """Register the hook and the preflight override on ``app``."""

    # Every response gets its CORS headers here, errors included: Flask runs
    # after_request functions for 404s, 405s, redirects and 500s too. A preflight
    # of a covered path that the router (404, 405, a redirect) or an
    # authentication hook refused becomes the 204 the browser needs: preflights
    # carry no credentials, and answering them is corsadmin's job.
    def after_request(response: BaseResponse) -> BaseResponse:
        return add_cors_headers(state, response)

    app.after_request(after_request)

    # A routed preflight would get Flask's automatic OPTIONS response, which
    # scans the URL map for the Allow header: a covered one needs only a 204.
    # (Flask documents this method as the one to override.)
    flask_default = app.make_default_options_response

    def make_default_options_response() -> BaseResponse:
        try:
            if state.answer_preflights and is_covered_preflight(state):
                return app.response_class(status=204)
        except Exception:
            state.report_hook_failure("checking a preflight")
        return flask_default()

    app.make_default_options_response = make_default_options_response  # type: ignore[method-assign,assignment]


def is_admin_path(state: HookState, path: str) -> bool:
    prefix = state.admin_prefix
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def is_covered_preflight(state: HookState) -> bool:
    """Is this request a CORS preflight of a path a policy covers?"""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    if req.method != "OPTIONS" or "HTTP_ORIGIN" not in environ:
        return False
    if "HTTP_ACCESS_CONTROL_REQUEST_METHOD" not in environ or is_admin_path(state, req.path):
        return False
    return state.holder.current().policy_for(req.path) is not None


def add_cors_headers(state: HookState, response: BaseResponse) -> BaseResponse:
    """Write the CORS headers of the covered paths (computed by Flask-CORS, memoized).
    The hot path: a memo hit is a path and a dictionary look-up, allocating only the key
    tuple; no draft, metrics off, allowed: an attribute read each and one comparison."""
    try:
        req = request._get_current_object()  # type: ignore[attr-defined]
        path = req.path
        if is_admin_path(state, path):
            if state.secure_admin_response is not None:
                state.secure_admin_response(response)
            return response
        environ = req.environ
        method = req.method
        origin = environ.get("HTTP_ORIGIN")
        acr_method = acr_headers = None  # Access-Control-Request-Method, -Headers
        if method == "OPTIONS":
            acr_method = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
            acr_headers = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
        private = environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true"
        snapshot = state.holder.current()
        evaluation = decide(snapshot, path, method, origin, acr_method, acr_headers, private)
        decision = evaluation.decision
        if decision.policy is not None:  # else not corsadmin's response: no policy covers it
            if (
                acr_method is not None
                and origin is not None
                and state.answer_preflights
                and not 200 <= response.status_code < 300
            ):
                response = state.app.response_class(status=204)  # see install
            write_headers(response, evaluation.headers, decision.vary_origin)
    except Exception:
        # Never a 500 because of CORS: the response goes out without CORS headers.
        state.report_hook_failure("computing CORS headers")
        return response
    if origin is None:
        return response
    if state.metrics is not None or evaluation.outcome != "allowed":
        observe(state, evaluation, origin, method, acr_method)
    if snapshot.trial is not None:  # report-only, after the live answer (covered or not)
        fields = (path, method, origin, acr_method, acr_headers, private)
        try_draft(state.trial_recorder, snapshot.trial, evaluation, *fields)
    if decision.policy is not None and decision_made.receivers:  # usage counting listens
        try:
            state.decisions.send(evaluation=evaluation, path=path, method=method)
        except Exception:  # a subscriber never changes the response
            report_receiver_failure(decision_made)
    return response


def observe(
    state: HookState, evaluation: Evaluation, origin: str, method: str, acr_method: str | None
) -> None:
    """Count a CORS request (metrics on) and log it if refused (``corsadmin.refusals``
    at DEBUG: the level is checked here, for refused requests only)."""
    if state.metrics is not None:
        try:
            state.metrics.count(evaluation.decision.policy, evaluation.outcome)
        except Exception:
            state.report_hook_failure("counting a decision")
    if evaluation.outcome != "allowed" and refusal_log.isEnabledFor(logging.DEBUG):
        log_refusal(evaluation, origin, method, acr_method)


def write_headers(response: BaseResponse, pairs: HeaderPairs, vary_origin: bool) -> None:
    """Add the CORS headers, replacing any the view set, and ``Origin`` to ``Vary``.

    The common case (a response with no CORS or Vary header of its own) appends
    to Werkzeug's header list directly: the values were validated when the
    policy was written and are the same for every request, so re-checking them
    per request (as ``Headers.add`` does) is wasted work on the hot path. Any
    other case, or a Werkzeug whose ``Headers`` is built differently, goes
    through the public API.
    """
    headers = response.headers
    items = getattr(headers, "_list", None)
    if type(items) is list:
        for name, _value in items:
            lowered = name.lower()
            if lowered == "vary" or lowered.startswith("access-control-"):
                break
        else:
            items.extend(pairs)
            if vary_origin:
                items.append(("Vary", "Origin"))
            return
    write_headers_carefully(response, pairs, vary_origin)


def write_headers_carefully(response: BaseResponse, pairs: HeaderPairs, vary_origin: bool) -> None:
    headers = response.headers
    vary: str | None = None
    owned = False
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("access-control-"):
            owned = True
        elif lowered == "vary":
            vary = value if vary is None else f"{vary}, {value}"
    if owned:  # a view set its own: on a covered path, corsadmin's answer is the only one
        for name in CORS_RESPONSE_HEADERS:
            headers.pop(name, None)
    for name, value in pairs:
        headers.add(name, value)
    if not vary_origin:
        return
    if vary is None:
        headers.add("Vary", "Origin")
    elif "origin" not in {part.strip().lower() for part in vary.split(",")}:
        response.vary.add("Origin")
