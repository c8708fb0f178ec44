"""A policy as validated data: the one validation layer every way in shares.

The Python API, the CLI, the policy-document import and the admin UI all turn
their input into a :class:`PolicySpec` through :func:`validate_policy`, so a
rule of the policy document is enforced in exactly one place, and every error
names the field it is about.

Pure Python: no Flask, no database.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any, Final, assert_never, overload

from ..errors import FieldError, ValidationError
from .fields import (
    DEFAULT_METHODS,
    DEFAULT_REVIEW_EVERY_DAYS,
    FIELD,
    FIELD_NAMES,
    FIELDS,
    FORBIDDEN_METHODS,
    Kind,
)
from .origins import (
    OriginRule,
    OriginRuleError,
    canonical_exact_rule,
    is_canonical_exact_rule,
    parse_origin_rule,
)
from .paths import PathPattern, PathPatternError, parse_path_pattern

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# RFC 9110 token: what a method or a header name may be made of.
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

MAX_NOTE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 2000
MAX_INT = 2**31 - 1

#: The times an ``expires`` may hold: the calendar of Python's datetime less a day at
#: each end, so the value still exists when converted to any time zone (PostgreSQL
#: returns a ``timestamptz`` in the session's zone, and 9999-12-31T23:00Z is in year
#: 10000 at +01:00, which no datetime can hold).
EARLIEST_TIME: Final = datetime(1, 1, 2, tzinfo=UTC)
LATEST_TIME: Final = datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC)

#: How much of a refused value an error message quotes.
MAX_QUOTED_LENGTH: Final = 80

#: Control characters a multi-line text (a description typed in a text area) may hold.
_LINE_BREAKS_AND_TABS: Final = frozenset("\t\n\r")

#: A header name that reads as a regular expression (Flask-CORS would compile it):
#: "*" other than the lone "*", an anchor, an alternation, or "." with "+" / "?".
_REGEX_LOOKING_HEADER: Final = re.compile(r"\*|^\^|\$$|\||\.[+?]|[\\()\[\]{}?]")

#: The policy document's fields, in its order (declared in :mod:`.fields`).
POLICY_FIELDS: Final = FIELD_NAMES
ORIGIN_FIELDS = ("origin", "note", "expires")


@dataclass(frozen=True, slots=True)
class OriginEntry:
    """An origin rule of a policy, with the operator's note and optional expiry."""

    rule: OriginRule
    note: str = ""
    expires: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def to_document(self) -> str | dict[str, Any]:
        if not self.note and self.expires is None:
            return self.rule.text
        entry: dict[str, Any] = {"origin": self.rule.text}
        if self.note:
            entry["note"] = self.note
        if self.expires is not None:
            entry["expires"] = format_time(self.expires)
        return entry


#: An item of :class:`OriginEntries`: a plain rule's text, or the entry itself.
_Item = str | OriginEntry


def _item_text(item: _Item) -> str:
    return item if isinstance(item, str) else item.rule.text


def _compact(entry: OriginEntry) -> _Item:
    """A plain rule as its text; any other entry as it is."""
    rule = entry.rule
    if (
        not entry.note
        and entry.expires is None
        and rule.kind == "exact"
        and canonical_exact_rule(rule.text) == rule
    ):
        return rule.text
    return entry


def _expand(item: _Item) -> OriginEntry:
    if isinstance(item, str):
        rule = canonical_exact_rule(item)
        assert rule is not None, item  # only such texts are kept as text (_compact)
        return OriginEntry(rule)
    return item


