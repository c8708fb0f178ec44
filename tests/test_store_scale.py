"""A single rule write costs the same whatever the size of its policy (issue 9).

An ``origin add``, ``change``, ``remove``, a ``set_enabled`` and a review lock the
policy row and read at most the one rule they are about (by the unique index on
policy and origin): the statements they run are the same at 5 and at 3,000 rules,
no statement reads the policy's rules by policy alone, and no rule row is loaded
into the session. Run on SQLite and PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from corsadmin.db.models import AuditEvent, OriginRuleRow, Policy, utcnow
from corsadmin.db.store import PolicyStore
from corsadmin.errors import ValidationError

SMALL = 5
LARGE = 3_000


def _bulk_rules(store: PolicyStore, name: str, count: int) -> None:
    """``count`` exact rules on policy ``name``, written in bulk (no audit, no parsing)."""
    session = store.session
    policy_id = session.scalar(sa.select(Policy.id).where(Policy.name == name))
    now = utcnow()
    session.execute(
        sa.insert(OriginRuleRow),
        [
            {
                "policy_id": policy_id,
                "origin": f"https://shop{i:05d}.tenant.example",
                "note": "",
                "created_at": now,
                "created_by": "seed",
            }
            for i in range(count)
        ],
    )
    session.commit()


@contextmanager
def _watched(store: PolicyStore) -> Iterator[tuple[list[str], list[object]]]:
    """The SQL statements run, and the rule rows loaded as ORM objects, inside."""
    engine = store.session.get_bind()
    statements: list[str] = []
    loaded: list[object] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    def on_load(target: object, _context: Any) -> None:
        loaded.append(target)

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    sa.event.listen(OriginRuleRow, "load", on_load)
    try:
        yield statements, loaded
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)
        sa.event.remove(OriginRuleRow, "load", on_load)


OPERATIONS: dict[str, Callable[[PolicyStore, str], object]] = {
    "add": lambda s, p: s.allow_origin(p, "https://new.example", note="n"),
    "change": lambda s, p: s.change_origin(p, "https://shop00001.tenant.example", note="x"),
    "remove": lambda s, p: s.remove_origin(p, "https://SHOP00002.tenant.example:443"),
    "disable": lambda s, p: s.set_enabled(p, False),
    "settings": lambda s, p: s.update_policy(p, {"description": "d", "credentials": True}),
    "review": lambda s, p: s.mark_reviewed(p, "ok"),
}


def _rule_reads_without_origin(statements: list[str]) -> list[str]:
    """Statements reading or writing rules that do not name one rule by its origin."""
    return [
        s
        for s in statements
        if "corsadmin_origin_rule" in s
        and not s.lstrip().upper().startswith("INSERT")
        and not re.search(r"corsadmin_origin_rule\.origin\s*=", s)
    ]


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_one_write_does_not_grow_with_the_policy(store: PolicyStore, operation: str) -> None:
    seen: dict[int, list[str]] = {}
    for size in (SMALL, LARGE):
        name = f"p{size}"
        store.create_policy({"name": name, "path": f"/{name}/**", "origins": []})
        _bulk_rules(store, name, size)
        # The write alone: no on_commit (the host's reload after commit is the loader's).
        writer = PolicyStore(store.session, actor="tester")
        with _watched(store) as (statements, loaded):
            OPERATIONS[operation](writer, name)
        assert loaded == [], f"{len(loaded)} rule rows loaded into the session"
        assert _rule_reads_without_origin(statements) == []
        seen[size] = [re.sub(r"p\d+", "p", s) for s in statements]
    assert len(seen[SMALL]) == len(seen[LARGE])
    assert seen[SMALL] == seen[LARGE]


def test_the_written_rules_are_right_after_one_write(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p/**", "origins": []})
    _bulk_rules(store, "p", 50)
    for operation in ("add", "change", "remove", "disable"):
        OPERATIONS[operation](store, "p")
    spec = store.spec("p")
    texts = [e.rule.text for e in spec.origins]
    assert "https://new.example" in texts
    assert "https://shop00002.tenant.example" not in texts
    assert spec.origin("https://shop00001.tenant.example").note == "x"  # type: ignore[union-attr]
    assert len(texts) == 50
    assert spec.enabled is False
    assert store.policy("p").version == 5


def test_a_settings_update_still_refuses_credentials_with_a_stored_star(
    store: PolicyStore,
) -> None:
    store.create_policy({"name": "p", "path": "/p/**", "origins": ["https://a.example", "*"]})
    with pytest.raises(ValidationError) as raised:
        store.update_policy("p", {"credentials": True, "expose_headers": ["*"]})
    assert [e.field for e in raised.value.errors] == ["origins[0]", "expose_headers"]
    assert "'*' cannot be used with credentials: true" in raised.value.errors[0].message
    assert store.spec("p").credentials is False


def test_one_rule_is_checked_against_the_policys_credentials(store: PolicyStore) -> None:
    store.create_policy(
        {"name": "p", "path": "/p/**", "origins": ["https://a.example"], "credentials": True}
    )
    with pytest.raises(ValidationError) as raised:
        store.add_origin("p", "*")
    assert [(e.field, e.message) for e in raised.value.errors] == [
        (
            "origin",
            "'*' cannot be used with credentials: true (the Fetch standard forbids it); "
            "list the origins, or turn credentials off",
        )
    ]


def test_audit_bytes_of_an_origin_add_do_not_grow_with_the_policy(store: PolicyStore) -> None:
    sizes = {}
    for size in (SMALL, LARGE):
        name = f"p{size}"
        store.create_policy({"name": name, "path": f"/{name}/**", "origins": []})
        _bulk_rules(store, name, size)
        store.add_origin(name, "https://new.example", note="ticket 1")
        event = store.audit_events(policy=name, limit=1)[0]
        sizes[size] = len(json.dumps(event.before)) + len(json.dumps(event.after))
    assert sizes[SMALL] == sizes[LARGE] < 200


def test_set_enabled_returns_the_settings_without_reading_rules(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p/**", "origins": ["https://a.example"]})
    spec = store.set_enabled("p", False)
    assert (spec.name, spec.enabled, spec.origins) == ("p", False, ())
    assert [e.rule.text for e in store.spec("p").origins] == ["https://a.example"]


def test_a_rename_logs_both_names(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p/**", "origins": []})
    store.update_policy("p", {"name": "q"})
    event = store.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None
    assert (event.before, event.after) == ({"name": "p"}, {"name": "q"})
    from corsadmin.db.models import ChangeLogEntry

    kinds = store.session.execute(
        sa.select(ChangeLogEntry.kind, ChangeLogEntry.policy_name).where(
            ChangeLogEntry.revision == store.revision()
        )
    ).all()
    assert sorted(kinds) == [("policy", "p"), ("policy", "q")]
