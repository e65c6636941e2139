"""The Redis adapter of the ``revocations`` port (port and memory adapter: ``revocations.py``)."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.redis_io import AnyRedis


class RedisRevocations:
    def __init__(self, redis: AnyRedis, prefix: str, leeway_s: int = 60) -> None:
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
