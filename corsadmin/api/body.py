"""Reading a request: the JSON body (bounded, checked as a policy document file is) and
the fields and query parameters of each endpoint, every problem named by its field.

Nothing a client sends becomes a 500: a body that is too large is a 413, one that is
not JSON a 415 or a 400, a field of the wrong type a 400 naming the field.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Collection, Mapping
from typing import IO, Any, Final

from flask import request

from ..db.store import MAX_ACTOR_LENGTH
from ..errors import FieldError, ValidationError
from ..policy.document import check_document_text, too_deep
from ..policy.spec import MAX_INT
from .problems import Problem

#: The largest request body the API reads (bytes): a policy document of about 300,000
#: plain origin rules. Larger documents are imported with ``corsadmin import``.
MAX_API_BODY_BYTES: Final = 16 * 1024 * 1024

#: The longest value of a query parameter that names something (a policy, an actor, an
#: action): the longest actor a change may have.
MAX_QUERY_TEXT: Final = MAX_ACTOR_LENGTH

#: The largest whole number a query parameter (a cursor: a row id) may hold: ids are
#: 32-bit integers on PostgreSQL (a larger one cannot even be compared with them).
MAX_QUERY_INT: Final = MAX_INT

#: Media types read as JSON: ``application/json`` and any ``application/...+json``.
_JSON_SUFFIX: Final = "+json"

#: What the whole body is called in an error (it has no field name of its own).
BODY: Final = "body"


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith(_JSON_SUFFIX)
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_body() -> dict[str, Any]:
    """The request's JSON object; refused unless it is one, at most MAX_API_BODY_BYTES,
    UTF-8, nested at most MAX_DOCUMENT_DEPTH deep, and holding only text."""
    if request.content_length is not None and request.content_length > MAX_API_BODY_BYTES:
        raise _too_large()
    if not _is_json(request.mimetype):
        raise Problem(
            415,
            "send the body as JSON (Content-Type: application/json)",
            headers={"Accept-Post": "application/json"},
        )
    # A streamed (chunked) body has no length to check first: read one byte more than
    # the maximum, and refuse the body if it is there. Flask 3.1 lets a request lift
    # the application's MAX_CONTENT_LENGTH to that; Flask 2.3 and 3.0 cannot (their
    # limit is the application's, read only), so the read is bounded here.
    with contextlib.suppress(AttributeError):
        request.max_content_length = MAX_API_BODY_BYTES + 1
    raw = read_at_most(request.stream, MAX_API_BODY_BYTES + 1)
    if len(raw) > MAX_API_BODY_BYTES:
        raise _too_large()
    return parse_object(raw)


def read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """The stream's bytes up to its end or ``limit`` bytes, whichever comes first
    (a read may return fewer bytes than asked: it is repeated until one returns none)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _too_large() -> Problem:
    return Problem(
        413, f"the request body is larger than {MAX_API_BODY_BYTES} bytes; nothing was read"
    )


def parse_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or a problem naming what is wrong with it."""

    def refuse(message: str) -> ValidationError:
        return ValidationError.single(BODY, message)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise refuse(
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise refuse(too_deep()) from None
    except ValueError as exc:  # NaN, Infinity, or an integer of more than 4,300 digits
        message = str(exc)
        if "is not a JSON number" not in message:
            message = f"has a whole number of more than {sys.get_int_max_str_digits()} digits"
        raise refuse(message) from None
    check_document_text(data, refuse)
    if not isinstance(data, dict):
        raise refuse("must be a JSON object")
    return data


class Fields:
    """The fields of a request body, read one by one; :meth:`done` raises every problem
    found (and every field the endpoint does not know) at once."""

    def __init__(self, data: Mapping[str, Any], known: Collection[str]) -> None:
        self.data = data
        self.errors: list[FieldError] = [
            FieldError(str(key), "unknown field") for key in sorted(data) if key not in known
        ]

    def _fail(self, key: str, message: str) -> None:
        self.errors.append(FieldError(key, message))

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string (None when absent and not required)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self._fail(key, "is required")
            return None
        if not isinstance(value, str):
            self._fail(key, "must be a string")
            return None
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self._fail(key, "must be true or false")
            return default
        return value

    def choice(self, key: str, choices: Collection[str], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices or not isinstance(value, str):
            self._fail(key, "must be one of " + ", ".join(repr(c) for c in choices))
            return default
        return value

    def texts(self, key: str) -> list[str]:
        """A list of strings (empty when absent)."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail(key, "must be a list of strings")
            return []
        return list(value)

    def value(self, key: str, *, required: bool = False) -> Any:
        """Any JSON value (checked by whatever reads it)."""
        if key not in self.data and required:
            self._fail(key, "is required")
        return self.data.get(key)

    def done(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def query_text(key: str) -> str | None:
    """A query parameter naming something (None when absent or empty), at most
    MAX_QUERY_TEXT characters of printable text."""
    value = request.args.get(key, "").strip()
    if not value:
        return None
    if len(value) > MAX_QUERY_TEXT:
        raise ValidationError.single(key, f"is longer than {MAX_QUERY_TEXT} characters")
    if not value.isprintable():
        raise ValidationError.single(key, "must not contain control characters")
    return value


def query_int(key: str, *, default: int | None, minimum: int, maximum: int) -> int | None:
    """A whole number query parameter between ``minimum`` and ``maximum``."""
    text = request.args.get(key, "").strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_QUERY_INT)):
        raise ValidationError.single(key, "must be a whole number")
    value = int(text)
    if not minimum <= value <= maximum:
        raise ValidationError.single(key, f"must be between {minimum} and {maximum}")
    return value
