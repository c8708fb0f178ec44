"""The HTTP API for automation: JSON under ``<admin prefix>/api/v1/`` (``/corsadmin/api/v1``).

A blueprint separate from the admin UI's HTML views, registered by
``CorsAdmin.init_app`` whenever the admin UI is. Scripts authenticate with a token
(``Authorization: Bearer cors_...``, :mod:`.auth`); every change goes through the
same store calls as the CLI and the admin UI, audited as ``token:<name>``. Errors are
problem details (:mod:`.problems`); the OpenAPI description is kept in code
(:mod:`.openapi`) and served at ``openapi.json``.

Modules: ``blueprint`` (authentication first, errors, what views share), ``auth``,
``problems``, ``body`` (reading requests, bounded), ``policy_views``,
``document_views`` (export, import, check), ``report_views`` (review, refused
origins, audit), ``draft_views``, ``fleet_views`` (the workers), ``openapi``.
"""

from __future__ import annotations

from flask import Flask

from ..state import CorsAdminState
from . import (  # noqa: F401 - they add the routes
    document_views,
    draft_views,
    fleet_views,
    openapi,
    policy_views,
    report_views,
)
from .blueprint import API_PATH, bp

__all__ = ["API_PATH", "register_api"]


def register_api(app: Flask, state: CorsAdminState) -> None:
    """Register the API blueprint on ``app`` under the admin prefix (called by
    ``CorsAdmin.init_app`` when it registers the admin UI)."""
    app.register_blueprint(bp, url_prefix=state.admin_prefix + API_PATH)
