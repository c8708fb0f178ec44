"""Import and ``update_policy(origins=...)`` write rules in bulk, by difference (issue 9).

What they store is what the one-rule path stores: the same document, the same rows
(note, expiry, who added each), unchanged rows kept as they were. Run on SQLite and
PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from corsadmin.db.drafts import DraftStore
from corsadmin.db.models import OriginRuleRow, Policy
from corsadmin.db.store import BULK_CHUNK, POLICY_CHUNK, PolicyStore

COUNT = BULK_CHUNK + 7  # more than one batch


def _origins(count: int, *, tag: str = "") -> list[Any]:
    out: list[Any] = []
    for i in range(count):
        text = f"https://s{i:05d}.example"
        if i % 3 == 0:
            out.append({"origin": text, "note": f"n{i}{tag}"})
        elif i % 3 == 1:
            out.append({"origin": text, "expires": "2099-01-01T00:00:00Z"})
        else:
            out.append(text)
    return out


def _document(origins: list[Any]) -> dict[str, Any]:
    return {"corsadmin": 1, "policies": [{"name": "p", "path": "/p/**", "origins": origins}]}


def _rows(store: PolicyStore) -> dict[str, tuple[Any, ...]]:
    query = (
        sa.select(OriginRuleRow.origin, OriginRuleRow.note, OriginRuleRow.expires_at)
        .join(Policy)
        .where(Policy.name == "p")
    )
    return {r.origin: (r.note, r.expires_at) for r in store.session.execute(query)}


def test_a_bulk_import_stores_what_one_rule_at_a_time_stores(store: PolicyStore) -> None:
    small = _origins(40)
    store.import_document(_document(small))
    bulk = (store.export_document(), _rows(store))
    store.delete_policy("p")
    store.create_policy({"name": "p", "path": "/p/**", "origins": []})
    for item in small:
        if isinstance(item, str):
            store.add_origin("p", item)
        else:
            store.add_origin(
                "p", item["origin"], note=item.get("note", ""), expires=item.get("expires")
            )
    assert (store.export_document(), _rows(store)) == bulk


def test_a_large_import_then_a_changed_one_store_the_document(store: PolicyStore) -> None:
    first = _origins(COUNT)
    report = store.import_document(_document(first))
    assert report.created == ["p"]
    assert store.export_document()["policies"][0]["origins"] == sorted(
        first, key=lambda e: e if isinstance(e, str) else e["origin"]
    )
    kept = "https://s00008.example"  # not dropped, not changed
    created_at = store.session.scalar(
        sa.select(OriginRuleRow.created_at).where(OriginRuleRow.origin == kept)
    )
    # Drop the first 5 rules, change every note, add 3: only the difference is written.
    second = _origins(COUNT, tag="x")[5:] + [f"https://new{i}.example" for i in range(3)]
    report = store.import_document(_document(second))
    assert report.updated == ["p"]
    expected = sorted(second, key=lambda e: e if isinstance(e, str) else e["origin"])
    assert store.export_document()["policies"][0]["origins"] == expected
    assert len(_rows(store)) == COUNT - 5 + 3
    assert (
        store.session.scalar(
            sa.select(OriginRuleRow.created_at).where(OriginRuleRow.origin == kept)
        )
        == created_at
    )
    event = store.audit_events(limit=1)[0]
    assert event.after is not None
    assert event.before is not None
    assert len(event.after["origins"]) == 3 + len([i for i in range(5, COUNT) if i % 3 == 0])
    assert store.import_document(_document(second)).unchanged == ["p"]


def test_update_policy_with_origins_matches_an_import(store: PolicyStore) -> None:
    store.create_policy({"name": "p", "path": "/p/**", "origins": _origins(30)})
    target = [*_origins(30, tag="y")[10:], "https://z.example"]
    spec = store.update_policy("p", {"origins": target})
    assert len(spec.origins) == 21
    by_update = (store.export_document(), _rows(store))
    store.delete_policy("p")
    store.import_document(_document(target))
    assert (store.export_document(), _rows(store)) == by_update


def _many(count: int) -> dict[str, Any]:
    """``count`` small policies (two rules each, one with a note)."""
    return {
        "corsadmin": 1,
        "policies": [
            {
                "name": f"t{i:04d}",
                "path": f"/t{i}/**",
                "origins": [
                    f"https://a{i}.example",
                    {"origin": f"https://b{i}.example", "note": "n"},
                ],
            }
            for i in range(count)
        ],
    }


def _statements(store: PolicyStore, work: Any) -> int:
    """How many SQL statements ``work()`` sends."""
    engine = store.session.get_bind()
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(sent)


def test_an_import_of_many_policies_takes_statements_per_chunk_not_per_policy(
    store: PolicyStore,
) -> None:
    """Creating 2,100 policies (three chunks) and importing them again unchanged: a few
    statements per POLICY_CHUNK on a server (the ORM batches the policies' and events'
    INSERTs; SQLite, in process, gets one INSERT each), never a read per policy."""
    count = 2 * POLICY_CHUNK + 100
    document = _many(count)
    batched = store.session.get_bind().dialect.name != "sqlite"
    created = _statements(store, lambda: store.import_document(document))
    assert created <= (40 if batched else 2 * count + 40), created
    assert len(store.export_document()["policies"]) == count
    unchanged: list[str] = []
    again = _statements(store, lambda: unchanged.extend(store.import_document(document).unchanged))
    assert len(unchanged) == count
    assert again <= 20, again  # the policies, then their rules a chunk of policies at a time
    exported = {p["name"]: p["origins"] for p in store.export_document()["policies"]}
    assert exported == {p["name"]: p["origins"] for p in document["policies"]}


def test_a_draft_import_of_many_policies_takes_statements_per_chunk_not_per_policy(
    store: PolicyStore,
) -> None:
    """Proposing a document of 2,100 policies as a draft (half live and changed, half
    new, one live policy left out and deleted): a few statements per POLICY_CHUNK."""
    count = 2 * POLICY_CHUNK + 100
    live = _many(count // 2)
    store.import_document(live | {"policies": [*live["policies"], _extra()]})
    proposed = _many(count)
    for policy in proposed["policies"][: count // 2]:
        policy["origins"] = [*policy["origins"], "https://more.example"]
    drafts = DraftStore(store)
    changed: list[str] = []
    sent = _statements(
        store, lambda: changed.extend(drafts.import_document(proposed, replace=True))
    )
    assert sent <= 40, sent
    assert len(changed) == count + 1  # every policy, and the one it deletes
    draft = drafts.active()
    assert draft is not None
    assert draft.policies["extra"].action == "delete"
    assert draft.policies["t0000"].action == "update"
    assert draft.policies[f"t{count - 1:04d}"].action == "create"
    # The live policies proposed as they are: their entries go, the others stay.
    again = drafts.import_document(live, reason="again")
    assert again == sorted(["extra", *(f"t{i:04d}" for i in range(count // 2, count))])


def _extra() -> dict[str, Any]:
    return {"name": "extra", "path": "/extra/**", "origins": ["https://x.example"]}
