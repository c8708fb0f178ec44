"""The admin UI: a blueprint under ``CORSADMIN_URL_PREFIX`` (work in progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from ..extension import CorsAdmin


def register_admin(app: Flask, extension: CorsAdmin) -> None:
    """Register the admin blueprint on ``app`` (called by ``CorsAdmin.init_app``)."""
    return None
