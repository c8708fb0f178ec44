"""corsadmin's signals (corsadmin.signals) and the one evaluator (corsadmin.engine.decide).

Subscribers see every snapshot a process installs, every failed load, every
committed change with its actor, and every decision the request hook makes;
usage counting is itself a decision subscriber; a failing subscriber never
changes a response; the hook, ``explain`` and ``evaluate`` share one memo.
"""

from __future__ import annotations

import ast
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from blinker import Signal
from flask import Flask

from corsadmin import (
    CorsAdmin,
    CorsRequest,
    Evaluation,
    ValidationError,
    evaluate,
    explain,
    signals,
)
from corsadmin.engine.decide import NOT_COVERED_EVALUATION, decide
from corsadmin.engine.memo import BoundedMemo
from corsadmin.engine.snapshot import Snapshot
from corsadmin.limits import EVALUATION_MEMO_LIMIT, PATH_MEMO_LIMIT
from corsadmin.policy.spec import validate_policy
from corsadmin.runtime.refresh import SnapshotHolder
from corsadmin.signals import (
    Receivers,
    decision_made,
    policy_changed,
    snapshot_load_failed,
    snapshot_loaded,
)

PACKAGE = Path(__file__).resolve().parent.parent / "corsadmin"
ORIGIN = "https://app.example"
POLICY = {"name": "api", "path": "/api/**", "origins": [ORIGIN]}

Received = list[tuple[object, dict[str, Any]]]


@contextmanager
def listening(signal: Signal, sender: object = None) -> Iterator[Received]:
    """Everything ``signal`` sends (for ``sender``, or any) while the block runs."""
    received: Received = []

    def receiver(sent_by: object, **kwargs: Any) -> None:
        received.append((sent_by, kwargs))

    if sender is None:
        signal.connect(receiver, weak=False)
    else:
        signal.connect(receiver, sender, weak=False)
    try:
        yield received
    finally:
        signal.disconnect(receiver)


def make_policy(app: Flask) -> None:
    with app.app_context():
        CorsAdmin.state(app).store("tester").create_policy(POLICY)


# decision_made -----------------------------------------------------------------------


def test_every_cors_decision_on_a_covered_path_is_sent_with_its_reason_code(app: Flask) -> None:
    make_policy(app)
    client = app.test_client()
    with listening(decision_made, app) as received:
        client.get("/api/status", headers={"Origin": ORIGIN})
        client.get("/api/status", headers={"Origin": "https://evil.example"})
        client.get("/api/status", headers={"Origin": "https://APP.example/"})
        client.options(
            "/api/status", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}
        )
        client.get("/api/status")  # no Origin: not a CORS request, nothing sent
        client.get("/elsewhere", headers={"Origin": ORIGIN})  # no policy covers it
        client.get("/corsadmin/", headers={"Origin": ORIGIN})  # the admin UI is not covered
    assert [(s, k["path"], k["method"]) for s, k in received] == [
        (app, "/api/status", "GET"),
        (app, "/api/status", "GET"),
        (app, "/api/status", "GET"),
        (app, "/api/status", "OPTIONS"),
    ]
    evaluations = [k["evaluation"] for _, k in received]
    assert all(isinstance(e, Evaluation) for e in evaluations)
    assert [e.decision.code for e in evaluations] == ["rule", "no-rule", "malformed-origin", "rule"]
    assert [e.decision.allowed for e in evaluations] == [True, False, False, True]
    assert all(
        e.decision.policy is not None and e.decision.policy.name == "api" for e in evaluations
    )
    assert dict(evaluations[3].headers)["Access-Control-Allow-Origin"] == ORIGIN


def test_a_subscriber_of_one_app_hears_nothing_of_another(app: Flask) -> None:
    make_policy(app)
    other = Flask("other")
    with listening(decision_made, other) as received:
        app.test_client().get("/api/status", headers={"Origin": ORIGIN})
    assert received == []


