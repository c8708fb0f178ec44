"""The fields of a policy, declared once: the one table every part reads.

Each :class:`PolicyField` names a field of the policy document and says what it
is (its :class:`Kind`), its default, and how people meet it: its label and hint
in the admin form, its ``policy add``/``policy update`` option, its line in
``policy show``. The parts that handle a policy field by field iterate
:data:`FIELDS` instead of naming each field, and handle each *kind* once:

- ``PolicySpec.to_document`` and ``validate_policy`` (:mod:`.spec`; each field's
  validator is in its ``VALIDATORS``, keyed by the field's name);
- the store's spec -> row and the loader's row -> spec (:mod:`corsadmin.db`);
- the admin settings form's fields, fill and read (:mod:`corsadmin.admin.forms`);
- the CLI's policy options and ``policy show`` (:mod:`corsadmin.cli.policies`);
- the Settings list of the admin UI's policy page (``templates/corsadmin/policy.html``).

A field's ``name`` is its key in the document, its attribute of ``PolicySpec``,
its column of the ``Policy`` model and its field of the admin form alike.

Adding a field (``tests/test_fields.py`` fails, saying where, until each is done):

1. its :class:`PolicyField` in :data:`FIELDS`, at its place in the document;
2. its ``PolicySpec`` attribute (same default) and its validator in
   ``spec.VALIDATORS``;
3. its column of the ``Policy`` model (``db/models.py``) and a migration adding it;
4. its place in ``templates/corsadmin/policy_form.html``;
5. its row in ``docs/policy-document.md``'s table of fields.

Pure Python: no Flask, no database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, assert_never


class Kind(enum.Enum):
    """What a field holds; each part handles a kind one way."""

    TEXT = "text"  # one line, stripped (name)
    MULTILINE = "multiline text"  # free text, line breaks allowed (description)
    TOKENS = "list of tokens"  # HTTP methods or header names
    BOOL = "bool"
    INT = "int"
    OPTIONAL_INT = "optional int"  # a whole number or null
    PATH = "path"  # the route pattern: a PathPattern in the spec, its text elsewhere
    ORIGINS = "origins"  # the origin rules: rows of their own table


@dataclass(frozen=True, slots=True)
class CliOption:
    """How ``policy add`` and ``policy update`` take a field."""

    #: As click spells it: ``--max-age``, ``--method`` (a list: repeatable),
    #: ``--credentials/--no-credentials`` (a bool: on and off).
    spelling: str
    help: str
    #: What the default means, after it in ``policy add --help`` ("" for nothing more).
    default_note: str = ""


@dataclass(frozen=True, slots=True)
class ShowLine:
    """How ``policy show`` prints a field: ``  label:<padding>value``."""

    label: str
    #: Printed for an empty value (an empty list, text or null); None: no line then.
    empty: str | None = "-"
    #: After the value: `` days``.
    unit: str = ""


@dataclass(frozen=True, slots=True)
class PageLine:
    """How the admin UI's policy page shows a field in its Settings list."""

    label: str
    #: Shown for an empty value (an empty list, null).
    empty: str = "none"
    #: A true/false field's value in words.
    true: str = "true"
    false: str = "false"
    #: After the value: `` s``.
    unit: str = ""


@dataclass(frozen=True, slots=True)
class PolicyField:
    """One field of a policy (see the module's docstring)."""

    name: str
    kind: Kind
    #: The admin form's label, and its hint under the field ("" for none).
    label: str
    hint: str = ""
    #: A field the document must give has no default (``required``); another one's
    #: ``default`` is the value it takes when left out, as the spec holds it.
    required: bool = False
    default: object = None
    cli: CliOption | None = None
    show: ShowLine | None = None
    page: PageLine | None = None

    @property
    def plain(self) -> bool:
        """Stored as one column of the same name, as the spec holds it (lists as lists);
        the path and the origins are handled by hand."""
        return self.kind not in (Kind.PATH, Kind.ORIGINS)


DEFAULT_METHODS: Final[tuple[str, ...]] = (
    "GET",
    "HEAD",
    "POST",
    "OPTIONS",
    "PUT",
    "PATCH",
    "DELETE",
)
DEFAULT_REVIEW_EVERY_DAYS: Final = 90
#: The methods the admin form offers as checkboxes (every one a policy has is shown
#: too): the Fetch standard's CORS-safelisted GET, HEAD and POST, and the methods a
#: REST API uses.
STANDARD_METHODS: Final[tuple[str, ...]] = (
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
)
#: Methods the Fetch standard forbids (a browser never sends them, so allowing one
#: allows nothing): the validation layer refuses them.
FORBIDDEN_METHODS: Final[frozenset[str]] = frozenset({"CONNECT", "TRACE", "TRACK"})