class OriginEntries(Sequence[OriginEntry]):
    """A policy's origin rules, held compactly: a *plain* rule (an ordinary exact
    origin such as ``https://shop.example``, with no note and no expiry: nearly every
    rule of a platform with a million customer domains) is kept as its text alone, and
    becomes an :class:`OriginEntry` only when read. The others are kept as entries.

    It reads as a sequence of :class:`OriginEntry` (indexing, iteration, ``len``), equal
    to any sequence of the same entries in the same order. A snapshot compiles the plain
    texts without building an object per rule (:meth:`plain_texts`, :meth:`detailed`),
    which is what keeps a million rules' load under seconds and their memory in a few
    hundred bytes per rule. Loaded policies hold their rules in text order
    (``in_text_order``), which :meth:`find` and :meth:`with_changes` rely on.
    """

    __slots__ = ("_hash", "_items", "in_text_order")

    def __init__(self, items: Iterable[_Item] = (), *, in_text_order: bool = False) -> None:
        """Items as :func:`_compact` makes them (see :meth:`of`); ``in_text_order``: the
        caller vouches they are sorted by text, one per text (the loader's rows)."""
        self._items: tuple[_Item, ...] = tuple(items)
        self._hash: int | None = None
        self.in_text_order = in_text_order

    @classmethod
    def of(cls, entries: Iterable[OriginEntry]) -> OriginEntries:
        """These entries, in their order."""
        if isinstance(entries, OriginEntries):
            return entries
        items = tuple(_compact(e) for e in entries)
        texts = [_item_text(item) for item in items]
        return cls(items, in_text_order=all(a < b for a, b in itertools.pairwise(texts)))

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> OriginEntry: ...

    @overload
    def __getitem__(self, index: slice) -> OriginEntries: ...

    def __getitem__(self, index: int | slice) -> OriginEntry | OriginEntries:
        if isinstance(index, slice):
            return OriginEntries(self._items[index], in_text_order=self.in_text_order)
        return _expand(self._items[index])

    def __iter__(self) -> Iterator[OriginEntry]:
        return map(_expand, self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OriginEntries):
            return self._items == other._items
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self._items) and all(
                a == b for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self._items)
        return self._hash

    def __repr__(self) -> str:
        return f"OriginEntries({list(self)!r})"

    def texts(self) -> Iterator[str]:
        """Every rule's text, in order, without building entries."""
        return map(_item_text, self._items)

    def fields(self) -> Iterator[tuple[str, str, datetime | None]]:
        """Every rule's (text, note, expiry), in order, without building entries (what
        the rule rows hold)."""
        for item in self._items:
            if isinstance(item, str):
                yield item, "", None
            else:
                yield item.rule.text, item.note, item.expires

    def plain_texts(self) -> Iterator[str]:
        """The texts of the plain rules (exact, no note, no expiry)."""
        return (item for item in self._items if isinstance(item, str))

    def detailed(self) -> Iterator[OriginEntry]:
        """The other entries: rules with a note or an expiry, and every rule that is
        not an ordinary exact origin. Only these can expire."""
        return (item for item in self._items if not isinstance(item, str))

    def find(self, text: str) -> OriginEntry | None:
        """The entry of the rule with this (normalized) text, or None."""
        if self.in_text_order:
            i = bisect.bisect_left(self._items, text, key=_item_text)
            if i < len(self._items) and _item_text(self._items[i]) == text:
                return _expand(self._items[i])
            return None
        for item in self._items:
            if _item_text(item) == text:
                return _expand(item)
        return None

    def with_changes(self, changes: Mapping[str, OriginEntry | None]) -> OriginEntries:
        """These rules in text order with those of ``changes`` replaced, added or (None)
        removed: a copy of the items, no rule built again."""
        items = list(self._items) if self.in_text_order else sorted(self._items, key=_item_text)
        for text, entry in changes.items():
            i = bisect.bisect_left(items, text, key=_item_text)
            present = i < len(items) and _item_text(items[i]) == text
            if entry is None and present:
                del items[i]
            elif entry is not None and present:
                items[i] = _compact(entry)
            elif entry is not None:
                items.insert(i, _compact(entry))
        return OriginEntries(items, in_text_order=True)


