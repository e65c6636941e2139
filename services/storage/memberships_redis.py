"""The Redis adapter of the stored-memberships port (port and memory adapter:
``memberships.py``).

Keys (one hash tag, so a MULTI stays on one Redis Cluster slot):
  ``<prefix>{members}:user:<user>``   set of the user's stored rooms
  ``<prefix>{members}:room:<room>``   hash user → username
"""

from __future__ import annotations

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.redis_io import AnyRedis


class RedisMemberships:
    def __init__(self, redis: AnyRedis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}{{members}}:"

    def _user(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}"

    def _room(self, room_id: str) -> str:
        return f"{self._prefix}room:{room_id}"

    async def add(self, user_id: str, username: str, room_id: str) -> bool:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._user(user_id), room_id)
                pipe.hset(self._room(room_id), user_id, username)
                added, _ = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return bool(added)

    async def remove(self, user_id: str, room_id: str) -> bool:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.srem(self._user(user_id), room_id)
                pipe.hdel(self._room(room_id), user_id)
                removed, _ = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return bool(removed)

    async def has(self, user_id: str, room_id: str) -> bool:
        try:
            return bool(await self._redis.sismember(self._user(user_id), room_id))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def rooms(self, user_id: str) -> list[str]:
        try:
            found = await self._redis.smembers(self._user(user_id))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return sorted(str(r) for r in found)

    async def members(self, room_id: str) -> dict[str, str]:
        try:
            found = await self._redis.hgetall(self._room(room_id))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return {str(u): str(n) for u, n in found.items()}
