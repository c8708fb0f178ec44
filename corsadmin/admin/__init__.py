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

from typing import TYPE_CHECKING

from flask import Flask, request
from werkzeug.wrappers import Response

from .settings import ADMIN_DEFAULTS

if TYPE_CHECKING:
    from ..extension import CorsAdmin

__all__ = ["ADMIN_DEFAULTS", "register_admin"]


def register_admin(app: Flask, extension: CorsAdmin) -> None:
    """Register the admin blueprint on ``app`` (called by ``CorsAdmin.init_app``)."""
    from . import login_views, policy_views, report_views  # noqa: F401 - they add the routes
    from .blueprint import bp
    from .security import add_security_headers

    state = extension.state(app)
    prefix = state.admin_prefix

    app.register_blueprint(bp, url_prefix=prefix)

    @app.after_request
    def admin_security_headers(response: Response) -> Response:
        """Every response under the admin prefix (404s and static files too)."""
        path = request.path
        if path == prefix or path.startswith(prefix + "/"):
            add_security_headers(response)
        return response
