"""Backends down: never a false ``ok``, readiness fails, recovery without a restart."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlparse

import httpx
import pytest

from tests.e2e.conftest import PRESENCE_ENV
from tests.support.client import ChatClient
from tests.support.procs import Service
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.e2e
UNAVAILABLE = {"status": "error", "error": "Temporarily unavailable, retry", "code": "unavailable"}


async def ready(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(url + "/readyz", timeout=5)).status_code


async def test_redis_down_gives_unavailable_and_recovers(cluster, engine_env):
    redis = urlparse(cluster.settings.redis_url)
    proxy = await TcpProxy(redis.hostname, redis.port).start()
    env = {**engine_env, **PRESENCE_ENV, "PARLEY_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
    gateway = Service("gateway", f"gateway-redis-{uuid.uuid4().hex[:6]}", env)
    await asyncio.to_thread(lambda: gateway.start().wait_ready())
    room = f"down-{uuid.uuid4().hex[:8]}"
    client = ChatClient(gateway.url, cluster.token(f"ola-{uuid.uuid4().hex[:6]}"))
    try:
        await client.connect()
        await client.call("room:join", room)
        assert (await client.call("chat:message", {"roomId": room, "text": "up"}))["status"] == "ok"

        await proxy.cut()
        acks = [
            await client.call("chat:message", {"roomId": room, "text": f"down {i}"}, timeout=20)
            for i in range(3)
        ]
        assert acks == [UNAVAILABLE] * 3
        assert await ready(gateway.url) == 503
        refused = ChatClient(gateway.url, cluster.token("late-joiner"))
        assert (await refused.try_connect())["message"] == "Temporarily unavailable, retry"

        await proxy.restore()
        deadline = asyncio.get_running_loop().time() + 30
        ack = UNAVAILABLE
        while ack["status"] != "ok" and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            ack = await client.call("chat:message", {"roomId": room, "text": "back"}, timeout=20)
        assert ack["status"] == "ok", "gateway did not recover after Redis came back"
        assert await ready(gateway.url) == 200
    finally:
        await client.close()
        gateway.stop()
        await proxy.cut()
