"""The request path's memos: typed, bounded, owned here.

Clients choose the Origin header, the path and the preflight headers, so every
memo of the request path is a :class:`BoundedMemo`: a plain ``dict`` (a hit is
one C-level ``get``) that empties itself when it reaches its limit. Emptying
rather than evicting one entry keeps a miss O(1) with no bookkeeping on a hit;
a client who fills a memo only costs the next requests a recomputation.
The limits are in :mod:`corsadmin.limits`.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(dict[K, V], Generic[K, V]):
    """A dictionary of at most ``limit`` entries, emptied when a new one would exceed it."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        if limit < 1:
            raise ValueError("a memo holds at least one entry")
        self.limit = limit

    def remember(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key`` (emptying the memo first if it is full); returns it."""
        if key not in self and len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
