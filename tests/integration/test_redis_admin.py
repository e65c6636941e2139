"""The control bus and stats board contracts on real Redis (pub/sub, keys with TTLs)."""

import pytest
import redis.asyncio as aioredis

from services.storage.control_redis import RedisControlBus
from services.storage.stats_redis import RedisStatsBoard
from tests.contracts.admin_contract import ControlBusContract, StatsBoardContract

pytestmark = pytest.mark.integration


class TestRedisControlBus(ControlBusContract):
    @pytest.fixture
    async def bus(self, engine_settings):
        return RedisControlBus(engine_settings.redis_url, engine_settings.redis_prefix)


class TestRedisStatsBoard(StatsBoardContract):
    @pytest.fixture
    async def board(self, engine_settings):
        redis = aioredis.Redis.from_url(engine_settings.redis_url, decode_responses=True)
        yield RedisStatsBoard(redis, engine_settings.redis_prefix)
        await redis.aclose()
