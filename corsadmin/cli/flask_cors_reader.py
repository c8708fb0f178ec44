"""Reading an application's Flask-CORS configuration (``import-flask-cors``).

Flask-CORS keeps no registry: ``CORS(app, resources=..., **options)`` resolves the
options (defaults, ``CORS_*`` configuration, keyword arguments, per-resource
options) and closes over them in the ``cors_after_request`` function it
registers with ``app.after_request``; ``@cross_origin(**options)`` closes over its
keyword arguments in the view's wrapper (resolved against the app's configuration
at request time). This module reads both closures, patching nothing: the
application is imported and built as it is for serving, and only inspected.

Flask runs ``after_request`` functions in the reverse order of registration, and
the first ``CORS`` extension that writes ``Access-Control-Allow-Origin`` wins, so
the resources are listed in that order. A decorated view wins over every
resource (the extension skips a response the decorator already answered).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import Flask
from flask_cors.core import get_cors_options, probably_regex, serialize_options

#: How many ``__wrapped__`` links are followed from a view to Flask-CORS's wrapper
#: (decorators stacked on a view; a cycle must not loop for ever).
MAX_WRAPPER_DEPTH: Final = 32

_EXTENSION_MODULE: Final = "flask_cors.extension"
_DECORATOR_MODULE: Final = "flask_cors.decorator"
_UNREADABLE: Final = (
    "this Flask-CORS release keeps its options where corsadmin does not read them "
    "(Flask-CORS 6 is read); write the policy by hand"
)


@dataclass(frozen=True, slots=True)
class CorsSource:
    """One place of the configuration: a resource of ``CORS(...)`` or a decorated view."""

    #: How the report names it: ``resource r'/api/*'``, ``view 'index' (@cross_origin)``.
    place: str
    #: The resource's pattern (a resource), or None (a view).
    resource: str | re.Pattern[str] | None
    #: The view's URL rules (a view), as written: ``/items/<int:id>``.
    rules: tuple[str, ...]
    #: The resolved options (Flask-CORS's own, read with :func:`option`).
    options: Any
    #: The view's endpoint (a view), or "" (a resource).
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class FlaskCorsConfig:
    """Everything read from one application."""

    sources: tuple[CorsSource, ...]
    #: Places read but not importable, with the reason: (place, reason).
    unreadable: tuple[tuple[str, str], ...]
    #: The text of every URL rule of the application.
    rules: tuple[str, ...]
    #: How many ``CORS(app)`` extensions the application registered.
    extensions: int = 0


def option(options: Any, name: str) -> Any:
    """One resolved option, as Flask-CORS 6.0.5's dataclass holds it.

    Flask-CORS 6.0.2 and 6.0.3 resolve to a dict instead, with the regular expressions
    of ``origins`` and ``allow_headers`` left as text and no ``allow_all_origins``:
    read from it, both are made as 6.0.5 makes them (a pattern compiled, case
    insensitive; ``.*`` among the origins allows all).
    """
    if not isinstance(options, Mapping):
        return getattr(options, name, None)
    if name == "allow_all_origins":
        return r".*" in (options.get("origins") or ())
    value = options.get(name)
    if name in _PATTERN_OPTIONS and value is not None:
        return [_resolved(pattern) for pattern in value]
    return value


#: The options whose items are patterns (text or a regular expression).
_PATTERN_OPTIONS: Final = frozenset({"origins", "allow_headers"})


def _resolved(pattern: Any) -> Any:
    """``pattern`` compiled when Flask-CORS takes it for a regular expression
    (as Flask-CORS 6.0.5 does; an invalid one stays text, as 6.0.2 never matches it)."""
    if not isinstance(pattern, str) or not probably_regex(pattern):
        return pattern
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return pattern


def closure_value(func: Callable[..., Any], name: str) -> Any:
    """The value a function closes over under ``name`` (KeyError if none)."""
    code = getattr(func, "__code__", None)
    cells = getattr(func, "__closure__", None) or ()
    if code is None or name not in code.co_freevars:
        raise KeyError(name)
    return cells[code.co_freevars.index(name)].cell_contents


def read_flask_cors(app: Flask) -> FlaskCorsConfig:
    """The Flask-CORS configuration of ``app`` (read in its application context)."""
    rules = tuple(rule.rule for rule in app.url_map.iter_rules())
    unreadable: list[tuple[str, str]] = []
    sources: list[CorsSource] = []
    extensions = 0
    with app.app_context():
        sources.extend(_decorated_views(app, unreadable))
        for scope, funcs in app.after_request_funcs.items():
            for func in reversed(funcs):
                if getattr(func, "__module__", "") != _EXTENSION_MODULE:
                    continue
                if scope is not None:
                    unreadable.append(
                        (
                            f"CORS(blueprint {scope!r})",
                            "its resources apply to that blueprint's views only, and a "
                            "policy applies to paths: give the blueprint's paths as "
                            "resources of CORS(app), or use @cross_origin on its views",
                        )
                    )
                    continue
                extensions += 1
                try:
                    sources.extend(_resources(func))
                except (KeyError, TypeError, ValueError):
                    unreadable.append(("CORS(app)", _UNREADABLE))
    return FlaskCorsConfig(tuple(sources), tuple(unreadable), rules, extensions)


def _resources(func: Callable[..., Any]) -> list[CorsSource]:
    resolved = closure_value(func, "resources")
    sources = []
    for pattern, options in resolved:
        text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        resolved_options = serialize_options(options) if isinstance(options, Mapping) else options
        sources.append(CorsSource(f"resource r{text!r}", pattern, (), resolved_options))
    return sources


def _decorated_views(app: Flask, unreadable: list[tuple[str, str]]) -> list[CorsSource]:
    sources = []
    for endpoint, view in sorted(app.view_functions.items()):
        wrapper = _cross_origin_wrapper(view)
        if wrapper is None:
            continue
        place = f"view {endpoint!r} (@cross_origin)"
        rules = tuple(r.rule for r in app.url_map.iter_rules(endpoint))
        try:
            raw = closure_value(wrapper, "_options")
        except KeyError:
            unreadable.append((place, _UNREADABLE))
            continue
        sources.append(CorsSource(place, None, rules, get_cors_options(app, raw), endpoint))
    return sources


def _cross_origin_wrapper(view: Callable[..., Any]) -> Callable[..., Any] | None:
    """Flask-CORS's wrapper among the decorators of ``view`` (``update_wrapper`` gives it
    the view's names, so it is told by its code), or None."""
    func: Any = view
    for _ in range(MAX_WRAPPER_DEPTH):
        code = getattr(func, "__code__", None)
        module = getattr(func, "__globals__", {}).get("__name__")
        if code is not None and code.co_name == "wrapped_function" and module == _DECORATOR_MODULE:
            return func  # type: ignore[no-any-return]
        func = getattr(func, "__wrapped__", None)
        if func is None:
            return None
    return None
