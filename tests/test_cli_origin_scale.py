"""``corsadmin origin add`` is a sub-second command whatever the size (issue 9).

The write itself reads one rule (tests/test_store_scale.py); the command's process
holds no snapshot (``init_app`` loads none inside a CLI command), and after the
commit it loads none either: before, the store's ``on_commit`` loaded the whole
policy set in the CLI process (57 s at 1,000,000 rules on SQLite).
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import CorsAdmin, PolicyStore
from tests.support.cli import ok, policy_doc, seed, view


def test_a_cli_origin_change_loads_no_snapshot(runner: FlaskCliRunner, app: Flask) -> None:
    state = CorsAdmin.state(app)
    with app.app_context():  # seeded by another process, as it were: nothing loaded here
        PolicyStore(state.db.session, actor="seed").create_policy(
            policy_doc("api", "/api/**", origins=["https://first.example"])
        )
        state.db.session.remove()
    holder = state.holder
    assert not holder.snapshot.loaded
    ok(runner, "origin", "add", "api", "https://second.example")
    ok(runner, "origin", "remove", "api", "https://first.example")
    assert holder.loads == 0
    assert not holder.snapshot.loaded
    assert set(view(app).origins["api"]) == {"https://second.example"}


def test_a_process_holding_a_snapshot_still_enforces_its_change_at_once(
    app: Flask, cors: CorsAdmin
) -> None:
    seed(app, policy_doc("api", "/api/**", origins=["https://first.example"]))
    with app.app_context():
        before = cors.snapshot(app)
        assert before.loaded
        cors.store("tester", app).add_origin("api", "https://second.example")
        after = CorsAdmin.state(app).holder.snapshot
    assert after.revision == before.revision + 1
    (spec,) = [s for s in after.specs if s.name == "api"]
    assert spec.origin("https://second.example") is not None
