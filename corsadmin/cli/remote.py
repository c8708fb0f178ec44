"""The ``corsadmin`` console script: the same commands on a remote instance, through its
JSON API, with no Flask app and no database credentials.

    corsadmin --url https://app.example.com/corsadmin --token-file token policy list
    CORSADMIN_URL=... CORSADMIN_TOKEN=... corsadmin origin add web https://a.example

``--url`` (or ``CORSADMIN_URL``) is required; without one it says to use ``flask
corsadmin`` or ``python manage.py corsadmin``, which work on the app's database (and
take ``--url`` too). ``python -m corsadmin.cli.remote`` runs the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import corsadmin_cli
from .context import RemoteOnly


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``corsadmin`` group as the console script (exits)."""
    corsadmin_cli.main(
        args=list(argv) if argv is not None else None, prog_name="corsadmin", obj=RemoteOnly()
    )


if __name__ == "__main__":  # pragma: no cover
    main()
