"""The token denylist and the limiter's peek/reset on real Redis (single and cluster)."""

import pytest

from services.storage.ratelimit_redis import RedisRateLimiter
from services.storage.revocations_redis import RedisRevocations
from tests.contracts.security_contract import LimiterPeekContract, RevocationsContract

pytestmark = pytest.mark.integration


@pytest.fixture
def redis(redis_either):
    return redis_either


class TestRedisRevocations(RevocationsContract):
    @pytest.fixture
    def revocations(self, redis, engine_settings):
        return RedisRevocations(redis, engine_settings.redis_prefix, leeway_s=0)


class TestRedisLimiterPeek(LimiterPeekContract):
    @pytest.fixture
    def limiter(self, redis, engine_settings):
        return RedisRateLimiter(redis, engine_settings.redis_prefix)
