"""The whole policy as a document, written as it is read: policy by policy, rule by rule.

:func:`export_text` yields the text of ``corsadmin export`` in pieces: byte for byte
what ``json.dumps(store.export_document(), indent=2, ensure_ascii=False)`` prints, but
read with one SELECT whose rows arrive in chunks of :data:`EXPORT_CHUNK_ROWS`, so the
memory it takes does not grow with the number of origin rules. One statement: the rows
are those of one moment, never a mixture of two revisions.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..policy.document import DOCUMENT_FORMAT, canonical
from ..policy.fields import PLAIN_FIELDS
from ..policy.origins import parse_origin_rule
from ..policy.paths import load_path_pattern
from ..policy.spec import EMPTY_ORIGINS, OriginEntry, PolicySpec
from .dialects import code_point_order
from .loader import column_reader
from .models import OriginRuleRow, Policy

#: Rows fetched from the database at a time while exporting.
EXPORT_CHUNK_ROWS: Final = 1000

_INDENT: Final = "  "


def _dumps(value: Any, depth: int) -> str:
    """``value`` as ``json.dumps(..., indent=2)`` writes it ``depth`` levels deep."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + _INDENT * depth) if depth else text


def _list(items: Iterable[Iterable[str]], depth: int) -> Iterator[str]:
    """A JSON list of already-encoded items (each in pieces), ``depth`` levels deep."""
    pad = "\n" + _INDENT * (depth + 1)
    empty = True
    for item in items:
        yield ("[" if empty else ",") + pad
        yield from item
        empty = False
    yield "[]" if empty else "\n" + _INDENT * depth + "]"


def _policy(document: dict[str, Any], origins: Iterable[Any], depth: int) -> Iterator[str]:
    """One policy object, its ``origins`` list written as the rules arrive."""
    pad = "\n" + _INDENT * (depth + 1)
    first = True
    for key, value in document.items():
        yield ("{" if first else ",") + pad + json.dumps(key, ensure_ascii=False) + ": "
        first = False
        if key == "origins":
            yield from _list(([_dumps(o, depth + 2)] for o in origins), depth + 1)
        else:
            yield _dumps(value, depth + 1)
    yield "{}" if first else "\n" + _INDENT * depth + "}"


def settings_spec(row: Any) -> PolicySpec:
    """A policy's settings (an ORM object or a plain row) as a spec without its origin
    rules: none are read."""
    plain = {f.name: column_reader(f.kind)(getattr(row, f.name)) for f in PLAIN_FIELDS}
    return PolicySpec(path=load_path_pattern(row.path), origins=EMPTY_ORIGINS, **plain)


def _settings(row: Any) -> dict[str, Any]:
    """A policy row's fields as the document holds them, origins empty."""
    return canonical(settings_spec(row))


def _rows(session: Session | scoped_session[Any]) -> Iterator[Any]:
    """Every policy with each of its rules (one row per rule, one for a policy without
    any), by policy name, then by rule in code point order (as the document sorts them)."""
    p = Policy.__table__
    r = OriginRuleRow.__table__
    order = code_point_order(session.get_bind().dialect, r.c.origin)
    query = (
        sa.select(
            p,
            r.c.origin.label("rule_origin"),
            r.c.note.label("rule_note"),
            r.c.expires_at.label("rule_expires"),
        )
        .select_from(p.outerjoin(r, r.c.policy_id == p.c.id))
        .order_by(p.c.name, p.c.id, order)
        .execution_options(yield_per=EXPORT_CHUNK_ROWS)
    )
    return iter(session.execute(query))


def _entry(row: Any) -> Any:
    rule = parse_origin_rule(row.rule_origin, stored=True)
    return OriginEntry(rule, row.rule_note or "", row.rule_expires).to_document()


def export_text(session: Session | scoped_session[Any]) -> Iterator[str]:
    """The policy document as ``corsadmin export`` prints it (without the final newline),
    in pieces, reading the rows in chunks."""

    def policies() -> Iterator[Iterator[str]]:
        for _, group in itertools.groupby(_rows(session), key=lambda row: row.id):
            first = next(group)
            rules = (row for row in itertools.chain([first], group) if row.rule_origin is not None)
            yield _policy(_settings(first), (_entry(row) for row in rules), 2)

    yield "{\n" + _INDENT + '"corsadmin": ' + json.dumps(DOCUMENT_FORMAT) + ",\n"
    yield _INDENT + '"policies": '
    yield from _list(policies(), 1)
    yield "\n}"
