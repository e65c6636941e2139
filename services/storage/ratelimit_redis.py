"""Redis adapter of ``RateLimiter``: a sliding log in a sorted set, updated by one Lua script."""

from __future__ import annotations

import itertools
import os

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.limits import Limit
from services.common.redis_io import AnyRedis

# KEYS[1] the log; ARGV: now_ms, window_ms, count, unique member
HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] the log; ARGV: now_ms, window_ms, count
FULL = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
return 0
"""


class RedisRateLimiter:
    def __init__(self, redis: AnyRedis, prefix: str) -> None:
        self._redis = redis
        self._script = redis.register_script(HIT)
        self._full = redis.register_script(FULL)
        self._prefix = f"{prefix}rl:"
        self._unique = f"{os.getpid()}-{id(self)}-"
        self._counter = itertools.count()

    async def hit(self, key: str, limit: Limit, now_ms: int) -> bool:
        member = f"{now_ms}-{self._unique}{next(self._counter)}"
        try:
            allowed = await self._script(
                keys=[self._prefix + key], args=[now_ms, limit.window_ms, limit.count, member]
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return bool(allowed == 1)

    async def full(self, key: str, limit: Limit, now_ms: int) -> bool:
        try:
            found = await self._full(
                keys=[self._prefix + key], args=[now_ms, limit.window_ms, limit.count]
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return bool(found == 1)

    async def reset(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
