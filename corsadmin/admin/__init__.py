"""The admin UI: a blueprint under ``CORSADMIN_URL_PREFIX`` (``/corsadmin`` by default).

Closed by default: until the application says who may enter
(``CORSADMIN_OPERATOR_LOADER``, or ``CORSADMIN_BUILTIN_LOGIN`` for corsadmin's own
operators), every admin route answers 403. See :mod:`corsadmin.admin.access`.

Modules: ``access`` (who may enter), ``security`` (response headers), ``forms``,
``policy_views``, ``report_views``, ``login_views``, ``review`` and ``audit``
(pure decision logic), ``queries`` (read-only SQL), ``operators`` (built-in
operators), ``cli`` (``corsadmin operator ...``), ``settings`` (config keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.wrappers import Response

from .settings import ADMIN_DEFAULTS

if TYPE_CHECKING:
    from ..extension import CorsAdmin

__all__ = ["ADMIN_DEFAULTS", "register_admin"]


def register_admin(app: Flask, extension: CorsAdmin) -> Callable[[Response], object]:
    """Register the admin blueprint on ``app`` (called by ``CorsAdmin.init_app``).

    Returns what every response under the admin prefix must go through (404s and
    static files too): the extension's one ``after_request`` hook calls it, so
    other requests pay nothing for the admin UI.
    """
    from . import login_views, policy_views, report_views  # noqa: F401 - they add the routes
    from .blueprint import bp
    from .security import add_security_headers

    app.register_blueprint(bp, url_prefix=extension.state(app).admin_prefix)
    return add_security_headers
