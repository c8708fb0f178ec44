"""The DEBUG refusal log: one line per refused CORS request, for "why was I refused".

Logger ``corsadmin.refusals``; nothing is written unless it is enabled for DEBUG
(``logging.getLogger("corsadmin.refusals").setLevel(logging.DEBUG)``), and nothing
per request at INFO or above. A line reads::

    refused policy=partner-api reason=origin-not-allowed origin=https://evil.example method=GET

(``requested=PUT`` added for a preflight: the method it asks for). The fields are
also passed as ``extra`` (``policy``, ``reason``, ``origin``, ``method``,
``requested_method``) for JSON log handlers. Clients choose the Origin and the
method, so both are sanitised: control and other non-printable characters are
escaped as ``repr`` escapes them (a backslash doubled), and they are cut to
:data:`MAX_LOGGED_ORIGIN` and :data:`MAX_LOGGED_METHOD` characters.

The request hook checks :meth:`logging.Logger.isEnabledFor` only for refused
decisions, so an allowed request pays nothing here.
"""

from __future__ import annotations

import logging
from typing import Final

from ..engine.decide import Evaluation

__all__ = [
    "MAX_LOGGED_METHOD",
    "MAX_LOGGED_ORIGIN",
    "REFUSAL_LOGGER",
    "log_refusal",
    "refusal_log",
    "sanitised",
]

#: The name of the refusal logger.
REFUSAL_LOGGER: Final = "corsadmin.refusals"
#: Origins are cut to this many characters in the log (the longest serialized origin a
#: browser sends is 267: "https://", a 253-character host, ":65535").
MAX_LOGGED_ORIGIN: Final = 300
#: Methods are cut to this many characters in the log.
MAX_LOGGED_METHOD: Final = 32
#: What ends a value that was cut.
CUT_MARK: Final = "..."

refusal_log = logging.getLogger(REFUSAL_LOGGER)


def sanitised(value: str, limit: int) -> str:
    """``value`` safe for one log line: non-printable characters escaped, cut to ``limit``."""
    cut = value[:limit]
    text = cut.replace("\\", "\\\\")
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text + CUT_MARK if len(value) > limit else text


def log_refusal(
    evaluation: Evaluation, origin: str, method: str, requested_method: str | None
) -> None:
    """Write the DEBUG line of one refused CORS request (the caller checked the level)."""
    policy = evaluation.decision.policy
    fields = {
        "policy": "" if policy is None else policy.name,
        "reason": evaluation.outcome,
        "origin": sanitised(origin, MAX_LOGGED_ORIGIN),
        "method": sanitised(method, MAX_LOGGED_METHOD),
        "requested_method": (
            None if requested_method is None else sanitised(requested_method, MAX_LOGGED_METHOD)
        ),
    }
    line = "refused policy=%s reason=%s origin=%s method=%s"
    args = [fields["policy"], fields["reason"], fields["origin"], fields["method"]]
    if fields["requested_method"] is not None:
        line += " requested=%s"
        args.append(fields["requested_method"])
    refusal_log.debug(line, *args, extra=fields)
