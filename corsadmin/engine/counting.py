"""What usage counting records for a request's ``Origin``: the origin, or a bucket.

Part of an evaluation (memoized with it), so the request path never inspects
an origin twice; :mod:`corsadmin.runtime.usage` counts what it returns.
"""

from __future__ import annotations

from typing import Final

from ..policy.origins import OriginRule, is_canonical_request_origin

#: Longest origin stored (outside exact rules): "https://" + a 253-character host +
#: ":65535" is 267; a longer value is no origin a browser sends.
MAX_USAGE_ORIGIN_LENGTH: Final = 300
#: The bucket of Origin values that are not serialized origins (never stored verbatim).
NOT_AN_ORIGIN: Final = "(not a serialized origin)"


def usage_origin(origin: str, rule: OriginRule | None, canonical: bool | None = None) -> str:
    """What usage counting records for a request ``Origin``: the origin itself, or
    :data:`NOT_AN_ORIGIN`. ``rule`` is the rule that allowed it (None if refused);
    ``canonical``, when the caller knows it, whether ``origin`` is a serialized origin
    (:meth:`corsadmin.policy.origins.OriginMatcher.verdict`: not parsed again here).

    Called once per memoized evaluation, not per request.
    """
    if rule is not None and rule.text == origin:
        return origin  # an exact or null rule: written by an operator
    if canonical is None:
        canonical = is_canonical_request_origin(origin)
    if len(origin) > MAX_USAGE_ORIGIN_LENGTH or not canonical:
        return NOT_AN_ORIGIN
    return origin
