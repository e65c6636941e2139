"""Room emits written straight to WebSocket transports (gateway/wsdirect.py) keep every
client's order and reach every transport: websocket from the start, long-polling only, and
polling upgraded to websocket while messages flow. Runs on both deployments."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from services.common.auth import issue_token
from services.common.settings import Settings
from tests.support.client import ChatClient
from tests.support.procs import Service

pytestmark = pytest.mark.e2e

PER_SENDER = 10  # the default chat:message limit is 10 per 10 s per user
SENDERS = 8


async def direct_writes(url: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(url + "/metrics", timeout=5)).text
    for line in text.splitlines():
        if line.startswith("parley_gateway_direct_writes_total "):
            return float(line.split()[1])
    return 0.0


async def test_every_transport_gets_each_senders_messages_in_order(system):
    room = f"direct-{uuid.uuid4().hex[:8]}"
    last = len(system.gateways) - 1
    receivers = {
        "websocket": await system.client(f"ws-{room}", 0, ["websocket"]),
        "polling": await system.client(f"lp-{room}", last, ["polling"]),
    }
    for client in receivers.values():
        assert (await client.call("room:join", room))["status"] == "ok"
    before = [await direct_writes(g.url) for g in system.gateways]
    senders = [
        await system.client(f"s{n}-{room}", n % len(system.gateways)) for n in range(SENDERS)
    ]
    for sender in senders:
        assert (await sender.call("room:join", room))["status"] == "ok"

    async def send_all(n: int, sender) -> None:
        for i in range(PER_SENDER):
            ack = await sender.call("chat:message", {"roomId": room, "text": f"{n}:{i}"})
            assert ack["status"] == "ok", ack

    async def upgrade_midway() -> None:  # connects while the senders are busy
        await asyncio.sleep(0.05)
        receivers["upgraded"] = await system.client(f"up-{room}", 0, ["polling", "websocket"])
        assert (await receivers["upgraded"].call("room:join", room))["status"] == "ok"

    await asyncio.gather(upgrade_midway(), *(send_all(n, s) for n, s in enumerate(senders)))
    total = SENDERS * PER_SENDER
    for name, client in receivers.items():
        in_room = lambda m: m["roomId"] == room  # noqa: E731
        if name != "upgraded":
            for n in range(SENDERS):
                last_one = f"{n}:{PER_SENDER - 1}"
                await client.wait_for("chat:message", lambda m, t=last_one: m["text"] == t, 20)
            got = client.received("chat:message", in_room)
            assert len(got) == total, (name, len(got))
        got = client.received("chat:message", in_room)
        assert len({m["id"] for m in got}) == len(got), f"{name}: a message came twice"
        for n in range(SENDERS):
            seen = [int(m["text"].split(":")[1]) for m in got if m["text"].startswith(f"{n}:")]
            assert seen == sorted(seen), f"{name}: sender {n}'s messages out of order: {seen}"
            if name != "upgraded":
                assert seen == list(range(PER_SENDER)), (name, n, seen)
    after = [await direct_writes(g.url) for g in system.gateways]
    assert sum(after) - sum(before) >= total  # the websocket receiver at least took direct writes


@pytest.fixture(scope="module")
def quick_heartbeat(tmp_path_factory):
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_SQLITE_PATH": str(tmp_path_factory.mktemp("heartbeat") / "p.db"),
        "PARLEY_PING_INTERVAL_SECONDS": "1",
        "PARLEY_PING_TIMEOUT_SECONDS": "1",
    }
    gateway = Service("gateway", f"heartbeat-{uuid.uuid4().hex[:6]}", env).start()
    try:
        gateway.wait_ready()
        gateway.settings = Settings.from_env(env)
        yield gateway
    finally:
        gateway.stop()


async def test_a_peer_that_stops_answering_pings_loses_its_websocket(quick_heartbeat):
    """The read loop has no timer of its own: the heartbeat ends the session, and ending the
    session must close the WebSocket (else a half-open connection would be held forever)."""
    gateway = quick_heartbeat
    url = gateway.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    token = issue_token(gateway.settings, f"mute-{uuid.uuid4().hex[:6]}")
    async with websockets.connect(url) as ws:
        assert (await ws.recv()).startswith("0{")  # OPEN
        await ws.send("40/chat," + json.dumps({"token": token}))
        while not (await ws.recv()).startswith("40/chat,"):  # presence:list may come first
            pass
        pings = 0
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(15):
                while True:  # read everything, answer nothing
                    if await ws.recv() == "2":
                        pings += 1
    assert pings >= 1
    async with httpx.AsyncClient() as http:
        text = (await http.get(gateway.url + "/metrics", timeout=5)).text
    assert any(
        line.startswith("parley_gateway_disconnects_total")
        and 'reason="ping_timeout"' in line
        and float(line.split()[-1]) >= 1
        for line in text.splitlines()
    ), "the session did not end as a ping timeout"


async def test_a_peer_that_answers_pings_stays(quick_heartbeat):
    gateway = quick_heartbeat
    client = ChatClient(gateway.url, issue_token(gateway.settings, f"alive-{uuid.uuid4().hex[:6]}"))
    await client.connect()
    try:
        await asyncio.sleep(5)  # five heartbeats
        assert client.sio.connected
        assert (await client.call("room:join", f"alive-{uuid.uuid4().hex[:6]}"))["status"] == "ok"
    finally:
        await client.close()


async def test_a_long_polling_close_releases_the_pending_poll(single_node):
    """A polling client that closes must not leave its pending GET open until the poll times
    out (25 + 20 s here): python-socketio's client waits for that GET in disconnect()."""
    base = single_node.gateways[0].url + "/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient() as http:
        opened = await http.get(base, timeout=5)
        sid = json.loads(opened.text[1:])["sid"]
        pending = asyncio.create_task(http.get(f"{base}&sid={sid}", timeout=60))
        await asyncio.sleep(0.3)  # the GET is parked on the session's queue
        closed = await http.post(f"{base}&sid={sid}", content="1", timeout=5)
        assert closed.status_code == 200
        released = await asyncio.wait_for(pending, 10)
    assert released.status_code == 200
