"""Where corsadmin's package data is: templates, static files, migrations.

The one module that knows. In a checkout they sit at the top of the repository
(``templates/``, ``migrations/``) and in the package (``corsadmin/static/``);
an installed wheel carries them all inside the package (pyproject's
``force-include``: ``corsadmin/templates``, ``corsadmin/migrations``).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    """A folder shipped in the wheel as ``corsadmin/<name>``, or at the top of a checkout."""
    for candidate in (PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"corsadmin's {name} folder is missing from the installation")


def migrations_directory() -> Path:
    """corsadmin's Alembic scripts (``alembic.ini``, ``env.py``, ``versions/``)."""
    return _data_dir("migrations")


def templates_directory() -> Path:
    """The admin UI's Jinja templates (``corsadmin/*.html`` inside)."""
    return _data_dir("templates")


def static_directory() -> Path:
    """The admin UI's static files (``corsadmin.css``)."""
    return _data_dir("static")