#: Every field of a policy, in the document's order (what ``export`` prints).
FIELDS: Final[tuple[PolicyField, ...]] = (
    PolicyField(
        "name",
        Kind.TEXT,
        "Name",
        "Lower-case letters, digits, '.', '_' and '-'.",
        required=True,
    ),
    PolicyField(
        "path",
        Kind.PATH,
        "Path pattern",
        "/api/**, /files/*.json, /items/<int:id>",
        required=True,
        show=ShowLine("path"),
    ),
    PolicyField(
        "description",
        Kind.MULTILINE,
        "Description",
        default="",
        cli=CliOption("--description", "Free text for operators."),
        show=ShowLine("description", empty=None),
    ),
    PolicyField(
        "origins",
        Kind.ORIGINS,
        "Origins",
        "One origin rule a line. Empty allows nothing yet.",
        required=True,
        default=(),
        cli=CliOption("--origin", "An origin rule (repeatable)."),
    ),
    PolicyField(
        "methods",
        Kind.TOKENS,
        "Methods",
        "What a page may send. GET, HEAD and POST with simple headers need no "
        "preflight. CONNECT, TRACE and TRACK are refused: a browser never sends them.",
        default=DEFAULT_METHODS,
        cli=CliOption("--method", "An HTTP method (repeatable).", "all of them"),
        show=ShowLine("methods"),
        page=PageLine("Methods"),
    ),
    PolicyField(
        "allow_headers",
        Kind.TOKENS,
        "Allowed request headers",
        "Names, or * for any. Empty allows none.",
        default=("*",),
        cli=CliOption(
            "--allow-header",
            "A request header a page may send, or '*' (repeatable).",
            "any request header; with --credentials, each request's own header names are reflected",
        ),
        show=ShowLine("allow headers", empty=""),
        page=PageLine("Allowed request headers"),
    ),
    PolicyField(
        "expose_headers",
        Kind.TOKENS,
        "Exposed response headers",
        "Names a page may read. Empty exposes none.",
        default=(),
        cli=CliOption("--expose-header", "A response header a page may read (repeatable)."),
        show=ShowLine("expose headers"),
        page=PageLine("Exposed response headers"),
    ),
    PolicyField(
        "credentials",
        Kind.BOOL,
        "Allow credentials (cookies, HTTP authentication)",
        default=False,
        cli=CliOption("--credentials/--no-credentials", "Allow credentials."),
        show=ShowLine("credentials"),
        page=PageLine("Credentials", true="allowed", false="not allowed"),
    ),
    PolicyField(
        "max_age",
        Kind.OPTIONAL_INT,
        "Preflight cache (max age)",
        "Seconds; empty for none.",
        default=None,
        cli=CliOption("--max-age", "Preflight cache seconds."),
        show=ShowLine("max age"),
        page=PageLine("Preflight cache", empty="browser default", unit=" s"),
    ),
    PolicyField(
        "private_network",
        Kind.BOOL,
        "Answer private network access preflights",
        default=False,
        cli=CliOption(
            "--private-network/--no-private-network", "Answer private network access preflights."
        ),
        show=ShowLine("private network"),
        page=PageLine("Private network", true="answered", false="not answered"),
    ),
    PolicyField(
        "enabled",
        Kind.BOOL,
        "Enabled",
        default=True,
        cli=CliOption("--enable/--disable", "Enable the policy."),
        show=ShowLine("enabled"),
    ),
    PolicyField(
        "priority",
        Kind.INT,
        "Priority",
        "Higher wins before specificity.",
        default=0,
        cli=CliOption("--priority", "Higher wins before specificity."),
        show=ShowLine("priority"),
        page=PageLine("Priority"),
    ),
    PolicyField(
        "review_every_days",
        Kind.INT,
        "Review every (days)",
        default=DEFAULT_REVIEW_EVERY_DAYS,
        cli=CliOption("--review-every-days", "Review interval."),
        show=ShowLine("review every", unit=" days"),
    ),
)

