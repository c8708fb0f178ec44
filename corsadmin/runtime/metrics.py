"""Prometheus metrics of one process: what ``CORSADMIN_METRICS`` turns on.

``prometheus_client`` (the ``corsadmin[metrics]`` extra) is imported lazily, the
first time an application with metrics on is registered; every metric object is
created once per process (:func:`process_metrics`) and shared by its applications,
so a second app never registers a metric twice. Under gunicorn's several workers,
``prometheus_client``'s multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) sums the
counters and keeps one revision series per live process.

The metrics (README "Observability"):

- ``corsadmin_decisions_total{policy,outcome}``: CORS requests (with ``Origin``) by
  policy and outcome code (:data:`corsadmin.engine.outcome.OUTCOMES`); ``policy`` is
  empty for ``no-policy``. Never labelled by origin or path (clients choose those).
- ``corsadmin_revision{app}``: the revision each process enforces.
- ``corsadmin_snapshot_load_seconds``: time to load and compile a snapshot.
- ``corsadmin_snapshot_load_failures_total``: failed revision checks and loads.
- ``corsadmin_propagation_seconds``: from a change's commit to its enforcement in
  this process (observed when a process installs a newer revision than it had).

On the request path, :meth:`MetricsRecorder.count` is a dictionary look-up of the
labelled counter (cached per policy and outcome) and its ``inc()``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..engine.memo import BoundedMemo
from ..engine.snapshot import CompiledPolicy
from ..signals import snapshot_load_failed, snapshot_loaded

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "LABELLED_CHILDREN_LIMIT",
    "LOAD_SECONDS_BUCKETS",
    "METRICS_EXTRA",
    "METRICS_SETTING",
    "PROPAGATION_SECONDS_BUCKETS",
    "MetricsRecorder",
    "MetricsUnavailable",
    "ProcessMetrics",
    "process_metrics",
    "start_metrics",
]

#: The configuration key that turns metrics on (``corsadmin.config``).
METRICS_SETTING: Final = "CORSADMIN_METRICS"
#: The optional extra that installs ``prometheus_client``.
METRICS_EXTRA: Final = "corsadmin[metrics]"
#: Buckets of ``corsadmin_snapshot_load_seconds`` (a small policy set loads in
#: milliseconds, 10,000 patterns in about half a second: benchmarks/RESULTS.md).
LOAD_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Buckets of ``corsadmin_propagation_seconds`` (NOTIFY: tens of milliseconds; polling:
#: up to ``CORSADMIN_REFRESH_INTERVAL`` plus the load).
PROPAGATION_SECONDS_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Labelled ``corsadmin_decisions_total`` children cached per application (one per
#: policy name and outcome; emptied when full, as every memo of the request path).
LABELLED_CHILDREN_LIMIT: Final = 4096


class MetricsUnavailable(RuntimeError):
    """``CORSADMIN_METRICS`` is on but ``prometheus_client`` cannot be imported."""


@dataclass(frozen=True)
class ProcessMetrics:
    """corsadmin's metric objects, one set per process (in the default registry)."""

    decisions: Counter
    revision: Gauge
    load_seconds: Histogram
    load_failures: Counter
    propagation: Histogram


_process: ProcessMetrics | None = None
_lock = threading.Lock()


def process_metrics() -> ProcessMetrics:
    """This process's metric objects, created (and ``prometheus_client`` imported) once."""
    global _process
    with _lock:
        if _process is None:
            _process = _create()
        return _process


def _create() -> ProcessMetrics:
    try:
        import prometheus_client as prom
    except ImportError as exc:
        raise MetricsUnavailable(
            f"{METRICS_SETTING} is on but prometheus_client cannot be imported ({exc}): "
            f"install the {METRICS_EXTRA} extra (pip install '{METRICS_EXTRA}') or set "
            f"{METRICS_SETTING} = False"
        ) from exc
    return ProcessMetrics(
        decisions=prom.Counter(
            "corsadmin_decisions",
            "CORS requests (with an Origin header) by policy and outcome code",
            ["policy", "outcome"],
        ),
        revision=prom.Gauge(
            "corsadmin_revision",
            "The policy revision this process enforces",
            ["app"],
            multiprocess_mode="liveall",
        ),
        load_seconds=prom.Histogram(
            "corsadmin_snapshot_load_seconds",
            "Seconds to load and compile a policy snapshot",
            buckets=LOAD_SECONDS_BUCKETS,
        ),
        load_failures=prom.Counter(
            "corsadmin_snapshot_load_failures",
            "Failed revision checks and snapshot loads (the snapshot in force stays)",
        ),
        propagation=prom.Histogram(
            "corsadmin_propagation_seconds",
            "Seconds from a change's commit to its enforcement in this process",
            buckets=PROPAGATION_SECONDS_BUCKETS,
        ),
    )


class MetricsRecorder:
    """One application's metrics: the request hook counts through it, and it receives
    the app's :data:`~corsadmin.signals.snapshot_loaded` and
    :data:`~corsadmin.signals.snapshot_load_failed` signals."""

    __slots__ = ("_children", "_decisions", "app_name", "metrics")

    def __init__(self, app_name: str, metrics: ProcessMetrics) -> None:
        self.app_name = app_name
        self.metrics = metrics
        self._decisions = metrics.decisions
        self._children: BoundedMemo[tuple[str, str], Any] = BoundedMemo(LABELLED_CHILDREN_LIMIT)

    def count(self, policy: CompiledPolicy | None, outcome: str) -> None:
        """Count one CORS request (the request path: a look-up and an ``inc()``)."""
        key = ("" if policy is None else policy.spec.name, outcome)
        child = self._children.get(key)
        if child is None:
            child = self._children.remember(key, self._decisions.labels(*key))
        child.inc()

    def on_loaded(
        self,
        _sender: object,
        *,
        revision: int,
        previous_revision: int,
        duration: float,
        committed_at: float = 0.0,
        **_: object,
    ) -> None:
        metrics = self.metrics
        metrics.load_seconds.observe(max(0.0, duration))
        metrics.revision.labels(self.app_name).set(revision)
        if committed_at > 0 and 0 <= previous_revision < revision:
            metrics.propagation.observe(max(0.0, time.time() - committed_at))

    def on_failed(self, _sender: object, **_: object) -> None:
        self.metrics.load_failures.inc()


def start_metrics(app: Any) -> MetricsRecorder:
    """The metrics of ``app`` (a Flask app: the signals' sender), its receivers
    connected; raises :class:`MetricsUnavailable` without ``prometheus_client``."""
    recorder = MetricsRecorder(str(getattr(app, "name", "")), process_metrics())
    snapshot_loaded.connect(recorder.on_loaded, app, weak=False)
    snapshot_load_failed.connect(recorder.on_failed, app, weak=False)
    return recorder
