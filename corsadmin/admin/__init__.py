"""The admin UI: a blueprint under ``CORSADMIN_URL_PREFIX`` (``/corsadmin`` by default).

Closed by default: until the application says who may enter
(``CORSADMIN_OPERATOR_LOADER``, or ``CORSADMIN_BUILTIN_LOGIN`` for corsadmin's own
operators), every admin route answers 403. See :mod:`corsadmin.admin.access`.

Modules: ``access`` (who may enter), ``security`` (response headers), ``forms``,
``policy_views``, ``report_views``, ``draft_views`` (the draft page; ``drafting``: the
"Save as draft" of every edit form, ``draft_diff``: the draft page's diff),
``login_views``, ``token_views`` (API tokens), ``fleet_views`` (the Workers screen),
``review`` and ``audit`` (pure decision logic), ``queries`` (read-only SQL), ``settings`` (the admin
settings, from the config object). The built-in operators' data live in
``corsadmin.db.operators``, their commands in ``corsadmin.cli.operators``.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from werkzeug.wrappers import Response

from ..state import CorsAdminState
from . import (  # noqa: F401 - they add the routes
    draft_views,
    fleet_views,
    login_views,
    policy_views,
    report_views,
    token_views,
)
from .blueprint import bp
from .security import add_security_headers
from .settings import ADMIN_DEFAULTS

__all__ = ["ADMIN_DEFAULTS", "register_admin"]


def register_admin(app: Flask, state: CorsAdminState) -> Callable[[Response], object]:
    """Register the admin blueprint on ``app`` (called by ``CorsAdmin.init_app``).

    Returns what every response under the admin prefix must go through (404s and
    static files too): the extension's one ``after_request`` hook calls it, so
    other requests pay nothing for the admin UI.
    """
    app.register_blueprint(bp, url_prefix=state.admin_prefix)
    return add_security_headers
