"""A draft's report read back from its JSON document (:meth:`DraftReport.as_document`,
as the API returns it), so ``corsadmin draft report`` prints the same text from a
remote instance's answer as from its own database.

Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .impact import Beyond, Impact, OutcomeTotal, SeenOrigin, TrafficReport, TrafficRow

__all__ = ["impact_of", "traffic_of"]

_TIMES = ("first_seen", "last_seen")


def _timed(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document's fields, its times as datetimes."""
    return {k: datetime.fromisoformat(v) if k in _TIMES else v for k, v in document.items()}


def _beyond(documents: Mapping[str, Any]) -> dict[str, Beyond]:
    return {key: Beyond(**value) for key, value in documents.items()}


def impact_of(document: Mapping[str, Any]) -> Impact:
    """The history part of a report (``"history"``)."""
    return Impact(
        newly_refused=tuple(SeenOrigin(**_timed(s)) for s in document["newly_refused"]),
        newly_allowed=tuple(SeenOrigin(**_timed(s)) for s in document["newly_allowed"]),
        policies=tuple(document["policies"]),
        seen=int(document["seen"]),
        unlisted=tuple(SeenOrigin(**_timed(s)) for s in document["unlisted"]),
        beyond=_beyond(document["beyond"]),
        unread=_beyond(document["unread"]),
    )


def traffic_of(document: Mapping[str, Any]) -> TrafficReport:
    """The live-traffic part of a report (``"traffic"``)."""
    return TrafficReport(
        evaluated={k: int(v) for k, v in document["evaluated"].items()},
        rows=tuple(TrafficRow(**_timed(r)) for r in document["rows"]),
        totals=tuple(OutcomeTotal(**t) for t in document["totals"]),
    )
