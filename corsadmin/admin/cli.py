"""``corsadmin operator ...``: the standalone app's operators (work in progress)."""

from __future__ import annotations

import click


@click.group("operator")
def operator_group() -> None:
    """Manage who may log in to the admin UI (standalone app)."""
