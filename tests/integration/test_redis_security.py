"""The token denylist and the limiter's peek/reset on real Redis."""

import pytest
import redis.asyncio as aioredis

from services.storage.ratelimit_redis import RedisRateLimiter
from services.storage.revocations_redis import RedisRevocations
from tests.contracts.security_contract import LimiterPeekContract, RevocationsContract

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(engine_settings):
    client = aioredis.Redis.from_url(engine_settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


class TestRedisRevocations(RevocationsContract):
    @pytest.fixture
    def revocations(self, redis, engine_settings):
        return RedisRevocations(redis, engine_settings.redis_prefix, leeway_s=0)


class TestRedisLimiterPeek(LimiterPeekContract):
    @pytest.fixture
    def limiter(self, redis, engine_settings):
        return RedisRateLimiter(redis, engine_settings.redis_prefix)
