"""Read-your-writes across gateways while nothing has been stored yet.

The two gateways here publish to a topic no worker consumes, so Cassandra never sees these
messages: whatever history returns comes from the recent log the gateways wrote before
acking.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from services.persistence.migrate import ensure_topics
from tests.support.client import ChatClient
from tests.support.procs import Service
from tests.support.system import PRESENCE_ENV

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def unstored(migrated, engine_env):
    topic = f"{migrated.kafka_topic}.unconsumed"
    await ensure_topics(dataclasses.replace(migrated, kafka_topic=topic))
    env = {**engine_env, **PRESENCE_ENV, "PARLEY_KAFKA_TOPIC": topic}
    gateways = [Service("gateway", f"gateway-ryw-{n}-{uuid.uuid4().hex[:4]}", env) for n in "ab"]
    for g in gateways:
        g.start()
    try:
        for g in gateways:
            g.wait_ready()
        yield gateways
    finally:
        for g in gateways:
            g.stop()


async def test_acked_on_a_is_in_history_on_b_at_once(unstored, cluster):
    a_url, b_url = (g.url for g in unstored)
    room = f"ryw-{uuid.uuid4().hex[:8]}"
    alice_id, bob_id = f"al-{uuid.uuid4().hex[:6]}", f"bo-{uuid.uuid4().hex[:6]}"
    alice = await ChatClient(a_url, cluster.token(alice_id)).connect()
    bob = await ChatClient(b_url, cluster.token(bob_id)).connect()
    try:
        await alice.call("room:join", room)
        ids = [
            (await alice.call("chat:message", {"roomId": room, "text": f"t{i}"}))["messageId"]
            for i in range(3)
        ]
        await bob.call("room:join", room)
        history = await bob.wait_for("room:history", lambda h: h["roomId"] == room)
        assert [m["id"] for m in history["messages"]] == ids
        page = await bob.call("chat:history", {"roomId": room, "before": ids[2]})
        assert [m["id"] for m in page["messages"]] == ids[:2]
        bob.events.clear()
        await bob.call("room:join", {"roomId": room, "since": ids[0]})
        resync = await bob.wait_for("room:history", lambda h: h["roomId"] == room)
        assert [m["id"] for m in resync["messages"]] == ids[1:]
        assert await bob.call("chat:read", {"roomId": room, "messageId": ids[0]}) == {
            "status": "ok"
        }
        page = await alice.call("chat:history", {"roomId": room})
        assert page["messages"][0]["readBy"] == [alice_id, bob_id]
    finally:
        await alice.close()
        await bob.close()
