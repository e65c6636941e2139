"""The ``clientMsgId`` claim store: one value per key with ``put_if_absent`` and a TTL, the
port under the gateway's ``Deduper`` (``services/gateway/dedupe.py`` holds the rules of
pending and done claims). Redis keeps claims for every pod (``SET NX EX``, ``claims_redis``);
memory keeps them for the single-node mode and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

PENDING = "pending:"


@dataclass(frozen=True)
class Claim:
    won: bool  # True: this attempt owns the id and must append it
    message_id: str | None  # the id a previous attempt committed, when not won


class ClaimStore(Protocol):
    async def put_if_absent(self, key: str, value: str, ttl_s: int) -> str | None:
        """Store ``value`` unless the key exists; return the existing value, or None."""
        ...

    async def put(self, key: str, value: str, ttl_s: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def get(self, key: str) -> str | None: ...


class MemoryClaims:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._clock = clock

    def _live(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    async def put_if_absent(self, key: str, value: str, ttl_s: int) -> str | None:
        existing = self._live(key)
        if existing is None:
            if len(self._items) > 100_000:
                now = self._clock()
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
            self._items[key] = (value, self._clock() + ttl_s)
        return existing

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        self._items[key] = (value, self._clock() + ttl_s)

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)

    async def get(self, key: str) -> str | None:
        return self._live(key)
