"""Redis restarted empty: presence state is rebuilt from the gateways without any client
reconnecting, nobody is announced offline, and room memberships come back too."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.faults.test_kafka_down import infra

pytestmark = pytest.mark.e2e


async def test_presence_rebuilt_after_redis_restart(cluster):
    user, room = f"keep-{uuid.uuid4().hex[:6]}", f"kept-{uuid.uuid4().hex[:6]}"
    keeper = await cluster.client(user, gateway=0)
    watcher = await cluster.client(f"watch-{uuid.uuid4().hex[:6]}", gateway=1)
    try:
        await keeper.call("room:join", room)
        await watcher.call("room:join", room)
        presence_url = f"{cluster.others[1].url}/presence/{user}"

        await asyncio.to_thread(infra, "down", "redis")
        await asyncio.to_thread(infra, "up", "redis")

        async with httpx.AsyncClient() as http:
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                try:
                    state = (await http.get(presence_url, timeout=5)).json()
                except (httpx.HTTPError, ValueError):
                    state = {}
                if state.get("online"):
                    break
                assert asyncio.get_running_loop().time() < deadline, f"not rebuilt: {state}"
                await asyncio.sleep(0.5)
        assert keeper.sio.connected and watcher.sio.connected

        async with httpx.AsyncClient() as http:  # both gateways listen to the fan-out again
            for gateway in cluster.gateways:
                deadline = asyncio.get_running_loop().time() + 30
                while (await http.get(gateway.url + "/readyz", timeout=5)).status_code != 200:
                    assert asyncio.get_running_loop().time() < deadline, "gateway not ready"
                    await asyncio.sleep(0.3)
        ack = await keeper.call("chat:message", {"roomId": room, "text": "still here"})
        assert ack["status"] == "ok"  # membership was re-registered
        await watcher.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
        fresh = await cluster.client(f"fresh-{uuid.uuid4().hex[:6]}", gateway=1)
        listed = await fresh.wait_for("presence:list")
        assert user in {u["userId"] for u in listed}
        assert watcher.received("presence:offline", lambda d: d["userId"] == user) == []
    finally:
        await cluster.close_clients()
