"""The presence contracts on real Redis: atomic Lua scripts that also publish the
announcements on the Socket.IO channel (heard here by a plain subscriber) — on the shared
single Redis and on a local 3-master Redis Cluster (``tests/support/redis_cluster.py``)."""

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


@pytest.fixture(scope="module", params=["redis", "cluster"])
def backend(request, engine_settings):
    """``(url, redis_options)`` of a single Redis or of a Redis Cluster."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster"), {"cluster": True}
    return engine_settings.redis_url, {}


@pytest.fixture(scope="module")
async def presence(engine_settings, backend):
    url, options = backend
    store = RedisPresenceStore(
        url,
        engine_settings.redis_prefix,
        engine_settings.socketio_channel,
        redis_options=options,
    )
    await store.start()
    assert await store.healthy(), "Redis is not reachable: run `make infra-up`"
    yield store
    await store.close()


@pytest.fixture
async def presence_with(engine_settings, backend):
    """A store on its own prefix and channel, plus what a subscriber heard on that channel."""
    opened = []

    async def make(grace_ms: int, scope: str = "all"):
        prefix = f"{engine_settings.redis_prefix}{uuid.uuid4().hex[:6]}:"
        channel = prefix + "socketio"
        url, options = backend
        store = RedisPresenceStore(url, prefix, channel, grace_ms, scope, redis_options=options)
        await store.start()
        # a plain subscriber on one node: classic PUBLISH reaches every node of a cluster
        client = aioredis.Redis.from_url(url, decode_responses=True)
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
                    # a room's announcement travels on that room's channel only (on a
                    # cluster: on the pod-wide channel, see presence_redis)
                    expected = (
                        channel
                        if room is None or store.cluster
                        else room_channel(channel, "/chat", room)
                    )
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