def plain_or_entry(
    text: str, note: str, expires: datetime | None, rule: Callable[[str], OriginRule]
) -> _Item:
    """One stored rule as an :class:`OriginEntries` item: its text when it is plain
    (the loader's shortcut: no object built), else its entry (``rule`` parses the text)."""
    if not note and expires is None and is_canonical_exact_rule(text):
        return text
    return OriginEntry(rule(text), note, expires)


EMPTY_ORIGINS: Final = OriginEntries(in_text_order=True)


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One validated, normalized policy: the fields of the policy document.

    One attribute per field of :data:`.fields.FIELDS`, named alike, with its default.
    """

    name: str
    path: PathPattern
    origins: OriginEntries = EMPTY_ORIGINS
    methods: tuple[str, ...] = DEFAULT_METHODS
    allow_headers: tuple[str, ...] = ("*",)
    expose_headers: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int | None = None
    private_network: bool = False
    enabled: bool = True
    priority: int = 0
    description: str = ""
    review_every_days: int = DEFAULT_REVIEW_EVERY_DAYS

    def __post_init__(self) -> None:
        if not isinstance(self.origins, OriginEntries):  # a tuple or list of entries
            object.__setattr__(self, "origins", OriginEntries.of(self.origins))

    def origin(self, text: str) -> OriginEntry | None:
        return self.origins.find(text)

    def to_document(self) -> dict[str, Any]:
        """Every field, in the document's order (what ``export`` prints)."""
        return {f.name: _document_value(f.kind, getattr(self, f.name)) for f in FIELDS}


def _document_value(kind: Kind, value: Any) -> Any:
    """A spec's value of a field of this kind as the document holds it."""
    match kind:
        case Kind.PATH:
            return value.text
        case Kind.ORIGINS:
            return [e.to_document() for e in value]
        case Kind.TOKENS:
            return list(value)
        case Kind.TEXT | Kind.MULTILINE | Kind.BOOL | Kind.INT | Kind.OPTIONAL_INT:
            return value
        case _:
            assert_never(kind)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: how times appear in documents.

    Four-digit years always (``strftime("%Y")`` writes year 1 as ``1`` on glibc,
    which no ISO 8601 parser reads back).
    """
    utc = value.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat(timespec="seconds") + "Z"


def _quoted(value: str) -> str:
    """``value`` as an error message quotes it: repr, cut to MAX_QUOTED_LENGTH."""
    if len(value) > MAX_QUOTED_LENGTH:
        return repr(value[:MAX_QUOTED_LENGTH]) + f" (cut: {len(value)} characters)"
    return repr(value)


def parse_time(value: object) -> datetime:
    """An ISO 8601 time (with a zone) or a date (midnight UTC), between EARLIEST_TIME
    and LATEST_TIME; raises ValueError with a message that follows a field name."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0), tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
                parsed = datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
            elif text.isascii() and text.isprintable():
                # (fromisoformat also reads other digits, and any separator, even NUL)
                parsed = datetime.fromisoformat(text)
            else:
                raise ValueError(text)
        except ValueError:
            raise ValueError(
                f"{_quoted(value)} is not an ISO 8601 time such as 2027-03-01T00:00:00Z"
            ) from None
    else:
        raise ValueError("must be an ISO 8601 time string")
    try:
        offset = parsed.utcoffset()
    except ValueError as exc:  # a tzinfo that answers nonsense (Python API only)
        raise ValueError(f"has an invalid time zone: {exc}") from None
    if offset is None:
        shown = _quoted(value) if isinstance(value, str) else "the time"
        raise ValueError(f"{shown} has no time zone; add one, such as Z for UTC")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise ValueError(
            f"is out of range: the time must be between {format_time(EARLIEST_TIME)} "
            f"and {format_time(LATEST_TIME)}"
        )
    return utc