#: The fields by name.
FIELD: Final[dict[str, PolicyField]] = {f.name: f for f in FIELDS}
#: The fields' names, in the document's order.
FIELD_NAMES: Final[tuple[str, ...]] = tuple(FIELD)
#: The fields stored as one column each, as they are (every field but path and origins).
PLAIN_FIELDS: Final[tuple[PolicyField, ...]] = tuple(f for f in FIELDS if f.plain)


def in_order(fields: tuple[PolicyField, ...], first: tuple[str, ...]) -> tuple[PolicyField, ...]:
    """``fields`` with those named in ``first`` first, in that order, then the others
    in the table's order (a name in ``first`` that is none of them is an error)."""
    unknown = sorted(set(first) - {f.name for f in fields})
    if unknown:
        raise ValueError(f"not among the fields ordered: {', '.join(unknown)}")
    named = [f for name in first for f in fields if f.name == name]
    return (*named, *(f for f in fields if f.name not in first))


#: The options of ``policy add`` and ``policy update``, in the order ``--help`` has
#: always listed them (older than this table); a new field's option comes after them.
CLI_FIELDS: Final[tuple[PolicyField, ...]] = in_order(
    tuple(f for f in FIELDS if f.cli is not None),
    first=(
        "origins",
        "methods",
        "allow_headers",
        "expose_headers",
        "credentials",
        "max_age",
        "private_network",
        "enabled",
        "priority",
        "description",
        "review_every_days",
    ),
)

#: The lines of ``policy show``, in the order it has always printed them (older than
#: this table); a new field's line comes after them.
SHOW_FIELDS: Final[tuple[PolicyField, ...]] = in_order(
    tuple(f for f in FIELDS if f.show is not None),
    first=(
        "path",
        "description",
        "enabled",
        "priority",
        "methods",
        "allow_headers",
        "expose_headers",
        "credentials",
        "max_age",
        "private_network",
        "review_every_days",
    ),
)

#: The Settings list of the admin UI's policy page, in the order it has always shown
#: them (older than this table); a new field's line comes after them.
PAGE_FIELDS: Final[tuple[PolicyField, ...]] = in_order(
    tuple(f for f in FIELDS if f.page is not None),
    first=(
        "methods",
        "allow_headers",
        "expose_headers",
        "credentials",
        "private_network",
        "max_age",
        "priority",
    ),
)


def default_text(field: PolicyField) -> str | None:
    """A field's default as ``policy add --help`` says it (None: nothing worth saying:
    a required field, or an empty description)."""
    if field.required or field.cli is None or field.kind is Kind.MULTILINE:
        return None
    if field.kind is Kind.BOOL:  # the flag that is in effect: --no-credentials, --enable
        on, off = field.cli.spelling.split("/")
        text = on if field.default else off
    elif field.default is None or field.default == ():
        text = "none"
    elif field.kind is Kind.TOKENS:
        text = value_text(field.kind, field.default)
    else:
        text = str(field.default)
    return f"{text} ({field.cli.default_note})" if field.cli.default_note else text


#: ``allow_headers`` meaning any request header.
ANY_HEADER: Final = "*"


def reflects_any_header(credentials: bool, allow_headers: Any) -> bool:
    """Credentials with ``*`` headers: the Fetch standard gives ``*`` no wildcard meaning
    with credentials, so each request's own header names are reflected (any header)."""
    return bool(credentials) and ANY_HEADER in tuple(allow_headers or ())


#: What ``policy add``/``update`` print on stderr for :func:`reflects_any_header`.
ANY_HEADER_WARNING: Final = (
    "warning: policy {name} allows credentials with allow_headers '*': every header a "
    "credentialed request asks for is reflected in Access-Control-Allow-Headers; name "
    "the headers pages need with --allow-header instead"
)


def value_text(kind: Kind, value: Any) -> str:
    """A spec's value of a field of this kind as text for people ("" when empty;
    a bool as ``true`` or ``false``)."""
    match kind:
        case Kind.PATH:
            return str(value.text)
        case Kind.TOKENS:
            return ", ".join(value)
        case Kind.BOOL:
            return "true" if value else "false"
        case Kind.OPTIONAL_INT:
            return "" if value is None else str(value)
        case Kind.TEXT | Kind.MULTILINE | Kind.INT:
            return str(value)
        case Kind.ORIGINS:
            return ", ".join(e.rule.text for e in value)
        case _:
            assert_never(kind)
