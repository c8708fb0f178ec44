"""Every bound on a memo or cache that clients can fill, defined once.

Attackers choose the Origin header, the path and the preflight headers, so
every structure that remembers something per distinct value is bounded. The
bounds on what may be *written* (origin length, notes, patterns) live with the
validation in :mod:`corsadmin.policy`; the bounds on usage counting in
:mod:`corsadmin.runtime.usage` and :mod:`corsadmin.engine.counting`.

The lowest layer: anything may import it, it imports nothing of corsadmin.
"""

from __future__ import annotations

from typing import Final

#: Evaluations (decision and headers) memoized per compiled policy
#: (:class:`corsadmin.engine.memo.BoundedMemo`, emptied when full).
EVALUATION_MEMO_LIMIT: Final = 4096

#: Paths memoized per snapshot, with the policy that covers each (or none).
PATH_MEMO_LIMIT: Final = 4096

#: Paths longer than this are answered without being memoized.
MAX_MEMO_PATH: Final = 2048

#: Origin verdicts memoized per origin matcher (``functools.lru_cache``).
ORIGIN_MATCH_CACHE_SIZE: Final = 4096

#: Path matches memoized per path matcher (``functools.lru_cache``).
PATH_MATCH_CACHE_SIZE: Final = 4096

#: Paths longer than this are matched without being memoized by the path matcher.
MAX_CACHED_PATH_LENGTH: Final = 2048

#: ``re:`` rules whose write-time check is memoized (operators write them; the check
#: of one costs up to a fraction of a second).
REGEX_CHECK_CACHE_SIZE: Final = 1024
