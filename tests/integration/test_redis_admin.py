"""The control bus and stats board contracts on real Redis (pub/sub, keys with TTLs), on the
single Redis and on the local Redis Cluster (``redis_target``)."""

import pytest

from services.storage.control_redis import RedisControlBus
from services.storage.stats_redis import RedisStatsBoard
from tests.contracts.admin_contract import ControlBusContract, StatsBoardContract

pytestmark = pytest.mark.integration


class TestRedisControlBus(ControlBusContract):
    @pytest.fixture
    async def bus(self, engine_settings, redis_target):
        url, options = redis_target
        return RedisControlBus(url, engine_settings.redis_prefix, redis_options=options)


class TestRedisStatsBoard(StatsBoardContract):
    @pytest.fixture
    async def board(self, engine_settings, redis_either):
        return RedisStatsBoard(redis_either, engine_settings.redis_prefix)
