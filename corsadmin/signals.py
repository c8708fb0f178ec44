"""corsadmin's signals: what a subscriber (metrics, a trial, an audit feed) can hook into.

Flask's own kind of signal (`blinker <https://blinker.readthedocs.io/>`_, as
:mod:`flask.signals`), one per event; the sender is the Flask application.
Subscribe for one application with ``signal.connect(receiver, app)``::

    from corsadmin.signals import decision_made

    def count(app, *, evaluation, path, method):
        metrics.labels(evaluation.decision.code).inc()

    decision_made.connect(count, app)

Receivers run in the thread that sent the signal, synchronously; one that
raises is logged (once per signal) and does not change what corsadmin does. A
signal with no receivers costs one attribute test (``signal.receivers``), so
unused signals cost nothing on the request path. :data:`decision_made` is sent
per request through :class:`Receivers`, which resolves the receivers once per
change of the connections instead of once per request (blinker's ``send``
costs about 2 µs more per request: ``benchmarks/RESULTS.md``); the receivers
and the calls are the same. corsadmin's own usage counting is such a receiver.

The lowest layer: it imports nothing of corsadmin.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any

from blinker import Namespace, Signal

__all__ = [
    "Receivers",
    "decision_made",
    "policy_changed",
    "send_safely",
    "snapshot_load_failed",
    "snapshot_loaded",
]

log = logging.getLogger("corsadmin")

_signals = Namespace()

#: A process installed a new snapshot (after a change anywhere, or at start).
#: Keywords: ``revision`` (int), ``previous_revision`` (int, -1 before the first),
#: ``duration`` (seconds spent loading and compiling, float), ``policies`` (int:
#: the enabled policies it enforces), ``committed_at`` (float: when the change that
#: made ``revision`` committed, epoch seconds of the writer's clock; 0.0 when not
#: known). Receivers should accept ``**kwargs``: keywords may be added.
snapshot_loaded: Signal = _signals.signal("corsadmin.snapshot-loaded")

#: Reading the revision or loading a snapshot failed; the snapshot in force stays.
#: Keywords: ``error`` (the exception), ``revision`` (int: the revision still
#: enforced, -1 if none has loaded: then nothing is allowed).
snapshot_load_failed: Signal = _signals.signal("corsadmin.snapshot-load-failed")

#: A change to the policy set committed (sent by the process that made it, after
#: the commit). Keywords: ``actor`` (str: who, as the audit log names them),
#: ``revision`` (int: the new revision), ``changes`` (tuple of ``(action,
#: policy_name)`` pairs, as in the audit log: ``("origin.add", "partner-api")``).
policy_changed: Signal = _signals.signal("corsadmin.policy-changed")

#: corsadmin answered a CORS request (one with an ``Origin`` header) to a path a
#: policy covers. Keywords: ``evaluation`` (:class:`corsadmin.Evaluation`: its
#: ``decision`` has the ``policy``, ``allowed``, ``code`` (the reason code:
#: ``rule``, ``any-origin``, ``malformed-origin``, ``no-rule``), ``reason`` and
#: ``rule``; ``headers`` are the CORS headers sent; ``outcome`` is the outcome code,
#: ``allowed`` or why a browser refuses it: ``corsadmin.engine.outcome``), ``path``
#: and ``method``.
#: Sent on the request path, after the headers are written: keep receivers cheap.
decision_made: Signal = _signals.signal("corsadmin.decision-made")

_failed: set[str] = set()


def send_safely(signal: Signal, sender: object, /, **kwargs: Any) -> None:
    """Send ``signal`` if anyone listens; a receiver's exception is logged (once per
    signal) and goes no further: a subscriber never changes what corsadmin does."""
    if not signal.receivers:
        return
    try:
        signal.send(sender, **kwargs)
    except Exception:
        report_receiver_failure(signal)


def report_receiver_failure(signal: Signal) -> None:
    """Log that a receiver of ``signal`` raised (once per signal and process)."""
    name = getattr(signal, "name", repr(signal))
    if name not in _failed:
        _failed.add(name)
        log.exception("a receiver of the %s signal failed (logged once)", name)


#: How many times each signal's connections changed (a :class:`Receivers` resolves again).
_changes: dict[Signal, int] = {}

_Ref = Callable[..., Any] | weakref.ref[Callable[..., Any]]


class Receivers:
    """The receivers of ``signal`` for ``sender``, resolved once per change of the
    signal's connections: the request path's way to send :data:`decision_made`.

    ``Receivers(signal, sender).send(**kwargs)`` calls the same receivers with the
    same arguments as ``signal.send(sender, **kwargs)`` (and respects
    ``signal.muted()``), without blinker's per-send look-ups. Receivers connected
    weakly stay weak: their references are kept, not the receivers.
    """

    __slots__ = ("_refs", "_seen", "sender", "signal")

    def __init__(self, signal: Signal, sender: object) -> None:
        if signal not in _changes:
            _watch(signal)
        self.signal = signal
        self.sender = sender
        self._seen = -1  # the _changes count the references were resolved at
        self._refs: tuple[_Ref, ...] = ()

    def send(self, /, **kwargs: Any) -> None:
        """Call every receiver (exceptions propagate, as with ``signal.send``)."""
        signal = self.signal
        if not signal.receivers or signal.is_muted:
            return
        if self._seen != _changes[signal]:
            self._resolve()
        sender = self.sender
        for ref in self._refs:
            receiver = ref() if isinstance(ref, weakref.ref) else ref
            if receiver is None:  # collected since: blinker drops it, so resolve again
                self._seen = -1
                continue
            receiver(sender, **kwargs)

    def _resolve(self) -> None:
        signal = self.signal
        self._seen = _changes[signal]
        wanted = list(signal.receivers_for(self.sender))
        if any(inspect.iscoroutinefunction(r) for r in wanted):
            raise RuntimeError("Cannot send to a coroutine function.")  # as blinker's send
        refs = []
        for ref in list(signal.receivers.values()):
            receiver = ref() if isinstance(ref, weakref.ref) else ref
            if receiver is not None and receiver in wanted:
                refs.append(ref)
        self._refs = tuple(refs)


def _watch(signal: Signal) -> None:
    _changes[signal] = 0

    def changed(_signal: Signal, **_: object) -> None:
        _changes[signal] += 1

    signal.receiver_connected.connect(changed, weak=False)
    signal.receiver_disconnected.connect(changed, weak=False)
