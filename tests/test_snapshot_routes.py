"""A reload costs what changed (issue 14's benchmark found otherwise): the path matcher
of a snapshot is taken over when no changed policy's route (pattern, priority,
enabled) changed, and built again when one did, each time routing as a fresh build
would. benchmarks/RESULTS.md has the figures (one change at 10,000 policies)."""

from __future__ import annotations

from typing import Any

import pytest

from corsadmin.engine.decide import decide
from corsadmin.engine.snapshot import Snapshot
from corsadmin.policy.spec import PolicySpec, validate_policy

OLD, NEW = "https://old.example", "https://new.example"


def spec(name: str, path: str, origins: list[str], **more: Any) -> PolicySpec:
    return validate_policy({"name": name, "path": path, "origins": origins, **more})


def base() -> Snapshot:
    return Snapshot(
        1,
        [
            spec("wide", "/api/**", [OLD], priority=0),
            spec("items", "/api/items/*", [OLD], priority=5),
            spec("other", "/other", [OLD]),
        ],
    )


def winner(snapshot: Snapshot, path: str) -> str | None:
    policy = snapshot.policy_for(path)
    return None if policy is None else policy.spec.name


def test_a_change_that_leaves_every_route_alone_keeps_the_matcher() -> None:
    first = base()
    assert winner(first, "/api/items/1") == "items"
    changed = spec("items", "/api/items/*", [OLD, NEW], priority=5, description="more")
    second = first.with_changes(2, {"items": changed})
    assert second._paths is first._paths
    assert winner(second, "/api/items/1") == "items"
    assert decide(second, "/api/items/1", "GET", NEW).decision.allowed  # the new rules
    assert not decide(first, "/api/items/1", "GET", NEW).decision.allowed
    third = Snapshot(3, second.specs, previous=second)  # a full load of the same routes
    assert third._paths is second._paths
    assert [c.value.spec for c in third.candidates("/api/items/1")] == [
        changed,
        first.specs[2],
    ]


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        ({"items": spec("items", "/api/things/*", [OLD], priority=5)}, "/api/items/1", "wide"),
        ({"items": spec("items", "/api/things/*", [OLD], priority=5)}, "/api/things/1", "items"),
        ({"wide": spec("wide", "/api/**", [OLD], priority=9)}, "/api/items/1", "wide"),
        ({"items": spec("items", "/api/items/*", [OLD], enabled=False)}, "/api/items/1", "wide"),
        ({"items": None}, "/api/items/1", "wide"),
        ({"new": spec("new", "/api/items/x", [OLD], priority=9)}, "/api/items/x", "new"),
        ({"other": None}, "/other", None),
    ],
    ids=["moved-away", "moved-to", "priority", "disabled", "deleted", "added", "gone"],
)
def test_a_changed_route_builds_the_matcher_again(
    change: dict[str, PolicySpec | None], path: str, expected: str | None
) -> None:
    first = base()
    second = first.with_changes(2, change)
    assert second._paths is not first._paths
    assert winner(second, path) == expected
    fresh = Snapshot(2, second.specs)
    assert winner(fresh, path) == expected  # as a snapshot built from nothing routes
