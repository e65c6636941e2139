"""Fan-out on a Redis Cluster only: the gateways' shard subscriptions survive losing their
node connections (the listener reloads the slot map and subscribes every room again)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.common.fanout_wire import room_channel
from tests.support.redis_cluster import any_redis, channel_subscribers

pytestmark = pytest.mark.e2e


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_gateways_resubscribe_their_rooms_after_the_node_connections_die(rc_cluster):
    s = rc_cluster
    room = unique("resub")
    channel = room_channel(s.settings.socketio_channel, "/chat", room)
    try:
        sender = await s.client(unique("ann"), gateway=0)
        listener = await s.client(unique("ben"), gateway=1)
        for c in (sender, listener):
            assert (await c.call("room:join", room))["status"] == "ok"
        assert await channel_subscribers(s.settings, channel) == 2

        rc = await any_redis(s.settings)
        killed = 0
        try:
            for node in rc.get_primaries():
                for client in await rc.client_list(target_nodes=node):
                    if int(client.get("ssub", 0)) > 0:
                        await rc.execute_command(
                            "CLIENT KILL", "ID", client["id"], target_nodes=node
                        )
                        killed += 1
        finally:
            await rc.aclose()
        assert killed >= 2, "no gateway shard subscription was found to cut"

        for _ in range(100):  # the listeners notice and subscribe again (backoff ≤ 2 s)
            if await channel_subscribers(s.settings, channel) == 2:
                break
            await asyncio.sleep(0.2)
        assert await channel_subscribers(s.settings, channel) == 2, "rooms not resubscribed"
        for n in range(3):
            ack = await sender.call("chat:message", {"roomId": room, "text": f"after {n}"})
            assert ack["status"] == "ok", ack
            mid = ack["messageId"]
            await listener.wait_for("chat:message", lambda m, i=mid: m["id"] == i)
    finally:
        await s.close_clients()
