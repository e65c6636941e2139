"""Revoked tokens: ``admin:kick {userId, revoke: true}`` puts the ``jti`` of every token the
user's live sockets hold on a denylist until the token's ``exp``, so a kicked user cannot
reconnect with the same token. Handshakes on every namespace and file downloads check it.

Guarantee: once ``add`` returned, ``revoked`` is true for that ``jti`` on every gateway
(Redis in cluster mode, one process in single-node mode) until the token's expiry, after
which the token is refused anyway. Tokens without a ``jti`` cannot be revoked one by one
(every token Parley issues has one); rotate the secret to revoke those.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.errors import Unavailable


class Revocations(Protocol):
    async def add(self, jti: str, exp_s: int) -> None: ...

    async def revoked(self, jti: str) -> bool: ...


class MemoryRevocations:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def add(self, jti: str, exp_s: int) -> None:
        self._until[jti] = exp_s
        now = time.time()
        if len(self._until) > 10_000:  # expired entries are useless: drop them
            self._until = {j: t for j, t in self._until.items() if t > now}

    async def revoked(self, jti: str) -> bool:
        until = self._until.get(jti)
        return until is not None and until > time.time()


class RedisRevocations:
    def __init__(self, redis: aioredis.Redis, prefix: str, leeway_s: int = 60) -> None:
        self._redis = redis
        self._prefix = f"{prefix}revoked:"
        self._leeway = leeway_s  # the verifier's leeway: keep the entry a little longer

    async def add(self, jti: str, exp_s: int) -> None:
        until_ms = (exp_s + self._leeway) * 1000
        if until_ms <= time.time() * 1000:
            return
        try:
            await self._redis.set(self._prefix + jti, "1", pxat=until_ms)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def revoked(self, jti: str) -> bool:
        try:
            return bool(await self._redis.exists(self._prefix + jti))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
