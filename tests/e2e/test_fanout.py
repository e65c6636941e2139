"""The fast path's fan-out (issue 14): interest-based subscriptions across two real gateways
on real Redis, one JSON publish per message (no pickle, nothing extra when nobody batches),
and the slow-consumer policy. The fan-out tests run twice: on the single Redis and on a local
3-master Redis Cluster (sharded pub/sub, ``tests/support/redis_cluster.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import socket
import uuid

import httpx
import pytest
import websockets

from services.common.auth import issue_token
from services.common.fanout_wire import room_channel
from services.common.settings import Settings
from tests.support.client import ChatClient
from tests.support.faults import metrics
from tests.support.procs import Service
from tests.support.redis_cluster import channel_subscribers, publish_room, room_listener

pytestmark = pytest.mark.e2e

RECEIVED = 'parley_gateway_fanout_received_total{scope="room"}'
PUBLISHED = 'parley_gateway_fanout_published_total{scope="room"}'


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def samples(gateway) -> dict[str, float]:
    """Every sample of the gateway's /metrics, labelled ones too (``name{labels}``)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway.url + "/metrics", timeout=5)).text
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


async def received(gateway) -> float:
    return (await samples(gateway)).get(RECEIVED, 0.0)


@pytest.fixture(params=["redis", "redis-cluster"])
def cluster(request, cluster):
    """The two-gateway system on the single Redis, then on the Redis Cluster."""
    return cluster if request.param == "redis" else request.getfixturevalue("rc_cluster")


async def subscribers(settings, room: str) -> int:
    return await channel_subscribers(
        settings, room_channel(settings.socketio_channel, "/chat", room)
    )


async def send(client: ChatClient, room: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ack = await client.call("chat:message", {"roomId": room, "text": f"m{i}"})
        assert ack["status"] == "ok", ack
        ids.append(ack["messageId"])
    return ids


async def test_a_pod_receives_only_the_rooms_its_sockets_are_in(cluster):
    a, b = cluster.gateways
    room = unique("interest")
    sender = await cluster.client(unique("ann"))  # on gateway a
    listener = await cluster.client(unique("ben"), gateway=1)  # on gateway b, not in the room
    await sender.call("room:join", room)
    assert await subscribers(cluster.settings, room) == 1  # gateway a only

    before = await received(b)
    await send(sender, room, 3)
    await asyncio.sleep(0.5)
    assert await received(b) == before, "gateway b processed a room it has no member in"

    await listener.call("room:join", room)  # b subscribes before the join is acked
    assert await subscribers(cluster.settings, room) == 2
    before = await received(b)
    ids = await send(sender, room, 3)
    for message_id in ids:
        await listener.wait_for("chat:message", lambda m, i=message_id: m["id"] == i)
    assert await received(b) == before + 3

    await listener.call("room:leave", room)  # the last member on b: unsubscribed
    assert await subscribers(cluster.settings, room) == 1
    before = await received(b)
    await send(sender, room, 3)
    await asyncio.sleep(0.5)
    assert await received(b) == before


async def test_one_json_publish_per_message_and_nothing_extra_without_batching(cluster):
    a, b = cluster.gateways
    room = unique("wire")
    sender = await cluster.client(unique("cat"))
    reader = await cluster.client(unique("dan"), gateway=1)
    for c in (sender, reader):
        await c.call("room:join", room)
    channel = room_channel(cluster.settings.socketio_channel, "/chat", room)
    async with room_listener(cluster.settings, channel) as next_data:
        published = (await samples(a)).get(PUBLISHED, 0.0)
        ids = await send(sender, room, 5)
        assert (await samples(a)).get(PUBLISHED, 0.0) == published + 5  # not 10
        raws = []
        while len(raws) < 5:
            raw = await next_data(5)
            assert raw is not None, "nothing published on the room's channel"
            raws.append(raw)
        for raw in raws:
            assert not raw.startswith(b"\x80"), "pickle on the wire"
            body = json.loads(raw)
            assert body["method"] == "emit" and body["event"] == "chat:message"
            assert body["room"] == room and body["data"][0]["id"] in ids


class Boom:
    """Unpickling this would run code on the gateway: it must never happen."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


async def test_a_pickle_written_to_redis_is_never_executed(cluster, tmp_path):
    room = unique("pickle")
    victim = await cluster.client(unique("eve"), gateway=1)
    await victim.call("room:join", room)
    marker = tmp_path / "pwned"
    channel = room_channel(cluster.settings.socketio_channel, "/chat", room)
    assert await publish_room(cluster.settings, channel, pickle.dumps(Boom(str(marker)))) >= 1
    await asyncio.sleep(0.5)
    assert not marker.exists()
    assert victim.sio.connected
    for g in cluster.gateways:  # still serving
        assert (await metrics(g.url)).get("parley_gateway_draining", 0.0) == 0.0


@pytest.fixture(scope="module")
def slow_gateway(tmp_path_factory):
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_SQLITE_PATH": str(tmp_path_factory.mktemp("slow") / "p.db"),
        "PARLEY_SLOW_CONSUMER_MAX_FRAMES": "20",
        "PARLEY_RATE_LIMITS": "chat:message=100000/10",
    }
    gateway = Service("gateway", unique("slow"), env).start()
    try:
        gateway.wait_ready()
        gateway.settings = Settings.from_env(env)
        yield gateway
    finally:
        gateway.stop()


async def test_a_client_that_stops_reading_is_dropped_not_buffered(slow_gateway):
    room = unique("slow")
    token = issue_token(slow_gateway.settings, unique("sloth"))
    url = slow_gateway.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    # A tiny receive buffer (no autotuning): the kernel cannot hide a client that stops
    # reading behind megabytes of buffer; the gateway's own send queue has to grow.
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no scaling
    raw.connect(("127.0.0.1", slow_gateway.port))
    stuck = await websockets.connect(url, sock=raw, max_size=None, max_queue=1)
    await stuck.recv()
    await stuck.send("40/chat," + json.dumps({"token": token}))
    await stuck.send(f'42/chat,1["room:join","{room}"]')
    for _ in range(4):  # the connect, presence:list, history, the join ack
        await asyncio.wait_for(stuck.recv(), 5)
    stuck.transport.pause_reading()  # from here on this client reads nothing

    senders = [
        await ChatClient(
            slow_gateway.url, issue_token(slow_gateway.settings, unique("s"))
        ).connect()
        for _ in range(4)
    ]
    try:
        for s in senders:
            await s.call("room:join", room)
        text = os.urandom(2450).hex()  # 4900 characters a message
        before = (await metrics(slow_gateway.url)).get(
            "parley_gateway_slow_consumers_dropped_total", 0.0
        )

        async def flood(s):
            for _ in range(450):  # ~9 MB in all, over the server's 4 MB send buffer
                await s.call("chat:message", {"roomId": room, "text": text})

        await asyncio.gather(*(flood(s) for s in senders))
        after = (await metrics(slow_gateway.url)).get(
            "parley_gateway_slow_consumers_dropped_total", 0.0
        )
        assert after >= before + 1, "the stuck client was never dropped"
        assert all(s.sio.connected for s in senders)  # readers keep up and stay
        assert "dropping slow consumer" in slow_gateway.tail(300)
    finally:
        for s in senders:
            await s.close()
        stuck.transport.resume_reading()
        await stuck.close()
