"""``GET /workers``: the fleet view (every live process, its status, the current
revision's reach), as ``corsadmin status --format json`` prints it; a read token."""

from __future__ import annotations

from flask import Response, jsonify

from ..state import state
from .blueprint import bp


@bp.get("/workers")
def workers() -> Response:
    """Every live process enforcing the policy; ``reachable`` false (and this process
    alone, from memory) when the fleet table cannot be read."""
    return jsonify(state().fleet_view().to_document())
