"""``corsadmin policy show`` of a large policy: the first SHOW_ORIGINS rules, how many
more there are and how to see them (``--all``), reading only what it prints."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import PolicyStore
from corsadmin.cli.policies import SHOW_ORIGINS
from corsadmin.db.models import OriginRuleRow
from tests.support.cli import ok

EXTRA = 37


def rule_lines(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines() if line.startswith("    https://")]


def test_show_prints_the_first_rules_the_count_and_a_hint(
    store: PolicyStore, runner: FlaskCliRunner, app: Flask
) -> None:
    origins = [f"https://o{i:04d}.example" for i in range(SHOW_ORIGINS + EXTRA)]
    store.create_policy({"name": "big", "path": "/big/**", "origins": origins})
    loaded: list[Any] = []

    def count(*_: Any) -> None:
        loaded.append(1)

    sa.event.listen(OriginRuleRow, "load", count)
    try:
        shown = ok(runner, "policy", "show", "big").stdout
    finally:
        sa.event.remove(OriginRuleRow, "load", count)
    assert f"  origins ({SHOW_ORIGINS + EXTRA}):" in shown.splitlines()
    assert rule_lines(shown) == origins[:SHOW_ORIGINS]
    assert shown.splitlines()[-1] == (
        f"    ... and {EXTRA} more (the first {SHOW_ORIGINS} are shown): "
        "`corsadmin policy show big --all` prints every one"
    )
    assert len(loaded) == SHOW_ORIGINS  # the rest are never read
    every = ok(runner, "policy", "show", "big", "--all").stdout
    assert rule_lines(every) == origins
    assert "more (the first" not in every


def test_a_policy_within_the_bound_prints_every_rule_and_no_hint(
    store: PolicyStore, runner: FlaskCliRunner
) -> None:
    origins = [f"https://o{i:04d}.example" for i in range(SHOW_ORIGINS)]
    store.create_policy({"name": "fits", "path": "/fits", "origins": origins})
    shown = ok(runner, "policy", "show", "fits").stdout
    assert rule_lines(shown) == origins
    assert "--all" not in shown