def test_a_failing_subscriber_changes_nothing_and_is_logged_once(
    app: Flask, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signals, "_failed", set())  # as in a fresh process
    make_policy(app)
    client = app.test_client()

    def broken(sender: object, **kwargs: Any) -> None:
        raise RuntimeError("a broken metrics exporter")

    caplog.set_level(logging.ERROR, logger="corsadmin")
    decision_made.connect(broken, app)
    try:
        for _ in range(3):
            response = client.get("/api/status", headers={"Origin": ORIGIN})
            assert response.status_code == 200
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert response.headers["Vary"] == "Origin"
    finally:
        decision_made.disconnect(broken, app)
    failures = [r for r in caplog.records if "corsadmin.decision-made" in r.getMessage()]
    assert len(failures) == 1
    assert not [r for r in caplog.records if "computing CORS headers" in r.getMessage()]


def test_usage_counting_is_a_subscriber_of_the_apps_decisions(app: Flask) -> None:
    make_policy(app)
    state = CorsAdmin.state(app)
    assert state.usage is not None
    assert state.usage.on_decision in list(decision_made.receivers_for(app))
    client = app.test_client()
    client.get("/api/status", headers={"Origin": ORIGIN})
    with decision_made.muted():  # nobody hears: nothing is counted
        client.get("/api/status", headers={"Origin": "https://muted.example"})
    with app.app_context():
        state.flush_usage(force=True)
    counted = {key[1] for key in state.usage._counts} | set(_usage_origins(app))
    assert ORIGIN in counted
    assert "https://muted.example" not in counted


def _usage_origins(app: Flask) -> list[str]:
    import sqlalchemy as sa

    from corsadmin.db.models import OriginUsage

    with app.app_context():
        session = CorsAdmin.state(app).db.session
        return list(session.scalars(sa.select(OriginUsage.origin)))