class _Collector:
    """Gathers every problem of one input, so one pass reports them all."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(FieldError(field_name, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


#: A field's validator (see :data:`VALIDATORS`).
Validator = Callable[[_Collector, Mapping[str, Any]], Any]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_problem(value: str, *, multiline: bool) -> str | None:
    """Why a free text cannot be stored by every backend, or None.

    PostgreSQL cannot store NUL in text at all, and no database driver can encode
    a lone surrogate (``"\\ud800"``, which JSON and Python allow); other control
    characters are refused too (a line break and a tab only in a multi-line text).
    """
    for char in value:
        category = unicodedata.category(char)
        if category == "Cs":
            return (
                f"must not contain a lone surrogate ({char!r}): it is not text "
                "(an undecodable byte?)"
            )
        if category == "Cc" and not (multiline and char in _LINE_BREAKS_AND_TABS):
            if char == "\x00":
                return "must not contain NUL (U+0000): PostgreSQL cannot store it"
            return f"must not contain control characters (found U+{ord(char):04X})"
    return None


def field_name(key: object) -> str:
    """A mapping key as a field name in an error (any key, any size)."""
    if isinstance(key, str):
        return key if len(key) <= MAX_QUOTED_LENGTH else key[:MAX_QUOTED_LENGTH] + "..."
    return f"<a {type(key).__name__} key>"


def _tokens(
    errors: _Collector, name: str, value: object, *, upper: bool, allow_star: bool
) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        errors.add(name, "must be a list of names")
        return None
    seen: dict[str, str] = {}
    ok = True
    for i, item in enumerate(value):
        token = _token(errors, f"{name}[{i}]", item, upper=upper, allow_star=allow_star)
        if token is None:
            ok = False
            continue
        seen.setdefault(token.lower(), token)
    if not ok:
        return None
    if "*" in seen:
        return ("*",)
    return tuple(seen.values())


def _token(
    errors: _Collector, where: str, item: object, *, upper: bool, allow_star: bool
) -> str | None:
    """One method or header name, normalized, or None after reporting its problem."""
    if not isinstance(item, str):
        errors.add(where, "must be a string")
        return None
    token = item.strip()
    if token == "*" and allow_star:  # noqa: S105 - the wildcard, not a password
        return "*"
    if token == "*" and upper:  # noqa: S105 - the wildcard, not a password
        # Fetch gives '*' in Access-Control-Allow-Methods a meaning only without
        # credentials, and Flask-CORS compares the requested method with the list
        # literally: stored, it made every preflight fail without a word.
        errors.add(where, "'*' is not a method here: list the methods, e.g. GET, POST")
        return None
    if not upper and _REGEX_LOOKING_HEADER.search(token):
        errors.add(
            where,
            f"{_quoted(item)} looks like a regular expression: header names are matched "
            "literally; list each header, or use '*'",
        )
        return None
    if not TOKEN_RE.fullmatch(token):
        what = "an HTTP method" if upper else "an HTTP header name"
        errors.add(where, f"{_quoted(item)} is not {what}")
        return None
    if upper and token.upper() in FORBIDDEN_METHODS:
        errors.add(
            where,
            f"{token.upper()} is a forbidden method (Fetch standard): a browser never "
            "sends it, so allowing it allows nothing",
        )
        return None
    return token.upper() if upper else token


def _origin_entries(errors: _Collector, value: object) -> tuple[OriginEntry, ...] | None:
    if not isinstance(value, list | tuple):
        errors.add("origins", "must be a list of origin rules")
        return None
    entries: dict[str, OriginEntry] = {}
    for i, item in enumerate(value):
        entry = _origin_entry(errors, f"origins[{i}]", item)
        if entry is not None:
            # Two rules that normalize to the same value are one rule: the first wins.
            entries.setdefault(entry.rule.text, entry)
    return tuple(entries.values())


def _origin_entry(errors: _Collector, where: str, item: object) -> OriginEntry | None:
    """One item of ``origins`` as an entry, or None after reporting its problems."""
    if isinstance(item, OriginEntry):
        return item
    fields = _origin_item_fields(errors, where, item)
    if fields is None:
        return None
    text, note, expires_raw = fields
    rule = _origin_item_rule(errors, where, text)
    if rule is None:
        return None
    checked_note = _origin_item_note(errors, where, note)
    if checked_note is None:
        return None
    expires: datetime | None = None
    if expires_raw is not None and expires_raw != "":
        try:
            expires = parse_time(expires_raw)
        except ValueError as exc:
            errors.add(f"{where}.expires", str(exc))
            return None
    return OriginEntry(rule, checked_note, expires)


def _origin_item_fields(
    errors: _Collector, where: str, item: object
) -> tuple[object, object, object] | None:
    """An item's (origin, note, expires); None when an object has no origin."""
    if not isinstance(item, Mapping):
        return item, "", None
    unknown = sorted(set(item) - set(ORIGIN_FIELDS))
    for key in unknown:
        errors.add(f"{where}.{key}", "unknown field")
    if "origin" not in item:
        errors.add(f"{where}.origin", "is required")
        return None
    note = item.get("note")
    return item["origin"], "" if note is None else note, item.get("expires")


