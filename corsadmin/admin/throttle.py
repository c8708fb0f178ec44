"""Slowing down password guessing on the built-in login page.

Pure Python, no Flask: a sliding window of failed attempts per key (the
client's address with the operator name, and the address alone). Kept in each
process's memory, bounded; behind several workers an attacker gets each
worker's allowance, so put a rate limit in the proxy too (README).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

MAX_KEYS = 10_000


class LoginThrottle:
    """At most ``limit`` failures per key within ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 900.0, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str], now: float) -> float:
        """Seconds until these keys may try again (0 when they may try now)."""
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.limit:
                    wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, keys: Iterable[str], now: float) -> None:
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if key not in self._failures:
                    if len(self._failures) >= self.max_keys:
                        self._prune(now)
                    if len(self._failures) >= self.max_keys:
                        # Full of recent failures: forget the oldest key rather than grow.
                        self._failures.pop(next(iter(self._failures)))
                    self._failures[key] = times
                times.append(now)

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]:
            del self._failures[key]
