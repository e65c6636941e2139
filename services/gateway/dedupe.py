"""``clientMsgId`` idempotency: a retry within the window gets the first attempt's id.

A claim moves through two states: *pending* while the first attempt is being appended to the
log, then *done* with its message id. A retry that finds *done* returns that id and is not
delivered again; one that finds *pending* waits briefly for the outcome (and gets
``unavailable`` if the first attempt is still undecided). A failed attempt releases its claim,
so the next retry starts over. Redis keeps claims for every pod (``SET NX EX``); memory keeps
them for the single-node mode and tests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.errors import Unavailable

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


class Deduper:
    def __init__(self, store: ClaimStore, ttl_s: int = 600, wait_s: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl_s
        self._wait = wait_s

    @staticmethod
    def key(user_id: str, client_msg_id: str) -> str:
        return f"{user_id}\x1f{client_msg_id}"

    async def claim(self, user_id: str, client_msg_id: str, message_id: str) -> Claim:
        key = self.key(user_id, client_msg_id)
        existing = await self._store.put_if_absent(key, PENDING + message_id, self._ttl)
        deadline = time.monotonic() + self._wait
        while existing is not None:
            if not existing.startswith(PENDING):
                return Claim(False, existing)
            if time.monotonic() > deadline:
                raise Unavailable("previous attempt with this clientMsgId still in flight")
            await asyncio.sleep(0.05)
            existing = await self._store.get(key)
            if existing is None:  # the other attempt failed and released: try to take it
                existing = await self._store.put_if_absent(key, PENDING + message_id, self._ttl)
        return Claim(True, None)

    async def commit(self, user_id: str, client_msg_id: str, message_id: str) -> None:
        await self._store.put(self.key(user_id, client_msg_id), message_id, self._ttl)

    async def release(self, user_id: str, client_msg_id: str) -> None:
        await self._store.delete(self.key(user_id, client_msg_id))


class MemoryClaims:
    def __init__(self, clock=time.monotonic) -> None:
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


class RedisClaims:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}cmid:"

    async def put_if_absent(self, key: str, value: str, ttl_s: int) -> str | None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._prefix + key, value, nx=True, ex=ttl_s)
                pipe.get(self._prefix + key)
                created, current = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return None if created else current

    async def put(self, key: str, value: str, ttl_s: int) -> None:
        try:
            await self._redis.set(self._prefix + key, value, ex=ttl_s)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def get(self, key: str) -> str | None:
        try:
            return await self._redis.get(self._prefix + key)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
