"""The presence announcement envelope, named once (``presence_redis.announcement``), against
python-socketio as installed and against what the Lua transitions really publish."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis
import socketio

from services.storage.presence import Session
from services.storage.presence_redis import HOST_ID, RedisPresenceStore, announcement

pytestmark = pytest.mark.integration

# Keys python-socketio publishes that its listener reads with .get() and a default: absent
# from Parley's envelope means the same as these values.
OPTIONAL_DEFAULTS = {"binary": False, "callback": None, "room": None, "skip_sid": None}


async def socketio_message(event: str, data: object, room: str | None, skip_sid: str | None):
    """What python-socketio's pub/sub manager publishes for the same emit."""
    manager = socketio.AsyncRedisManager("redis://127.0.0.1:1", write_only=True)
    captured: list[dict] = []

    async def publish(message):
        captured.append(message)

    async def handle_locally(message):
        return None

    manager._publish = publish
    manager._handle_emit = handle_locally
    manager.host_id = HOST_ID
    await manager.emit(event, data, namespace="/chat", room=room, skip_sid=skip_sid)
    return captured[0]


@pytest.mark.parametrize("room,skip", [(None, None), ("lobby", None), (None, "sid1")])
async def test_the_envelope_is_the_one_python_socketio_publishes(room, skip):
    ours = announcement("presence:online", "u1", "Ann", room=room, skip_sid=skip)
    theirs = await socketio_message(
        "presence:online", {"userId": "u1", "username": "Ann"}, room, skip
    )
    for key, value in ours.items():
        assert theirs[key] == value, key
    for key in set(theirs) - set(ours):
        assert key in OPTIONAL_DEFAULTS and theirs[key] == OPTIONAL_DEFAULTS[key], key


async def test_the_lua_transitions_publish_exactly_that_envelope(engine_settings):
    prefix = f"env{uuid.uuid4().hex[:6]}:"
    channel = prefix + "socketio"
    store = RedisPresenceStore(engine_settings.redis_url, prefix, channel, grace_ms=0)
    await store.start()
    listener = aioredis.Redis.from_url(engine_settings.redis_url, decode_responses=True)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscription is confirmed before anything else
    try:
        session = Session("u-env", "Env", "sid-env", "pod-env")
        assert await store.connect(session, 1000)
        await store.disconnect(session, 2000)
        got = []
        while len(got) < 2:
            message = await pubsub.get_message(timeout=5)
            assert message is not None, "no announcement published"
            got.append(json.loads(message["data"]))
        assert got[0] == announcement("presence:online", "u-env", "Env", skip_sid="sid-env")
        assert got[1] == announcement("presence:offline", "u-env", "Env")
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await store.close()
        await asyncio.sleep(0)