@pytest.mark.parametrize("app_config", [{"CORSADMIN_TRACK_USAGE": False}])
def test_without_usage_nobody_listens_and_nothing_is_sent(app: Flask) -> None:
    make_policy(app)
    state = CorsAdmin.state(app)
    assert state.usage is None
    assert list(decision_made.receivers_for(app)) == []
    sent: list[dict[str, Any]] = []

    class Counting(Receivers):
        def send(self, /, **kwargs: Any) -> None:
            sent.append(kwargs)

    state.decisions = Counting(decision_made, app)
    response = app.test_client().get("/api/status", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    if not decision_made.receivers:  # another app of this process may listen
        assert sent == []


# Receivers: the request path's dispatch -------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sender: object, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_receivers_follow_connections_made_and_dropped_after_the_first_send() -> None:
    signal = Signal()
    sender = object()
    receivers = Receivers(signal, sender)
    receivers.send(n=0)  # nobody yet
    first, second, elsewhere = Sink(), Sink(), Sink()
    signal.connect(first, sender, weak=False)
    receivers.send(n=1)
    signal.connect(second, weak=False)  # any sender
    signal.connect(elsewhere, object(), weak=False)  # another sender
    receivers.send(n=2)
    signal.disconnect(first)
    receivers.send(n=3)
    assert first.calls == [{"n": 1}, {"n": 2}]
    assert second.calls == [{"n": 2}, {"n": 3}]
    assert elsewhere.calls == []
    with signal.muted():
        receivers.send(n=4)
    assert second.calls[-1] == {"n": 3}


def test_receivers_keep_weak_connections_weak() -> None:
    signal = Signal()
    sender = object()
    receivers = Receivers(signal, sender)
    calls: list[int] = []

    class Subscriber:
        def on(self, sent_by: object, **kwargs: Any) -> None:
            calls.append(kwargs["n"])

    subscriber = Subscriber()
    signal.connect(subscriber.on, sender)  # weak (blinker's default)
    receivers.send(n=1)
    del subscriber
    gc.collect()
    receivers.send(n=2)
    assert calls == [1]
    assert not signal.receivers


def test_receivers_refuse_a_coroutine_receiver_as_blinker_does() -> None:
    signal = Signal()

    async def coroutine(sender: object, **kwargs: Any) -> None:
        return None

    signal.connect(coroutine, weak=False)
    with pytest.raises(RuntimeError, match="coroutine"):
        Receivers(signal, None).send()


# snapshot_loaded, snapshot_load_failed --------------------------------------------------


def test_every_installed_snapshot_is_announced_with_its_revision_and_duration(
    app: Flask,
) -> None:
    with listening(snapshot_loaded, app) as received:
        make_policy(app)  # this process enforces its own change at once
        with app.app_context():
            CorsAdmin.state(app).store("tester").add_origin("api", "https://b.example")
    assert [k["revision"] for _, k in received] == [1, 2]
    assert received[1][1]["previous_revision"] == 1
    assert all(k["policies"] == 1 for _, k in received)
    assert all(0 < k["duration"] < 30 for _, k in received)


def test_a_failed_load_is_announced_and_the_snapshot_in_force_stays() -> None:
    sender = object()
    snapshot = Snapshot(7, ())
    outcomes: list[Snapshot | Exception] = [snapshot, OSError("database unreachable")]

    def load() -> Snapshot:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    holder = SnapshotHolder(
        load=load, read_revision=lambda: 8, interval=10, background=False, sender=sender
    )
    with (
        listening(snapshot_loaded, sender) as loaded,
        listening(snapshot_load_failed, sender) as failed,
    ):
        holder.reload()
        holder.reload()
    assert [k["revision"] for _, k in loaded] == [7]
    assert loaded[0][1]["previous_revision"] == -1
    assert len(failed) == 1
    assert isinstance(failed[0][1]["error"], OSError)
    assert failed[0][1]["revision"] == 7
    assert holder.snapshot is snapshot


def test_a_subscriber_that_raises_does_not_stop_a_load() -> None:
    sender = object()
    holder = SnapshotHolder(
        load=lambda: Snapshot(3, ()),
        read_revision=lambda: 3,
        interval=10,
        background=False,
        sender=sender,
    )

    def broken(sent_by: object, **kwargs: Any) -> None:
        raise RuntimeError("broken")

    snapshot_loaded.connect(broken, sender)
    try:
        holder.reload()
    finally:
        snapshot_loaded.disconnect(broken, sender)
    assert holder.snapshot.revision == 3


# policy_changed -------------------------------------------------------------------------


def test_each_committed_change_is_announced_with_its_actor_and_what_it_touched(
    app: Flask,
) -> None:
    with app.app_context(), listening(policy_changed, app) as received:
        store = CorsAdmin.state(app).store("alice@example")
        store.create_policy(POLICY)
        store.add_origin("api", "https://b.example")
        with pytest.raises(ValidationError):
            store.add_origin("api", "not an origin")  # refused: nothing committed
        store.import_document(
            {
                "corsadmin": 1,
                "policies": [
                    dict(POLICY, origins=[ORIGIN, "https://b.example"]),  # unchanged
                    {"name": "admin", "path": "/admin-api/**", "origins": [ORIGIN]},
                ],
            }
        )
        store.import_document({"corsadmin": 1, "policies": [POLICY]}, replace=True)
    assert [(k["actor"], k["revision"]) for _, k in received] == [
        ("alice@example", 1),
        ("alice@example", 2),
        ("alice@example", 3),
        ("alice@example", 4),
    ]
    changes = [k["changes"] for _, k in received]
    assert changes[:3] == [
        (("policy.create", "api"),),
        (("origin.add", "api"),),
        (("policy.create", "admin"),),  # the unchanged policy is not a change
    ]
    assert sorted(changes[3]) == [("policy.delete", "admin"), ("policy.update", "api")]


# One evaluator --------------------------------------------------------------------------


def test_the_hook_explain_and_evaluate_share_one_memoized_answer(app: Flask) -> None:
    make_policy(app)
    client = app.test_client()
    client.get("/api/status", headers={"Origin": ORIGIN})
    snapshot = CorsAdmin.state(app).holder.current()
    policy = snapshot.policy_for("/api/status")
    assert policy is not None
    hooked = [e for k, e in snapshot.evaluations.items() if k[0] is policy]
    assert len(hooked) == 1  # the hook's answer, memoized
    assert decide(snapshot, "/api/status", "GET", ORIGIN) is hooked[0]
    assert evaluate(snapshot, CorsRequest("/api/status", origin=ORIGIN)) is hooked[0]
    assert explain(snapshot, ORIGIN, "/api/status").actual is hooked[0]
    assert len(snapshot.evaluations) == 1


def test_reason_codes_name_every_branch_of_the_origin_verdict() -> None:
    specs = [
        validate_policy({"name": "a", "path": "/a/**", "origins": [ORIGIN]}),
        validate_policy({"name": "any", "path": "/any/**", "origins": ["*"]}),
    ]
    snapshot = Snapshot(1, specs)
    cases = {
        ("/a/x", ORIGIN): ("rule", True),
        ("/a/x", "https://evil.example"): ("no-rule", False),
        ("/a/x", "https://app.example/"): ("malformed-origin", False),
        ("/a/x", None): ("no-origin", False),
        ("/any/x", "https://evil.example"): ("any-origin", True),
        ("/nowhere", ORIGIN): ("not-covered", False),
    }
    for (path, origin), expected in cases.items():
        decision = decide(snapshot, path, "GET", origin).decision
        assert (decision.code, decision.allowed) == expected, (path, origin)
    assert decide(snapshot, "/nowhere", "GET", ORIGIN) is NOT_COVERED_EVALUATION


def test_snapshot_decide_is_a_deprecated_alias_of_the_verdict() -> None:
    snapshot = Snapshot(1, [validate_policy(POLICY)])
    with pytest.deprecated_call():
        decision = snapshot.decide(CorsRequest("/api/x", origin=ORIGIN))
    assert decision == evaluate(snapshot, CorsRequest("/api/x", origin=ORIGIN)).decision


# Memos: typed, bounded, their limits defined once --------------------------------------------


def test_a_bounded_memo_never_holds_more_than_its_limit() -> None:
    memo: BoundedMemo[int, str] = BoundedMemo(3)
    for i in range(10):
        assert memo.remember(i, str(i)) == str(i)
        assert len(memo) <= 3
    memo.remember(7, "7")  # inserting 9 emptied it: {9}, then {9, 7}
    assert memo == {9: "9", 7: "7"}
    memo.remember(8, "8")
    memo.remember(9, "again")  # a key already held never empties a full memo
    assert memo == {9: "again", 7: "7", 8: "8"}
    with pytest.raises(ValueError, match="at least one"):
        BoundedMemo(0)


def test_the_request_path_memos_are_bounded_by_the_limits_module() -> None:
    snapshot = Snapshot(1, [validate_policy(POLICY)])
    policy = snapshot.policy_for("/api/x")
    assert policy is not None
    assert isinstance(snapshot.evaluations, BoundedMemo)
    assert snapshot.evaluations.limit == EVALUATION_MEMO_LIMIT
    for i in range(EVALUATION_MEMO_LIMIT + 10):
        decide(snapshot, "/api/x", "GET", f"https://o{i}.example")
    assert 0 < len(snapshot.evaluations) <= EVALUATION_MEMO_LIMIT
    for i in range(PATH_MEMO_LIMIT + 10):
        snapshot.policy_for(f"/api/{i}")
    assert 0 < len(snapshot._by_path) <= PATH_MEMO_LIMIT


def test_every_cache_size_in_the_package_is_a_name_from_the_limits_module() -> None:
    """No ``lru_cache(maxsize=4096)`` or ``BoundedMemo(4096)`` with a number of its own."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            sizes = [k.value for k in node.keywords if k.arg == "maxsize"]
            if name == "BoundedMemo":
                sizes += node.args[:1]
            for size in sizes:
                if isinstance(size, ast.Constant):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []
