"""Flask-CORS's configuration as a corsadmin policy document (``import-flask-cors``).

Each resource of ``CORS(app, ...)`` and each URL rule of a ``@cross_origin`` view
becomes one policy. Flask-CORS picks the first resource that matches (in its own
order) and lets a decorated view win over every resource; corsadmin picks the
highest ``priority`` first, so the policies get decreasing priorities in
Flask-CORS's order and the choice stays the same.

What corsadmin cannot express is an :class:`Unsupported` item naming the place and
the option; the differences that never widen what is allowed (and are deliberate)
are notes. ``docs/notes/issue13-flask-cors-import.md`` lists both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import ValidationError
from ..policy.document import DOCUMENT_FORMAT
from ..policy.spec import validate_policy
from .flask_cors_origins import translate_origins
from .flask_cors_paths import PathTranslationError, translate_resource
from .flask_cors_reader import CorsSource, FlaskCorsConfig, option

#: The first part of every imported policy's name.
NAME_PREFIX: Final = "flask-cors-"
#: A policy name's longest form (``spec``'s ``[a-z0-9][a-z0-9._-]{0,63}``).
MAX_NAME_LENGTH: Final = 64
_NOT_NAME: Final = re.compile(r"[^a-z0-9._-]+")
#: A ``<path:...>`` variable (any number of segments) as a whole segment.
_PATH_VARIABLE: Final = re.compile(r"^<path(?:\([^()<>/]*\))?:[A-Za-z_][A-Za-z0-9_]*>$")

#: What ``--skip-unsupported`` does with an item: leave the policy out, or write it
#: without the option (always the narrower choice).
LEAVE_OUT: Final = "the policy is left out"
WITHOUT_OPTION: Final = "the policy is written without it"


@dataclass(frozen=True, slots=True)
class Unsupported:
    """An option of a place corsadmin cannot express, and why."""

    place: str
    option: str
    reason: str
    #: True: the place's policy cannot be written at all (:data:`LEAVE_OUT`).
    drops_policy: bool

    def __str__(self) -> str:
        skipped = LEAVE_OUT if self.drops_policy else WITHOUT_OPTION
        return f"{self.place}: {self.option}: {self.reason} (--skip-unsupported: {skipped})"


@dataclass
class Translation:
    """The document, what could not be expressed, and the differences stated."""

    policies: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def document(self) -> dict[str, Any]:
        return {"corsadmin": DOCUMENT_FORMAT, "policies": self.policies}


@dataclass
class _Draft:
    """One source's settings while they are translated."""

    source: CorsSource
    settings: dict[str, Any] = field(default_factory=dict)
    unsupported: list[Unsupported] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refuse(self, name: str, reason: str, *, drops_policy: bool) -> None:
        self.unsupported.append(Unsupported(self.source.place, name, reason, drops_policy))

    def note(self, name: str, text: str) -> None:
        self.notes.append(f"{self.source.place}: {name}: {text}")


def translate(config: FlaskCorsConfig) -> Translation:
    """The policy document equivalent to ``config`` (see the module's docstring)."""
    out = Translation()
    for place, reason in config.unreadable:
        out.unsupported.append(Unsupported(place, "resources", reason, drops_policy=True))
    names: set[str] = set()
    paths: dict[str, str] = {}
    count = len(config.sources)
    for index, source in enumerate(config.sources):
        draft = _Draft(source)
        _settings(draft)
        blocked = any(u.drops_policy for u in draft.unsupported)  # '*' with credentials
        for path, path_note in [] if blocked else _paths(draft, config.rules):
            if path in paths:
                draft.refuse(
                    "path",
                    f"{path!r} is already imported from {paths[path]}, which wins in "
                    "Flask-CORS too",
                    drops_policy=True,
                )
                continue
            if path_note:
                draft.note("path", path_note)
            policy = _policy(draft, path, priority=count - 1 - index, names=names)
            if policy is not None:
                paths[path] = source.place
                out.policies.append(policy)
        out.unsupported.extend(draft.unsupported)
        out.notes.extend(draft.notes)
    if any(_sends_origins_unasked(s) for s in config.sources):
        out.notes.append(ALWAYS_SEND_NOTE)
    if config.extensions > 1:
        out.notes.append(
            f"CORS(app) was called {config.extensions} times: Flask-CORS let a later one "
            "answer when an earlier one's resource refused the origin; corsadmin answers "
            "with the first policy that covers the path only"
        )
    return out


#: The one difference every import of listed origins has (``always_send`` is on by default).
ALWAYS_SEND_NOTE: Final = (
    "always_send: Flask-CORS answered a request without Origin (not a CORS request) with "
    "the first listed origin in Access-Control-Allow-Origin; corsadmin sends no CORS "
    "header then (it still sends '*' for a '*' policy)"
)


def _sends_origins_unasked(source: CorsSource) -> bool:
    opts = source.options
    return bool(option(opts, "always_send")) and not option(opts, "allow_all_origins")


