"""Kafka stopped for real: ``chat:message`` acks ``unavailable`` (never ``ok``), readiness
fails, and after Kafka returns sending works again without restarting the gateway. Messages
refused while it was down never show up in storage later.

Runs after the other suites (``deploy/local/test.sh`` orders the paths) because it restarts
the shared broker.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import httpx
import pytest

from tests.support.procs import ROOT

pytestmark = pytest.mark.e2e
UNAVAILABLE = {"status": "error", "error": "Temporarily unavailable, retry", "code": "unavailable"}


def infra(*args: str) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "deploy/local/infra.sh"), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"infra.sh {args} failed:\n{result.stdout}\n{result.stderr}"


async def test_kafka_down_acks_unavailable_and_recovers(cluster):
    room = f"kafka-down-{uuid.uuid4().hex[:8]}"
    client = await cluster.client(f"pia-{uuid.uuid4().hex[:6]}")
    try:
        await client.call("room:join", room)
        before = await client.call("chat:message", {"roomId": room, "text": "before"})
        assert before["status"] == "ok"

        await asyncio.to_thread(infra, "down", "kafka")
        try:
            refused = [
                await client.call("chat:message", {"roomId": room, "text": f"lost {i}"}, timeout=30)
                for i in range(2)
            ]
            assert refused == [UNAVAILABLE] * 2
            async with httpx.AsyncClient() as http:
                r = await http.get(cluster.gateways[0].url + "/readyz", timeout=10)
            assert r.status_code == 503 and r.json()["checks"]["log"] is False
        finally:
            await asyncio.to_thread(infra, "up", "kafka")

        deadline = asyncio.get_running_loop().time() + 60
        ack = UNAVAILABLE
        while ack["status"] != "ok" and asyncio.get_running_loop().time() < deadline:
            ack = await client.call("chat:message", {"roomId": room, "text": "after"}, timeout=30)
            if ack["status"] != "ok":
                await asyncio.sleep(1)
        assert ack["status"] == "ok", "no ok ack within 60 s of Kafka coming back"

        async def stored_texts():
            page = await client.call("chat:history", {"roomId": room})
            return [m["text"] for m in page["messages"]]

        deadline = asyncio.get_running_loop().time() + 60
        while "after" not in await stored_texts():
            assert asyncio.get_running_loop().time() < deadline, "worker did not catch up"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # anything left in a producer buffer has been flushed by now
        assert await stored_texts() == ["before", "after"]
    finally:
        await client.close()
