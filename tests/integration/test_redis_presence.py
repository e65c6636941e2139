"""The presence contracts on real Redis: atomic Lua scripts that also publish the
announcements on the Socket.IO channel (heard here by a plain subscriber)."""

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from services.common.fanout_wire import room_channel
from services.storage.presence_redis import RedisPresenceStore
from tests.contracts.presence_contract import (
    AnnouncementContract,
    MembershipContract,
    PresenceStoreContract,
    ScopedContract,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def presence(engine_settings):
    store = RedisPresenceStore(
        engine_settings.redis_url, engine_settings.redis_prefix, engine_settings.socketio_channel
    )
    await store.start()
    assert await store.healthy(), "Redis is not reachable: run `make infra-up`"
    yield store
    await store.close()


@pytest.fixture
async def presence_with(engine_settings):
    """A store on its own prefix and channel, plus what a subscriber heard on that channel."""
    opened = []

    async def make(grace_ms: int, scope: str = "all"):
        prefix = f"{engine_settings.redis_prefix}{uuid.uuid4().hex[:6]}:"
        channel = prefix + "socketio"
        store = RedisPresenceStore(engine_settings.redis_url, prefix, channel, grace_ms, scope)
        await store.start()
        client = aioredis.Redis.from_url(engine_settings.redis_url, decode_responses=True)
        pubsub = client.pubsub()
        await pubsub.subscribe(channel)
        await pubsub.psubscribe(channel + "#*")  # the rooms' channels
        heard: list[tuple[str, str]] = []

        async def listen():
            async for message in pubsub.listen():
                if message["type"] in ("message", "pmessage"):
                    body = json.loads(message["data"])
                    assert body["method"] == "emit" and body["namespace"] == "/chat"
                    room = body.get("room")
                    # a room's announcement travels on that room's channel only
                    expected = channel if room is None else room_channel(channel, "/chat", room)
                    assert message["channel"] == expected, message["channel"]
                    heard.append((body["event"], body["data"][0]["userId"], room))

        task = asyncio.create_task(listen())
        opened.append((store, client, pubsub, task))
        await asyncio.sleep(0.05)
        return store, lambda: list(heard)

    yield make
    for store, client, pubsub, task in opened:
        task.cancel()
        await pubsub.aclose()
        await client.aclose()
        await store.close()


class TestRedisPresence(
    PresenceStoreContract, MembershipContract, AnnouncementContract, ScopedContract
):
    pass