def _origin_item_rule(errors: _Collector, where: str, text: object) -> OriginRule | None:
    """An item's origin as a parsed rule, or None after reporting why it is not one."""
    if not isinstance(text, str):
        errors.add(where, "must be an origin string")
        return None
    try:
        return parse_origin_rule(text)
    except OriginRuleError as exc:
        errors.add(where, str(exc))
    except (ValueError, OverflowError):  # e.g. an IDNA codec error it did not translate
        errors.add(where, f"{_quoted(text)} is not a valid origin")
    return None


def _origin_item_note(errors: _Collector, where: str, note: object) -> str | None:
    """An item's note, stripped, or None after reporting why it cannot be stored."""
    if not isinstance(note, str):
        errors.add(f"{where}.note", "must be a string")
        return None
    if len(note) > MAX_NOTE_LENGTH:
        errors.add(f"{where}.note", f"is longer than {MAX_NOTE_LENGTH} characters")
        return None
    problem = _text_problem(note, multiline=False)
    if problem is not None:
        errors.add(f"{where}.note", problem)
        return None
    return note.strip()


def validate_policy(data: Mapping[str, Any]) -> PolicySpec:
    """Validate and normalize one policy given as a mapping of document fields.

    Raises :class:`ValidationError` listing every problem, each with its field.
    """
    errors = _Collector()
    if not isinstance(data, Mapping):
        raise ValidationError.single("", "a policy must be an object")
    # Each validator reports its field's problems and goes on: every problem, in order.
    _check_unknown_fields(errors, data)
    values: dict[str, Any] = {name: validate(errors, data) for name, validate in VALIDATORS.items()}
    _check_credentials(errors, values["credentials"], values["origins"], values["expose_headers"])
    errors.raise_if_any()
    return PolicySpec(**values)


def _check_unknown_fields(errors: _Collector, data: Mapping[str, Any]) -> None:
    """Report each key that is not a policy field, in sorted order."""
    for key in sorted(field_name(k) for k in data if k not in POLICY_FIELDS):
        errors.add(key, "unknown field")


def name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a name (of a policy, of an API token), or None."""
    if name is None or name == "":
        return "is required"
    if not isinstance(name, str):
        return "must be a string"
    if not NAME_RE.fullmatch(name):
        return (
            f"{_quoted(name)} is not a valid name: lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    return None


def _validated_name(errors: _Collector, data: Mapping[str, Any]) -> str:
    """The policy's name ("" when it has a problem, which is reported)."""
    name: object = data.get("name")
    problem = name_problem(name)
    if problem is not None:
        errors.add("name", problem)
        return ""
    return str(name)


