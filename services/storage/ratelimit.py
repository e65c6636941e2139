"""Sliding-window rate limits: the rule (pure), the port, and the in-memory adapter.

A limit is ``count`` hits per ``window`` seconds, counted over the window ending now (a
sliding log, not fixed buckets: no burst of 2× at a bucket edge). Limits are configured per
namespace and event by ``PARLEY_RATE_LIMITS``, e.g.
``chat:message=10/10,chat:typing=2/1,admin:broadcast@/admin=5/60`` (``@namespace`` defaults
to ``/chat``). The Redis adapter (``ratelimit_redis``) applies the same rule atomically for
every pod and device. Parsing the limits is ``services.common.limits`` (settings hold them
parsed).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from services.common.limits import Limit


def allow(log: deque[int], limit: Limit, now_ms: int) -> bool:
    """The sliding-log rule on one key's timestamps (mutates ``log``)."""
    while log and log[0] <= now_ms - limit.window_ms:
        log.popleft()
    if len(log) >= limit.count:
        return False
    log.append(now_ms)
    return True


class RateLimiter(Protocol):
    """``hit`` records one event for ``key`` and says whether it is within ``limit``.

    Guarantee: at most ``limit.count`` hits are allowed in any window of ``limit.window_ms``
    for a key, however many processes call concurrently (Redis: one Lua script per hit).
    ``full`` says whether the next hit would be refused, without recording one (for limits
    that count only failures, e.g. wrong passwords); ``reset`` forgets a key.
    """

    async def hit(self, key: str, limit: Limit, now_ms: int) -> bool: ...

    async def full(self, key: str, limit: Limit, now_ms: int) -> bool: ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._logs: dict[str, deque[int]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: Limit, now_ms: int) -> bool:
        log = self._logs.get(key)
        if log is None:
            if len(self._logs) >= self._max_keys:
                self._evict(now_ms, limit)
            log = self._logs[key] = deque()
        return allow(log, limit, now_ms)

    async def full(self, key: str, limit: Limit, now_ms: int) -> bool:
        log = self._logs.get(key)
        if not log:
            return False
        while log and log[0] <= now_ms - limit.window_ms:
            log.popleft()
        return len(log) >= limit.count

    async def reset(self, key: str) -> None:
        self._logs.pop(key, None)

    def _evict(self, now_ms: int, limit: Limit) -> None:
        stale = [k for k, log in self._logs.items() if not log or log[-1] <= now_ms - 60_000]
        for k in stale or list(self._logs)[: len(self._logs) // 2]:
            del self._logs[k]
