"""The presence contract on real Redis (atomic Lua scripts)."""

import pytest

from services.presence.store_redis import RedisPresenceStore
from tests.contracts.presence_contract import MembershipContract, PresenceStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def presence(engine_settings):
    store = RedisPresenceStore(engine_settings.redis_url, engine_settings.redis_prefix)
    await store.start()
    assert await store.healthy(), "Redis is not reachable: run `make infra-up`"
    yield store
    await store.close()


class TestRedisPresence(PresenceStoreContract, MembershipContract):
    pass
