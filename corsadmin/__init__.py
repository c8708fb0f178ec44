"""corsadmin: CORS policy as data for Flask applications."""

from __future__ import annotations

__version__ = "0.1.0"