def _validated_path(errors: _Collector, data: Mapping[str, Any]) -> PathPattern | None:
    """The policy's route pattern, or None after reporting its problem."""
    raw_path = data.get("path")
    if raw_path is None or raw_path == "":
        errors.add("path", "is required")
    elif not isinstance(raw_path, str):
        errors.add("path", "must be a string")
    else:
        try:
            return parse_path_pattern(raw_path)
        except PathPatternError as exc:
            errors.add("path", str(exc))
    return None


def _validated_origins(
    errors: _Collector, data: Mapping[str, Any]
) -> tuple[OriginEntry, ...] | None:
    """The policy's origin entries (none when the field is missing, which is reported)."""
    if "origins" not in data:
        errors.add("origins", "is required (an empty list allows nothing)")
        return ()
    return _origin_entries(errors, data["origins"])


def _validated_methods(errors: _Collector, data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The policy's methods: at least one, none a wildcard."""
    methods = _tokens(
        errors, "methods", data.get("methods", DEFAULT_METHODS), upper=True, allow_star=False
    )
    if methods is not None and not methods:
        errors.add("methods", "must name at least one method")
    return methods


def _validated_allow_headers(errors: _Collector, data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The request headers a page may send."""
    default = FIELD["allow_headers"].default
    return _tokens(
        errors, "allow_headers", data.get("allow_headers", default), upper=False, allow_star=True
    )


def _validated_expose_headers(
    errors: _Collector, data: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """The response headers a page may read (null: none)."""
    return _tokens(
        errors, "expose_headers", data.get("expose_headers") or [], upper=False, allow_star=True
    )


def _validated_flag(key: str) -> Validator:
    """The validator of the true/false field ``key``."""
    default = FIELD[key].default

    def validated(errors: _Collector, data: Mapping[str, Any]) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            errors.add(key, "must be true or false")
            return bool(default)
        return value

    validated.__doc__ = f"The policy's {key} (true or false)."
    return validated


def _validated_max_age(errors: _Collector, data: Mapping[str, Any]) -> int | None:
    """The policy's max_age in seconds, or None (also when it has a reported problem)."""
    # A whole number outside its range "is out of range" (an integer of thousands of
    # digits included), anything else "must be" one (so too for priority and review).
    max_age: int | None = data.get("max_age")
    if max_age is not None and not _is_int(max_age):
        errors.add("max_age", "must be a whole number of seconds, 0 or more, or null")
    elif max_age is not None and not 0 <= max_age <= MAX_INT:
        errors.add("max_age", f"is out of range: 0 or more seconds, at most {MAX_INT}, or null")
    else:
        return max_age
    return None


def _validated_priority(errors: _Collector, data: Mapping[str, Any]) -> int:
    """The policy's priority (0 when it has a problem, which is reported)."""
    priority = data.get("priority", 0)
    if not _is_int(priority):
        errors.add("priority", "must be a whole number")
    elif not -MAX_INT <= priority <= MAX_INT:
        errors.add("priority", f"is out of range: {-MAX_INT} to {MAX_INT}")
    else:
        return int(priority)
    return 0


def _validated_review_every_days(errors: _Collector, data: Mapping[str, Any]) -> int:
    """The policy's review interval in days (the default when it has a reported problem)."""
    review = data.get("review_every_days", DEFAULT_REVIEW_EVERY_DAYS)
    if not _is_int(review):
        errors.add("review_every_days", "must be a whole number of days from 1 to 3650")
    elif not 1 <= review <= 3650:
        errors.add("review_every_days", "is out of range: a whole number of days from 1 to 3650")
    else:
        return int(review)
    return DEFAULT_REVIEW_EVERY_DAYS


def _validated_description(errors: _Collector, data: Mapping[str, Any]) -> str:
    """The policy's description, stripped ("" when it has a problem, which is reported)."""
    description = data.get("description")
    description = "" if description is None else description
    if not isinstance(description, str):
        errors.add("description", "must be a string")
    elif len(description) > MAX_DESCRIPTION_LENGTH:
        errors.add("description", f"is longer than {MAX_DESCRIPTION_LENGTH} characters")
    elif (problem := _text_problem(description, multiline=True)) is not None:
        errors.add("description", problem)
    else:
        return description.strip()
    return ""


#: Each field's validator: it reports the field's problems in the input and returns
#: its value for the spec (the default, or None, when it has a problem). In the order
#: problems are reported (older than the table of fields); a new field's goes last.
VALIDATORS: Final[dict[str, Validator]] = {
    "name": _validated_name,
    "path": _validated_path,
    "origins": _validated_origins,
    "methods": _validated_methods,
    "allow_headers": _validated_allow_headers,
    "expose_headers": _validated_expose_headers,
    "credentials": _validated_flag("credentials"),
    "private_network": _validated_flag("private_network"),
    "enabled": _validated_flag("enabled"),
    "max_age": _validated_max_age,
    "priority": _validated_priority,
    "review_every_days": _validated_review_every_days,
    "description": _validated_description,
}


def _check_credentials(
    errors: _Collector,
    credentials: bool,
    origins: tuple[OriginEntry, ...] | None,
    expose_headers: tuple[str, ...] | None,
) -> None:
    """Report the wildcards the Fetch standard forbids with credentials: true."""
    if credentials and origins:
        for i, entry in enumerate(origins):
            problem = origin_conflict(entry, credentials=credentials)
            if problem is not None:
                errors.add(f"origins[{i}]", problem)
    if credentials and expose_headers == ("*",):
        errors.add(
            "expose_headers",
            "'*' is not a wildcard when credentials is true; name the headers to expose",
        )


#: Why a policy with credentials: true cannot allow the rule ``*``.
ANY_ORIGIN_WITH_CREDENTIALS: Final = (
    "'*' cannot be used with credentials: true (the Fetch standard forbids it); "
    "list the origins, or turn credentials off"
)


def origin_conflict(entry: OriginEntry, *, credentials: bool) -> str | None:
    """Why one origin rule cannot be part of a policy with these settings, or None.

    The only check of a policy's rules against its other fields (see
    :func:`validate_policy`): a writer adding one rule checks only that rule.
    """
    if credentials and entry.rule.kind == "any":
        return ANY_ORIGIN_WITH_CREDENTIALS
    return None


def apply_changes(spec: PolicySpec, changes: Mapping[str, Any]) -> PolicySpec:
    """The policy with some fields changed, validated as a whole."""
    document = spec.to_document()
    document["origins"] = list(spec.origins)
    for key, value in changes.items():
        document[key] = value
    return validate_policy(document)


def with_origin(spec: PolicySpec, entry: OriginEntry) -> PolicySpec:
    """The policy with one more origin rule (or that rule's note/expiry replaced)."""
    kept = [e for e in spec.origins if e.rule.text != entry.rule.text]
    return apply_changes(spec, {"origins": [*kept, entry]})


def without_origin(spec: PolicySpec, text: str) -> PolicySpec:
    if spec.origins.in_text_order:
        return replace(spec, origins=spec.origins.with_changes({text: None}))
    return replace(spec, origins=OriginEntries.of(e for e in spec.origins if e.rule.text != text))


def parse_origin_entry(
    origin: str, *, note: str = "", expires: object = None, field_name: str = "origin"
) -> OriginEntry:
    """One origin rule typed by an operator (CLI, admin form), validated."""
    errors = _Collector()
    entries = _origin_entries(errors, [{"origin": origin, "note": note, "expires": expires}])
    if errors.errors:
        raise ValidationError(
            FieldError(
                field_name if e.field == "origins[0]" else e.field.removeprefix("origins[0]."),
                e.message,
            )
            for e in errors.errors
        )
    assert entries
    return entries[0]
