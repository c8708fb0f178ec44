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

#: Evaluations (decision and headers) memoized per process and application, for
#: every policy together (``Snapshot.evaluations``, a
#: :class:`corsadmin.engine.memo.BoundedMemo` handed from each snapshot to the next,
#: emptied when full). An answer takes at most about 1.8 KB (measured by
#: benchmarks/bench.py: a preflight from a 253-character host with 256 characters of
#: requested headers, echoed by an allow-any-headers policy), so the memo holds at
#: most about 28 MiB per process and app, whatever the number of policies (for a
#: moment twice that, while requests still use the snapshot just replaced). While a
#: draft is tried, its snapshot has a memo of its own with the same bound: up to
#: about 28 MiB more.
EVALUATION_MEMO_LIMIT: Final = 16384

#: Answers for an Origin longer than this are computed without being memoized (the
#: longest serialized origin a browser sends is 267 characters: "https://", a
#: 253-character host, ":65535").
MAX_MEMO_ORIGIN: Final = 300

#: Preflight answers for an ``Access-Control-Request-Headers`` longer than this are
#: computed without being memoized.
MAX_MEMO_REQUEST_HEADERS: Final = 256

#: Paths memoized per snapshot, with the policy that covers each (or none).
PATH_MEMO_LIMIT: Final = 4096

#: Paths longer than this are answered without being memoized.
MAX_MEMO_PATH: Final = 2048

#: ``re:`` rules whose write-time check is memoized (operators write them; the check
#: of one costs up to a fraction of a second).
REGEX_CHECK_CACHE_SIZE: Final = 1024

#: The longest path kept as an example of a request (of one a draft would answer
#: differently, ``corsadmin_draft_traffic.example_path``, and of a refused origin's
#: call, ``corsadmin_origin_usage.example_path``): longer paths are cut to this.
MAX_EXAMPLE_PATH: Final = 512

#: The longest method kept as an example (``example_method`` of the same tables):
#: clients choose the method, longer ones are cut to this.
MAX_EXAMPLE_METHOD: Final = 32

#: The draft traffic's names of :data:`MAX_EXAMPLE_PATH` and :data:`MAX_EXAMPLE_METHOD`.
MAX_TRIAL_EXAMPLE_PATH: Final = MAX_EXAMPLE_PATH
MAX_TRIAL_EXAMPLE_METHOD: Final = MAX_EXAMPLE_METHOD

#: Distinct (draft, policy, outcome, origin) counts one process keeps between two
#: flushes of the draft's traffic (:mod:`corsadmin.runtime.trial`), not counting each
#: policy's ``evaluated`` count and the buckets. Beyond it, new origins are counted in
#: the "(other origins)" bucket of their outcome.
MAX_TRIAL_KEYS: Final = 4096

#: Origins kept per draft, policy and outcome in ``corsadmin_draft_traffic``, the most
#: counted; at each flush the others are folded into the "(other origins)" bucket row.
MAX_TRIAL_ORIGINS_PER_OUTCOME: Final = 1000

#: The longest alert event key (``corsadmin_alert.key``, unique): a longer key (a long
#: origin rule in it) is kept as its kind and a SHA-256 of the whole key.
MAX_ALERT_KEY_LENGTH: Final = 255

#: The longest alert summary kept (``corsadmin_alert.summary``): longer ones are cut.
MAX_ALERT_SUMMARY_LENGTH: Final = 500

#: The longest delivery error kept (``corsadmin_alert.last_error``): longer ones are cut.
MAX_ALERT_ERROR_LENGTH: Final = 500

#: The most origin rules one page of the API's ``GET /policies/<name>/origins`` holds
#: (its ``limit``); ``corsadmin policy show --all --url ...`` asks for pages this size.
MAX_ORIGIN_PAGE: Final = 1000
