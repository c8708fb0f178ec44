"""Serving corsadmin's Prometheus metrics: the host chooses where (nothing is mounted).

Turn collection on with ``CORSADMIN_METRICS = True`` (needs the
``corsadmin[metrics]`` extra: ``prometheus_client``), then expose them either as a
route of the app::

    from corsadmin.metrics import metrics_view

    app.add_url_rule("/metrics", view_func=metrics_view)

or as a WSGI app of its own, beside the application::

    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from corsadmin.metrics import metrics_wsgi_app

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": metrics_wsgi_app()})

Both serve every metric of the process's default registry (the host's own
included) or, when ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn with several
workers), the sum over every worker through ``prometheus_client``'s multiprocess
collector. In that mode, let gunicorn tell ``prometheus_client`` when a worker exits
(its revision series go with it)::

    # gunicorn.conf.py
    from corsadmin.metrics import child_exit  # noqa: F401

Protect the endpoint as any other internal one: it names the policies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from .runtime.metrics import (
    METRICS_EXTRA,
    METRICS_SETTING,
    MetricsUnavailable,
)

if TYPE_CHECKING:
    from flask import Response
    from prometheus_client import CollectorRegistry

__all__ = [
    "MULTIPROC_DIR_VARIABLE",
    "MetricsUnavailable",
    "child_exit",
    "exposition",
    "metrics_view",
    "metrics_wsgi_app",
    "scrape_registry",
]

#: The environment variable that puts ``prometheus_client`` in multiprocess mode.
MULTIPROC_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise MetricsUnavailable(
            f"serving metrics needs prometheus_client: install the {METRICS_EXTRA} extra "
            f"(and set {METRICS_SETTING} = True to collect corsadmin's)"
        ) from exc
    return prometheus_client


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: the default registry, or with ``PROMETHEUS_MULTIPROC_DIR``
    a registry collecting every process's files."""
    prom = _prometheus()
    if not os.environ.get(MULTIPROC_DIR_VARIABLE):
        registry: CollectorRegistry = prom.REGISTRY
        return registry
    from prometheus_client import multiprocess

    registry = prom.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> tuple[bytes, str]:
    """The scrape's body in the Prometheus text format, and its content type."""
    prom = _prometheus()
    body: bytes = prom.generate_latest(scrape_registry())
    content_type: str = prom.CONTENT_TYPE_LATEST
    return body, content_type


def metrics_view() -> Response:
    """A Flask view serving the metrics: ``app.add_url_rule("/metrics", view_func=...)``."""
    from flask import current_app

    body, content_type = exposition()
    response: Response = current_app.response_class(body, content_type=content_type)
    return response


def metrics_wsgi_app() -> WSGIApp:
    """A WSGI app serving the metrics (for ``DispatcherMiddleware``)."""
    prom = _prometheus()
    app: WSGIApp = prom.make_wsgi_app(scrape_registry())
    return app


def child_exit(server: object, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: forget an exited worker's live series
    (``prometheus_client.multiprocess.mark_process_dead``)."""
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
