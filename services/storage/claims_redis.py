"""The Redis adapter of the ``claims`` port (port and memory adapter: ``claims.py``)."""

from __future__ import annotations

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.redis_io import AnyRedis


class RedisClaims:
    def __init__(self, redis: AnyRedis, prefix: str) -> None:
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
            found = await self._redis.get(self._prefix + key)
            return None if found is None else str(found)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