def _paths(draft: _Draft, rules: tuple[str, ...]) -> list[tuple[str, str]]:
    """The route patterns of a source, each with what differs from Flask-CORS."""
    source = draft.source
    if source.resource is None:
        return [(_rule_pattern(rule), "") for rule in source.rules]
    try:
        translated = translate_resource(source.resource, rules)
    except PathTranslationError as exc:
        draft.refuse("path", str(exc), drops_policy=True)
        return []
    return [(translated.pattern, translated.note)]


def _rule_pattern(rule: str) -> str:
    """A Flask URL rule as a route pattern: a ``<path:...>`` segment spans segments."""
    segments = rule.split("/")
    return "/".join("**" if _PATH_VARIABLE.match(s) else s for s in segments)


def _policy(draft: _Draft, path: str, *, priority: int, names: set[str]) -> dict[str, Any] | None:
    name = _unique_name(draft.source, path, names)
    entry = {
        "name": name,
        "path": path,
        "description": f"Imported from Flask-CORS: {draft.source.place}",
        **draft.settings,
        "priority": priority,
    }
    try:
        validate_policy(entry)
    except ValidationError as exc:
        for error in exc.errors:
            draft.refuse(error.field, f"corsadmin refuses it: {error.message}", drops_policy=True)
        return None
    names.add(name)
    return entry


def _unique_name(source: CorsSource, path: str, taken: set[str]) -> str:
    stem = source.endpoint or ("all" if path == "/**" else path)  # a view: its endpoint
    slug = _NOT_NAME.sub("-", stem.lower()).strip("-._") or "root"
    base = (NAME_PREFIX + slug)[:MAX_NAME_LENGTH].rstrip("-._")
    name, n = base, 1
    while name in taken:
        n += 1
        suffix = f"-{n}"
        name = base[: MAX_NAME_LENGTH - len(suffix)] + suffix
    return name


def _settings(draft: _Draft) -> None:
    """Every option of the source as document fields (the origins first)."""
    opts = draft.source.options
    _origins(draft)
    methods = option(opts, "methods")
    draft.settings["methods"] = _listed(methods)
    draft.settings["allow_headers"] = _allow_headers(draft)
    draft.settings["expose_headers"] = _listed(option(opts, "expose_headers"))
    draft.settings["credentials"] = bool(option(opts, "supports_credentials"))
    draft.settings["max_age"] = _max_age(draft)
    draft.settings["private_network"] = bool(option(opts, "allow_private_network"))
    _runtime_options(draft)


def _listed(value: Any) -> list[str]:
    """A resolved ``methods`` or ``expose_headers`` (``"GET, POST"``, or None) as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def _origins(draft: _Draft) -> None:
    opts = draft.source.options
    credentials = bool(option(opts, "supports_credentials"))
    if option(opts, "allow_all_origins"):
        if credentials:
            draft.refuse(
                "origins",
                "'*' with supports_credentials: Flask-CORS answers every origin with its "
                "own name and Access-Control-Allow-Credentials: true (any site can read "
                "responses made with the user's cookies); corsadmin refuses '*' with "
                "credentials: list the origins to trust",
                drops_policy=True,
            )
            return
        if not option(opts, "send_wildcard"):
            draft.note(
                "origins",
                "'*': Flask-CORS echoed the request's origin (with Vary: Origin), "
                "corsadmin answers '*' (the same for a browser: no credentials)",
            )
        draft.settings["origins"] = ["*"]
        return
    translated = translate_origins(list(option(opts, "origins") or []))
    for given, reason in translated.refused:
        draft.refuse("origins", f"{given!r}: {reason}", drops_policy=False)
    for text in translated.notes:
        draft.note("origins", text)
    draft.settings["origins"] = translated.rules


def _allow_headers(draft: _Draft) -> list[str]:
    names: list[str] = []
    for header in option(draft.source.options, "allow_headers") or []:
        if isinstance(header, re.Pattern):
            if header.pattern == ".*":
                return ["*"]
            draft.refuse(
                "allow_headers",
                f"the regex {header.pattern!r}: corsadmin allows header names or '*' only; "
                "list the names it stands for",
                drops_policy=False,
            )
            continue
        names.append(header)
    return names


def _max_age(draft: _Draft) -> int | None:
    value = option(draft.source.options, "max_age")
    if value is None or value == "" or value == 0:  # Flask-CORS sends no falsy max_age
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    draft.refuse("max_age", f"{value!r} is not a whole number of seconds", drops_policy=False)
    return None


def _runtime_options(draft: _Draft) -> None:
    """The options about how headers are sent rather than what is allowed."""
    opts = draft.source.options
    if not option(opts, "vary_header"):
        draft.refuse(
            "vary_header",
            "False: corsadmin always sends Vary: Origin when the answer depends on the "
            "Origin (refusals included), so that no cache serves one origin's answer to "
            "another",
            drops_policy=False,
        )
    if draft.source.resource is None and not option(opts, "automatic_options"):
        draft.note(
            "automatic_options",
            "False: corsadmin answers the preflights of covered paths itself "
            "(CORSADMIN_ANSWER_PREFLIGHTS), the view is not called for them",
        )
    if draft.source.resource is not None and not option(opts, "intercept_exceptions"):
        draft.note(
            "intercept_exceptions",
            "False: corsadmin adds CORS headers to error responses of covered paths too",
        )
